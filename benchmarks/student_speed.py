"""The pretrained student's CPU pipeline before and after issue 19, in one run on the same data: training
throughput, acting throughput, peak memory and the fraction of this machine's own matmul peak.

**Today's pipeline** (the step format): one training row per step (``build_dataset(prompt_format="step",
history_k=4, max_length=1024)``: system + one user message with the task, the last 4 observation/action pairs,
the observation and the candidate list), trained by a plain ``trl.SFTTrainer`` on TRL's conversational
prompt/completion rows with its own loss (logits over every position), fp32 weights, LoRA r16 on every linear
layer of every transformer layer, batch 4. Acting: ``HFStudent(prompt_format="step")`` in fp32, re-prefilling
each step's whole prompt (only the shared system message's KV cache is reused).

**The new pipeline** (the episode format): one multi-turn row per demonstration, loss on every answer
(``build_dataset(prompt_format="episode")``), trained by ``leap_gym.leap.train.train``: bf16 frozen base where
the CPU has native bf16 (fp32 otherwise), LoRA r16 on the top ``--lora-layers`` layers, batch 1 x grad_accum
4, the loss from the output layer at the labelled positions only. Acting:
``HFStudent(prompt_format="episode")`` in bf16 (where native), each episode's KV cache kept from step to step.

**Training.** Both pipelines train on the same demonstrations (the privilege-0.5 expert on generated ALFWorld
train tasks). ``--warmup`` optimizer steps, then ``--steps`` timed ones (a ``TrainerCallback`` times each
step; hooks on the decoder and the output layer count the tokens each step computes). Reported per pipeline:

- tokens/s: real (unpadded) tokens through the decoder per second;
- demonstration steps/s: env steps learned per second, ``tokens/s x (env steps / tokens)`` of the pipeline's
  own training set (the fair comparison: the two layouts tokenize the same steps very differently);
- achieved GFLOP/s and its fraction of the matmul peak measured in the same process just before (a
  512x576 @ 576x1536 product, fp32 and bf16, same threads), against the pipeline's compute dtype. FLOPs of a
  step (the base is frozen, so its backward computes activation gradients only, 2 FLOPs per weight per token;
  LoRA's own rank-16 products, a few percent, are left out):
  forward ``2 N T + 2 L d S + 2 V d H``, backward ``2 N_a T + 4 L_a d S + 2 V d H``, where ``N``/``N_a`` are
  the linear weights of all layers / of the layers from the lowest adapted one up (the backward stops there),
  ``L``/``L_a`` their counts, ``d`` the hidden size, ``V`` the vocabulary, ``T`` the tokens, ``S`` the sum of
  squared row lengths (causal attention: QK^T and AV cost ``d T^2`` each per layer), ``H`` the positions the
  output layer ran on (the labelled ones in both: TRL's fused LM head and the new loss both skip the others);
- peak RSS of the process.

**Acting.** ``--act-steps`` lockstep steps of N envs (``leap_gym.leap.rollout`` with snapping, as a LEAP run
acts) on generated ALFWorld test tasks, the same tasks for both, ``--max-new-tokens`` per answer: actions/s
over the student's own time (``act_slots``); the env's time is reported separately.

Every measurement runs in its own subprocess (clean peak RSS), the two pipelines alternating. The machine may
be shared: both pipelines see the same load, so compare the ratios (new / today).

    PYTHONPATH=. python benchmarks/student_speed.py            # smollm2-135m, ~10-15 min on 2 cores
    PYTHONPATH=. python benchmarks/student_speed.py --quick    # a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

ENV_ID = "leap/ALFWorld-v0"
PIPELINES = ("today", "new")
MATMUL_SHAPE = (512, 576, 1536)  # (m, k, n): a batch of 512 tokens through a 576 -> 1536 projection


def rss_mb() -> float:
    """Peak resident memory of this process only, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_peak(seconds: float = 1.0) -> dict[str, float]:
    """GFLOP/s of a ``MATMUL_SHAPE`` product in fp32 and bf16 at the current thread count (best of 5
    rounds)."""
    import torch

    m, k, n = MATMUL_SHAPE
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        for _ in range(3):
            a @ b
        best = 0.0
        for _ in range(5):
            iters, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 5:
                a @ b
                iters += 1
            best = max(best, 2 * m * k * n * iters / (time.perf_counter() - t0) / 1e9)
        out[name] = best
    return out


