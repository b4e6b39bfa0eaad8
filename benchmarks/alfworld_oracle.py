"""Success of the fact-based ALFWorld oracle from reset and from mid-episode states reached by random play.

    PYTHONPATH=. python benchmarks/alfworld_oracle.py --generated 1000 --data-dir /path/to/alfworld \
        --out benchmarks/results/alfworld_oracle.json

For each game: play the oracle from reset; then reset, take ``--random-steps`` random admissible commands and
play the oracle from there. A state where the oracle returns no plan is checked to be a genuine dead end (the
agent holds an object that no receptacle can contain: real game files place objects ignoring ``canContain``).
"""

from __future__ import annotations

import argparse
import random
import time


def _play(env, info, limit=60):
    for _ in range(limit):
        if info["won"]:
            break
        action = info["privileged"]["expert_action"]
        if action not in info["admissible_actions"]:
            return False, info
        _, _, _, _, info = env.step(action)
    return info["won"], info


def _dead_end(env) -> bool:
    from leap_gym.envs.alfworld.world import World
    state = env._state
    w = World.from_facts(state["_facts"], state["_entity_infos"])
    return any(not any((c, w.obj_class[o]) in w.can_contain for c in w.recep_class.values()) for o in w.held)


def measure(env, indices, random_steps: int) -> dict:
    out = {"games": 0, "won_from_reset": 0, "won_mid_episode": 0, "dead_ends": 0, "failures": [],
           "plan_len": []}
    for i in indices:
        out["games"] += 1
        _, info = env.reset(options={"task_index": i})
        n0 = len(info["privileged"]["expert_plan"])
        won, info = _play(env, info)
        out["won_from_reset"] += won
        out["plan_len"].append(n0)
        if not won:
            out["failures"].append({"task_id": info["task_id"], "from": "reset"})
        _, info = env.reset(options={"task_index": i})
        rng = random.Random(i)
        for _ in range(random_steps):
            _, _, terminated, _, info = env.step(rng.choice(info["admissible_actions"]))
            if terminated:
                break
        if not info["won"] and not info["privileged"]["expert_plan"] and _dead_end(env):
            out["dead_ends"] += 1
            continue
        won, info = _play(env, info)
        out["won_mid_episode"] += won
        if not won:
            out["failures"].append({"task_id": info["task_id"], "from": f"{random_steps} random steps"})
    plan = out.pop("plan_len")
    out["mean_plan_len"] = sum(plan) / max(1, len(plan))
    out["max_plan_len"] = max(plan, default=0)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generated", type=int, default=200, help="generated tasks per split (0: skip)")
    p.add_argument("--data-dir", default=None, help="folder with json_2.1.1 (real games; optional)")
    p.add_argument("--file-splits", nargs="*", default=["valid_seen", "valid_train"])
    p.add_argument("--random-steps", type=int, default=12)
    p.add_argument("--out", default="benchmarks/results/alfworld_oracle.json")
    args = p.parse_args(argv)
    from leap_gym.envs.alfworld.env import ALFWorldEnv
    from leap_gym.io import atomic_write_json
    results = {}
    jobs = []
    if args.generated:
        jobs += [(f"generated/{s}", dict(split=s), range(args.generated)) for s in ("train", "test")]
    if args.data_dir:
        for s in args.file_splits:
            env = ALFWorldEnv(tasks="files", split=s, data_dir=args.data_dir)
            jobs.append((f"files/{s}", dict(tasks="files", split=s, data_dir=args.data_dir),
                         range(env.num_tasks)))
    for name, kwargs, indices in jobs:
        t = time.perf_counter()
        results[name] = measure(ALFWorldEnv(**kwargs), indices, args.random_steps)
        results[name]["seconds"] = round(time.perf_counter() - t, 1)
        r = results[name]
        print(f"{name}: from reset {r['won_from_reset']}/{r['games']}, after {args.random_steps} random "
              f"steps {r['won_mid_episode']}/{r['games'] - r['dead_ends']} (+{r['dead_ends']} genuine dead "
              f"ends), mean plan {r['mean_plan_len']:.1f}, max {r['max_plan_len']}", flush=True)
    atomic_write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
