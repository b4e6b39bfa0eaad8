"""leap/ALFWorld-v0 on the real engine: task sources, Gymnasium API, privileged state and the fact-based
oracle."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

pytest.importorskip("alfworld")
pytest.importorskip("textworld")

from leap_gym.envs.alfworld.env import ALFWorldEnv  # noqa: E402
from leap_gym.envs.alfworld.generate import VALID_UNSEEN_SCENES, generate_game, scenes  # noqa: E402
from leap_gym.envs.alfworld.world import TASK_TYPES, World  # noqa: E402
from leap_gym.info import check_info  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def play_expert(env, info, max_steps=40):
    for _ in range(max_steps):
        if info["won"]:
            break
        action = info["privileged"]["expert_action"]
        assert action in info["admissible_actions"], (action, info["task_id"])
        _, _, _, _, info = env.step(action)
    return info


def random_walk(env, info, n, seed):
    rng = random.Random(seed)
    for _ in range(n):
        _, _, terminated, _, info = env.step(rng.choice(info["admissible_actions"]))
        if terminated:
            break
    return info


@pytest.fixture(autouse=True, scope="module")
def _translation_cache_in_tmp(tmp_path_factory):
    """Keep the on-disk translation cache of file games out of the user's home during tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LEAP_GYM_CACHE", str(tmp_path_factory.mktemp("leap-gym-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def gen_env():
    env = ALFWorldEnv(split="test")
    yield env
    env.close()


# -- generated tasks -----------------------------------------------------------------------------------------

def test_make_without_kwargs_is_lazy_and_works():
    env = gym.make("leap/ALFWorld-v0")
    assert env.unwrapped._engine is None  # nothing loaded until reset
    assert env.spec.max_episode_steps == 50
    obs, info = env.reset(seed=1)
    check_info(info)
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-") and "Your task is to: " in obs
    assert info["task_id"].startswith("generated/train/0/")


def test_generated_is_deterministic_per_seed_and_index():
    a, b = generate_game("test", 0, 7), generate_game.__wrapped__("test", 0, 7)
    assert a.data == b.data and a.goal == b.goal
    assert generate_game("test", 1, 7).data != a.data
    e1, e2 = ALFWorldEnv(split="test"), ALFWorldEnv(split="test")
    o1, i1 = e1.reset(seed=5, options={"task_index": 3})
    o2, i2 = e2.reset(seed=99, options={"task_index": 3})
    assert o1 == o2 and i1 == i2
    o3, i3 = e1.reset(seed=5)
    o4, i4 = e2.reset(seed=5)
    assert o3 == o4 and i3 == i4


def test_generated_covers_all_task_types_and_split_scenes():
    games = [generate_game("test", 0, i) for i in range(12)]
    assert {g.goal.task_type for g in games} == set(TASK_TYPES)
    assert {g.meta["scene"] for g in games} <= set(VALID_UNSEEN_SCENES)
    assert not set(scenes("train")) & set(VALID_UNSEEN_SCENES) and len(scenes("train")) == 108
    train = generate_game("train", 0, 0)
    assert train.meta["scene"] in scenes("train")


def test_task_types_filter():
    env = ALFWorldEnv(split="test", task_types=["pick_heat_then_place_in_recep"])
    for i in range(2):
        _, info = env.reset(options={"task_index": i})
        assert info["task_type"] == "pick_heat_then_place_in_recep"
        assert "heat" in info["task"] or "hot" in info["task"]


@pytest.mark.parametrize("index", range(6))
def test_oracle_solves_generated_from_reset(gen_env, index):
    obs, info = gen_env.reset(options={"task_index": index})
    assert not info["won"] and info["privileged"]["expert_plan"]
    assert info["privileged"]["expert_action"] == info["privileged"]["expert_plan"][0]
    info = play_expert(gen_env, info)
    assert info["won"] and info["score"] == 1.0
    assert info["privileged"]["goal"]["satisfied"]


@pytest.mark.parametrize("index", range(6))
def test_oracle_solves_generated_from_mid_episode(gen_env, index):
    _, info = gen_env.reset(options={"task_index": 20 + index})
    info = random_walk(gen_env, info, 10, seed=index)
    assert info["won"] or info["privileged"]["expert_plan"], "generated games have no dead ends"
    assert play_expert(gen_env, info)["won"]


