"""ALFWorld expert teacher per privilege level and step budget: success replaying its own actions, steps,
leaks.

    python benchmarks/alfworld_teachers.py [--n 200] [--budgets 10 20 50] [--levels 0 0.5 1] [--json out.json]

Each level's teacher acts from reset on generated test tasks (``split="test"``, seed 0) with the largest
budget; success under a smaller budget counts episodes won within that many steps. The leak meter checks every
reason against the privileged-only facts of its step. Prints Markdown, writes JSON (default
``runs/bench/alfworld_teachers.json``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leap_gym.agents.teachers import TeacherAgent  # noqa: E402
from leap_gym.agents.teachers.alfworld import ALFWorldExpertTeacher  # noqa: E402
from leap_gym.agents.teachers.leak import leak_report  # noqa: E402
from leap_gym.io import atomic_write_json  # noqa: E402
from leap_gym.leap.rollout import rollout  # noqa: E402

ENV_ID = "leap/ALFWorld-v0"


def run(privilege: float, n: int, budgets: list[int]) -> dict:
    teacher = ALFWorldExpertTeacher(privilege=privilege)
    trajs = rollout(ENV_ID, lambda: TeacherAgent(teacher, ENV_ID), range(n), env_kwargs={"split": "test"},
                    max_steps=max(budgets), batch_size=8, privileged=True)
    report = leak_report([(t, teacher.correct(t)) for t in trajs], max_examples=3)
    won_steps = [len(t) for t in trajs if t.won]
    return {"privilege": privilege, "episodes": n,
            "success": {str(b): sum(s <= b for s in won_steps) / n for b in budgets},
            "mean_steps_won": statistics.fmean(won_steps) if won_steps else None,
            "reasons": sum(len(t) for t in trajs), "leaky_reasons": report.leaks,
            "leak_examples": report.examples}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    p.add_argument("--json", default="runs/bench/alfworld_teachers.json")
    args = p.parse_args(argv)
    start = time.perf_counter()
    rows = [run(level, args.n, sorted(args.budgets)) for level in args.levels]
    print(f"### ALFWorld expert teacher, {args.n} generated test tasks (split=test, seed 0)\n")
    head = " | ".join(f"success <= {b} steps" for b in sorted(args.budgets))
    print(f"| privilege | {head} | mean steps (won) | leaky reasons / reasons |")
    print("|---:|" + "---:|" * (len(args.budgets) + 2))
    for r in rows:
        cells = " | ".join(f"{100 * v:.1f}%" for v in r["success"].values())
        print(f"| {r['privilege']:g} | {cells} | {r['mean_steps_won']:.2f} | {r['leaky_reasons']} / "
              f"{r['reasons']} |")
    print(f"\n({time.perf_counter() - start:.0f} s)")
    atomic_write_json(args.json, {"n": args.n, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