# -- demonstrations ------------------------------------------------------------------------------------------
def demonstrations(episodes: int, max_steps: int, path: Path) -> dict[str, Any]:
    """The privilege-0.5 expert's won episodes on generated ALFWorld train tasks, written to ``path``."""
    from leap_gym.agents.teachers import TeacherAgent, make_expert
    from leap_gym.leap.rollout import rollout
    from leap_gym.records import write_jsonl

    trajs = rollout(ENV_ID, lambda: TeacherAgent(make_expert(ENV_ID, 0.5), ENV_ID), range(episodes),
                    env_kwargs={"split": "train"}, max_steps=max_steps, batch_size=8, privileged=True)
    won = [t for t in trajs if t.won]
    write_jsonl(path, won)
    return {"episodes": len(trajs), "won": len(won), "steps": sum(len(t) for t in won)}


# -- training ------------------------------------------------------------------------------------------------
class StepMeter:
    """A ``TrainerCallback`` timing every optimizer step and counting what it computed, through hooks on the
    decoder (real tokens, squared row lengths) and the output layer (positions it ran on)."""

    def __init__(self):
        self.tokens = self.squares = self.head = self.fused = 0
        self.steps: list[dict[str, float]] = []
        self._mask = None
        self._t0 = 0.0
        self._at = (0, 0, 0)

    def _decoder_hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        if mask is None or mask.dim() != 2:
            lengths = [ids.shape[1]] * ids.shape[0]
            mask = None
        else:
            lengths = mask.sum(dim=1).tolist()
        self._mask = mask
        self.tokens += int(sum(lengths))
        self.squares += int(sum(x * x for x in lengths))

    def _head_hook(self, module, args):
        hidden = args[0]
        if hidden.dim() == 3 and self._mask is not None and self._mask.shape == hidden.shape[:2]:
            self.head += int(self._mask.sum())
        else:
            self.head += int(hidden.shape[:-1].numel())

    def _model_hook(self, module, args, kwargs):
        """TRL's fused LM head (``fused_lm_head=True``) multiplies by the head's weight directly, only at the
        positions whose next token is labelled: count those, since the head module's hook does not fire."""
        labels = kwargs.get("labels")
        if kwargs.get("fused_lm_head") and labels is not None:
            self.fused += int((labels[:, 1:] != -100).sum())

    def callback(self):
        from transformers import TrainerCallback

        meter = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):
                base = model.get_base_model() if hasattr(model, "get_base_model") else model
                decoder = getattr(base, base.base_model_prefix)
                decoder.register_forward_pre_hook(meter._decoder_hook, with_kwargs=True)
                model.register_forward_pre_hook(meter._model_hook, with_kwargs=True)
                base.get_output_embeddings().register_forward_pre_hook(meter._head_hook)
                meter.shape = model_shape(model)

            def on_step_begin(self, args, state, control, **kwargs):
                meter._t0 = time.perf_counter()
                meter._at = (meter.tokens, meter.squares, meter.head, meter.fused)

            def on_step_end(self, args, state, control, **kwargs):
                t, s, h, f = meter._at
                head = meter.head - h or meter.fused - f
                meter.steps.append({"s": time.perf_counter() - meter._t0, "tokens": meter.tokens - t,
                                    "squares": meter.squares - s, "head": head})

        return _Callback()


