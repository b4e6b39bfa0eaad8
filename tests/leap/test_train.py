"""Training: the device plan (QLoRA on CUDA, plain LoRA on CPU), assistant-only loss, SFT and DPO phases."""

from __future__ import annotations

import json

import pytest

from leap_gym.leap.config import TrainingConfig
from leap_gym.leap.train import CPU_QLORA_NOTICE, bnb_config, quantization_plan, trainer_kwargs


def test_qlora_plan_for_cuda_builds_nf4_double_quant_bf16():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    cfg = TrainingConfig()
    plan = quantization_plan("cuda", cfg)
    assert plan.quantize and plan.notice is None and plan.load_dtype == "bfloat16"
    bnb = bnb_config(plan)
    assert bnb.load_in_4bit and not bnb.load_in_8bit
    assert bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16
    assert plan.prepare == {"use_gradient_checkpointing": True,
                            "gradient_checkpointing_kwargs": {"use_reentrant": False}}
    kw = trainer_kwargs(plan, cfg, "sft", "/tmp/x", 10)
    assert kw["bf16"] is True and kw["use_cpu"] is False and kw["optim"] == "paged_adamw_8bit"
    assert kw["gradient_checkpointing"] is True and kw["max_steps"] == 10
    assert kw["completion_only_loss"] is True
    dpo = trainer_kwargs(plan, cfg, "dpo", "/tmp/x", 0)
    assert dpo["beta"] == cfg.dpo_beta and dpo["learning_rate"] == cfg.dpo_learning_rate
    assert dpo["num_train_epochs"] == cfg.epochs and "max_steps" not in dpo


