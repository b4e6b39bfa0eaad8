"""Held-out evaluation: success rate and score, overall and per task type, from rolled-out trajectories."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from leap_gym.leap.rollout import rollout
from leap_gym.records import Trajectory


def summarize(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    """``success``/``score`` means, episode length, invalid-action and format-error rates, agreement with the
    env's privileged oracle, and the per-task-type breakdown."""
    n = len(trajectories)
    steps = sum(len(t) for t in trajectories)
    by_type: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        by_type[str(t.metadata.get("task_type") or (t.steps[0].info.get("task_type") if t.steps else "")
                    or "unknown")].append(t)

    def rates(ts: Sequence[Trajectory]) -> dict[str, float]:
        k = len(ts)
        return {"n": k, "success": sum(t.won for t in ts) / k if k else 0.0,
                "score": sum(t.score for t in ts) / k if k else 0.0}

    expert = [s for t in trajectories for s in t.steps if s.info.get("privileged", {}).get("expert_action")]
    return {
        **rates(trajectories),
        # share of steps where the agent did what the env's privileged oracle would do: a dense progress
        # signal for weak students whose success is still 0 (read from the recorded state, never shown to the
        # agent)
        "expert_agreement": (sum(s.action.strip().lower()
                                 == s.info["privileged"]["expert_action"].strip().lower() for s in expert)
                             / len(expert) if expert else None),
        "avg_steps": steps / n if n else 0.0,
        "invalid_action_rate": (sum(not s.action_valid for t in trajectories for s in t.steps) / steps
                                if steps else 0.0),
        "format_error_rate": (sum(t.metadata.get("format_errors", 0) for t in trajectories) / steps
                              if steps else 0.0),
        "per_type": {k: rates(v) for k, v in sorted(by_type.items())},
    }


def evaluate(env_id: str, agent: Any, task_indices: Sequence[int], *,
             env_kwargs: dict[str, Any] | None = None, seed: int = 0, max_steps: int = 0,
             batch_size: int = 16, privileged: bool = False,
             progress: bool = False, desc: str = "eval", snap: bool = False
             ) -> tuple[dict[str, Any], list[Trajectory]]:
    """Roll ``agent`` out once per held-out task and summarise; returns ``(metrics, trajectories)``.

    ``agent`` is anything ``rollout`` accepts (batched student, agent factory, agent). Teachers acting on the
    privileged state need ``privileged=True``; students and prompting baselines never get it. ``snap``: see
    ``rollout``.
    """
    trajs = rollout(env_id, agent, task_indices, env_kwargs=env_kwargs, seed=seed, max_steps=max_steps,
                    batch_size=batch_size, privileged=privileged, progress=progress, desc=desc, snap=snap)
    return summarize(trajs), trajs