def model_shape(model) -> dict[str, Any]:
    """The numbers of the FLOP formula: linear weights of all layers and of the layers the backward runs
    through (from the lowest one holding a LoRA adapter up), layer counts, hidden size, vocabulary."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config.get_text_config(decoder=True)
    layers = getattr(base, base.base_model_prefix).layers
    per_layer, adapted = [], []
    for layer in layers:
        weights = sum(m.base_layer.weight.numel() if hasattr(m, "base_layer") else m.weight.numel()
                      for name, m in layer.named_modules()
                      if type(m).__name__ == "Linear" and not any(k in name for k in ("lora_", "base_layer")))
        per_layer.append(weights)
        adapted.append(any("lora_" in name for name, _ in layer.named_modules()))
    lowest = adapted.index(True) if any(adapted) else len(layers)
    return {"N": sum(per_layer), "N_adapted": sum(per_layer[lowest:]), "layers": len(layers),
            "layers_adapted": len(layers) - lowest, "hidden": cfg.hidden_size, "vocab": cfg.vocab_size}


def step_flops(shape: dict[str, Any], tokens: int, squares: int, head: int) -> float:
    """FLOPs of a training step by the formula of the module doc."""
    d, v = shape["hidden"], shape["vocab"]
    forward = 2 * shape["N"] * tokens + 2 * shape["layers"] * d * squares + 2 * v * d * head
    backward = 2 * shape["N_adapted"] * tokens + 4 * shape["layers_adapted"] * d * squares + 2 * v * d * head
    return float(forward + backward)


def train_today(rows: list[dict[str, Any]], model_dir: str, out: Path, steps: int, callback) -> list[int]:
    """The pipeline before issue 19: plain ``trl.SFTTrainer`` on conversational prompt/completion rows with
    TRL's own loss, fp32, LoRA r16 on every linear layer of every layer, batch 4. Returns the trained rows'
    lengths."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from leap_gym.leap.config import TrainingConfig
    from leap_gym.leap.train import quantization_plan, trainer_kwargs
    from leap_gym.models import lora_config_for

    cfg = TrainingConfig(batch_size=4, grad_accum=1, max_length=1024, learning_rate=2e-4, warmup_steps=0,
                         bf16=False, checkpoint_steps=0)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    kw = trainer_kwargs(quantization_plan("cpu", cfg), cfg, "sft", str(out), steps, progress=False)
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(model=model, args=SFTConfig(**kw), train_dataset=data, processing_class=tok,
                         peft_config=lora_config_for(model, r=cfg.lora_r, alpha=cfg.lora_alpha),
                         callbacks=[callback])
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    trainer.train()
    return lengths


def train_new(rows: list[dict[str, Any]], model_dir: str, out: Path, steps: int, callback, lora_layers: int
              ) -> list[int]:
    """The pipeline after issue 19: ``leap_gym.leap.train.train`` with its CPU bf16 plan, LoRA on the top
    ``lora_layers`` layers, batch 1 x grad_accum 4. Returns the trained rows' lengths."""
    from transformers import AutoTokenizer

    from leap_gym.leap.config import TrainingConfig
    from leap_gym.leap.train import _rows_to_dataset, train

    cfg = TrainingConfig(batch_size=1, grad_accum=4, lora_layers=lora_layers, max_length=1024,
                         learning_rate=2e-4, warmup_steps=0, bf16=True, checkpoint_steps=0)
    data = _rows_to_dataset(rows, "sft", AutoTokenizer.from_pretrained(model_dir))
    lengths = [len(ids) for ids in data["input_ids"]]
    train(rows, model_dir, out, cfg, max_steps=steps, progress=False, callbacks=[callback])
    return lengths


