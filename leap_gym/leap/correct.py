"""Choose the student episodes the teacher corrects, and collect the teacher's per-step corrections."""

from __future__ import annotations

from collections.abc import Sequence

from leap_gym.agents.teachers.base import Teacher
from leap_gym.core import Correction, Trajectory
from leap_gym.leap.logs import progress as progress_display


def select_episodes(trajectories: Sequence[Trajectory], select: str = "failures",
                    score_threshold: float = 0.0) -> list[Trajectory]:
    """``failures``: episodes not won with final score <= ``score_threshold`` (ALFWorld/WebShop 0, Bash 0.7 in
    the paper); ``all``: every episode (successes then add on-policy confirmations)."""
    if select == "all":
        return list(trajectories)
    if select != "failures":
        raise ValueError(f"select must be 'failures' or 'all', got {select!r}")
    return [t for t in trajectories if not t.won and t.score <= score_threshold]


def correct(trajectories: Sequence[Trajectory], teacher: Teacher, *, select: str = "failures",
            score_threshold: float = 0.0, progress: bool = False
            ) -> tuple[list[Trajectory], list[list[Correction]]]:
    """Teacher corrections for the selected episodes: ``(kept trajectories, corrections per trajectory)``.

    A trajectory whose correction raises is dropped with its error recorded in its metadata (the loop goes on;
    the paper's code dropped such episodes silently). Empty trajectories carry nothing to correct.
    """
    chosen = [t for t in select_episodes(trajectories, select, score_threshold) if t.steps]
    kept: list[Trajectory] = []
    out: list[list[Correction]] = []
    bar = progress_display(len(chosen), "correct", "ep", enabled=progress)
    for traj in chosen:
        try:
            corrections = teacher.correct(traj)
        except Exception as e:  # one bad episode must not sink an iteration
            traj.metadata["correction_error"] = f"{type(e).__name__}: {e}"
            corrections = None
        bar.update(1)
        if corrections is None:
            continue
        if len(corrections) != len(traj.steps):
            traj.metadata["correction_error"] = f"{len(corrections)} corrections for {len(traj.steps)} steps"
            continue
        kept.append(traj)
        out.append(corrections)
    bar.close()
    return kept, out
