"""The call rules every leap-gym env keeps (the ``info`` keys are in ``leap_gym.info``).

- ``step`` before the first ``reset`` raises ``ResetNeeded("call reset() before step()")``.
- ``step`` with an action that is not a ``str`` raises ``TypeError`` (actions are text in every env).
- ``reset(options={"task_index": i})`` picks task ``i``; ``i`` must be an int (not a bool) in
  ``[0, env.num_tasks)``, else ``ValueError``. A missing or ``None`` index draws one from the reset's seed.
- After ``terminated=True``, ``step`` executes nothing: it returns the terminal observation unchanged, reward
  ``0.0``, ``terminated=True``, ``truncated=False`` and the terminal ``info`` with ``action_valid=False``.
- ``render_mode="ansi"``: ``render()`` returns the current observation text.
- ``privileged=False`` (constructor): the env skips computing privileged state and ``info["privileged"]`` is
  ``{}``.
- The constructor names its tasks alike: ``tasks=`` the source (``"generated"`` by default, ``"files"`` read
  from ``data_dir=``), ``split=``, and ``task_seed=`` for a different sample of generated tasks.
"""

from __future__ import annotations

import numbers
from typing import Any

import gymnasium as gym

RENDER_MODES = ("ansi",)


class ResetNeeded(gym.error.ResetNeeded, RuntimeError):
    """``step`` or ``render`` before ``reset`` (a ``RuntimeError`` too, as these envs raised before)."""

    def __init__(self, what: str = "step"):
        super().__init__(f"call reset() before {what}()")


def check_action(action: Any) -> str:
    """``action`` itself when it is a ``str``; a ``TypeError`` naming what was passed otherwise."""
    if not isinstance(action, str):
        raise TypeError(f"actions are text: expected a str, got {type(action).__name__} {action!r:.60}")
    return action


def task_index(options: dict[str, Any] | None, num_tasks: int, key: str = "task_index") -> int | None:
    """``options[key]`` checked against ``[0, num_tasks)``; ``None`` when absent or ``None`` (draw one)."""
    index = (options or {}).get(key)
    if index is None:
        return None
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < num_tasks:
        raise ValueError(f"{key} must be an int in [0, {num_tasks}), got {index!r}")
    return int(index)


def check_render_mode(render_mode: str | None) -> str | None:
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")
    return render_mode
