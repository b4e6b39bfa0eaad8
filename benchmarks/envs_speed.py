"""Env speed for every registered leap-gym env: reset/step latency, steps/s for 1 env and vectors, memory.

Steps follow the privileged expert (a realistic trajectory). Vector runs use Gymnasium's SyncVectorEnv and
AsyncVectorEnv (``shared_memory=False``: text spaces have no shared-memory layout).

    python benchmarks/envs_speed.py [--quick] [--envs leap/WebShop-v0 ...] [--num-envs 4]
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: F401  (puts the repo on sys.path)
import gymnasium as gym

import leap_gym

# Constructor arguments that keep each env's setup proportionate in a benchmark run.
ENV_KWARGS: dict[str, dict] = {}


def single_env(env_id: str, episodes: int) -> dict:
    env = gym.make(env_id, **ENV_KWARGS.get(env_id, {}))
    resets, steps = [], []
    t_total, n_steps = 0.0, 0
    for ep in range(episodes):
        t0 = time.perf_counter()
        _, info = env.reset(seed=ep)
        resets.append(time.perf_counter() - t0)
        done = False
        while not done:
            t0 = time.perf_counter()
            _, _, term, trunc, info = env.step(info["privileged"]["expert_action"])
            dt = time.perf_counter() - t0
            steps.append(dt)
            t_total += dt
            n_steps += 1
            done = term or trunc
    env.close()
    return {"reset": common.stats_ms(resets), "step": common.stats_ms(steps),
            "steps_per_s": n_steps / t_total if t_total else float("nan")}


def vector_env(env_id: str, num_envs: int, mode: str, total_steps: int) -> float:
    fns = [lambda: gym.make(env_id, **ENV_KWARGS.get(env_id, {})) for _ in range(num_envs)]
    venv = (gym.vector.SyncVectorEnv(fns) if mode == "sync"
            else gym.vector.AsyncVectorEnv(fns, shared_memory=False))
    _, info = venv.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(max(1, total_steps // num_envs)):
        actions = tuple(info["privileged"]["expert_action"])  # vector infos nest dicts: one array per key
        _, _, _, _, info = venv.step(actions)
    dt = time.perf_counter() - t0
    venv.close()
    return max(1, total_steps // num_envs) * num_envs / dt


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--envs", nargs="*", default=None)
    parser.add_argument("--num-envs", type=int, default=4)
    args = parser.parse_args(argv)
    episodes, vec_steps = (3, 40) if args.quick else (20, 400)
    rows = []
    for env_id in args.envs or leap_gym.list_envs():
        single = single_env(env_id, episodes)
        row = {"env": env_id, "reset p50 ms": single["reset"]["median_ms"],
               "reset p90 ms": single["reset"]["p90_ms"], "step p50 ms": single["step"]["median_ms"],
               "step p90 ms": single["step"]["p90_ms"],
               "steps/s (1 env)": single["steps_per_s"]}
        for mode in ("sync", "async"):
            row[f"steps/s ({args.num_envs} {mode})"] = vector_env(env_id, args.num_envs, mode, vec_steps)
        row["peak RSS MiB"] = common.peak_rss_mb()
        rows.append(row)
        print(row, flush=True)
    columns = list(rows[0]) if rows else []
    md = common.markdown_table(rows, columns)
    cmd = "python benchmarks/envs_speed.py" + (" --quick" if args.quick else "")
    common.save("envs", {"rows": rows}, md, cmd)
    print(md)
    return {"rows": rows}


if __name__ == "__main__":
    main()
