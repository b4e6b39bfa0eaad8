"""The ``info`` contract: what every leap-gym env returns, what is privileged, and what a rollout records.

One home for the keys of ``info``: the required keys and their types (with a checker the shared env test
runs), the keys a student must never see (``PRIVILEGED_INFO_KEYS``, ``privileged_keys``, ``strip_privileged``;
the ``StudentView`` wrappers in ``leap_gym.wrappers`` apply them) and the subset a ``Step`` keeps
(``RECORDED_INFO_KEYS``, ``record_info``).

Every ``reset`` and ``step`` returns an ``info`` dict with at least:

- ``task`` (str): the task text the student is given.
- ``task_id`` (str): a stable id of the task (generated: ``"<split>/<seed>/<index>"``; files: the game's path,
  or for InterCode Bash ``"nl2bash_fs_<n>.json:<i>"``, which names the task's file system ``n``).
- ``task_type`` (str): a coarse family used for per-type breakdowns (ALFWorld task type, bash family, ...).
- ``admissible_actions`` (list[str] | None): valid commands now, or ``None`` where actions are free text.
- ``action_valid`` (bool): whether the last action was understood (``True`` after ``reset``).
- ``won`` (bool): the episode's task is solved.
- ``score`` (float in [0, 1]): the benchmark's own metric so far (the final one when the episode ends).
- ``privileged`` (dict, JSON-serialisable): state the student must never see. Every env includes at least
  ``expert_action`` (str) and ``expert_plan`` (list[str]): a command that makes progress from this state and
  the remaining plan. ``leap_gym.wrappers.StudentView`` removes it. An env built with ``privileged=False``
  skips computing it and returns ``{}`` (every other key is unchanged).

The call rules every env keeps (step before reset, task indexes, non-text actions, steps after the end,
``render_mode="ansi"``) are in ``leap_gym.envs.contract``.
"""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym

REQUIRED_INFO_KEYS: dict[str, tuple[type, ...]] = {
    "task": (str,),
    "task_id": (str,),
    "task_type": (str,),
    "admissible_actions": (list, type(None)),
    "action_valid": (bool,),
    "won": (bool,),
    "score": (float, int),
    "privileged": (dict,),
}

REQUIRED_PRIVILEGED_KEYS: dict[str, tuple[type, ...]] = {
    "expert_action": (str,),
    "expert_plan": (list,),
}

# Keys of ``info`` a student must never see. Envs may add more through their ``privileged_info_keys``
# attribute.
PRIVILEGED_INFO_KEYS: frozenset[str] = frozenset({"privileged"})

# The info keys a rollout records in each Step: what teachers and metrics need, nothing bulky.
RECORDED_INFO_KEYS = ("task_id", "task_type", "won", "score", "action_valid", "privileged")


def privileged_keys(env: gym.Env) -> frozenset[str]:
    """The ``info`` keys an env marks privileged (``"privileged"`` plus its ``privileged_info_keys``)."""
    extra = getattr(env.unwrapped, "privileged_info_keys", ())
    return PRIVILEGED_INFO_KEYS | frozenset(extra)


def strip_privileged(info: dict[str, Any], keys: frozenset[str] = PRIVILEGED_INFO_KEYS) -> dict[str, Any]:
    """A copy of ``info`` without privileged keys (works for single and vector-env infos)."""
    return {k: v for k, v in info.items() if k not in keys and k.lstrip("_") not in keys}


def record_info(info: dict[str, Any]) -> dict[str, Any]:
    """The subset of an env's ``info`` stored in a ``Step`` (``privileged`` included, for teachers)."""
    return {k: info[k] for k in RECORDED_INFO_KEYS if k in info}


def check_info(info: dict[str, Any], privileged: bool = True) -> None:
    """Raise ``AssertionError`` naming the first key of ``info`` that breaks the contract.

    ``privileged=False``: the env was built with ``privileged=False``, so ``info["privileged"]`` must be
    ``{}``.
    """
    for key, types in REQUIRED_INFO_KEYS.items():
        assert key in info, f"info is missing {key!r}"
        value = info[key]
        assert isinstance(value, types) and not (isinstance(value, bool) and bool not in types), (
            f"info[{key!r}] should be {types}, got {type(value).__name__}")
    if info["admissible_actions"] is not None:
        assert all(isinstance(a, str) for a in info["admissible_actions"]), (
            "admissible_actions must be strings")
    assert 0.0 <= float(info["score"]) <= 1.0, f"info['score'] must lie in [0, 1], got {info['score']}"
    priv = info["privileged"]
    if not privileged:
        assert priv == {}, f"privileged=False: info['privileged'] should be {{}}, got keys {sorted(priv)}"
        return
    for key, types in REQUIRED_PRIVILEGED_KEYS.items():
        assert key in priv, f"info['privileged'] is missing {key!r}"
        assert isinstance(priv[key], types), f"info['privileged'][{key!r}] should be {types}"
    try:
        json.dumps(priv)
    except TypeError as e:
        raise AssertionError(f"info['privileged'] is not JSON-serialisable: {e}") from None
