"""What an agent is: one episode (``Agent``), or one episode per env slot answered in batches
(``BatchAgent``).

``BatchAgent`` is the protocol rollouts talk to: ``reset_slot(slot, task)`` starts an episode in a slot,
``act_slots(slots, observations, infos)`` answers any set of slots in one call, and ``record_action(slot,
action)`` tells the agent which action the env actually ran when the caller changed it (a near miss snapped to
an admissible action), so what the agent remembers doing is what it did.

``TrajectoryAgent`` implements that protocol for agents that decide from their own record of each slot's
episode (a ``Trajectory`` of the task and, per step, the observation, the admissible actions and the agent's
reason, action and raw text): the trained student, the ReAct baseline and teachers acting as agents. Each also
plays a single episode (the ``Agent`` interface, on slot 0) and a Gymnasium vector env
(``reset_batch``/``act_batch``, slot ``i`` = env ``i``). ``AgentPerSlot`` runs plain ``Agent`` s under the
protocol, one per slot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gymnasium.wrappers.vector import DictInfoToList

from leap_gym.info import PRIVILEGED_INFO_KEYS, record_info, strip_privileged
from leap_gym.records import Step, Trajectory


@dataclass
class AgentOutput:
    """What an agent decided: a short reason, the action sent to the env, and the raw text it came from.

    ``format_ok`` is False when the raw text could not be parsed into ``REASON/ACTION``; the action is then
    the well-defined invalid action ``INVALID_ACTION`` and the step counts as a format error in metrics.
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


class BatchAgent(ABC):
    """An agent playing one episode in each of several env slots; the live slots are answered in one call."""

    @abstractmethod
    def reset_slot(self, slot: int, task: str) -> None:
        """Slot ``slot`` starts a new episode on ``task`` (its previous episode is forgotten)."""

    @abstractmethod
    def act_slots(self, slots: Sequence[int], observations: Sequence[str],
                  infos: Sequence[Mapping[str, Any]]) -> list[AgentOutput]:
        """One decision for each of ``slots``, given its observation and ``info``, in the order given."""

    def record_action(self, slot: int, action: str) -> None:  # noqa: B027  (a hook: most agents need nothing)
        """The env ran ``action`` for ``slot``'s last decision instead of the action the agent chose."""


class _InfoSplitter(DictInfoToList):
    """Gymnasium's own conversion of a vector env's ``info`` dict (arrays with ``_key`` masks, nested dicts)
    into one dict per env. ``DictInfoToList`` applies it (its ``_convert_info_to_list``) only to what the
    vector env it wraps returns; agents receive the dict from their caller instead, so this stand-in supplies
    the one thing the conversion reads, the env count."""

    def __init__(self, num_envs: int):  # no env to wrap: only the conversion is used
        self._count = num_envs

    @property
    def num_envs(self) -> int:
        return self._count

    def split(self, infos: dict[str, Any]) -> list[dict[str, Any]]:
        return self._convert_info_to_list(infos)


def split_vector_info(infos: Mapping[str, Any] | Sequence[Mapping[str, Any] | None], n: int
                      ) -> list[dict[str, Any]]:
    """Per-env info dicts from either a list of dicts or a Gymnasium vector-env info dict (arrays + masks)."""
    if isinstance(infos, Mapping):
        return _InfoSplitter(n).split(dict(infos))
    infos = list(infos)
    if len(infos) != n:
        raise ValueError(f"got {n} observations but {len(infos)} infos")
    return [dict(i) if i is not None else {} for i in infos]


