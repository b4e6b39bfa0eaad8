"""Teachers read the privileged state recorded in a trajectory and correct each student step.

``make_expert(env_id, privilege)`` builds the programmatic privileged expert its benchmark spec names
(``leap_gym.specs``); the leak meter (``leap_gym.agents.teachers.leak``) checks that corrected reasons reveal
no privileged-only fact.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from leap_gym.agents.teachers.base import Teacher, TeacherAgent
from leap_gym.specs import load_symbol, resolve_env_id, spec_for


def make_expert(env_id: str, privilege: float = 0.5, **kwargs: Any) -> Teacher:
    """The programmatic expert teacher of ``env_id`` at a privilege level in [0, 1].

    An id Gymnasium does not know raises Gymnasium's own error first (it suggests the id meant).
    """
    gym.spec(resolve_env_id(env_id))
    spec = spec_for(env_id)
    if spec.expert is None:
        raise ValueError(f"the benchmark {spec.env_id!r} has no expert teacher")
    if not 0.0 <= privilege <= 1.0:
        raise ValueError(f"privilege must lie in [0, 1], got {privilege}")
    return load_symbol(spec.expert)(privilege=privilege, **kwargs)


__all__ = ["Teacher", "TeacherAgent", "load_symbol", "make_expert"]