def test_cpu_plan_never_quantises_and_says_why():
    cfg = TrainingConfig()
    plan = quantization_plan("cpu", cfg)
    assert not plan.quantize and bnb_config(plan) is None and plan.notice == CPU_QLORA_NOTICE
    kw = trainer_kwargs(plan, cfg, "sft", "/tmp/x", 5)
    assert kw["use_cpu"] is True and kw["bf16"] is False and kw["gradient_checkpointing"] is False
    assert kw["optim"] == "adamw_torch"
    bf16 = TrainingConfig(bf16=True)
    assert trainer_kwargs(quantization_plan("cpu", bf16), bf16, "sft", "/tmp/x", 5)["bf16"] is True
    assert quantization_plan("cpu", TrainingConfig(quantize="never")).notice is None
    assert not quantization_plan("cuda", TrainingConfig(quantize="never")).quantize
    assert not quantization_plan("cuda", TrainingConfig(finetune="full")).quantize
    # auto: a small base trains as bf16 LoRA (faster, no less memory); a large or unknown one as QLoRA
    assert not quantization_plan("cuda", TrainingConfig(), weight_bytes=270 << 20).quantize
    assert quantization_plan("cuda", TrainingConfig(), weight_bytes=16 << 30).quantize
    assert quantization_plan("cuda", TrainingConfig(quantize="always"), weight_bytes=270 << 20).quantize
    with pytest.raises(RuntimeError, match="needs CUDA"):
        quantization_plan("cpu", TrainingConfig(quantize="always"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    torch.set_num_threads(1)
    from leap_gym.models import build_model, build_tokenizer, env_text_corpus

    tok = build_tokenizer(env_text_corpus(n_samples=60), vocab_size=1024)
    path = tmp_path_factory.mktemp("base")
    build_model(tok, "tiny").save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), tok


def _rows(tok, method="sft"):
    from leap_gym.leap.dataset import build_dataset
    from tests.leap.test_dataset import _fixes, _traj

    trajs = [_traj(4), _traj(3)]
    return build_dataset(trajs, [_fixes(t) for t in trajs], method=method, tokenizer=tok, max_length=384)


def test_sft_loss_is_on_the_assistant_part_only(tiny):
    import tempfile

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from leap_gym.models import build_model

    path, tok = tiny
    rows = _rows(tok)
    cfg = TrainingConfig()
    kw = trainer_kwargs(quantization_plan("cpu", cfg), cfg, "sft", tempfile.mkdtemp(), 1, progress=False)
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(model=build_model(tok, "tiny"), args=SFTConfig(**kw), train_dataset=data,
                         processing_class=tok)
    for row, ex in zip(rows, trainer.train_dataset, strict=True):
        learned = tok.decode([i for i, lab in zip(ex["input_ids"], ex["labels"], strict=True) if lab != -100])
        assert learned.strip() == row["completion"][0]["content"] + "<|end|>"


def test_train_on_prompt_puts_the_loss_on_prompt_tokens_too(tiny):
    import tempfile

    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from leap_gym.models import build_model

    path, tok = tiny
    rows = _rows(tok)[:2]
    cfg = TrainingConfig(train_on_prompt=True)
    kw = trainer_kwargs(quantization_plan("cpu", cfg), cfg, "sft", tempfile.mkdtemp(), 1, progress=False)
    assert kw["completion_only_loss"] is False
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(model=build_model(tok, "tiny"), args=SFTConfig(**kw), train_dataset=data,
                         processing_class=tok)
    for row, ex in zip(rows, trainer.train_dataset, strict=True):
        batch = trainer.data_collator([ex])
        learned = tok.decode([i for i, lab in zip(batch["input_ids"][0], batch["labels"][0], strict=True)
                              if lab != -100])
        assert row["prompt"][-1]["content"][:40] in learned  # the student's own view is modelled too
        assert row["completion"][0]["content"] in learned


def test_sft_phase_merges_and_continues(tiny, tmp_path):
    import torch
    from safetensors.torch import load_file

    from leap_gym.leap.train import train

    path, tok = tiny
    cfg = TrainingConfig(max_steps=3, batch_size=2, warmup_steps=0)
    res = train(_rows(tok), path, tmp_path / "it0", cfg, from_scratch=True, progress=False)
    assert res.metrics["global_steps"] == 3 and res.metrics["rows"] > 0
    adapter_cfg = json.loads((tmp_path / "it0" / "adapter" / "adapter_config.json").read_text())
    assert set(adapter_cfg["modules_to_save"]) >= {"embed_tokens", "lm_head"}
    before = load_file(f"{path}/model.safetensors")
    after = load_file(f"{res.model_dir}/model.safetensors")
    assert set(before) == set(after)  # a plain checkpoint again, adapter folded in
    assert not torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(before["model.layers.0.self_attn.q_proj.weight"],
                           after["model.layers.0.self_attn.q_proj.weight"])
    assert not (tmp_path / "it0.partial").exists()
    # the next iteration starts from the merged weights; their config keeps the random-init marker, which
    # from_scratch=None (a user's own checkpoint path) reads: embeddings and head are still trained in full
    res2 = train(_rows(tok), res.model_dir, tmp_path / "it1", cfg, progress=False)
    assert res2.metrics["global_steps"] == 3 and res2.metrics["from_scratch"] is True
    adapter_cfg = json.loads((tmp_path / "it1" / "adapter" / "adapter_config.json").read_text())
    assert set(adapter_cfg["modules_to_save"]) >= {"embed_tokens", "lm_head"}
    log = json.loads((tmp_path / "it1" / "train_log.json").read_text())
    assert log["plan"]["quantize"] is False and log["log_history"]


def test_freed_memory_is_handed_back_after_every_rows_backward_pass(tiny, tmp_path, monkeypatch):
    """Not only after each optimizer step: a step's accumulated rows would pile up freed activation blocks."""
    import importlib

    train_module = importlib.import_module("leap_gym.leap.train")  # the package exports a `train` function

    calls = []
    real = train_module.release_freed_memory

    def counted() -> None:
        calls.append(1)
        real()

    monkeypatch.setattr(train_module, "release_freed_memory", counted)
    path, tok = tiny
    cfg = TrainingConfig(max_steps=2, batch_size=1, grad_accum=3, warmup_steps=0, checkpoint_steps=0)
    train_module.train(_rows(tok), path, tmp_path / "it0", cfg, from_scratch=True, progress=False)
    assert len(calls) == 2 * 3


def test_stack_mode_keeps_training_one_adapter(tiny, tmp_path):
    from leap_gym.leap.train import train

    path, tok = tiny
    cfg = TrainingConfig(max_steps=2, batch_size=2, continue_mode="stack")
    res = train(_rows(tok), path, tmp_path / "a", cfg, from_scratch=True, progress=False)
    assert res.model_dir == path and res.adapter_dir.endswith("adapter")
    res2 = train(_rows(tok), path, tmp_path / "b", cfg, from_scratch=True, adapter_dir=res.adapter_dir,
                 progress=False)
    assert (tmp_path / "b" / "adapter" / "adapter_model.safetensors").exists() and res2.model_dir == path


def test_dpo_phase_runs_on_cpu(tiny, tmp_path):
    from leap_gym.leap.train import train

    path, tok = tiny
    rows = _rows(tok, "dpo")
    assert rows and all("chosen" in r and "rejected" in r for r in rows)
    res = train(rows, path, tmp_path / "dpo", TrainingConfig(max_steps=2, batch_size=2), from_scratch=True,
                method="dpo", progress=False)
    assert res.metrics["method"] == "dpo" and res.metrics["global_steps"] == 2
    assert (tmp_path / "dpo" / "model" / "model.safetensors").exists()


def test_no_rows_is_a_clear_error(tiny, tmp_path):
    from leap_gym.leap.train import train

    with pytest.raises(ValueError, match="no training rows"):
        train([], tiny[0], tmp_path / "x", TrainingConfig())


class _Interrupt(Exception):
    pass


def _step_recorder(stop_after: int | None = None):
    """A callback that records the optimizer steps it sees and, like a kill, interrupts after
    ``stop_after``."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)
            if stop_after is not None and state.global_step >= stop_after:
                raise _Interrupt(f"interrupted after step {state.global_step}")

    return Recorder()


@pytest.mark.slow  # four short trainings (~30 s on 2 shared cores)
def test_interrupted_training_resumes_from_its_last_checkpoint(tiny, tmp_path, caplog):
    """Checkpoints every 2 steps; interrupted after step 5, the next call resumes at step 4 (not 0), and ends
    with the very weights an uninterrupted training ends with."""
    from safetensors.torch import load_file

    from leap_gym.leap.train import train

    path, tok = tiny
    rows = _rows(tok)
    cfg = TrainingConfig(max_steps=8, batch_size=2, warmup_steps=0, checkpoint_steps=2)
    straight = train(rows, path, tmp_path / "straight", cfg, from_scratch=True, progress=False)

    out = tmp_path / "it0"
    first = _step_recorder(stop_after=5)
    with pytest.raises(_Interrupt):
        train(rows, path, out, cfg, from_scratch=True, progress=False, callbacks=[first])
    assert first.steps == [1, 2, 3, 4, 5] and not out.exists()
    checkpoints = sorted(p.name for p in (tmp_path / "it0.partial" / "trainer").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2", "checkpoint-4"]  # save_total_limit=2
    caplog.clear()

    second = _step_recorder()
    res = train(rows, path, out, cfg, from_scratch=True, progress=False, callbacks=[second])
    assert f"resuming training from {tmp_path / 'it0.partial' / 'trainer' / 'checkpoint-4'}" in caplog.text
    assert second.steps == [5, 6, 7, 8] and res.metrics["global_steps"] == 8
    assert not (tmp_path / "it0.partial").exists()
    a = load_file(str(tmp_path / "straight" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert set(a) == set(b) and all(torch_equal(a[k], b[k]) for k in a)
    assert straight.metrics["global_steps"] == res.metrics["global_steps"]

    # other inputs (here: rows) never resume from a foreign checkpoint: they start over
    with pytest.raises(_Interrupt):
        train(rows, path, tmp_path / "it1", cfg, from_scratch=True, progress=False,
              callbacks=[_step_recorder(stop_after=3)])
    third = _step_recorder()
    train(rows[:-1], path, tmp_path / "it1", cfg, from_scratch=True, progress=False, callbacks=[third])
    assert third.steps[0] == 1


def torch_equal(x, y) -> bool:
    import torch

    return torch.equal(x, y)


def test_resume_checkpoint_only_for_the_same_inputs_and_complete_checkpoints(tmp_path):
    from leap_gym.leap.train import resume_checkpoint

    partial = tmp_path / "train.partial"
    assert resume_checkpoint(partial, {"rows": [1]}) is None and partial.is_dir()  # fresh start, stamped
    for step, state in ((2, "{}"), (4, "{}"), (6, '{"global_st')):  # 6: killed while saving
        (partial / "trainer" / f"checkpoint-{step}").mkdir(parents=True)
        (partial / "trainer" / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (partial / "trainer" / "checkpoint-8").mkdir()  # killed before trainer_state.json
    assert resume_checkpoint(partial, {"rows": [1]}) == str(partial / "trainer" / "checkpoint-4")
    assert sorted(p.name for p in (partial / "trainer").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert resume_checkpoint(partial, {"rows": [2]}) is None  # other inputs: start over
    assert list(partial.iterdir()) == [partial / "inputs.sha256"]


def _batch(tok, rows):
    """Rows tokenized as ``train`` does (``_rows_to_dataset``), right-padded into one batch."""
    import torch

    from leap_gym.leap.train import _rows_to_dataset

    data = _rows_to_dataset(rows, "sft", tok)
    width = max(len(x) for x in data["input_ids"])
    ids = torch.full((len(data), width), tok.pad_token_id)
    labels = torch.full((len(data), width), -100)
    mask = torch.zeros((len(data), width), dtype=torch.long)
    for i, (x, y) in enumerate(zip(data["input_ids"], data["labels"], strict=True)):
        ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _episode_rows(tok):
    from leap_gym.leap.dataset import build_dataset
    from tests.leap.test_dataset import _fixes, _traj

    trajs = [_traj(4), _traj(3)]
    return (build_dataset(trajs, None, tokenizer=tok, max_length=384, prompt_format="episode")
            + build_dataset(trajs, [_fixes(t) for t in trajs], tokenizer=tok, max_length=384,
                            prompt_format="episode"))


def test_answer_only_loss_equals_the_full_output_layer_loss(tiny):
    import tempfile

    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from trl import SFTConfig, SFTTrainer

    from leap_gym.leap.train import answer_only_loss, sft_trainer_class, top_layers
    from leap_gym.models import build_model, lora_config_for

    path, tok = tiny
    rows = _episode_rows(tok)
    batch = _batch(tok, rows)
    assert 0 < int((batch["labels"] != -100).sum()) < int(batch["attention_mask"].sum()) / 2
    model = build_model(tok, "tiny")
    with torch.no_grad():
        full = model(**batch).loss  # transformers' loss: the output layer over every position
        assert torch.allclose(answer_only_loss(model, batch), full, rtol=1e-5, atol=1e-6)
        n = int((batch["labels"][:, 1:] != -100).sum())
        assert torch.allclose(answer_only_loss(model, batch, num_items_in_batch=2 * n), full / 2, rtol=1e-5)
    peft = get_peft_model(model, lora_config_for(model, True, **top_layers(model, 1)))
    with torch.no_grad():
        torch.nn.init.normal_(peft.base_model.model.model.layers[2].self_attn.q_proj.lora_B["default"].weight)
        assert torch.allclose(answer_only_loss(peft, batch), peft(**batch).loss, rtol=1e-5, atol=1e-6)
    # and inside the trainer: the subclass's loss equals TRL's own compute_loss on the same batch
    cfg = TrainingConfig()
    kw = trainer_kwargs(quantization_plan("cpu", cfg), cfg, "sft", tempfile.mkdtemp(), 1, progress=False)
    data = Dataset.from_list([{"input_ids": x, "labels": y} for x, y in zip(
        batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True)])
    trainer = sft_trainer_class()(model=build_model(tok, "tiny"), args=SFTConfig(**kw), train_dataset=data,
                                  processing_class=tok)
    inputs = trainer._prepare_inputs(batch)
    with torch.no_grad():
        ours = trainer.compute_loss(trainer.model, inputs)
        trl = SFTTrainer.compute_loss(trainer, trainer.model, inputs)
    assert torch.allclose(ours, trl, rtol=1e-5, atol=1e-6)


def test_top_layers_adapts_only_the_top_layers(tiny):
    from peft import get_peft_model

    from leap_gym.leap.train import top_layers
    from leap_gym.models import build_model, lora_config_for

    _, tok = tiny
    model = build_model(tok, "tiny")  # 3 layers
    assert top_layers(model, 0) == {} and top_layers(model, 3) == {} and top_layers(model, 9) == {}
    kw = top_layers(model, 1)
    assert kw["layers_to_transform"] == [2] and "q_proj" in kw["target_modules"]
    peft = get_peft_model(model, lora_config_for(model, True, **kw))  # + embeddings and head, trained in full
    trained = [n for n, p in peft.named_parameters() if p.requires_grad]
    lora = [n for n in trained if "lora_" in n]
    assert lora and all(".layers.2." in n for n in lora)
    assert all("embed_tokens" in n or "lm_head" in n for n in set(trained) - set(lora))
    adapted = {n.split(".layers.2.")[1].split(".lora_")[0] for n in lora}
    assert adapted >= {"self_attn.q_proj", "mlp.down_proj"}


def test_training_the_top_layer_leaves_the_lower_layers_untouched(tiny, tmp_path):
    import torch
    from safetensors.torch import load_file

    from leap_gym.leap.train import train

    path, tok = tiny
    cfg = TrainingConfig(max_steps=2, batch_size=2, warmup_steps=0, lora_layers=1)
    res = train(_episode_rows(tok), path, tmp_path / "top", cfg, from_scratch=True, progress=False)
    assert res.metrics["global_steps"] == 2
    adapter_cfg = json.loads((tmp_path / "top" / "adapter" / "adapter_config.json").read_text())
    assert adapter_cfg["layers_to_transform"] == [2]
    before = load_file(f"{path}/model.safetensors")
    after = load_file(f"{res.model_dir}/model.safetensors")
    assert set(before) == set(after)
    lower = [k for k in before if ".layers.0." in k or ".layers.1." in k or k == "model.norm.weight"]
    assert lower and all(torch.equal(before[k], after[k]) for k in lower)
    top = [k for k in before if ".layers.2." in k and k.endswith("proj.weight")]
    assert any(not torch.equal(before[k], after[k]) for k in top)


def test_packed_corrections_train_on_the_same_tokens_as_one_row_per_step(tiny):
    """A packed row (all corrected steps of a chat window, each answer a branch under a tree attention mask)
    gives every answer token the same loss as the per-step rows, in one sequence."""
    import torch

    from leap_gym.leap.dataset import DatasetStats, build_dataset
    from leap_gym.leap.train import TreeCollator, _rows_to_dataset, answer_only_loss
    from leap_gym.models import build_model
    from tests.leap.test_dataset import _fixes, _traj

    path, tok = tiny
    trajs = [_traj(5), _traj(3)]
    fixes = [_fixes(t) for t in trajs]
    kw = {"tokenizer": tok, "max_length": 2048, "prompt_format": "episode", "answer_room": 16}
    stats = DatasetStats()
    per_step = build_dataset(trajs, fixes, **kw)
    packed = build_dataset(trajs, fixes, pack=True, stats=stats, **kw)
    assert len(per_step) == 8 and len(packed) == 2 and stats.rows == 2
    assert [len(r["branches"]) for r in packed] == [5, 3] and packed[0]["meta"]["steps"] == [0, 1, 2, 3, 4]
    # a smaller budget restarts the chat: one packed row per window, each answer after its own step's prompt
    long = [_traj(12)]
    budget = build_dataset(long, [_fixes(long[0])], **kw)[8]["meta"]["tokens"]  # a restart near step 8
    small = dict(kw, max_length=budget)
    windows = build_dataset(long, [_fixes(long[0])], pack=True, **small)
    rows = build_dataset(long, [_fixes(long[0])], **small)
    assert len(rows) == 12 and len(windows) == 2 and windows[1]["meta"]["steps"][0] >= 8
    branches = [(row["prompt"], b) for row in windows for b in row["branches"]]
    assert [(b["at"], b["content"]) for _, b in branches] == [
        (len(r["prompt"]), r["completion"][0]["content"]) for r in rows]
    assert all(trunk[:b["at"]] == r["prompt"] for (trunk, b), r in zip(branches, rows, strict=True))
    tokens = sum(r["meta"]["tokens"] for r in packed)
    assert tokens < sum(r["meta"]["tokens"] for r in per_step) / 2

    model = build_model(tok, "tiny").eval()
    sums = []
    for rows in (per_step, packed):
        data = _rows_to_dataset(rows, "sft", tok)
        items = [{k: data[k][i] for k in data.column_names} for i in range(len(data))]
        if "fork" not in data.column_names:
            items = [dict(x, position_ids=list(range(len(x["input_ids"]))), fork=[-1] * len(x["input_ids"]))
                     for x in items]
        batch = TreeCollator(tok.pad_token_id)(items)
        n = int((batch["labels"][:, 1:] != -100).sum())
        with torch.no_grad():
            sums.append((float(answer_only_loss(model, batch, num_items_in_batch=1)), n))
    (loss_rows, n_rows), (loss_packed, n_packed) = sums
    assert n_rows == n_packed and loss_rows == pytest.approx(loss_packed, rel=1e-4)


def test_packed_rows_train_with_their_tree_mask(tiny, tmp_path):
    from leap_gym.leap.dataset import build_dataset
    from leap_gym.leap.train import train
    from tests.leap.test_dataset import _fixes, _traj

    path, tok = tiny
    trajs = [_traj(4), _traj(3)]
    rows = (build_dataset(trajs, None, tokenizer=tok, max_length=384, prompt_format="episode")
            + build_dataset(trajs, [_fixes(t) for t in trajs], tokenizer=tok, max_length=384,
                            prompt_format="episode", answer_room=16, pack=True))
    res = train(rows, path, tmp_path / "it1", TrainingConfig(max_steps=2, batch_size=2, warmup_steps=0),
                from_scratch=True, progress=False)
    assert res.metrics["global_steps"] == 2 and res.metrics["train_loss"] > 0