class TrajectoryAgent(Agent, BatchAgent):
    """A ``BatchAgent`` deciding from its own record of each slot's episode; subclasses implement ``decide``.

    ``act_slots`` appends the new step (observation, admissible actions and ``record_info`` of the agent's
    view of ``info``) to each slot's episode, asks ``decide`` for all of them at once and records the answers;
    ``record_action`` replaces the last action by the one the env ran. ``info`` is read only after dropping
    ``privileged_keys`` (``PRIVILEGED_INFO_KEYS`` plus the agent's own), so privileged state cannot reach a
    prompt even when a caller forgets ``StudentView``; a teacher acting on the privileged state passes
    ``sees_privileged=True``. A slot whose ``info["task"]`` changes to another task starts a new episode (a
    vector env that reset the slot without telling the agent).
    """

    def __init__(self, env_id: str = "", privileged_keys: Sequence[str] = (), sees_privileged: bool = False):
        self.env_id = env_id
        self.privileged_keys = (frozenset() if sees_privileged
                                else PRIVILEGED_INFO_KEYS | frozenset(privileged_keys))
        self.episodes: dict[int, Trajectory] = {}

    @abstractmethod
    def decide(self, slots: Sequence[int]) -> list[AgentOutput]:
        """One decision per slot; the last step of ``self.episodes[slot]`` is the one to decide (no action
        yet)."""

    # -- the BatchAgent protocol -----------------------------------------------------------------------------
    def reset_slot(self, slot: int, task: str) -> None:
        self.episodes[slot] = Trajectory(env_id=self.env_id, task_id="", task=task)

    def act_slots(self, slots: Sequence[int], observations: Sequence[str],
                  infos: Sequence[Mapping[str, Any]]) -> list[AgentOutput]:
        slots = list(slots)
        if not slots:
            return []
        for slot, obs, info in zip(slots, observations, infos, strict=True):
            view = strip_privileged(dict(info), self.privileged_keys)
            task = view.get("task")
            if slot not in self.episodes:
                self.reset_slot(slot, "")
            episode = self.episodes[slot]
            if isinstance(task, str) and task and task != episode.task:
                if episode.task:  # another episode nobody announced
                    self.reset_slot(slot, task)
                    episode = self.episodes[slot]
                episode.task = str(task)
            acts = view.get("admissible_actions")
            actions = [str(a) for a in acts] if acts is not None else None
            episode.steps.append(Step(observation=str(obs), action="", info=record_info(view),
                                      admissible_actions=actions))
        try:
            outputs = self.decide(slots)
        except BaseException:  # no decision: the pending steps were never taken
            for slot in slots:
                self.episodes[slot].steps.pop()
            raise
        for slot, out in zip(slots, outputs, strict=True):
            step = self.episodes[slot].steps[-1]
            step.reason, step.action, step.raw_output = out.reason, out.action, out.raw_text
        return outputs

    def record_action(self, slot: int, action: str) -> None:
        self.episodes[slot].steps[-1].action = action

    # -- one episode (the Agent interface): slot 0 -----------------------------------------------------------
    def reset(self, task: str = "") -> None:
        self.reset_batch([task])

    def act(self, observation: str, info: dict[str, Any]) -> AgentOutput:
        return self.act_slots([0], [observation], [info])[0]

    # -- a Gymnasium vector env: slot i is env i -------------------------------------------------------------
    def reset_batch(self, tasks: int | Sequence[str], indices: Sequence[int] | None = None) -> None:
        """``tasks`` (or a count of unknown tasks) for all slots, or only for the slots in ``indices`` (envs
        that reset on their own, as vector envs do when an episode ends)."""
        if indices is None:
            self.episodes = {}
            tasks = [""] * tasks if isinstance(tasks, int) else list(tasks)
            indices = range(len(tasks))
        elif isinstance(tasks, int):
            tasks = [""] * len(indices)
        for slot, task in zip(indices, tasks, strict=True):
            self.reset_slot(slot, task)

    def act_batch(self, observations: Sequence[str], infos: Any) -> list[AgentOutput]:
        """One decision per env; ``infos`` is a list of dicts or a vector-env info dict. A call with another
        number of envs than the slots in use starts over with that many empty slots."""
        n = len(observations)
        if n == 0:
            return []
        if sorted(self.episodes) != list(range(n)):
            self.reset_batch(n)
        if isinstance(infos, Mapping):  # drop privileged entries before splitting
            infos = strip_privileged(dict(infos), self.privileged_keys)
        return self.act_slots(list(range(n)), observations, split_vector_info(infos, n))


class AgentPerSlot(BatchAgent):
    """Plain single-episode ``Agent`` s under the ``BatchAgent`` protocol: one per slot, asked one by one."""

    def __init__(self, agents: Sequence[Agent]):
        self.agents = list(agents)

    def reset_slot(self, slot: int, task: str) -> None:
        self.agents[slot].reset(task)

    def act_slots(self, slots: Sequence[int], observations: Sequence[str],
                  infos: Sequence[Mapping[str, Any]]) -> list[AgentOutput]:
        return [self.agents[s].act(o, i) for s, o, i in zip(slots, observations, infos, strict=True)]
