"""The one place where ``leap/*`` environment ids are registered (Gymnasium style: string entry points).

String entry points keep ``import leap_gym`` cheap: an env's module (and its heavy dependencies) is imported only
when ``gym.make`` builds it.
"""

from __future__ import annotations

import gymnasium as gym

NAMESPACE = "leap"

# id -> (entry point, max_episode_steps, default kwargs)
_ENVS: dict[str, tuple[str, int, dict]] = {
    "leap/ALFWorld-v0": ("leap_gym.envs.alfworld.env:ALFWorldEnv", 50, {}),
    "leap/WebShop-v0": ("leap_gym.envs.webshop.env:WebShopEnv", 15, {}),
    "leap/InterCodeBash-v0": ("leap_gym.envs.intercode_bash.env:InterCodeBashEnv", 10, {}),
}


def register_envs() -> None:
    """Register every leap-gym env; safe to call more than once."""
    for env_id, (entry_point, max_steps, kwargs) in _ENVS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=entry_point,
            max_episode_steps=max_steps,
            kwargs=dict(kwargs),
            disable_env_checker=True,  # our check_env test runs the full checker instead of the passive one
        )


def list_envs() -> list[str]:
    """The ids of all registered leap-gym envs, read from Gymnasium's registry."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith(NAMESPACE + "/"))