def test_revisited_generated_game_is_unpacked_not_retranslated(monkeypatch):
    """A LEAP run revisits hundreds of generated games; past the live memo they come back from the packed
    one."""
    from leap_gym.envs.alfworld import engine

    class Recording(engine._LRU):
        hits = 0

        def get(self, key, default=None):
            value = super().get(key, default)
            Recording.hits += value is not None
            return value

    monkeypatch.setattr(engine, "_SAS_PACKED", Recording(8))
    env = ALFWorldEnv(split="train", task_seed=11)
    first = env.reset(options={"task_index": 3})
    after = env.step(first[1]["admissible_actions"][0])
    assert len(engine._SAS_PACKED) >= 1 and Recording.hits == 0
    env.reset(options={"task_index": 4})
    engine._SAS.clear()  # as if 64 other games had been visited since
    engine._STATES.clear()
    assert env.reset(options={"task_index": 3}) == first
    assert Recording.hits == 1
    assert env.step(first[1]["admissible_actions"][0]) == after


def test_reward_terminated_and_step_after_done(gen_env):
    _, info = gen_env.reset(options={"task_index": 0})
    plan = info["privileged"]["expert_plan"]
    rewards = []
    for cmd in plan:
        _, r, terminated, truncated, info = gen_env.step(cmd)
        rewards.append(r)
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0 and terminated and not truncated
    _, r, terminated, _, info = gen_env.step("look")
    assert r == 0.0 and info["won"]


def test_invalid_action_is_nothing_happens(gen_env):
    _, info = gen_env.reset(options={"task_index": 1})
    before = info["privileged"]
    # non-str: contract test
    for bad in ("fly to the moon", "", "   ", "GO TO " + info["admissible_actions"][0][6:]):
        obs, r, terminated, truncated, info = gen_env.step(bad)
        assert obs == "Nothing happens." and info["action_valid"] is False and r == 0.0
        check_info(info)
    assert info["privileged"] == before
    _, _, _, _, info = gen_env.step(" " + info["admissible_actions"][0] + " ")
    assert info["action_valid"] is True


def test_truncation_at_50_steps():
    env = gym.make("leap/ALFWorld-v0", split="test")
    env.reset(options={"task_index": 2})
    for _i in range(50):
        _, _, terminated, truncated, _ = env.step("inventory")
        assert not terminated
    assert truncated


def test_privileged_state_is_consistent(gen_env):
    _, info = gen_env.reset(options={"task_index": 4})
    info = random_walk(gen_env, info, 8, seed=3)
    p = info["privileged"]
    json.dumps(p)
    assert set(p) >= {"object_locations", "receptacle_contents", "opened", "agent_location", "object_states",
                      "goal", "expert_plan", "expert_action"}
    for obj, where in p["object_locations"].items():
        assert where == "agent" or obj in p["receptacle_contents"][where]
    for _recep, objs in p["receptacle_contents"].items():
        for obj in objs:
            assert p["object_locations"][obj] != "agent"
    assert all(name == name.strip() for name in p["object_locations"])
    assert set(p["agent_location"]) <= set(p["receptacle_contents"])
    assert p["goal"]["task_type"] == info["task_type"]


def test_student_view_hides_privileged(gen_env):
    from leap_gym.wrappers import StudentView
    view = StudentView(ALFWorldEnv(split="test"))
    _, info = view.reset(options={"task_index": 0})
    assert "privileged" not in info and info["admissible_actions"]


def test_sys_argv_is_preserved(gen_env):
    argv = list(sys.argv)
    gen_env.reset(options={"task_index": 9})
    gen_env.step("look")
    assert sys.argv == argv


def test_async_vector_env():
    envs = gym.vector.AsyncVectorEnv([lambda: gym.make("leap/ALFWorld-v0", split="test")] * 2,
                                     shared_memory=False)  # text spaces cannot live in shared memory
    try:
        obs, infos = envs.reset(seed=0, options={"task_index": 0})
        assert len(obs) == 2 and obs[0] == obs[1]
        actions = list(infos["privileged"]["expert_action"])
        obs, rewards, terminated, truncated, infos = envs.step(actions)
        assert len(rewards) == 2 and obs[0] == obs[1] and obs[0] != "Nothing happens."
    finally:
        envs.close()


