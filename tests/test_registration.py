import json
import subprocess
import sys

import gymnasium as gym
import pytest

import leap_gym

EXPECTED = ["leap/ALFWorld-v0", "leap/InterCodeBash-v0", "leap/WebShop-v0"]


def test_list_envs():
    assert leap_gym.list_envs() == EXPECTED


def test_spec_and_entry_points_are_strings():
    for env_id in EXPECTED:
        spec = gym.spec(env_id)
        assert isinstance(spec.entry_point, str) and spec.entry_point.startswith("leap_gym.envs.")
        assert spec.max_episode_steps > 0


def test_misspelt_id_gets_gymnasium_suggestion():
    with pytest.raises(gym.error.NameNotFound, match="Did you mean: `WebShop`"):
        gym.spec("leap/WebShp-v0")
    with pytest.raises(gym.error.Error):
        gym.make("leap/ALFWorld-v9")


def test_import_is_light():
    """Importing leap_gym must not pull torch, transformers or textworld (they cost seconds)."""
    code = ("import sys, time; t=time.perf_counter(); import leap_gym; dt=time.perf_counter()-t; "
            "import json; print(json.dumps([dt, sorted(m for m in ('torch','transformers','textworld',"
            "'alfworld','trl','peft') if m in sys.modules)]))")
    times, heavy = [], None
    for _ in range(3):  # best of three: the machine is shared
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        dt, heavy = json.loads(out.stdout)
        times.append(dt)
    assert heavy == []
    assert min(times) < 1.0, f"import leap_gym took {min(times):.2f}s"
