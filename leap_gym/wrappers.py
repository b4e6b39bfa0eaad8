"""Small wrappers over leap-gym envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from leap_gym.core import PRIVILEGED_INFO_KEYS


def privileged_keys(env: gym.Env) -> frozenset[str]:
    """The ``info`` keys an env marks privileged (``"privileged"`` plus its ``privileged_info_keys``)."""
    extra = getattr(env.unwrapped, "privileged_info_keys", ())
    return PRIVILEGED_INFO_KEYS | frozenset(extra)


def strip_privileged(info: dict[str, Any], keys: frozenset[str] = PRIVILEGED_INFO_KEYS) -> dict[str, Any]:
    """A copy of ``info`` without privileged keys (works for single and vector-env infos)."""
    return {k: v for k, v in info.items() if k not in keys and k.lstrip("_") not in keys}


class _StripsPrivileged:
    """``reset``/``step`` that remove ``self._keys`` from ``info``; shared by the single and vector wrappers."""

    _keys: frozenset[str]

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, strip_privileged(info, self._keys)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, strip_privileged(info, self._keys)


class StudentView(_StripsPrivileged, gym.Wrapper):
    """Drops every privileged key from ``info`` so students and baselines cannot leak the teacher's state."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._keys = privileged_keys(env)


class StudentViewVector(_StripsPrivileged, gym.vector.VectorWrapper):
    """``StudentView`` for vector envs: strips privileged keys (and their ``_key`` masks) from batched infos."""

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        try:
            per_env = env.get_attr("privileged_info_keys")
        except AttributeError:
            per_env = ()
        self._keys = PRIVILEGED_INFO_KEYS | frozenset(k for keys in per_env for k in keys)
