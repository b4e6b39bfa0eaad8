"""The learning benchmark's presets must build envs: a per-seed kwarg the env does not take only failed after
the run had started (WebShop's seed is ``catalog_seed``, Bash's ``task_seed``)."""

import importlib.util
import inspect
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.envs.registration import load_env_creator

import leap_gym  # noqa: F401  (registers the envs)

LEARN = Path(__file__).resolve().parents[2] / "benchmarks" / "learn.py"


def _learn_module():
    spec = importlib.util.spec_from_file_location("leap_learn_benchmark", LEARN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("env", ["alfworld", "webshop", "bash"])
def test_every_preset_passes_only_kwargs_its_env_takes(env, tmp_path):
    learn = _learn_module()
    a, b = (learn.config_for(env, s, tmp_path, quick=False) for s in (0, 1))
    spec = gym.spec(a["env"]["env_id"])
    params = inspect.signature(load_env_creator(spec.entry_point)).parameters
    for key in a["env"]["kwargs"]:
        assert key in params, f"{env}: {key!r} is not a parameter of {spec.entry_point}"
    assert a["env"]["kwargs"] != b["env"]["kwargs"], "seeds must draw different tasks"
    assert a["run_dir"] != b["run_dir"]