def test_import_writes_nothing_into_home(tmp_path):
    code = ("import gymnasium as gym, leap_gym, os; env = gym.make('leap/ALFWorld-v0', split='test'); "
            "env.reset(options={'task_index': 0}); print('ALFWORLD_DATA' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k != "ALFWORLD_DATA"}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert not (tmp_path / ".cache" / "alfworld").exists()


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="tasks must be"):
        ALFWorldEnv(tasks="nope")
    with pytest.raises(ValueError, match="splits"):
        ALFWorldEnv(split="valid_seen")
    with pytest.raises(ValueError, match="unknown task types"):
        ALFWorldEnv(task_types=["fly"])
    with pytest.raises(ValueError, match="grammar"):
        ALFWorldEnv(grammar="klingon")
    with pytest.raises(FileNotFoundError):
        ALFWorldEnv(tasks="files", data_dir=tmp_path / "missing")


# -- real game files -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alf_data(shared_data):
    root = shared_data / "alfworld"
    if not (root / "json_2.1.1").is_dir():
        pytest.skip("no ALFWorld games in shared data")
    return root


def test_files_source_filter_and_wording(alf_data):
    env = ALFWorldEnv(tasks="files", split="valid_seen", data_dir=str(alf_data))
    assert env.num_tasks == 140
    _, info = env.reset(options={"task_index": 0})
    assert info["task_id"].startswith("valid_seen/") and info["task_type"] in TASK_TYPES
    info = play_expert(env, info)
    assert info["won"]
    new = ALFWorldEnv(tasks="files", split="valid_seen", data_dir=str(alf_data), grammar="alfworld")
    _, info = new.reset(options={"task_index": 139})  # a pick_two game: its plan puts things down
    plan = info["privileged"]["expert_plan"]
    assert any(c.startswith("move ") for c in plan) and "help" not in info["admissible_actions"]


def test_files_corrupt_game_gives_clear_error(tmp_path, alf_data):
    src = next((alf_data / "json_2.1.1" / "valid_seen").glob("*/*"))
    dst = tmp_path / "json_2.1.1" / "valid_seen" / src.parent.name / src.name
    dst.mkdir(parents=True)
    (dst / "traj_data.json").write_text((src / "traj_data.json").read_text())
    (dst / "game.tw-pddl").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt ALFWorld file"):
        ALFWorldEnv(tasks="files", split="valid_seen", data_dir=str(tmp_path))


