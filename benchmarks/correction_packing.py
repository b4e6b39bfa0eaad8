"""Training on teacher corrections in the episode format: one row per corrected step against one packed row
per chat window (``training.pack_corrections``), in one run on the same corrections.

A corrected step's row is the student's own chat up to that step plus the teacher's answer, so an episode of
``n`` corrected steps costs ``n`` chats' worth of tokens, each re-reading the same history. Packed, the chat
is computed once and every answer is a branch off it under a tree attention mask: the same answers, each
trained on exactly its own row's context (``tests/leap/test_train.py`` checks the losses are equal).

Corrections: those of a LEAP run (``--corrections runs/demo/iter_1/corrections.jsonl``, what ``leap-gym demo``
writes), or by default episodes played by a seeded random agent (one admissible command per step, failing
episodes of the full step budget, as a weak student's are) on generated ALFWorld train tasks, every step
corrected by the privilege-0.5 expert. Both layouts train through ``leap_gym.leap.train.train`` with the
demo's settings (bf16 frozen base where the CPU has it, LoRA r16 on the top ``--lora-layers`` layers,
batch 1 x grad_accum 4): ``--warmup`` optimizer steps, then ``--steps`` timed ones, each layout in its own
subprocess (clean peak RSS). Reported: tokens/s, corrected answers learned per second (tokens/s x answers /
dataset tokens: the fair comparison), seconds per optimizer step, peak RSS. Compare the ratio (packed / per
step): the machine may be shared, and both layouts see the same load.

    PYTHONPATH=. python benchmarks/correction_packing.py            # ~10 min on 2 cores
    PYTHONPATH=. python benchmarks/correction_packing.py --quick    # a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

ENV_ID = "leap/ALFWorld-v0"
LAYOUTS = ("per_step", "packed")


def random_corrections(episodes: int, max_steps: int, path: Path, seed: int = 0) -> None:
    """``episodes`` random-agent episodes on generated ALFWorld train tasks, every step corrected by the
    privilege-0.5 expert, written as a run writes its corrections."""
    from leap_gym.agents.base import Agent, AgentOutput
    from leap_gym.agents.teachers import make_expert
    from leap_gym.leap.correct import correct
    from leap_gym.leap.layout import write_corrections
    from leap_gym.leap.rollout import rollout

    class RandomAgent(Agent):
        def __init__(self, rng: random.Random):
            self.rng = rng

        def reset(self, task: str) -> None:
            pass

        def act(self, observation: str, info: Mapping[str, Any]) -> AgentOutput:
            action = self.rng.choice(list(info.get("admissible_actions") or ["look"]))
            return AgentOutput("I try something I have not done yet.", action)

    rng = random.Random(seed)
    trajs = rollout(ENV_ID, lambda: RandomAgent(rng), range(episodes), env_kwargs={"split": "train"},
                    max_steps=max_steps, batch_size=8)
    kept, corrections = correct(trajs, make_expert(ENV_ID, 0.5), select="all")
    write_corrections(path, kept, corrections)


def train_child(layout: str, args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from student_speed import StepMeter, rss_mb
    from transformers import AutoTokenizer

    from leap_gym.leap.config import TrainingConfig
    from leap_gym.leap.dataset import build_dataset
    from leap_gym.leap.layout import read_corrections
    from leap_gym.leap.train import _rows_to_dataset, native_bf16, set_threads, train
    from leap_gym.models.pretrained import resolve_model

    logging.disable(logging.WARNING)
    set_threads(args.threads)
    model_dir = resolve_model(args.model)
    tok = AutoTokenizer.from_pretrained(model_dir)
    trajs, fixes = read_corrections(Path(args.corrections))
    rows = build_dataset(trajs, fixes, tokenizer=tok, max_length=args.max_length, prompt_format="episode",
                         answer_room=48, pack=layout == "packed")
    answers = sum(len(r.get("branches") or r["completion"]) for r in rows)
    lengths = [len(ids) for ids in _rows_to_dataset(rows, "sft", tok)["input_ids"]]
    random.Random(0).shuffle(rows)
    cfg = TrainingConfig(batch_size=1, grad_accum=4, lora_layers=args.lora_layers, max_length=args.max_length,
                         learning_rate=2e-4, warmup_steps=0, bf16=True, checkpoint_steps=0)
    meter = StepMeter()
    with tempfile.TemporaryDirectory() as tmp:
        train(rows, model_dir, Path(tmp) / "out", cfg, max_steps=args.warmup + args.steps, progress=False,
              callbacks=[meter.callback()])
    timed = meter.steps[args.warmup:]
    if not timed:
        raise RuntimeError(f"{layout}: {len(meter.steps)} optimizer steps ran, none after the warm-up")
    seconds = sum(s["s"] for s in timed)
    tokens = sum(s["tokens"] for s in timed)
    return {"layout": layout, "dtype": "bf16" if native_bf16() else "fp32", "rows": len(rows),
            "answers": answers, "dataset_tokens": sum(lengths), "tokens_per_answer": sum(lengths) / answers,
            "timed_steps": len(timed), "seconds": seconds, "s_per_step": seconds / len(timed),
            "tokens": tokens, "tokens_per_s": tokens / seconds,
            "answers_per_s": tokens / seconds * answers / sum(lengths),
            "epoch_s": sum(lengths) / (tokens / seconds), "peak_rss_mb": rss_mb()}


def _child(layout: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--_child", layout, "--corrections", str(args.corrections),
           "--model", args.model, "--threads", str(args.threads), "--warmup", str(args.warmup),
           "--steps", str(args.steps), "--lora-layers", str(args.lora_layers),
           "--max-length", str(args.max_length)]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{layout} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"  {layout}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(result: dict[str, dict]) -> str:
    a, b = result["per_step"], result["packed"]
    lines = ["| training on corrections | one row per step | packed | packed / per step |",
             "|---|---|---|---|"]
    for name, key, fmt in (("rows", "rows", ".0f"), ("corrected answers", "answers", ".0f"),
                           ("dataset tokens", "dataset_tokens", ".0f"),
                           ("tokens per answer", "tokens_per_answer", ".0f"),
                           ("tokens/s", "tokens_per_s", ".1f"), ("answers/s", "answers_per_s", ".3f"),
                           ("s per optimizer step", "s_per_step", ".1f"),
                           ("one pass over the answers, s", "epoch_s", ".0f"),
                           ("peak RSS MiB", "peak_rss_mb", ".0f")):
        lines.append(f"| {name} | {a[key]:{fmt}} | {b[key]:{fmt}} | {b[key] / a[key]:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corrections", default=None,
                        help="a run's iter_N/corrections.jsonl (default: random-agent episodes corrected by "
                        "the privilege-0.5 expert)")
    parser.add_argument("--episodes", type=int, default=16, help="random-agent episodes (no --corrections)")
    parser.add_argument("--max-steps", type=int, default=20, help="steps per random-agent episode")
    parser.add_argument("--model", default="smollm2-135m", help="a named pretrained student or an HF folder")
    parser.add_argument("--warmup", type=int, default=1, help="optimizer steps before timing")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps")
    parser.add_argument("--lora-layers", type=int, default=10, help="LoRA on the top N layers (0: all)")
    parser.add_argument("--max-length", type=int, default=2048, help="the chat's token budget (the demo's)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: min(2, cores), as a run)")
    parser.add_argument("--quick", action="store_true", help="8 episodes of 12 steps, 1 + 1 training steps")
    parser.add_argument("--out", default=None, help="results JSON, the table beside it as .md (default: "
                        "benchmarks/results/correction_packing.json, _quick with --quick)")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(train_child(args._child, args)))
        return 0
    if args.quick:
        args.episodes, args.max_steps, args.warmup, args.steps = 8, 12, 1, 1

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.corrections or "random-agent episodes corrected by the privilege-0.5 expert"
        if not args.corrections:
            args.corrections = str(Path(tmp) / "corrections.jsonl")
            random_corrections(args.episodes, args.max_steps, Path(args.corrections))
        result = {layout: _child(layout, args) for layout in LAYOUTS}
    md = (f"Corrections: {source}; {time.perf_counter() - t0:.0f} s.\n\n" + table(result))
    command = " ".join(["PYTHONPATH=. python benchmarks/correction_packing.py",
                        *(sys.argv[1:] if argv is None else argv)])
    settings = {k: v for k, v in vars(args).items()
                if not k.startswith("_") and k not in ("out", "corrections")}
    out = Path(args.out or common.RESULTS_DIR / f"correction_packing{'_quick' if args.quick else ''}.json")
    common.save(out.stem, {"settings": settings, "corrections": source, "training": result}, md, command,
                results_dir=out.parent)
    print("\n" + md)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
