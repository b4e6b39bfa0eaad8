"""A privileged expert for the toy env (tests only): with privilege it heads for the key's room, without it it
searches the rooms in a fixed order, as a teacher that knows only what the student knows would."""

from __future__ import annotations

from leap_gym.agents.teachers.base import Teacher
from leap_gym.records import Trajectory

SEARCH_ORDER = ["kitchen", "garden"]


class ToyExpertTeacher(Teacher):
    name = "toy-expert"

    def __init__(self, privilege: float = 0.5):
        self.privilege = privilege

    def propose(self, trajectory: Trajectory, t: int) -> tuple[str, str]:
        step = trajectory.steps[t]
        if self.privilege > 0:
            room = step.info["privileged"]["key_room"]
            reason = "The key is usually kept in one of the other rooms; I check the likely one."
            return reason, f"go to {room}"
        visited = {s.action.removeprefix("go to ") for s in trajectory.steps[:t]}
        room = next((r for r in SEARCH_ORDER if r not in visited), SEARCH_ORDER[0])
        return f"I have not searched the {room} yet.", f"go to {room}"
