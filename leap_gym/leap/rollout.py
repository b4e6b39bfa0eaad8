"""Roll agents out on a list of tasks: a vector of envs stepped in lockstep, one batched decision per step.

Each env slot plays one task at a time and picks up the next task when its episode ends, so every decision
round asks the agent for all live slots at once (one batched ``generate`` for an HF student). Students receive
only the ``StudentView`` of ``info`` (privileged keys stripped); the recorded ``Step.info`` keeps
``record_info(info)`` (privileged included) for the teacher, who corrects later without re-running the env.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from rapidfuzz import fuzz, process

from leap_gym.agents.base import Agent, AgentOutput, AgentPerSlot, BatchAgent
from leap_gym.agents.prompting import fill_template, is_template
from leap_gym.info import privileged_keys, record_info, strip_privileged
from leap_gym.leap.logs import progress as progress_display
from leap_gym.records import Step, Trajectory


def batch_agent(agent: Any, num_slots: int) -> tuple[BatchAgent, int]:
    """``agent`` as a ``BatchAgent`` and the number of env slots to run it on (at most ``num_slots``).

    A ``BatchAgent`` (``HFStudent``, ``ReActAgent``, ``TeacherAgent``) plays all slots itself, one batched
    call per decision round; a zero-argument callable returning an ``Agent`` gives one agent per slot, asked
    one by one; a single plain ``Agent`` plays one slot.
    """
    if isinstance(agent, BatchAgent):
        return agent, num_slots
    if isinstance(agent, Agent):
        return AgentPerSlot([agent]), 1
    if callable(agent):
        return AgentPerSlot([agent() for _ in range(num_slots)]), num_slots
    raise TypeError(f"cannot roll out {type(agent).__name__}: expected a BatchAgent, an Agent or an agent "
                    "factory")


def snap_action(action: str, candidates: Sequence[str] | None) -> str:
    """The admissible action closest to ``action`` by edit similarity (unchanged when it is admissible or the
    env has free-text actions): a cheap way to keep a weak model's near-miss (``go to cabinet 3`` in a room
    with two cabinets) valid, at no model cost. A free-text action that fills a template candidate
    (``search[red shoes]`` for ``search[<query>]``) is kept, its closing bracket restored if generation cut it
    off; a template itself is never the answer (snapping to it would search for the literal ``<query>``)."""
    if not candidates or action in candidates:
        return action
    filled = fill_template(action, candidates)
    if filled is not None:
        return filled
    concrete = [c for c in candidates if not is_template(c)]
    if not concrete:
        return action
    best = process.extractOne(action, concrete, scorer=fuzz.ratio)
    return best[0] if best else action


@dataclass
class _Slot:
    env: gym.Env
    keys: frozenset[str]
    traj: Trajectory | None = None
    obs: str = ""
    info: dict[str, Any] = field(default_factory=dict)


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    return gym.make(env_id, **(env_kwargs or {}))


def rollout(env_id: str, agent: Any, task_indices: Sequence[int], *, env_kwargs: dict[str, Any] | None = None,
            seed: int = 0, max_steps: int = 0, batch_size: int = 16, privileged: bool = False,
            progress: bool = False, desc: str = "rollout",
            env_fn: Callable[[], gym.Env] | None = None, snap: bool = False) -> list[Trajectory]:
    """One episode per task index, in the order given; returns the trajectories in that order.

    ``agent`` is anything ``batch_agent`` accepts; the rollout talks to it only through the ``BatchAgent``
    protocol. ``reset(seed=seed, options={"task_index": i})`` makes every episode reproducible. ``max_steps``
    (0 = the env's own limit) truncates episodes. ``snap`` replaces an inadmissible action by the closest
    admissible one (``snap_action``) and tells the agent (``record_action``). ``privileged=True`` hands agents
    the full ``info`` (teachers acting via ``TeacherAgent``); otherwise agents see the student view only.
    """
    tasks = list(task_indices)
    actor, num_slots = batch_agent(agent, max(1, min(batch_size, len(tasks))))
    build = env_fn or (lambda: make_env(env_id, env_kwargs))
    slots: list[_Slot] = []
    for _ in range(num_slots):
        env = build()
        slots.append(_Slot(env=env, keys=privileged_keys(env)))
    results: dict[int, Trajectory] = {}
    pending = list(enumerate(tasks))
    # Progress counts env steps against the step budget (an episode that ends early counts its unused steps):
    # a batch of episodes runs in lockstep and ends together, so counting episodes would show nothing for most
    # of the stage. Without a known step limit it counts episodes.
    limit = max_steps or (slots[0].env.spec.max_episode_steps if slots and slots[0].env.spec else None) or 0
    bar = progress_display(len(tasks) * limit if limit else len(tasks), desc, "step" if limit else "ep",
                           enabled=progress)

    def start(slot_id: int) -> bool:
        slot = slots[slot_id]
        if not pending:
            slot.traj = None
            return False
        order, task_index = pending.pop(0)
        obs, info = slot.env.reset(seed=seed, options={"task_index": int(task_index)})
        slot.traj = Trajectory(env_id=env_id, task_id=str(info.get("task_id", task_index)),
                               task=str(info.get("task", "")), seed=seed,
                               metadata={"task_index": int(task_index), "order": order,
                                         "task_type": info.get("task_type", "")})
        slot.obs, slot.info = obs, info
        actor.reset_slot(slot_id, slot.traj.task)
        return True

    def finish(slot_id: int) -> None:
        slot = slots[slot_id]
        traj = slot.traj
        assert traj is not None
        traj.won = bool(slot.info.get("won", False))
        traj.score = float(slot.info.get("score", 0.0))
        results[traj.metadata["order"]] = traj
        bar.update(max(0, limit - len(traj.steps)) if limit else 1)
        start(slot_id)

    try:
        for i in range(len(slots)):
            start(i)
        while True:
            live = [i for i, s in enumerate(slots) if s.traj is not None]
            if not live:
                break
            views = [slots[i].info if privileged else strip_privileged(slots[i].info, slots[i].keys)
                     for i in live]
            outputs = actor.act_slots(live, [slots[i].obs for i in live], views)
            for i, out in zip(live, outputs, strict=True):
                slot = slots[i]
                traj = slot.traj
                assert traj is not None
                if snap:
                    action = snap_action(out.action, slot.info.get("admissible_actions"))
                    if action != out.action:
                        out = AgentOutput(reason=out.reason, action=action, raw_text=out.raw_text,
                                          format_ok=out.format_ok)
                        actor.record_action(i, action)  # the agent remembers what the env ran
                step = Step(observation=slot.obs, action=out.action,
                            admissible_actions=slot.info.get("admissible_actions"), reason=out.reason,
                            info=record_info(slot.info), raw_output=out.raw_text)
                obs, reward, terminated, truncated, info = slot.env.step(out.action)
                step.reward = float(reward)
                step.action_valid = bool(info.get("action_valid", True))
                if not out.format_ok:
                    traj.metadata["format_errors"] = traj.metadata.get("format_errors", 0) + 1
                traj.steps.append(step)
                if limit and len(traj.steps) <= limit:
                    bar.update(1)
                slot.obs, slot.info = obs, info
                if terminated or truncated or (max_steps and len(traj.steps) >= max_steps):
                    finish(i)
    finally:
        bar.close()
        for s in slots:
            s.env.close()
    return [results[k] for k in sorted(results)]
