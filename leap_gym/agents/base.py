"""The agent interface shared by students, prompting baselines and teachers acting as agents."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass
class AgentOutput:
    """What an agent decided: a short reason, the action sent to the env, and the raw text it came from.

    ``format_ok`` is False when the raw text could not be parsed into ``REASON/ACTION``; the action is then the
    well-defined invalid action ``INVALID_ACTION`` and the step counts as a format error in metrics.
    """

    reason: str
    action: str
    raw_text: str = ""
    format_ok: bool = True


INVALID_ACTION = "<invalid>"


class Agent(ABC):
    """An agent keeps its own per-episode history; ``reset`` starts a new episode on ``task``.

    Students receive only the student view of ``info`` (see ``leap_gym.wrappers.StudentView``).
    """

    @abstractmethod
    def reset(self, task: str) -> None: ...

    @abstractmethod
    def act(self, observation: str, info: dict[str, Any]) -> AgentOutput: ...
