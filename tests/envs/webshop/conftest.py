"""Small WebShop envs for tests, built once per session into a temporary index cache."""

from __future__ import annotations

import gymnasium as gym
import pytest

import leap_gym  # noqa: F401

N_PRODUCTS = 2_000


@pytest.fixture(scope="session")
def ws_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("webshop_cache"))


@pytest.fixture
def make_env(ws_cache):
    made = []

    def make(**kwargs):
        kwargs.setdefault("num_products", N_PRODUCTS)
        kwargs.setdefault("cache_dir", ws_cache)
        env = gym.make("leap/WebShop-v0", **kwargs)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()
