"""InterCode Bash expert teacher per privilege level: success replaying its own actions, and leaks in its
reasons.

    python benchmarks/intercode_teachers.py [--n 500] [--levels 0 0.5 1] [--json out.json]

Each level's teacher acts from the start of every generated test task (``TeacherAgent``); success is reward
1.0. The leak meter checks every reason against the privileged-only facts of its step. Prints Markdown, writes
JSON (default ``runs/bench/intercode_teachers.json``).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leap_gym.agents.teachers.base import TeacherAgent  # noqa: E402
from leap_gym.agents.teachers.intercode_bash import BashExpertTeacher  # noqa: E402
from leap_gym.agents.teachers.leak import leak_report  # noqa: E402
from leap_gym.envs.intercode_bash.env import InterCodeBashEnv  # noqa: E402
from leap_gym.io import atomic_write_json  # noqa: E402


def run(env: InterCodeBashEnv, privilege: float, n: int) -> dict:
    teacher = BashExpertTeacher(privilege=privilege)
    wins, steps, failed = 0, 0, collections.Counter()
    pairs = []
    for index in range(n):
        agent = TeacherAgent(teacher, "leap/InterCodeBash-v0")
        obs, info = env.reset(options={"task_index": index})
        agent.reset(info["task"])
        agent.trajectory.task_id = info["task_id"]
        for _ in range(10):
            obs, reward, term, trunc, info = env.step(agent.act(obs, info).action)
            if term:
                break
        steps += len(agent.trajectory.steps)
        wins += bool(info["won"])
        if not info["won"]:
            failed[info["task_type"]] += 1
        pairs.append((agent.trajectory, teacher.correct(agent.trajectory)))
    report = leak_report(pairs, max_examples=3)
    return {"privilege": privilege, "episodes": n, "success": wins / n, "solved": wins, "steps": steps,
            "leaky_reasons": report.leaks, "leak_rate": report.rate, "failed_by_family": dict(failed),
            "leak_examples": report.examples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--json", default="runs/bench/intercode_teachers.json")
    args = p.parse_args(argv)
    env = InterCodeBashEnv(split="test")
    start = time.perf_counter()
    try:
        rows = [run(env, level, args.n) for level in args.levels]
    finally:
        env.close()
    print(f"### InterCode Bash expert teacher, {args.n} generated test tasks (split=test, seed 0)\n")
    print("| privilege | success | leaky reasons / reasons | failures by family |\n|---:|---:|---:|---|")
    for r in rows:
        fails = ", ".join(f"{k} {v}" for k, v in sorted(r["failed_by_family"].items())) or "-"
        print(f"| {r['privilege']:g} | {100 * r['success']:.1f}% ({r['solved']}/{r['episodes']}) | "
              f"{r['leaky_reasons']} / {r['steps']} | {fails} |")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    atomic_write_json(args.json, {"n": args.n, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
