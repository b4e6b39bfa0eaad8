"""The leak meter: does a corrected reason reveal a privileged fact the student has not observed?

Each benchmark's spec names its function ``privileged_only_facts(trajectory, t) -> list[str]``
(``leak_facts``): short strings (an object location the student has not seen, a target ASIN or product title
not yet on screen, distinctive tokens of the gold command) that a reason at step ``t`` must not contain. The
meter matches them case-insensitively on word boundaries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from leap_gym.records import Correction, Trajectory
from leap_gym.specs import load_symbol, spec_for


def _mentions(text: str, fact: str) -> bool:
    pattern = r"(?<![\w])" + re.escape(fact.lower()) + r"(?![\w])"
    return re.search(pattern, text.lower()) is not None


def find_leaks(reason: str, trajectory: Trajectory, t: int) -> list[str]:
    """The privileged-only facts at step ``t`` that ``reason`` mentions."""
    spec = spec_for(trajectory.env_id)
    if spec.leak_facts is None:
        raise ValueError(f"the benchmark {spec.env_id!r} names no privileged-only facts (leak_facts)")
    facts = load_symbol(spec.leak_facts)(trajectory, t)
    return [f for f in facts if f and _mentions(reason, f)]


@dataclass
class LeakReport:
    steps: int = 0
    leaks: int = 0
    examples: list[dict] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.leaks / self.steps if self.steps else 0.0


def leak_report(pairs: Iterable[tuple[Trajectory, list[Correction]]], max_examples: int = 10) -> LeakReport:
    """Count corrected reasons that leak, over (trajectory, corrections) pairs."""
    report = LeakReport()
    for traj, corrections in pairs:
        for c in corrections:
            report.steps += 1
            found = find_leaks(c.reason, traj, c.step_index)
            if found:
                report.leaks += 1
                if len(report.examples) < max_examples:
                    report.examples.append({"task_id": traj.task_id, "step": c.step_index,
                                            "reason": c.reason, "facts": found})
    return report
