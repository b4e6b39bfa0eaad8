"""Speed of leap/ALFWorld-v0 against the unmodified ALFWorld engine, measured in the same run.

    PYTHONPATH=. python benchmarks/alfworld_speed.py --data-dir /path/to/alfworld --split valid_seen \
        --out benchmarks/results/alfworld_speed.json

Both engines play the same games with the same seeded random admissible commands through ``ALFWorldEnv``
(``fast=False`` is the library engine untouched). Reset = ``env.reset(options={"task_index": i})`` of a game
the env has not played yet (load + reset). Ours is timed three ways: ``cold`` (translation not cached
anywhere: the very first time a game file is ever played), ``warm`` (a fresh process whose on-disk translation
cache holds the game: every later run, e.g. each LEAP iteration) and ``again`` (a second episode of the same
game in the same process). Wall-clock and process-CPU times are both recorded (CPU time is robust to other
load on a shared machine). ``--procs 2`` also measures throughput with two worker processes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _quantiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"median_ms": 1000 * statistics.median(xs), "p90_ms": 1000 * xs[int(0.9 * (len(xs) - 1))],
            "mean_ms": 1000 * statistics.fmean(xs), "n": len(xs)}


def _make(args, fast: bool, cache_dir):
    from leap_gym.envs.alfworld.env import ALFWorldEnv
    return ALFWorldEnv(tasks="files", split=args.split, data_dir=args.data_dir, fast=fast,
                       cache_dir=cache_dir)


def _play(env, indices, n_steps: int, again: bool = False) -> dict[str, list[float]]:
    """Reset each game and take ``n_steps`` seeded random admissible commands; per-call wall and CPU times."""
    out = {"reset_wall": [], "reset_cpu": [], "step_wall": [], "step_cpu": [], "again_wall": [],
           "again_cpu": []}
    t_loop = time.perf_counter()
    steps = 0
    for i in indices:
        w, c = time.perf_counter(), time.process_time()
        _, info = env.reset(options={"task_index": i})
        out["reset_wall"].append(time.perf_counter() - w)
        out["reset_cpu"].append(time.process_time() - c)
        rng = random.Random(i)
        for _ in range(n_steps):
            action = rng.choice(info["admissible_actions"])
            w, c = time.perf_counter(), time.process_time()
            _, _, _, _, info = env.step(action)
            out["step_wall"].append(time.perf_counter() - w)
            out["step_cpu"].append(time.process_time() - c)
            steps += 1
        if again:
            w, c = time.perf_counter(), time.process_time()
            env.reset(options={"task_index": i})
            out["again_wall"].append(time.perf_counter() - w)
            out["again_cpu"].append(time.process_time() - c)
    out["loop_s"] = [time.perf_counter() - t_loop]
    out["steps"] = [steps]
    return out


def _worker(job):
    args, fast, cache_dir, indices = job
    env = _make(args, fast, cache_dir)
    return _play(env, indices, args.steps)


def _throughput(args, fast: bool, cache_dir, indices, procs: int) -> float:
    chunks = [indices[k::procs] for k in range(procs)]
    ctx = mp.get_context("spawn")  # fresh interpreters: no state shared with this process
    with ctx.Pool(procs) as pool:
        pool.map(_worker, [(args, fast, cache_dir, [c[0]]) for c in chunks])  # import + warm-up, not timed
        t = time.perf_counter()
        results = pool.map(_worker, [(args, fast, cache_dir, c) for c in chunks])
        wall = time.perf_counter() - t
    return sum(r["steps"][0] for r in results) / wall


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get("ALFWORLD_DATA"),
                   help="folder with ALFWorld's json_2.1.1 (default $ALFWORLD_DATA)")
    p.add_argument("--quick", action="store_true",
                   help="5 games x 10 steps, 4 games per engine in the 2-process row")
    p.add_argument("--split", default="valid_seen")
    p.add_argument("--games", type=int, default=None, help="first N games (default: all)")
    p.add_argument("--steps", type=int, default=20, help="random admissible commands per game")
    p.add_argument("--procs", type=int, default=2, help="worker processes for the throughput row (0: skip)")
    p.add_argument("--mp-games", type=int, default=20, help="games per engine for the multi-process row")
    p.add_argument("--out", default="benchmarks/results/alfworld_speed.json")
    args = p.parse_args(argv)
    if args.quick:
        args.games, args.steps, args.mp_games = args.games or 5, 10, 4
    if not args.data_dir:
        p.error("--data-dir (or $ALFWORLD_DATA) is required")

    from leap_gym.envs.alfworld import engine
    cache = tempfile.mkdtemp(prefix="leap-gym-alfworld-bench-")
    ref = _make(args, False, False)
    n = min(args.games or ref.num_tasks, ref.num_tasks)
    indices = list(range(n))

    ref_res = _play(ref, indices, args.steps)
    cold = _play(_make(args, True, cache), indices, args.steps)
    engine._SAS.clear()
    engine._LOGICS.clear()
    warm = _play(_make(args, True, cache), indices, args.steps, again=True)

    rows = {
        "reset (new game)": (ref_res["reset_wall"], warm["reset_wall"], ref_res["reset_cpu"],
                             warm["reset_cpu"]),
        "reset (new game, cold cache)": (ref_res["reset_wall"], cold["reset_wall"], ref_res["reset_cpu"],
                                         cold["reset_cpu"]),
        "reset (same game again)": (ref_res["reset_wall"], warm["again_wall"], ref_res["reset_cpu"],
                                    warm["again_cpu"]),
        "step": (ref_res["step_wall"], warm["step_wall"], ref_res["step_cpu"], warm["step_cpu"]),
    }
    result = {"split": args.split, "games": n, "steps_per_game": args.steps, "python": sys.version.split()[0],
              "machine": platform.platform(), "cpus": os.cpu_count(), "rows": {}}
    for name, (rw, ow, rc, oc) in rows.items():
        result["rows"][name] = {"unmodified_wall": _quantiles(rw), "ours_wall": _quantiles(ow),
                                "unmodified_cpu": _quantiles(rc), "ours_cpu": _quantiles(oc)}
    sps = {"unmodified": ref_res["steps"][0] / ref_res["loop_s"][0],
           "ours": warm["steps"][0] / warm["loop_s"][0]}
    result["steps_per_s_single_env_incl_resets"] = sps
    result["steps_per_s_single_env_step_only"] = {"unmodified": 1 / statistics.fmean(ref_res["step_wall"]),
                                                  "ours": 1 / statistics.fmean(warm["step_wall"])}
    if args.procs:
        mp_idx = indices[: args.mp_games]
        result[f"steps_per_s_{args.procs}_procs_incl_resets"] = {
            "unmodified": _throughput(args, False, False, mp_idx, args.procs),
            "ours": _throughput(args, True, cache, mp_idx, args.procs)}

    lines = [f"ALFWorld speed, {n} {args.split} games x {args.steps} random steps (same run)", "",
             "| metric | unmodified median / p90 (ms) | ours median / p90 (ms) | speedup (median) |",
             "|---|---|---|---|"]
    for clock in ("wall", "cpu"):
        for name, r in result["rows"].items():
            u, o = r[f"unmodified_{clock}"], r[f"ours_{clock}"]
            lines.append(f"| {name} [{clock}] | {u['median_ms']:.1f} / {u['p90_ms']:.1f} | "
                         f"{o['median_ms']:.1f} / {o['p90_ms']:.1f} | {u['median_ms'] / o['median_ms']:.1f}x "
                         "|")
    for key in [k for k in result if k.startswith("steps_per_s")]:
        v = result[key]
        lines.append(f"| {key} | {v['unmodified']:.1f} | {v['ours']:.1f} | "
                     f"{v['ours'] / v['unmodified']:.1f}x |")
    table = "\n".join(lines)
    print(table)
    result["markdown"] = table
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from leap_gym.io import atomic_write_json
    atomic_write_json(out, result)
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
