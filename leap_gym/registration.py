"""The one place where benchmarks are registered: their spec (``leap_gym.specs``) and their Gymnasium id.

String entry points keep ``import leap_gym`` cheap: an env's module (and its heavy dependencies) is imported
only when ``gym.make`` builds it.
"""

from __future__ import annotations

import gymnasium as gym

from leap_gym.specs import SPECS, BenchmarkSpec

NAMESPACE = "leap"


def register_benchmark(spec: BenchmarkSpec) -> None:
    """Add a benchmark: its spec for every consumer (prompts, teachers, leak meter) and its id for
    ``gym.make``.

    Registering the same spec again is a no-op; a different spec under a taken id or family is a
    ``ValueError``.
    """
    for other in SPECS.values():
        if other != spec and spec.env_id == other.env_id:
            raise ValueError(f"{spec.env_id!r} is already registered with a different spec")
        if other != spec and spec.family.lower() == other.family.lower():
            raise ValueError(f"family {spec.family!r} is already taken by {other.env_id!r}")
    SPECS[spec.env_id] = spec
    register_envs()


def register_envs() -> None:
    """Register every benchmark's env with Gymnasium; safe to call more than once."""
    for spec in SPECS.values():
        if spec.env_id in gym.registry:
            continue
        gym.register(
            id=spec.env_id,
            entry_point=spec.entry_point,
            max_episode_steps=spec.max_episode_steps,
            kwargs=dict(spec.kwargs),
            disable_env_checker=True,  # our check_env test runs the full checker instead of the passive one
        )


def list_envs() -> list[str]:
    """The ids of all registered leap-gym envs, read from Gymnasium's registry."""
    return sorted(env_id for env_id in gym.registry if env_id.startswith(NAMESPACE + "/"))
