"""Teachers read the privileged state recorded in a trajectory and correct each student step.

``make_expert(env_id, privilege)`` builds the programmatic privileged expert of an env; the leak meter
(``leap_gym.agents.teachers.leak``) checks that corrected reasons reveal no privileged-only fact.
"""

from __future__ import annotations

import importlib
from typing import Any

from leap_gym.agents.teachers.base import Teacher, TeacherAgent

# env id -> "module:Class" of its programmatic expert (imported on use, so the env's deps stay optional).
EXPERTS: dict[str, str] = {
    "leap/ALFWorld-v0": "leap_gym.agents.teachers.alfworld:ALFWorldExpertTeacher",
    "leap/WebShop-v0": "leap_gym.agents.teachers.webshop:WebShopExpertTeacher",
    "leap/InterCodeBash-v0": "leap_gym.agents.teachers.intercode_bash:BashExpertTeacher",
}


def load_symbol(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def make_expert(env_id: str, privilege: float = 0.5, **kwargs: Any) -> Teacher:
    """The programmatic expert teacher of ``env_id`` at a privilege level in [0, 1].

    An id Gymnasium does not know raises Gymnasium's own error first (it suggests the id meant).
    """
    import gymnasium as gym

    gym.spec(env_id)
    if env_id not in EXPERTS:
        raise ValueError(f"no expert teacher for {env_id!r}; known: {sorted(EXPERTS)}")
    if not 0.0 <= privilege <= 1.0:
        raise ValueError(f"privilege must lie in [0, 1], got {privilege}")
    return load_symbol(EXPERTS[env_id])(privilege=privilege, **kwargs)


__all__ = ["EXPERTS", "Teacher", "TeacherAgent", "make_expert"]
