"""Teachers read the privileged state recorded in a trajectory and correct each student step."""

from leap_gym.agents.teachers.base import Teacher, TeacherAgent

__all__ = ["Teacher", "TeacherAgent"]
