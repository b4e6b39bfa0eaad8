"""The ``info`` contract every leap-gym env keeps, and a checker the shared env test runs.

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
  ``expert_action`` (str) and ``expert_plan`` (list[str]): a command that makes progress from this state and the
  remaining plan. ``leap_gym.wrappers.StudentView`` removes it. An env built with ``privileged=False`` skips
  computing it and returns ``{}`` (every other key is unchanged).

The call rules every env keeps (step before reset, task indexes, non-text actions, steps after the end,
``render_mode="ansi"``) are in ``leap_gym.envs.contract``.
"""

from __future__ import annotations

import json
from typing import Any

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


def check_info(info: dict[str, Any], privileged: bool = True) -> None:
    """Raise ``AssertionError`` naming the first key of ``info`` that breaks the contract.

    ``privileged=False``: the env was built with ``privileged=False``, so ``info["privileged"]`` must be ``{}``.
    """
    for key, types in REQUIRED_INFO_KEYS.items():
        assert key in info, f"info is missing {key!r}"
        value = info[key]
        assert isinstance(value, types) and not (isinstance(value, bool) and bool not in types), (
            f"info[{key!r}] should be {types}, got {type(value).__name__}")
    if info["admissible_actions"] is not None:
        assert all(isinstance(a, str) for a in info["admissible_actions"]), "admissible_actions must be strings"
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
