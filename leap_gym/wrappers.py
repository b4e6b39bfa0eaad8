"""Wrappers that apply the ``info`` contract's privileged keys (``leap_gym.info``) to single and vector
envs."""

from __future__ import annotations

import gymnasium as gym

from leap_gym.info import PRIVILEGED_INFO_KEYS, privileged_keys, strip_privileged


class _StripsPrivileged:
    """``reset``/``step`` that remove ``self._keys`` from ``info``; shared by the single and vector
    wrappers."""

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
    """``StudentView`` for vector envs: strips privileged keys (and their ``_key`` masks) from batched
    infos."""

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        try:
            per_env = env.get_attr("privileged_info_keys")
        except AttributeError:
            per_env = ()
        self._keys = PRIVILEGED_INFO_KEYS | frozenset(k for keys in per_env for k in keys)
