"""Every registered env passes Gymnasium's checker and keeps the info contract (leap_gym.info) and the call
rules (leap_gym.envs.contract)."""

import inspect
import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils.env_checker import check_env

import leap_gym
from leap_gym.envs.contract import ResetNeeded
from leap_gym.info import check_info, privileged_keys
from leap_gym.spaces import UnicodeText
from leap_gym.specs import spec_for
from leap_gym.wrappers import StudentView
from tests.envs.webshop.test_data import HUMAN, INS, PRODUCTS

ENV_IDS = leap_gym.list_envs()


@pytest.fixture(params=ENV_IDS)
def env(request):
    env = gym.make(request.param)
    yield env
    env.close()


@pytest.fixture
def files_env(request, shared_data, tmp_path):
    """``make(env_id)``: the env over real (or, for WebShop, hand-written) task files."""
    made = []

    def make(env_id, **kwargs):
        if env_id == "leap/ALFWorld-v0":
            kwargs.update(tasks="files", split="valid_seen", data_dir=str(shared_data / "alfworld"))
        elif env_id == "leap/InterCodeBash-v0":
            kwargs.update(tasks="files", data_dir=str(shared_data / "intercode"), spares=0)
        else:
            (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(PRODUCTS))
            (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps(INS))
            (tmp_path / "items_human_ins.json").write_text(json.dumps(HUMAN))
            kwargs.update(tasks="files", data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"),
                          split="all")
        made.append(gym.make(env_id, **kwargs))
        return made[-1]

    yield make
    for e in made:
        e.close()


def play_expert(env, info):
    """Step the privileged expert until the episode ends; the last step's results."""
    for _ in range(env.spec.max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(info["privileged"]["expert_action"])
        if terminated or truncated:
            break
    return obs, reward, terminated, truncated, info


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_constructors_share_the_task_vocabulary(env_id):
    params = inspect.signature(load_env_creator(gym.spec(env_id).entry_point)).parameters
    assert {"tasks", "data_dir", "split", "task_seed", "render_mode", "privileged"} <= set(params)
    assert params["tasks"].default == "generated" and spec_for(env_id).seed_kwarg == "task_seed"


def test_check_env(env):
    check_env(env.unwrapped)  # render modes included: every env offers "ansi"


def test_text_spaces(env):
    assert isinstance(env.observation_space, UnicodeText) and isinstance(env.action_space, UnicodeText)


def test_info_contract_through_an_expert_episode(env):
    obs, info = env.reset(seed=3)
    check_info(info)
    assert info["action_valid"] is True
    for _ in range(env.spec.max_episode_steps):
        obs, reward, terminated, truncated, info = env.step(info["privileged"]["expert_action"])
        check_info(info)
        assert env.observation_space.contains(obs)
        if terminated or truncated:
            break
    assert info["won"] and info["score"] == 1.0, "the privileged expert should solve a default task"


def test_invalid_action_is_flagged_not_raised(env):
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("xyzzy plugh")
    check_info(info)
    assert isinstance(obs, str)
    if info["admissible_actions"] is not None:
        assert info["action_valid"] is False


def test_student_view_hides_privileged(env):
    keys = privileged_keys(env)
    view = StudentView(env)
    _, info = view.reset(seed=0)
    assert not keys & set(info)


# -- call rules (leap_gym.envs.contract) ---------------------------------------------------------------------

def test_step_before_reset_raises_the_same_error(env):
    with pytest.raises(ResetNeeded, match=r"^call reset\(\) before step\(\)$") as e:
        env.unwrapped.step("look")
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, gym.error.ResetNeeded)


def test_non_text_action_raises(env):
    env.reset(seed=0)
    for action in (123, None, b"look", ["look"]):
        with pytest.raises(TypeError, match="expected a str"):
            env.step(action)
    env.step("look")  # the env is still usable


def test_task_index_none_draws_from_the_seed(env):
    _, drawn = env.reset(seed=5)
    _, none = env.reset(seed=5, options={"task_index": None})
    assert none["task_id"] == drawn["task_id"]
    _, first = env.reset(options={"task_index": np.int64(1)})  # numpy ints are ints
    assert first["task_id"] == env.reset(options={"task_index": 1})[1]["task_id"]


@pytest.mark.parametrize("bad", [1.5, True, False, -1, "2", 2.0])
def test_bad_task_indexes_are_rejected(env, bad):
    with pytest.raises(ValueError, match=r"task_index must be an int in \[0, "):
        env.reset(options={"task_index": bad})


def test_task_index_past_the_end_is_rejected(env):
    n = env.unwrapped.num_tasks
    with pytest.raises(ValueError, match=rf"task_index must be an int in \[0, {n}\), got {n}"):
        env.reset(options={"task_index": n})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_files_task_index_past_the_end_raises_instead_of_wrapping(files_env, env_id):
    env = files_env(env_id)
    n = env.unwrapped.num_tasks
    _, last = env.reset(options={"task_index": n - 1})
    for index in (n, 10**6):
        with pytest.raises(ValueError, match=rf"\[0, {n}\), got {index}"):
            env.reset(options={"task_index": index})


def test_nothing_runs_after_the_end(env):
    _, info = env.reset(seed=3)
    obs, reward, terminated, _, info = play_expert(env, info)
    assert terminated and info["won"]
    for action in ("look", "submit", "click[back to search]", "ls"):
        again = env.step(action)
        assert again[:4] == (obs, 0.0, True, False), action
        check_info(again[4])
        assert again[4]["action_valid"] is False
        assert (again[4]["won"], again[4]["score"]) == (info["won"], info["score"])


def test_render_ansi_is_the_observation(env):
    ansi = gym.make(env.spec.id, render_mode="ansi")
    try:
        with pytest.raises(ResetNeeded, match="before render"):
            ansi.unwrapped.render()
        obs, info = ansi.reset(seed=0)
        assert ansi.render() == obs
        obs = ansi.step(info["privileged"]["expert_action"])[0]
        assert ansi.render() == obs
    finally:
        ansi.close()
    with pytest.raises(ValueError, match="render_mode"):
        gym.make(env.spec.id, render_mode="human")


def test_privileged_false_returns_an_empty_privileged_dict(env):
    lean = gym.make(env.spec.id, privileged=False)
    try:
        obs, info = lean.reset(seed=3)
        check_info(info, privileged=False)
        full_obs, full = env.reset(seed=3)
        assert (obs, info["task_id"]) == (full_obs, full["task_id"])
        for action in full["privileged"]["expert_plan"][:3]:
            obs, _, _, _, info = lean.step(action)
            check_info(info, privileged=False)
            assert obs == env.step(action)[0]
    finally:
        lean.close()


def test_make_vec_async_works_with_defaults(env):
    """Shared memory (AsyncVectorEnv's default) carries the text observations, updated at every step."""
    env_id = env.spec.id
    sync = gym.make_vec(env_id, num_envs=2, vectorization_mode="sync")
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="async")
    try:
        obs, info = vec.reset(seed=[3, 4])
        want, want_info = sync.reset(seed=[3, 4])
        assert obs == want and isinstance(obs, tuple) and all(isinstance(o, str) for o in obs)
        for _ in range(2):
            actions = tuple(str(a) for a in want_info["privileged"]["expert_action"])
            obs = vec.step(actions)[0]
            want, _, _, _, want_info = sync.step(actions)
            assert obs == want
    finally:
        vec.close()
        sync.close()
