"""Benchmark specs: every consumer looks a benchmark up by env id, exactly, and a fourth benchmark needs only
its env and one spec."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import pytest

from leap_gym import BenchmarkSpec, register_benchmark
from leap_gym.agents.conversation import GENERIC_EPISODE_RULES, episode_system_prompt
from leap_gym.agents.prompting import GENERIC_RULES, system_prompt
from leap_gym.agents.teachers import make_expert
from leap_gym.agents.teachers.leak import find_leaks
from leap_gym.agents.teachers.llm import correction_messages, privileged_summary
from leap_gym.records import Step, Trajectory
from leap_gym.registration import list_envs
from leap_gym.specs import INTERCODE_BASH, SPECS, get_spec, spec_for
from tests.leap.toy_teacher import ToyExpertTeacher

TOY_ID = "leap-test/SpecToy-v0"
TOY_RULES = "You are in a house of three rooms; the key is in one of them. Go to a room from the candidates."
TOY_MODE = "Correct the steps that walk into a room without the key."
TOY_SPEC = BenchmarkSpec(env_id=TOY_ID, entry_point="tests.toy_env:ToyEnv", max_episode_steps=5,
                         family="spectoy", rules=TOY_RULES, expert="tests.leap.toy_teacher:ToyExpertTeacher",
                         teacher_mode=TOY_MODE,
                         privileged_fields=("key_room",), seed_kwarg=None)


@pytest.fixture
def toy_benchmark():
    """The toy env registered as a benchmark through its spec alone, unregistered afterwards (a spec changes
    every later tokenizer's corpus)."""
    register_benchmark(TOY_SPEC)
    yield TOY_SPEC
    del SPECS[TOY_ID]
    del gym.registry[TOY_ID]


def test_built_in_specs_are_the_registered_envs():
    assert list_envs() == sorted(SPECS)
    for env_id, spec in SPECS.items():
        assert gym.spec(env_id).entry_point == spec.entry_point
        assert gym.spec(env_id).max_episode_steps == spec.max_episode_steps
        assert spec_for(env_id) is spec is get_spec(spec.family.upper())


def test_unknown_id_is_a_one_line_error():
    with pytest.raises(ValueError) as err:
        spec_for("leap/Nope-v0")
    message = str(err.value)
    assert "\n" not in message and "'leap/Nope-v0'" in message and "leap/ALFWorld-v0" in message
    assert get_spec("leap/Nope-v0") is None and get_spec(None) is None


@pytest.mark.parametrize("env_id", ["leap/InterCodeSQL-v0", "leap/BashGolf-v0", "leap/ALFWorldHard-v0"])
def test_ids_match_exactly_not_by_substring(env_id):
    assert get_spec(env_id) is None
    assert system_prompt(env_id) == system_prompt(None) and GENERIC_RULES in system_prompt(env_id)
    assert INTERCODE_BASH.rules not in system_prompt(env_id)
    assert episode_system_prompt(env_id) == episode_system_prompt(None)


def test_a_taken_id_or_family_is_refused(toy_benchmark):
    register_benchmark(TOY_SPEC)  # the same spec again: nothing to do
    with pytest.raises(ValueError, match="already registered"):
        register_benchmark(replace(TOY_SPEC, max_episode_steps=9))
    with pytest.raises(ValueError, match="family 'bash' is already taken"):
        register_benchmark(replace(TOY_SPEC, env_id="leap-test/Other-v0", family="bash"))


def test_a_registered_spec_reaches_every_consumer(toy_benchmark):
    assert gym.spec(TOY_ID).entry_point == "tests.toy_env:ToyEnv" and gym.spec(TOY_ID).max_episode_steps == 5
    assert get_spec("tests.toy_env:" + TOY_ID) is toy_benchmark  # the module:id form the loop accepts
    assert TOY_RULES in system_prompt(TOY_ID) and GENERIC_RULES not in system_prompt(TOY_ID)
    episode_prompt = episode_system_prompt(TOY_ID)
    assert TOY_RULES in episode_prompt and GENERIC_EPISODE_RULES not in episode_prompt
    assert isinstance(make_expert(TOY_ID, privilege=0.0), ToyExpertTeacher)
    step = Step("You are in the hall.", "go to kitchen",
                info={"privileged": {"key_room": "garden", "expert_plan": ["go to garden"]}})
    traj = Trajectory(TOY_ID, "toy/garden", "find the key", [step])
    assert privileged_summary(traj) == {"key_room": "garden"}
    assert f"Mode: {TOY_MODE}\n" in correction_messages(traj)[0]["content"]
    with pytest.raises(ValueError, match="names no privileged-only facts"):
        find_leaks("the key is in the garden", traj, 0)


def test_one_leap_iteration_on_a_fourth_benchmark(toy_benchmark, tmp_path):
    """The loop on a benchmark it has never heard of: its rules reach the student's prompts, its expert
    teaches."""
    pytest.importorskip("trl")
    from leap_gym.leap.run import run

    run_dir = tmp_path / "run"
    config = {"run_dir": str(run_dir), "iterations": 1,
              "env": {"env_id": TOY_ID, "train_kwargs": {}, "test_kwargs": {}, "num_train_tasks": 6,
                      "max_steps": 3},
              "student": {"model": "tiny", "batch_size": 6, "max_new_tokens": 16, "num_threads": 1,
                          "vocab_size": 1024, "tokenizer_episodes": 6},
              "teacher": {"kind": "expert"},
              "training": {"bc_max_steps": 3, "max_steps": 2, "batch_size": 4, "max_length": 256,
                           "warmup_steps": 0},
              "evaluation": {"num_test_tasks": 3}}
    rows = run(config, progress=False)
    assert [r["key"] for r in rows][-2:] == ["iter_0", "iter_1"]
    records = "\n".join(p.read_text() for p in run_dir.rglob("*.jsonl"))
    assert TOY_RULES in records and GENERIC_RULES not in records  # the spec's rules are the prompts' rules
    # the spec's expert wrote the demonstrations (its privileged reason) and the baseline without privilege
    assert "The key is usually kept in one of the other rooms; I check the likely one." in records
