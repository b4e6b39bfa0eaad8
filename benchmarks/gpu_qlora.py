"""QLoRA vs bf16 LoRA training and batched acting of a Llama-shaped student on one GPU (issues #10, #19).

Shapes: Llama-3-8B and Llama-3.2-1B (issue #10), and SmolLM2-135M-Instruct (issue #19, the default pretrained
student, whose LEAP rows are 512-2048 tokens). Nothing can be downloaded on the GPU machine, so the model is
built from the shape's public config with random weights (in bf16, on the GPU), saved once as safetensors, and
then loaded back through the library's own paths: ``leap_gym.leap.train.train`` (``quantization_plan`` ->
4-bit NF4 + double quantisation + bf16 compute, LoRA on all linear layers, non-reentrant gradient
checkpointing, paged 8-bit AdamW; or bf16 LoRA, what the LEAP authors ran) and ``HFStudent.act_batch`` (what
rollouts call). Random weights cost exactly what trained ones cost.

Training rows are LEAP-style chats (system rules, task, a long history of WebShop-like result pages and
actions, candidate actions; the target is ``REASON: ...\\nACTION: ...``) fitted to each ``--seq-len`` tokens
of the library's byte-level tokenizer (the model keeps its shape's vocabulary, 128256 rows for Llama-3 and
49152 for SmolLM2, so its head costs what the real one does). A ``TrainerCallback`` times every optimizer step
after ``--warmup`` ones. Acting reports actions/s: one ``act_batch`` call is one action for each env.

MFU. Model FLOPs per trained token = 4*N + 6*N_lora + 6*L*s*d, where N = weights of every matrix product of
the base (attention, MLP, lm_head; not the embedding lookup), N_lora = trainable LoRA weights, L layers,
s = row length, d = hidden size. Frozen weights cost a forward (2N) and an activation gradient (2N) but no
weight gradient; trainable ones cost all three (6 per weight); causal attention scores and values cost
2*L*s*d forward and twice that backward. Gradient-checkpointing recompute and 4-bit dequantisation are not
counted: they are the overhead MFU should expose. MFU = FLOPs/token * tokens/s / ``--peak-tflops`` (H100 and
H200 SXM dense bf16: 989); on CUDA the run also measures a large bf16 matrix product and reports MFU against
that (``mfu_measured``), the ceiling the chip reaches in practice.

    python benchmarks/gpu_qlora.py --out $OUT/gpu_qlora.json            # the full run on a GPU
    python benchmarks/gpu_qlora.py --shape smollm2-135m --batch 8 --out $OUT/gpu_smollm2.json
    python benchmarks/gpu_qlora.py --smoke --out /tmp/smoke.json         # tiny, on CPU, for the tests
    python benchmarks/gpu_qlora.py --build-only --shape llama3.2-1b --model-dir /tmp/leap_gpu_base
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leap_gym.io import atomic_write_json  # noqa: E402

# Public configs of the shapes (head_dim = hidden / heads in all of them). Llama-3 unties its embeddings;
# SmolLM2 ties them (its head reuses the embedding table, but the head's matrix product is still computed).
SHAPES: dict[str, dict[str, Any]] = {
    "llama3-8b": {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336,
                  "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                  "max_position_embeddings": 8192, "rope_theta": 500000.0, "tie_word_embeddings": False},
    "llama3.2-1b": {"hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 8192,
                    "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                    "max_position_embeddings": 8192, "rope_theta": 500000.0, "tie_word_embeddings": False},
    "smollm2-135m": {"hidden_size": 576, "num_hidden_layers": 30, "intermediate_size": 1536,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
                     "max_position_embeddings": 8192, "rope_theta": 100000.0, "tie_word_embeddings": True},
    "smoke": {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 0, "max_position_embeddings": 2048,
              "rope_theta": 500000.0, "tie_word_embeddings": False},
}
# Training row lengths (tokens) measured when --seq-len is not given: what LEAP rows are for that model size
# (Llama-3 runs: 2k-8k; SmolLM2 episodes and long WebShop steps: 512-2048).
SEQ_LENS: dict[str, list[int]] = {"llama3-8b": [4096], "llama3.2-1b": [4096],
                                  "smollm2-135m": [512, 1024, 2048], "smoke": [384]}
MODES = {"qlora": "always", "bf16-lora": "never"}  # mode -> TrainingConfig.quantize


def shape_config(shape: str, tokenizer: Any, layers: int | None = None):
    """A ``LlamaConfig`` of a named shape; vocab 0 means the tokenizer's own size (the smoke model)."""
    from transformers import LlamaConfig

    kw = dict(SHAPES[shape])
    kw["vocab_size"] = max(kw["vocab_size"], len(tokenizer))
    if layers:
        kw["num_hidden_layers"] = layers
    return LlamaConfig(bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                       rope_parameters={"rope_type": "default", "rope_theta": kw.pop("rope_theta")}, **kw)