def train_child(pipeline: str, args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from transformers import AutoTokenizer

    from leap_gym.leap.dataset import build_dataset
    from leap_gym.leap.train import native_bf16, set_threads
    from leap_gym.models.pretrained import resolve_model
    from leap_gym.records import read_trajectories

    logging.disable(logging.WARNING)
    set_threads(args.threads)
    peak = matmul_peak()
    model_dir = resolve_model(args.model)
    tok = AutoTokenizer.from_pretrained(model_dir)
    trajs = read_trajectories(args._demos)
    meter = StepMeter()
    steps = args.warmup + args.steps
    with tempfile.TemporaryDirectory() as tmp:
        if pipeline == "today":
            rows = build_dataset(trajs, prompt_format="step", history_k=4, max_length=1024, tokenizer=tok)
            lengths = train_today(rows, model_dir, Path(tmp) / "out", steps, meter.callback())
            dtype = "fp32"
        else:
            rows = build_dataset(trajs, prompt_format="episode", max_length=1024, tokenizer=tok)
            lengths = train_new(rows, model_dir, Path(tmp) / "out", steps, meter.callback(), args.lora_layers)
            dtype = "bf16" if native_bf16() else "fp32"
    timed = meter.steps[args.warmup:]
    if not timed:
        raise RuntimeError(f"{pipeline}: {len(meter.steps)} optimizer steps ran, none after the warm-up")
    seconds = sum(s["s"] for s in timed)
    tokens = sum(s["tokens"] for s in timed)
    flops = sum(step_flops(meter.shape, s["tokens"], s["squares"], s["head"]) for s in timed)
    env_steps = sum(r["meta"].get("turns", 1) for r in rows)  # the demonstration steps the rows train
    gflops = flops / seconds / 1e9
    return {"pipeline": pipeline, "dtype": dtype, "rows": len(rows), "dataset_tokens": sum(lengths),
            "env_steps": env_steps, "tokens_per_env_step": sum(lengths) / env_steps,
            "timed_steps": len(timed), "seconds": seconds, "s_per_step": seconds / len(timed),
            "tokens": tokens, "tokens_per_s": tokens / seconds,
            "env_steps_per_s": tokens / seconds * env_steps / sum(lengths),
            "head_positions": sum(s["head"] for s in timed), "gflops": gflops,
            "matmul_peak_gflops": peak, "peak_fraction": gflops / peak[dtype], "shape": meter.shape,
            "peak_rss_mb": rss_mb()}


# -- acting --------------------------------------------------------------------------------------------------
def act_child(pipeline: str, args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from leap_gym.agents.conversation import DEFAULT_OBS_CHARS
    from leap_gym.agents.student import HFStudent
    from leap_gym.leap.rollout import rollout
    from leap_gym.leap.train import native_bf16, set_threads

    logging.disable(logging.WARNING)
    set_threads(args.threads)
    envs = args._envs

    class TimedStudent(HFStudent):
        """``HFStudent`` whose ``act_slots`` calls are timed (the rest of a rollout is the env's time)."""

        seconds = 0.0

        def act_slots(self, slots, observations, infos):
            t0 = time.perf_counter()
            try:
                return super().act_slots(slots, observations, infos)
            finally:
                self.seconds += time.perf_counter() - t0

    if pipeline == "today":
        student = TimedStudent(args.model, env=ENV_ID, k=4, max_new_tokens=args.max_new_tokens,
                               dtype="float32", device="cpu", batch_size=envs, max_prompt_tokens=1024,
                               prompt_format="step")
    else:
        student = TimedStudent(args.model, env=ENV_ID, k=4, max_new_tokens=args.max_new_tokens,
                               dtype="bfloat16" if native_bf16() else "float32", device="cpu",
                               batch_size=envs, max_prompt_tokens=1024, prompt_format="episode",
                               max_obs_chars=DEFAULT_OBS_CHARS)
    tasks = list(range(envs))
    # warm-up on a task the timed run does not play (first calls pay one-time setup)
    rollout(ENV_ID, student, [envs], env_kwargs={"split": "test"}, max_steps=1, batch_size=1, snap=True)
    for key in student.stats:
        student.stats[key] = 0
    student.seconds = 0.0
    t0 = time.perf_counter()
    trajs = rollout(ENV_ID, student, tasks, env_kwargs={"split": "test"}, max_steps=args.act_steps,
                    batch_size=envs, snap=True)
    wall = time.perf_counter() - t0
    actions = student.stats["actions"]
    return {"pipeline": pipeline, "envs": envs, "dtype": str(student.dtype).removeprefix("torch."),
            "actions": actions, "act_s": student.seconds, "env_s": wall - student.seconds,
            "actions_per_s": actions / student.seconds,
            "generated_tokens": student.stats["generated_tokens"],
            "prompt_tokens": student.stats["prompt_tokens"], "format_errors": student.stats["format_errors"],
            "won": sum(t.won for t in trajs),
            "peak_rss_mb": rss_mb()}


# -- the run -------------------------------------------------------------------------------------------------
def _child(kind: str, pipeline: str, args: argparse.Namespace, demos: Path, envs: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--_child", f"{kind}:{pipeline}", "--_demos", str(demos),
           "--_envs", str(envs), "--model", args.model, "--threads", str(args.threads),
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--lora-layers", str(args.lora_layers),
           "--act-steps", str(args.act_steps), "--max-new-tokens", str(args.max_new_tokens)]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} {pipeline} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {kind} {pipeline}{f' N={envs}' if envs else ''}: done in {time.perf_counter() - t0:.0f} s",
          flush=True)
    return row


