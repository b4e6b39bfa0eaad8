"""Acting throughput of ``HFStudent`` on CPU: batched over a vector env vs. env by env.

For each model size and env count N, the same episodes are acted twice: ``batched`` (one ``act_batch`` call
per step answers all N envs with one left-padded generate) and ``env-by-env`` (the same student with batch
size 1, i.e. what the LEAP authors' code does). Prompts are ALFWorld-like student prompts (task, growing
history, observation, ~11 candidates) from the prompt builder. The tiny models are untrained, so they rarely
stop before ``max_new_tokens``: every action generates about the same number of tokens, which makes runs
comparable. Both modes must give the same greedy answers (reported as "same greedy answers"): a speed-up that
changed the answers would not count. Throughput is actions/s and generated tokens/s, both against wall time
and against process CPU time (the machine may be shared; CPU time is the steadier number); each setting runs
``--repeats`` times, the two modes alternating so that both see the same load, and the run with the least CPU
time is reported.

``--threads`` defaults to torch's own default (one per core), which is how a user's run acts;
``--threads 1 2`` measures each count in the same run. Acting env by env cannot use a second core (one row per
matmul, and the per-token overhead is Python), a batch can, so the speed-up grows with cores; 1 thread is the
per-core view. With more than one thread an idle worker spins, so process CPU time overstates the work:
compare wall time.

On CPU the prompt prefill (~200-300 tokens per env here) is compute-bound: batching saves only a little of it
(chunks of ~1k tokens keep activations in cache). Batching removes the per-token decode overhead, and the
batched KV cache is preallocated, so decoding does not copy it at every token. So the speed-up grows with
answer length and shrinks with prompt length and model size.

    PYTHONPATH=. python benchmarks/act_speed.py                 # tiny + small, N = 1, 8, 16, 32, all cores
    PYTHONPATH=. python benchmarks/act_speed.py --sizes tiny --threads 1 2
    PYTHONPATH=. python benchmarks/act_speed.py --quick         # tiny only, 2 steps
    PYTHONPATH=. python benchmarks/act_speed.py --sizes tiny --dtype bfloat16
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from pathlib import Path


def episodes(n: int, seed: int = 0):
    """``n`` envs' worth of ALFWorld-like (task, observation, candidates) for each step."""
    from leap_gym.models.tokenizer import alfworld_like_turn

    rng = random.Random(seed)
    return [alfworld_like_turn(rng) for _ in range(n)]


def run(student, samples, steps: int, batched: bool) -> dict:
    n = len(samples)
    student.reset_batch([s[0] for s in samples])
    student.batch_size = max(n, 1) if batched else 1
    for key in student.stats:
        student.stats[key] = 0
    answers = []
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        obs = [s[2] for s in samples]
        infos = [{"task": s[0], "admissible_actions": s[3]} for s in samples]
        answers += [o.raw_text for o in student.act_batch(obs, infos)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    actions, tokens = student.stats["actions"], student.stats["generated_tokens"]
    return {"envs": n, "mode": "batched" if batched else "env-by-env", "steps": steps, "actions": actions,
            "generated_tokens": tokens, "prompt_tokens": student.stats["prompt_tokens"], "wall_s": wall,
            "cpu_s": cpu, "actions_per_s": actions / wall, "tokens_per_s": tokens / wall,
            "actions_per_cpu_s": actions / cpu, "tokens_per_cpu_s": tokens / cpu, "answers": answers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 8, 16, 32])
    parser.add_argument("--steps", type=int, default=3, help="steps per episode (history grows)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--threads", nargs="+", type=int, default=None,
                        help="torch threads per setting (default: torch's default, one per core)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs per setting; the one with least CPU time counts")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--quick", action="store_true", help="tiny model, 2 steps")
    parser.add_argument("--out", default="benchmarks/results/act_speed.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.steps, args.repeats = ["tiny"], 2, 1

    import torch

    from leap_gym.agents.student import HFStudent
    from leap_gym.models import build_tiny_student

    threads = args.threads or [torch.get_num_threads()]
    rows = []
    for size in args.sizes:
        model, tok = build_tiny_student(size, seed=0)
        params = sum(p.numel() for p in model.parameters())
        student = HFStudent(model.to(getattr(torch, args.dtype)), tok, env="alfworld",
                            max_new_tokens=args.max_new_tokens, device="cpu")
        student.act_batch(*zip(*[(s[2], {"task": s[0], "admissible_actions": s[3]}) for s in episodes(2)],
                               strict=True))  # warm-up
        for t in threads:
            torch.set_num_threads(t)
            for n in args.envs:
                samples = episodes(n, seed=n)
                runs = {True: [], False: []}
                for _ in range(args.repeats):  # alternate, so that both modes see the same load
                    for batched in (True, False):
                        runs[batched].append(run(student, samples, args.steps, batched))
                for batched in (True, False):
                    row = {"model": size, "params": params, "dtype": args.dtype, "threads": t,
                           **min(runs[batched], key=lambda r: r["cpu_s"]), "repeats": args.repeats}
                    rows.append(row)
                    print(f"  {size:<6} threads={t} N={n:<3} {row['mode']:<10} {row['actions_per_s']:8.2f} "
                          f"act/s {row['tokens_per_s']:8.1f} tok/s  (cpu {row['cpu_s']:.1f} s, wall "
                          f"{row['wall_s']:.1f} s)",
                          flush=True)

    speedups = []
    for size in args.sizes:
        for t in threads:
            for n in args.envs:
                key = (size, t, n)
                mine = [r for r in rows if (r["model"], r["threads"], r["envs"]) == key]
                b = next(r for r in mine if r["mode"] == "batched")
                s = next(r for r in mine if r["mode"] == "env-by-env")
                agree = sum(x == y for x, y in zip(b["answers"], s["answers"], strict=True))
                same = agree / len(b["answers"])
                speedups.append({"model": size, "threads": t, "envs": n,
                                 "speedup_wall": b["actions_per_s"] / s["actions_per_s"],
                                 "speedup_cpu": b["actions_per_cpu_s"] / s["actions_per_cpu_s"],
                                 "same_answers": same})

    for r in rows:  # the answers were only for the check above
        r.pop("answers")
    meta = {"threads": threads, "cores": os.cpu_count(), "steps": args.steps,
            "max_new_tokens": args.max_new_tokens, "repeats": args.repeats, "dtype": args.dtype,
            "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()}
    print(f"\nsettings: {meta}")
    print("\n| model | params | threads | envs | mode | actions/s | gen tokens/s | actions/CPU-s | "
          "tokens/CPU-s | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['threads']} | {r['envs']} | {r['mode']} | "
              f"{r['actions_per_s']:.2f} | "
              f"{r['tokens_per_s']:.1f} | {r['actions_per_cpu_s']:.2f} | {r['tokens_per_cpu_s']:.1f} | "
              f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} |")
    print("\n| model | threads | envs | batched / env-by-env (wall) | (CPU time) | same greedy answers |")
    print("|---|---|---|---|---|---|")
    for s in speedups:
        print(f"| {s['model']} | {s['threads']} | {s['envs']} | {s['speedup_wall']:.1f}x | "
              f"{s['speedup_cpu']:.1f}x | {s['same_answers']:.0%} |")

    out = Path(args.out)
    from leap_gym.io import atomic_write_json

    atomic_write_json(out, {"meta": meta, "rows": rows, "speedups": speedups})
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