def build_checkpoint(model_dir: Path, shape: str, layers: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Save a randomly initialised model of ``shape`` (bf16) with the library's tokenizer to ``model_dir``.

    Built directly in bf16 on the GPU when there is one (an 8B model initialises in seconds there, and needs
    16 GB instead of 32 in fp32), then written as safetensors so every mode loads it the way users load a
    checkpoint. An existing checkpoint of the same config is reused (the 8B one is 16 GB on disk).
    """
    import torch
    from transformers import LlamaForCausalLM

    from leap_gym.models import build_tokenizer

    tok = build_tokenizer()
    config = shape_config(shape, tok, layers)
    tok.model_max_length = config.max_position_embeddings
    marker = model_dir / "leap_gym_shape.json"
    wanted = {"shape": shape, "layers": config.num_hidden_layers, "seed": seed}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return {"built_s": 0.0, "reused": True}
    t0 = time.perf_counter()
    shutil.rmtree(model_dir, ignore_errors=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    marker.write_text(json.dumps(wanted))
    del model
    _free()
    return {"built_s": time.perf_counter() - t0, "reused": False}


def _free() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- LEAP-style rows -----------------------------------------------------------------------------------------
_WORDS = ("organic cotton slim fit long sleeve machine wash easy clean water resistant wireless bluetooth "
          "non slip leather gluten free pack of 2 natural large x-large small blue black white red").split()
_ITEMS = ("shirt dress shoes headphones case cream shampoo mug mat speaker backpack dryer jeans sunglasses "
          "tea bar pillow light band cover").split()


def _page(rng: random.Random, n_items: int) -> str:
    """A WebShop-like search results page (the long observations that make LEAP rows thousands of tokens)."""
    parts = ["[SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next >"]
    for _ in range(n_items):
        title = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 14))) + " " + rng.choice(_ITEMS)
        parts.append(f"[SEP] B0{rng.randint(10**6, 10**7 - 1)}X [SEP] {title.title()} [SEP] "
                     f"${rng.randint(5, 99)}.{rng.randint(0, 99):02d}")
    return " ".join(parts)


def leap_rows(tokenizer: Any, n: int, seq_len: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` SFT rows in ``build_dataset``'s format, each as close to ``seq_len`` tokens as a page allows.

    History steps are added while the row stays under ``seq_len``; the current page is then grown item by item
    up to it. ``meta.tokens`` holds the exact length, which ``train`` uses as the trainer's ``max_length``.
    """
    from leap_gym.leap.dataset import chat_token_counter

    count = chat_token_counter(tokenizer)
    rng = random.Random(seed)
    return [_fitted_row(rng, count, seq_len) for _ in range(n)]


def _fitted_row(rng: random.Random, count: Any, seq_len: int) -> dict[str, Any]:
    from leap_gym.agents.prompting import build_messages, format_target

    task = (f"i need a {rng.choice(_WORDS)} {rng.choice(_ITEMS)}, and price lower than {rng.randint(20, 90)} "
            "dollars")
    answer = [{"role": "assistant", "content": format_target(
        "The second item matches the colour, size and price, so I open it.",
        f"click[b0{rng.randint(10**6, 10**7 - 1)}x]")}]
    cands = ["back to search", "next >"] + [f"b0{rng.randint(10**6, 10**7 - 1)}x" for _ in range(10)]
    page_seed = rng.random()

    def row(hist: list[tuple[str, str]], items: int) -> tuple[list[dict[str, str]], int]:
        page = _page(random.Random(page_seed), items)
        msgs = build_messages(task, hist, page, cands, k=len(hist), env="leap/WebShop-v0", max_obs_chars=None)
        return msgs, count(msgs + answer)

    hist: list[tuple[str, str]] = []
    while True:
        step = (_page(rng, 10), f"click[{rng.choice(['next >', 'back to search'])}]")
        if row(hist + [step], 1)[1] > seq_len:
            break
        hist.append(step)
    items, (msgs, tokens) = 1, row(hist, 1)
    while True:
        grown = row(hist, items + 1)
        if grown[1] > seq_len:
            break
        items, (msgs, tokens) = items + 1, grown
    return {"prompt": msgs, "completion": answer, "meta": {"tokens": tokens}}


# -- measurement ---------------------------------------------------------------------------------------------
def _step_timer(warmup: int):
    """A ``TrainerCallback`` recording the wall time of every optimizer step after ``warmup``
    (CUDA-synced)."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.trainable = 0
            self._t0 = 0.0

        def _sync(self):
            if torch.cuda.is_available():
                torch.cuda.synchronize()

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

        def on_step_begin(self, args, state, control, **kwargs):
            self._sync()
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self._sync()
            if state.global_step > warmup:
                self.times.append(time.perf_counter() - self._t0)

    return StepTimer()


def matmul_params(config: Any) -> int:
    """Weights of every matrix product of a Llama forward pass (all linear layers + lm_head; no embedding)."""
    d, i, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (d // config.num_attention_heads)
    return L * (2 * d * d + 2 * d * kv + 3 * d * i) + d * config.vocab_size


def flops_per_token(config: Any, lora_params: int, seq_len: float) -> float:
    """Model FLOPs per trained token (module doc): 4*N + 6*N_lora + 6*L*s*d."""
    return (4 * matmul_params(config) + 6 * lora_params
            + 6 * config.num_hidden_layers * seq_len * config.hidden_size)


def matmul_tflops(n: int = 8192, repeats: int = 10) -> float:
    """Measured bf16 TFLOP/s of an ``n``-cube matrix product on random data (median of ``repeats`` after three
    warm-ups, CUDA events): the practical ceiling for ``mfu_measured``."""
    import torch

    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del a, b
    _free()
    return 2 * n**3 / sorted(times)[len(times) // 2] / 1e12


def train_mode(mode: str, model_dir: Path, rows: list[dict[str, Any]], seq_len: int, args: argparse.Namespace,
               work: Path) -> dict[str, Any]:
    """One training run through ``leap_gym.leap.train.train``; tokens/s over the timed steps, peak memory."""
    import torch
    from transformers import AutoConfig

    from leap_gym.leap.config import TrainingConfig
    from leap_gym.leap.train import train

    cfg = TrainingConfig(quantize=MODES[mode], finetune="lora", continue_mode="stack", lora_r=args.lora_r,
                         lora_alpha=2 * args.lora_r, batch_size=args.batch, grad_accum=1, warmup_steps=0,
                         learning_rate=1e-4, max_length=seq_len, seed=0)
    cuda = torch.cuda.is_available()
    _free()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start_alloc = torch.cuda.memory_allocated() if cuda else 0
    timer = _step_timer(args.warmup)
    t0 = time.perf_counter()
    res = train(rows, model_dir, work / f"{mode}-{seq_len}", cfg, from_scratch=False,
                max_steps=args.warmup + args.steps, progress=False, callbacks=[timer])
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() if cuda else 0
    reserved = torch.cuda.max_memory_reserved() if cuda else 0
    tokens_per_step = args.batch * sum(r["meta"]["tokens"] for r in rows) / len(rows)
    step_s = sorted(timer.times)[len(timer.times) // 2] if timer.times else float("nan")
    tok_s = tokens_per_step / step_s
    config = AutoConfig.from_pretrained(model_dir)
    fpt = flops_per_token(config, timer.trainable, tokens_per_step / args.batch)
    _free()
    return {"mode": mode, "device": res.metrics["device"], "quantized": res.metrics["quantized"],
            "seq_len": round(tokens_per_step / args.batch), "batch": args.batch,
            "timed_steps": len(timer.times), "step_s_median": step_s, "train_tok_s": tok_s,
            "peak_gpu_gib": peak / 2**30,
            "peak_reserved_gib": reserved / 2**30,
            "start_gpu_gib": start_alloc / 2**30, "lora_params_m": timer.trainable / 1e6,
            "flops_per_token_g": fpt / 1e9, "mfu": fpt * tok_s / (args.peak_tflops * 1e12),
            "mfu_measured": fpt * tok_s / (args.measured_tflops * 1e12) if args.measured_tflops else None,
            "loss": res.metrics["train_loss"], "wall_s": wall}


def acting(model_dir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Actions/s and generated tokens/s of ``HFStudent.act_batch`` (bf16, KV cache) for each env count.

    Every env gets a WebShop-like page of about ``--act-prompt-len`` prompt tokens; a random model rarely
    emits an end-of-turn token, so most rows generate ``--act-new-tokens``. Only generated tokens count; each
    env count is timed ``--act-repeats`` times and the fastest is kept (the first call per shape pays
    warm-up).
    """
    import torch

    from leap_gym.agents.student import HFStudent

    _free()
    cuda = torch.cuda.is_available()
    student = HFStudent(str(model_dir), env="leap/WebShop-v0", max_new_tokens=args.act_new_tokens,
                        max_prompt_tokens=args.act_prompt_len + 512, batch_size=max(args.envs), k=0)
    tok = student.tokenizer
    rng = random.Random(1)
    cands = ["back to search", "next >"] + [f"b0{rng.randint(10**6, 10**7 - 1)}x" for _ in range(10)]
    page, items = _page(rng, 1), 1
    while len(tok(page)["input_ids"]) < args.act_prompt_len - 150:  # the rest of the prompt is ~150 tokens
        items += 1
        page = _page(random.Random(items), items)
    out = []
    for n in [1] + list(args.envs):  # the first (1 env) warms up kernels and the allocator
        obs = [page + f" [SEP] env {i}" for i in range(n)]
        infos = [{"task": f"i need item {i}", "admissible_actions": cands} for i in range(n)]
        best = None
        for _ in range(args.act_repeats):
            student.reset_batch(n)  # the same prompts each time: no history grows
            before = dict(student.stats)
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            student.act_batch(obs, infos)
            if cuda:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            gen = student.stats["generated_tokens"] - before["generated_tokens"]
            prompt = (student.stats["prompt_tokens"] - before["prompt_tokens"]) / n
            if best is None or gen / dt > best["gen_tok_s"]:
                best = {"envs": n, "prompt_tokens": round(prompt), "generated_tokens": gen, "wall_s": dt,
                        "actions_s": n / dt, "gen_tok_s": gen / dt}
        out.append(best)
    del student
    _free()
    return out[1:]


def markdown(result: dict[str, Any]) -> str:
    train_cols = ["mode", "seq_len", "batch", "train_tok_s", "peak_gpu_gib", "peak_reserved_gib", "mfu",
                  "mfu_measured", "step_s_median", "lora_params_m"]
    peak = (f"; measured bf16 matmul {result['measured_tflops']:.0f} TFLOP/s" if result["measured_tflops"]
            else "")
    lines = [f"Model: {result['shape']} ({result['layers']} layers), random weights; device: "
             f"{result['device']}{peak}", "", "| " + " | ".join(train_cols) + " |",
             "|" + "---|" * len(train_cols)]
    for r in result["train"]:
        if "error" in r:
            lines.append(f"| {r['mode']} | {r['seq_len']} | failed: {r['error'][:200]} |")
            continue
        lines.append("| " + " | ".join(f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c])
                                       for c in train_cols) + " |")
    if result["act"]:
        lines += ["", "| envs | prompt tokens | generated tokens | wall s | actions/s | generated tok/s |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {a['envs']} | {a['prompt_tokens']} | {a['generated_tokens']} | {a['wall_s']:.2f} | "
                  f"{a['actions_s']:.1f} | {a['gen_tok_s']:.0f} |" for a in result["act"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="llama3-8b")
    p.add_argument("--layers", type=int, default=None, help="fewer layers than the shape for a quick run")
    p.add_argument("--model-dir", default="/tmp/leap_gpu_model", help="where the random checkpoint is saved")
    p.add_argument("--work-dir", default="/tmp/leap_gpu_work", help="trainer outputs (adapters)")
    p.add_argument("--seq-len", type=int, nargs="+", default=None,
                   help="tokens per training row, one run per length (default: the shape's LEAP lengths)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=8, help="timed optimizer steps per mode")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    p.add_argument("--envs", type=int, nargs="*", default=[1, 16, 64],
                   help="env counts for acting (none: skip)")
    p.add_argument("--act-prompt-len", type=int, default=1024)
    p.add_argument("--act-new-tokens", type=int, default=64)
    p.add_argument("--act-repeats", type=int, default=2)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--build-only", action="store_true", help="only save the random checkpoint to --model-dir")
    p.add_argument("--keep-model", action="store_true", help="keep --model-dir afterwards (reuse next run)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny shape, 384-token rows, 2 steps, bf16-lora only, 1 and 2 envs: runs on CPU")
    p.add_argument("--out", default=None, help="JSON results path")
    args = p.parse_args(argv)
    if args.smoke:
        args.shape, args.seq_len, args.steps, args.warmup, args.lora_r = "smoke", [384], 2, 1, 4
        args.modes, args.envs, args.act_prompt_len, args.act_new_tokens = ["bf16-lora"], [1, 2], 200, 4
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.seq_len = args.seq_len or SEQ_LENS[args.shape]
    args.measured_tflops = matmul_tflops() if torch.cuda.is_available() and not args.build_only else None
    model_dir, work = Path(args.model_dir), Path(args.work_dir)
    build = build_checkpoint(model_dir, args.shape, args.layers)
    result: dict[str, Any] = {"shape": args.shape, "build": build, "command": " ".join(sys.argv),
                              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                              "versions": _versions(), "peak_tflops": args.peak_tflops,
                              "measured_tflops": args.measured_tflops, "train": [], "act": []}
    from transformers import AutoConfig, AutoTokenizer

    result["layers"] = AutoConfig.from_pretrained(model_dir).num_hidden_layers
    if args.build_only:
        print(json.dumps(result, indent=1))
        return result
    tok = AutoTokenizer.from_pretrained(model_dir)
    # One lease, one try: a run that fails is recorded with its error and the others still run; the JSON is
    # rewritten after each run, so a run cut off by the lease's limit keeps what finished.
    for seq_len in args.seq_len:
        rows = leap_rows(tok, args.batch * (args.steps + args.warmup), seq_len)
        for mode in args.modes:
            try:
                result["train"].append(train_mode(mode, model_dir, rows, seq_len, args, work))
            except Exception as exc:  # recorded, and the exit status says so
                traceback.print_exc()
                result["train"].append({"mode": mode, "seq_len": seq_len,
                                        "error": f"{type(exc).__name__}: {exc}"})
            print(json.dumps(result["train"][-1]), flush=True)
            _save(args.out, result)
    if args.envs:
        result["act"] = acting(model_dir, args)
    shutil.rmtree(work, ignore_errors=True)
    if not args.keep_model:
        shutil.rmtree(model_dir, ignore_errors=True)
    _save(args.out, result)
    print(markdown(result))
    if any("error" in r for r in result["train"]):
        sys.exit("some training runs failed (their errors are in the table)")
    return result


def _save(out: str | None, result: dict[str, Any]) -> None:
    if out:
        atomic_write_json(out, result)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


if __name__ == "__main__":
    main()