def tables(train: dict[str, dict], act: dict[tuple[str, int], dict], envs: list[int]) -> str:
    t, n = train["today"], train["new"]
    lines = ["| training | today | new | new / today |", "|---|---|---|---|"]

    def line(name: str, a: float, b: float, fmt: str = ".1f") -> None:
        lines.append(f"| {name} | {a:{fmt}} | {b:{fmt}} | {b / a:.2f}x |")

    line("tokens/s", t["tokens_per_s"], n["tokens_per_s"])
    line("demonstration steps/s", t["env_steps_per_s"], n["env_steps_per_s"], ".3f")
    line("tokens per demonstration step", t["tokens_per_env_step"], n["tokens_per_env_step"])
    line("s per optimizer step", t["s_per_step"], n["s_per_step"])
    line("achieved GFLOP/s", t["gflops"], n["gflops"])
    lines.append(f"| fraction of matmul peak | {t['peak_fraction']:.1%} of {t['dtype']} "
                 f"{t['matmul_peak_gflops'][t['dtype']]:.0f} | {n['peak_fraction']:.1%} of {n['dtype']} "
                 f"{n['matmul_peak_gflops'][n['dtype']]:.0f} | |")
    line("peak RSS MiB", t["peak_rss_mb"], n["peak_rss_mb"], ".0f")
    lines += ["",
              "| acting | envs | today actions/s | new actions/s | new / today | today RSS MiB | new RSS MiB "
              "| env s (today / new) |", "|---|---|---|---|---|---|---|---|"]
    for k in envs:
        a, b = act[("today", k)], act[("new", k)]
        lines.append(f"| actions/s | {k} | {a['actions_per_s']:.2f} | {b['actions_per_s']:.2f} | "
                     f"{b['actions_per_s'] / a['actions_per_s']:.2f}x | {a['peak_rss_mb']:.0f} | "
                     f"{b['peak_rss_mb']:.0f} | {a['env_s']:.1f} / {b['env_s']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="a named pretrained student or an HF folder")
    parser.add_argument("--episodes", type=int, default=24,
                        help="expert demonstrations (generated train tasks)")
    parser.add_argument("--demo-max-steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1, help="optimizer steps before timing")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps")
    parser.add_argument("--lora-layers", type=int, default=10, help="the new pipeline's adapted top layers")
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 16, 32])
    parser.add_argument("--act-steps", type=int, default=6, help="lockstep steps acted per env count")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: min(2, cores), as a run)")
    parser.add_argument("--quick", action="store_true",
                        help="8 episodes, 1 + 1 training steps, 1 and 16 envs")
    parser.add_argument("--out", default=None,
                        help="results JSON, the markdown table beside it as .md (default: "
                        "benchmarks/results/student_speed.json, student_speed_quick.json with --quick)")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_demos", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_envs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        kind, pipeline = args._child.split(":")
        print(json.dumps((train_child if kind == "train" else act_child)(pipeline, args)))
        return 0
    if args.quick:
        args.episodes, args.warmup, args.steps, args.envs, args.act_steps = 8, 1, 1, [1, 16], 3

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        demos = Path(tmp) / "demos.jsonl"
        demo_stats = demonstrations(args.episodes, args.demo_max_steps, demos)
        print(f"demonstrations: {demo_stats}", flush=True)
        if not demo_stats["won"]:
            raise RuntimeError("the expert won no episode: nothing to train on")
        train = {p: _child("train", p, args, demos) for p in PIPELINES}
        act = {(p, k): _child("act", p, args, demos, k) for k in args.envs for p in PIPELINES}
    md = tables(train, act, args.envs)
    command = " ".join(["PYTHONPATH=. python benchmarks/student_speed.py",
                        *(sys.argv[1:] if argv is None else argv)])
    info = common.machine()
    settings = {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "out"}
    header = (f"Command: `{command}`  \nMachine: {info['cores']} cores, {info['cpu']}; Python "
              f"{info['python']}; {info['date']}; {time.perf_counter() - t0:.0f} s\n\n")
    out = Path(args.out or common.RESULTS_DIR / f"student_speed{'_quick' if args.quick else ''}.json")
    common.atomic_write_json(out, {"suite": "student_speed", "command": command, "machine": info,
                                   "settings": settings, "demonstrations": demo_stats, "training": train,
                                   "acting": [act[(p, k)] for k in args.envs for p in PIPELINES]})
    common.atomic_write_text(out.with_suffix(".md"), header + md + "\n")
    print("\n" + header + md)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
