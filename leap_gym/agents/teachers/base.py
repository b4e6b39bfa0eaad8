"""Teacher interface: one correction per student step, computed for the state the student actually reached.

A teacher sees ``trajectory.steps[: t + 1]``: the student's own history up to step ``t`` and, in
``steps[t].info["privileged"]``, the privileged state at that step (recorded by the rollout). It never runs
the env forward. ``keep_reason`` may also read ``steps[t + 1]``, the recorded outcome of the student's action
at ``t`` (corrections are made after the episode). ``TeacherAgent`` lets a teacher act in an env
(demonstrations, "replay the teacher" checks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from leap_gym.agents.base import AgentOutput, TrajectoryAgent
from leap_gym.agents.prompting import answer_head
from leap_gym.records import Correction, Trajectory


def same_action(a: str, b: str) -> bool:
    return " ".join(a.lower().split()) == " ".join(b.lower().split())


def plan_shortened(trajectory: Trajectory, t: int) -> bool:
    """Whether the student's action at ``t`` shortened the env's privileged expert plan by at least one
    command, judged on the recorded outcome (the next step's plan; after the last step, whether the episode
    was won)."""
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
        """A reason for the student's own action at step ``t`` when it is as good as the teacher's (it keeps
        an optimal solution reachable, or differs from it only by what the student cannot know): rewriting it
        would teach an arbitrary preference, not a fix. ``None``: judge the step by ``propose``. Teachers that
        can tell override this."""
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


class TeacherAgent(TrajectoryAgent):
    """Runs a teacher as an agent on the full env ``info`` (privileged included): demonstrations for BC.

    Each slot's episode is the trajectory the teacher proposes from (``steps[: t + 1]``, the privileged state
    recorded in each step), exactly as it corrects a student's recorded trajectory.
    """

    def __init__(self, teacher: Teacher, env_id: str):
        super().__init__(env_id=env_id, sees_privileged=True)
        self.teacher = teacher
        self.reset_slot(0, "")

    @property
    def trajectory(self) -> Trajectory:
        """The episode of slot 0 (single-episode use: ``reset``/``act``)."""
        return self.episodes[0]

    def decide(self, slots: Sequence[int]) -> list[AgentOutput]:
        outs = []
        for slot in slots:
            episode = self.episodes[slot]
            reason, action = self.teacher.propose(episode, len(episode.steps) - 1)
            # the answer as the teacher wrote it (format_target would fold a multi-line reason into one line)
            outs.append(AgentOutput(reason=reason, action=action, raw_text=f"{answer_head(reason)} {action}"))
        return outs