def _truncate(data, key):
    return {**data, key: data[key][: len(data[key]) // 2]}


@pytest.mark.parametrize("corrupt,match", [
    (lambda text, data: text[: len(text) // 2], r"line \d+ column"),  # the file itself cut
    (lambda text, data: json.dumps(_truncate(data, "pddl_problem")),
     r"pddl_problem is truncated: it ends at line"),
    (lambda text, data: json.dumps(_truncate(data, "pddl_domain")),
     r"pddl_domain is truncated: it ends at line"),
    (lambda text, data: json.dumps(_truncate(data, "grammar")), r"grammar line \d+ uses the rule"),
    (lambda text, data: json.dumps({**data, "grammar": None}), r"missing 'grammar'"),
])
def test_files_truncated_game_is_reported_at_load_with_file_and_line(tmp_path, alf_data, corrupt, match):
    """Not Fast Downward's ParseError or TextWorld's grammar error at reset: the env refuses to load."""
    src = sorted((alf_data / "json_2.1.1" / "valid_seen").glob("*/*"))[0]
    dst = tmp_path / "json_2.1.1" / "valid_seen" / src.parent.name / src.name
    shutil.copytree(src, dst)
    text = (src / "game.tw-pddl").read_text()
    (dst / "game.tw-pddl").write_text(corrupt(text, json.loads(text)))
    with pytest.raises(ValueError,
                       match=rf"corrupt ALFWorld (game|file) {re.escape(str(dst))}/game.tw-pddl: .*{match}"):
        ALFWorldEnv(tasks="files", split="valid_seen", data_dir=str(tmp_path))


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_alfworld_data_names_the_variable_not_the_working_directory(tmp_path, monkeypatch, value):
    monkeypatch.setenv("ALFWORLD_DATA", value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unrelated_file_in_cwd").touch()
    with pytest.raises(ValueError, match=r"\$ALFWORLD_DATA is empty") as e:
        ALFWorldEnv(tasks="files")
    assert "unrelated" not in str(e.value)
    monkeypatch.delenv("ALFWORLD_DATA")
    with pytest.raises(ValueError, match=r"\$ALFWORLD_DATA is not set"):
        ALFWorldEnv(tasks="files")


def test_missing_split_names_the_data_folder(tmp_path):
    (tmp_path / "json_2.1.1" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError,
                       match=r"no split 'valid_seen' in the ALFWorld data folder .*\['train'\]"):
        ALFWorldEnv(tasks="files", split="valid_seen", data_dir=str(tmp_path))


def _real_game_indices(n_total: int, k: int) -> list[int]:
    return list(range(0, n_total, max(1, n_total // k)))[:k]


@pytest.mark.parametrize("split,index", [("valid_seen", i) for i in _real_game_indices(140, 4)]
                         + [("valid_train", i) for i in _real_game_indices(200, 3)])
def test_oracle_solves_real_games_sample(alf_data, split, index):
    env = ALFWorldEnv(tasks="files", split=split, data_dir=str(alf_data))
    _, info = env.reset(options={"task_index": index})
    assert play_expert(env, info)["won"]
    _, info = env.reset(options={"task_index": index})
    info = random_walk(env, info, 8, seed=index)
    assert_solved_or_dead_end(env, info)


def assert_solved_or_dead_end(env, info):
    """From any state the oracle wins, unless the state is a genuine dead end (a held object nothing
    accepts)."""
    if not info["won"] and not info["privileged"]["expert_plan"]:
        state = env._state
        w = World.from_facts(state["_facts"], state["_entity_infos"])
        stuck = [o for o in w.held
                 if not any((c, w.obj_class[o]) in w.can_contain for c in w.recep_class.values())]
        assert stuck, f"oracle gave up without a dead end in {info['task_id']}"
        return False
    assert play_expert(env, info)["won"], info["task_id"]
    return True


@pytest.mark.slow
@pytest.mark.parametrize("split", ["valid_seen", "valid_train"])
def test_oracle_solves_all_real_games(alf_data, split):
    env = ALFWorldEnv(tasks="files", split=split, data_dir=str(alf_data))
    for i in range(env.num_tasks):
        _, info = env.reset(options={"task_index": i})
        assert play_expert(env, info)["won"], info["task_id"]
        _, info = env.reset(options={"task_index": i})
        assert_solved_or_dead_end(env, random_walk(env, info, 12, seed=i))


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "test"])
def test_oracle_solves_generated_tasks(split):
    env = ALFWorldEnv(split=split)
    for i in range(60):
        _, info = env.reset(options={"task_index": i})
        assert play_expert(env, info)["won"]
        _, info = env.reset(options={"task_index": i})
        assert play_expert(env, random_walk(env, info, 12, seed=i))["won"]


def test_planner_expert_mode():
    """Fast Downward (opt-in) plans from the current state too; its plan wins like the oracle's."""
    env = ALFWorldEnv(split="test", expert="planner")
    _, info = env.reset(options={"task_index": 0})
    plan = info["privileged"]["expert_plan"]
    assert plan and info["privileged"]["expert_action"] == plan[0]
    for cmd in plan:
        assert cmd in info["admissible_actions"]
        _, _, _, _, info = env.step(cmd)
    assert info["won"]


# -- placement preferences -----------------------------------------------------------------------------------

def test_shipped_placement_table_is_what_the_counter_computes(alf_data):
    from leap_gym.envs.alfworld.placement import PLACEMENT_COUNTS, RECEPTACLE_INSTANCES, count_placements

    counted = count_placements(alf_data / "json_2.1.1" / "valid_train")
    assert counted == (PLACEMENT_COUNTS, RECEPTACLE_INSTANCES)


def test_generated_objects_follow_placement_preferences():
    """Books go to the bed far more often than a uniform draw over their legal holders would put them
    there."""
    from leap_gym.envs.alfworld.generate import _Builder

    b = _Builder(random.Random(0), "pick_and_place_simple", 301)  # a bedroom: a bed and many other holders
    b.receptacles()
    options = b.holders("Book")
    beds = [h for h in options if b.receps[h][0] == "Bed"]
    assert beds and len(options) >= 5
    for _ in range(400):
        b.place("Book", 1)
    on_bed = sum(holder in beds for klass, holder in b.objects.values() if klass == "Book")
    assert on_bed / 400 > 3 * len(beds) / len(options)


def test_placement_counter_names_a_corrupt_file(tmp_path):
    from leap_gym.envs.alfworld.placement import count_placements

    bad = tmp_path / "g" / "game.tw-pddl"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt ALFWorld file .*game.tw-pddl"):
        count_placements(tmp_path)
    bad.write_text("{}")
    with pytest.raises(ValueError, match="missing 'pddl_problem'"):
        count_placements(tmp_path)
