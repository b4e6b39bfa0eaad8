"""Choose the student episodes the teacher corrects, and collect the teacher's per-step corrections.

A correction the teacher could not make (``Correction.metadata["valid"]`` false: an endpoint error, a reply
that did not parse) carries the student's own action; it is kept in the record so the failure is visible, and
``build_dataset`` never turns it into a training row.
"""

from __future__ import annotations

from collections.abc import Sequence

from leap_gym.agents.teachers.base import Teacher
from leap_gym.leap.logs import progress as progress_display
from leap_gym.records import Correction, Trajectory


def select_episodes(trajectories: Sequence[Trajectory], select: str = "failures",
                    score_threshold: float = 0.0) -> list[Trajectory]:
    """``failures``: episodes not won with final score <= ``score_threshold`` (ALFWorld/WebShop 0, Bash 0.7 in
    the paper); ``all``: every episode (successes then add on-policy confirmations)."""
    if select == "all":
        return list(trajectories)
    if select != "failures":
        raise ValueError(f"select must be 'failures' or 'all', got {select!r}")
    return [t for t in trajectories if not t.won and t.score <= score_threshold]


class TeacherUnavailable(RuntimeError):
    """The teacher failed on several episodes in a row (a dead or refusing endpoint): going on would only burn
    retries on every remaining episode."""


def is_valid(correction: Correction) -> bool:
    return bool(correction.metadata.get("valid", True))


def failure_reason(trajectory: Trajectory, corrections: Sequence[Correction] | None) -> str | None:
    """Why the teacher gave nothing usable for an episode, or ``None`` when at least one step is valid."""
    if "correction_error" in trajectory.metadata:
        return trajectory.metadata["correction_error"]
    if corrections and not any(map(is_valid, corrections)):
        return str(corrections[0].metadata.get("error", "invalid corrections"))
    return None


def correct(trajectories: Sequence[Trajectory], teacher: Teacher, *, select: str = "failures",
            score_threshold: float = 0.0, progress: bool = False, max_consecutive_failures: int = 3
            ) -> tuple[list[Trajectory], list[list[Correction]]]:
    """Teacher corrections for the selected episodes: ``(kept trajectories, corrections per trajectory)``.

    A trajectory whose correction raises is dropped with its error recorded in its metadata (the loop goes on;
    the paper's code dropped such episodes silently). Empty trajectories carry nothing to correct.
    ``max_consecutive_failures`` episodes in a row without one valid correction raise ``TeacherUnavailable``
    (0 = never stop).
    """
    chosen = [t for t in select_episodes(trajectories, select, score_threshold) if t.steps]
    kept: list[Trajectory] = []
    out: list[list[Correction]] = []
    bar = progress_display(len(chosen), "correct", "ep", enabled=progress)
    failures = 0
    for traj in chosen:
        corrections = None
        try:
            corrections = teacher.correct(traj)
        except Exception as e:  # one bad episode must not sink an iteration
            traj.metadata["correction_error"] = f"{type(e).__name__}: {e}"
        bar.update(1)
        if corrections is not None and len(corrections) != len(traj.steps):
            traj.metadata["correction_error"] = f"{len(corrections)} corrections for {len(traj.steps)} steps"
        if "correction_error" not in traj.metadata:
            kept.append(traj)
            out.append(corrections)
        reason = failure_reason(traj, corrections)
        failures = failures + 1 if reason is not None else 0
        if max_consecutive_failures and failures >= max_consecutive_failures:
            bar.close()
            raise TeacherUnavailable(f"the teacher failed on {failures} episodes in a row; last error: "
                                     f"{reason[:300]}")
    bar.close()
    return kept, out
