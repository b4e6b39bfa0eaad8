"""Every registered env passes Gymnasium's checker and keeps the info contract (leap_gym.info)."""

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import leap_gym
from leap_gym.info import check_info
from leap_gym.spaces import UnicodeText
from leap_gym.wrappers import StudentView, privileged_keys

ENV_IDS = leap_gym.list_envs()


@pytest.fixture(params=ENV_IDS)
def env(request):
    env = gym.make(request.param)
    yield env
    env.close()


def test_check_env(env):
    check_env(env.unwrapped, skip_render_check=True)


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
