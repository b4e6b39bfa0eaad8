"""Teacher interface: one correction per student step, computed for the state the student actually reached.

A teacher sees ``trajectory.steps[: t + 1]``: the student's own history up to step ``t`` and, in
``steps[t].info["privileged"]``, the privileged state at that step (recorded by the rollout). It never runs the
env forward. ``keep_reason`` may also read ``steps[t + 1]``, the recorded outcome of the student's action at
``t`` (corrections are made after the episode). ``TeacherAgent`` lets a teacher act in an env (demonstrations, "replay the teacher" checks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from leap_gym.agents.base import Agent, AgentOutput
from leap_gym.core import Correction, Step, Trajectory, record_info


def same_action(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def plan_shortened(trajectory: Trajectory, t: int) -> bool:
    """Whether the student's action at ``t`` shortened the env's privileged expert plan by at least one command,
    judged on the recorded outcome (the next step's plan; after the last step, whether the episode was won)."""
    steps = trajectory.steps
    before = (steps[t].info.get("privileged") or {}).get("expert_plan")
    if not before:
        return False
    if t + 1 == len(steps):
        return trajectory.won
    after = (steps[t + 1].info.get("privileged") or {}).get("expert_plan")
    return after is not None and len(after) <= len(before) - 1


class Teacher(ABC):
    """Subclasses implement ``propose``; ``correct`` applies it to every step of a trajectory."""

    name: str = "teacher"

    @abstractmethod
    def propose(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        """``(reason, action)`` the teacher would take at step ``t``, from ``steps[: t + 1]`` only."""

    def keep_reason(self, trajectory: Trajectory, t: int) -> str | None:
        """A reason for the student's own action at step ``t`` when it is as good as the teacher's (it keeps an
        optimal solution reachable): rewriting it would teach an arbitrary preference, not a fix. ``None``: judge
        the step by ``propose``. Teachers that can tell override this."""
        return None

    def correct(self, trajectory: Trajectory) -> list[Correction]:
        out = []
        for t, step in enumerate(trajectory.steps):
            kept = self.keep_reason(trajectory, t) if step.action.strip() else None
            if kept is not None:
                out.append(Correction(step_index=t, reason=kept, action=step.action, was_corrected=False,
                                      metadata={"kept": "optimal"}))
                continue
            reason, action = self.propose(trajectory, t)
            out.append(Correction(step_index=t, reason=reason, action=action,
                                  was_corrected=not same_action(action, step.action)))
        return out


class TeacherAgent(Agent):
    """Runs a teacher as an agent on the full env ``info`` (privileged included): demonstrations for BC."""

    def __init__(self, teacher: Teacher, env_id: str):
        self.teacher, self.env_id = teacher, env_id
        self.trajectory = Trajectory(env_id=env_id, task_id="", task="")

    def reset(self, task: str) -> None:
        self.trajectory = Trajectory(env_id=self.env_id, task_id="", task=task)

    def act(self, observation: str, info: dict[str, Any]) -> AgentOutput:
        steps = self.trajectory.steps
        steps.append(Step(observation=observation, action="", admissible_actions=info.get("admissible_actions"),
                          info=record_info(info)))
        reason, action = self.teacher.propose(self.trajectory, len(steps) - 1)
        steps[-1].reason, steps[-1].action = reason, action
        return AgentOutput(reason=reason, action=action, raw_text=f"REASON: {reason}\nACTION: {action}")
