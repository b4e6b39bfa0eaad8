"""The LEAP learning benchmark: BC vs LEAP iterations vs the teachers, over seeds, at demo scale.

For each env and seed it runs (or resumes) ``leap_gym.leap.run`` with that env's demo-scale preset, then
reports held-out success per agent as mean and sample standard deviation across seeds, and checks the
product's bar: the last LEAP iteration beats BC by more than twice the spread of the paired per-seed gain,
and beats the teacher without privilege. ALFWorld students can also be evaluated on the real ``valid_seen``
games (trained on generated tasks only) with ``--alfworld-data``.

    python benchmarks/learn.py                               # ALFWorld, seeds 0 1 2
    python benchmarks/learn.py --envs alfworld webshop bash --seeds 0 1 2
    python benchmarks/learn.py --alfworld-data "$ALFWORLD_DATA/json_2.1.1"

Writes ``benchmarks/results/learn_<envs>.json`` and ``.md`` (named for the envs run, so a WebShop run does not
overwrite the ALFWorld results); run dirs under ``runs/learn/<env>/seed_<s>``.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from leap_gym.io import atomic_write_json, atomic_write_text  # noqa: E402
from leap_gym.leap.layout import UNPRIVILEGED_TEACHER, RunLayout, iteration_key, key_iteration  # noqa: E402
from leap_gym.leap.presets import DEMO_CONFIG  # noqa: E402
from leap_gym.process import in_fresh_process  # noqa: E402
from leap_gym.specs import spec_for  # noqa: E402

ZERO_SHOT = "leap_gym.leap.baselines:zero_shot_react"

# Demo-scale presets: ALFWorld is the demo itself; WebShop and Bash use their LEAP step limits and longer
# rows.
PRESETS: dict[str, dict[str, Any]] = {
    "alfworld": DEMO_CONFIG,
    "webshop": {**DEMO_CONFIG, "env": {"env_id": "leap/WebShop-v0", "num_train_tasks": 100, "max_steps": 15}},
    "bash": {**DEMO_CONFIG,
             "env": {"env_id": "leap/InterCodeBash-v0", "num_train_tasks": 100, "max_steps": 10},
             "rollout": {"score_threshold": 0.7}},
}


def config_for(env: str, seed: int, root: Path, quick: bool) -> dict[str, Any]:
    cfg = copy.deepcopy(PRESETS[env])
    cfg["seed"] = seed
    cfg["run_dir"] = str(root / env / f"seed_{seed}")
    # the constructor argument that draws a different task sample per seed, as the env's spec names it
    cfg["env"].setdefault("kwargs", {})[spec_for(cfg["env"]["env_id"]).seed_kwarg] = seed
    cfg.setdefault("training", {})["seed"] = seed
    if quick:
        cfg["env"]["num_train_tasks"] = 20
        cfg["evaluation"] = {"num_test_tasks": 20}
        cfg["training"].update(bc_max_steps=30, max_steps=20)
    # the same model untrained, prompted ReAct-style: what BC and LEAP add to it
    cfg.setdefault("evaluation", {})["baselines"] = [ZERO_SHOT]
    return cfg


def run_seed(cfg: Any, verbose: bool) -> list[dict[str, Any]]:
    """One seed's run (``leap_gym.leap.run.run``) in a fresh interpreter; returns its metric rows.

    Why a process per seed: run in turn in one process, seed 2's training sat at 11-13 GiB of RSS and its
    evaluation peaked at 15 GiB, against 4 and 8-9 GiB for the same stages in a fresh process: what earlier
    seeds' models and caches used was not handed back (not traced further). Without ``verbose`` the run's own
    lines go to a logger (picklable, unlike a lambda) instead of the console."""
    from leap_gym.leap.run import run

    log = None if verbose else logging.getLogger("leap_gym.benchmarks.learn").debug
    return in_fresh_process(run, cfg, progress=verbose, log=log)


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    return (statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0) if xs else (float("nan"), 0.0)


def summarize(per_seed: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean/sd of success and score per agent across seeds, and the verdict on the product's bar."""
    labels: dict[str, dict[str, list[float]]] = {}
    for rows in per_seed.values():
        for r in rows:
            if "success" not in r:
                continue
            key = r["key"]
            d = labels.setdefault(key, {"name": r.get("name", key), "success": [], "score": []})
            d["success"].append(r["success"])
            d["score"].append(r["score"])
    table = {}
    for key, d in labels.items():
        m, s = _mean_sd(d["success"])
        ms, ss = _mean_sd(d["score"])
        table[key] = {"name": d["name"], "success_mean": m, "success_sd": s, "score_mean": ms, "score_sd": ss,
                      "success_per_seed": d["success"], "n_seeds": len(d["success"])}
    iters = sorted(i for k in table if (i := key_iteration(k)) is not None)
    last_key, bc_key = iteration_key(iters[-1]) if iters else "", iteration_key(0)
    verdict: dict[str, Any] = {}
    if iters and iters[-1] > 0 and bc_key in table:
        last, bc = table[last_key], table[bc_key]
        spread = max(last["success_sd"], bc["success_sd"])
        gain = last["success_mean"] - bc["success_mean"]
        # The same seed's BC and last iteration share their BC stage (its student and its draw of tasks), so
        # the per-seed difference is the paired measurement and the product's bar: the mean paired gain above
        # twice its sd, over at least three seeds (two seeds that happen to gain alike have no spread).
        # Against the larger of the two agents' own sds (which holds the seeds' differences in BC as well) is
        # reported beside it as the stricter reading.
        paired = []
        for rows in per_seed.values():
            by = {r["key"]: r["success"] for r in rows if "success" in r}
            if last_key in by and bc_key in by:
                paired.append(by[last_key] - by[bc_key])
        paired_mean, paired_sd = _mean_sd(paired)
        verdict = {"last_iteration": iters[-1], "gain_over_bc": round(gain, 4),
                   "gain_per_seed": [round(g, 4) for g in paired], "gain_per_seed_sd": round(paired_sd, 4),
                   "beats_bc_by_2x_paired_spread": len(paired) >= 3 and paired_mean > 2 * paired_sd,
                   "spread": round(spread, 4), "beats_bc_by_2x_spread": gain > 2 * spread}
        if UNPRIVILEGED_TEACHER in table:
            verdict["beats_teacher_without_privilege"] = (last["success_mean"]
                                                          > table[UNPRIVILEGED_TEACHER]["success_mean"])
    return {"agents": table, "verdict": verdict}


