import json
import re
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


@pytest.mark.parametrize("env_id,says", [("leap/WebShop-v1", "It provides versioned environments: [ `v0` ]"),
                                         ("leap/Webshop-v0", "Did you mean: `WebShop`")])
def test_unknown_env_id_is_gymnasiums_error_not_a_missing_teacher(tmp_path, env_id, says):
    from leap_gym.agents.teachers import make_expert

    with pytest.raises(gym.error.UnregisteredEnv, match=re.escape(says)):
        make_expert(env_id)
    config = tmp_path / "run.yaml"
    config.write_text(f"env:\n  env_id: {env_id}\nrun_dir: {tmp_path / 'run'}\n")
    out = subprocess.run([sys.executable, "-m", "leap_gym.cli", "train", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == ["error: env.env_id: "
                                               f"{out.stderr.split('env.env_id: ', 1)[1].strip()}"]
    assert says in out.stderr and "teacher" not in out.stderr


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
