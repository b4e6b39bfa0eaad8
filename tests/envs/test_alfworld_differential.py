"""Our fast engine against the unmodified ALFWorld engine: every observation, admissible list, reward, flag
and privileged field must be identical along the oracle's trajectory mixed with random (and invalid)
commands."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("alfworld")

from leap_gym.envs.alfworld import engine  # noqa: E402
from leap_gym.envs.alfworld.env import ALFWorldEnv  # noqa: E402


def _actions(rng: random.Random, info: dict) -> str:
    if rng.random() < 0.1:
        return rng.choice(["jump", "take the moon", "go to " + info["admissible_actions"][0].upper()])
    return rng.choice(info["admissible_actions"])


def replay_identical(ref: ALFWorldEnv, ours: ALFWorldEnv, index: int, n_random: int = 8) -> int:
    """Drive both envs with the same commands; returns the number of compared steps."""
    rng = random.Random(index)
    a, b = ref.reset(options={"task_index": index}), ours.reset(options={"task_index": index})
    assert a == b, f"reset differs on game {index}"
    info, steps = a[1], 0
    plan_phase = [None] * n_random + ["oracle"] * 30 + [None] * 3
    for phase in plan_phase:
        if phase == "oracle":
            if info["won"]:
                continue
            action = info["privileged"]["expert_action"]
        else:
            action = _actions(rng, info)
        a, b = ref.step(action), ours.step(action)
        steps += 1
        assert a == b, f"game {index} step {steps} ({action!r}) differs:\n{a}\n{b}"
        info = a[-1]
    return steps


@pytest.fixture(scope="module")
def alf_root(shared_data):
    root = shared_data / "alfworld"
    if not (root / "json_2.1.1").is_dir():
        pytest.skip("no ALFWorld games in shared data")
    return str(root)


def _pair(root: str, split: str, cache_dir, grammar: str = "file"):
    kw = dict(tasks="files", split=split, data_dir=root, grammar=grammar)
    return ALFWorldEnv(fast=False, **kw), ALFWorldEnv(fast=True, cache_dir=cache_dir, **kw)


@pytest.mark.parametrize("grammar,index", [("file", 5), ("alfworld", 60)])
def test_identical_to_unmodified_engine_sample(alf_root, tmp_path, grammar, index):
    ref, ours = _pair(alf_root, "valid_seen", tmp_path, grammar)
    assert replay_identical(ref, ours, index) > 8


def test_identical_after_reading_the_translation_cache(alf_root, tmp_path):
    ref, ours = _pair(alf_root, "valid_seen", tmp_path)
    ours.reset(options={"task_index": 100})  # translate and persist
    engine._SAS.clear()  # forget every in-memory copy: the fresh env must read the file
    engine._SAS_PACKED.clear()
    engine._STATES.clear()
    fresh = ALFWorldEnv(tasks="files", split="valid_seen", data_dir=alf_root, cache_dir=tmp_path)
    assert list(tmp_path.rglob("*.pkl.z")), "the translation was not persisted"
    assert replay_identical(ref, fresh, 100) > 8


def test_unmodified_engine_is_untouched_by_the_speedups(alf_root, tmp_path):
    """The levers are active only inside our engine's calls: the reference keeps the library's functions."""
    import fast_downward
    from textworld.envs.pddl import textgen
    ref, ours = _pair(alf_root, "valid_seen", tmp_path)
    ours.reset(options={"task_index": 0})
    assert not engine._active()
    before = len(engine._SAS)
    ref.reset(options={"task_index": 1})
    assert len(engine._SAS) == before  # the reference translated without the memo
    assert fast_downward.pddl2sas.__name__ == "pddl2sas" and callable(textgen._parse_and_convert)


SHARDS = 4  # every game is compared; shards let the slow suite's workers share the ~20 CPU-minutes evenly


@pytest.mark.slow
@pytest.mark.parametrize("split,shard",
                         [(s, k) for s in ("valid_seen", "valid_train") for k in range(SHARDS)])
def test_identical_to_unmodified_engine_all_games(alf_root, tmp_path, split, shard):
    ref, ours = _pair(alf_root, split, tmp_path)
    games = range(shard, ref.num_tasks, SHARDS)
    total = sum(replay_identical(ref, ours, i) for i in games)
    assert total > 10 * len(games)