def real_alfworld_eval(run_dir: Path, data_dir: str, quiet: bool) -> list[dict[str, Any]]:
    """Evaluate every iteration's student of an ALFWorld run on the real valid_seen games (results already in
    ``evals/valid_seen`` for every trained iteration are read back, not recomputed)."""
    from leap_gym.leap.run import evaluate_students

    layout = RunLayout(run_dir)
    trained = layout.trained_iterations()
    saved = [layout.named_evaluation("valid_seen", i) for i in trained]
    if trained and all(p.exists() for p in saved):
        return [json.loads(p.read_text()) for p in saved]
    return evaluate_students(run_dir,
                             [f"env.test_kwargs={{tasks: files, split: valid_seen, data_dir: {data_dir}}}"],
                    name="valid_seen", num_tasks=None, quiet=quiet)


def markdown(results: dict[str, Any], seeds: list[int], commands: str) -> str:
    out = [f"# LEAP learning benchmark\n\ncommand: `{commands}`  \nseeds: {seeds}\n"]
    for env, res in results.items():
        out.append(f"\n## {env}\n\n| agent | success mean | sd | per seed | score mean | sd "
                   "|\n|---|---|---|---|---|---|")
        order = sorted(res["agents"],
                       key=lambda k: (not k.startswith("teacher_no"), k.startswith("teacher_priv"), k))
        for key in order:
            a = res["agents"][key]
            per = ", ".join(f"{x:.2f}" for x in a["success_per_seed"])
            out.append(f"| {a['name']} | {a['success_mean']:.3f} | {a['success_sd']:.3f} | {per} | "
                       f"{a['score_mean']:.3f} | {a['score_sd']:.3f} |")
        if res.get("verdict"):
            out.append(f"\nverdict: `{json.dumps(res['verdict'])}`")
        if res.get("valid_seen"):
            out.append("\nreal ALFWorld valid_seen (students trained on generated tasks only):\n")
            out.append("| seed | agent | success | n |\n|---|---|---|---|")
            for seed, rows in res["valid_seen"].items():
                for r in rows:
                    out.append(f"| {seed} | {r['name']} | {r['success']:.3f} | {r['n']} |")
        if res.get("wall_s"):
            out.append("\nwall time of this invocation per seed (s; stages already on disk are resumed, not "
                       f"rerun): {res['wall_s']}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", nargs="*", default=["alfworld"], choices=sorted(PRESETS))
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--root", default=str(REPO / "runs" / "learn"))
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, not a result)")
    p.add_argument("--alfworld-data", default=None, help="json_2.1.1 dir: also evaluate on real valid_seen")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--verbose", action="store_true")
    p.add_argument("overrides", nargs="*", help="config overrides applied to every run (key.sub=value)")
    args = p.parse_args(argv)
    from leap_gym.leap.config import load_config

    root = Path(args.root) if not args.quick else Path(args.root + "_quick")
    results: dict[str, Any] = {}
    for env in args.envs:
        per_seed, walls, real = {}, {}, {}
        for seed in args.seeds:
            cfg = load_config(None, args.overrides, base=config_for(env, seed, root, args.quick))
            t = time.monotonic()
            per_seed[seed] = run_seed(cfg, args.verbose)
            walls[seed] = round(time.monotonic() - t, 1)
            print(f"{env} seed {seed}: " + ", ".join(f"{r.get('name', r['key'])} {r['success']:.2f}"
                                                    for r in per_seed[seed] if "success" in r), flush=True)
            if env == "alfworld" and args.alfworld_data:
                real[seed] = real_alfworld_eval(Path(cfg.run_dir), args.alfworld_data, not args.verbose)
        results[env] = {**summarize(per_seed), "wall_s": walls, "valid_seen": real}
        print(json.dumps(results[env]["verdict"]), flush=True)
    out = Path(args.out)
    cmd = "python benchmarks/learn.py " + " ".join(argv if argv is not None else sys.argv[1:])
    stem = "learn_" + "_".join(args.envs)
    atomic_write_json(out / f"{stem}.json", {"command": cmd, "seeds": args.seeds, "results": results})
    atomic_write_text(out / f"{stem}.md", markdown(results, args.seeds, cmd))
    print(markdown(results, args.seeds, cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
