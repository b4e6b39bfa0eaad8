"""The oracle's shortest plan, and a recorded privileged state rebuilt and stepped without the engine."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("alfworld")

from leap_gym.envs.alfworld import oracle  # noqa: E402
from leap_gym.envs.alfworld.env import ALFWorldEnv  # noqa: E402
from leap_gym.envs.alfworld.simulate import apply, goal_of, remaining, world_from_privileged  # noqa: E402
from leap_gym.envs.alfworld.world import Goal, World  # noqa: E402


def test_oracle_takes_the_instance_beside_the_lamp():
    """Two vases one ``go to`` away, one on the lamp's side table: fetching the other (first by id, the greedy
    choice) costs a ``go to`` more."""
    w = World(names={}, agent_loc="l0", recep_loc={"shelf 2": "l1", "sidetable 1": "l2"},
              recep_class={"shelf 2": "shelf", "sidetable 1": "sidetable"},
              obj_class={"vase 1": "vase", "vase 2": "vase", "desklamp 1": "desklamp"},
              in_recep={"vase 1": {"shelf 2"}, "vase 2": {"sidetable 1"}, "desklamp 1": {"sidetable 1"}},
              toggleable={"desklamp 1"})
    goal = Goal("look_at_obj_in_light", "vase", lamp="desklamp")
    assert oracle.plan(w, goal) == ["go to sidetable 1", "take vase 2 from sidetable 1", "use desklamp 1"]


def replay_random(env, indices, steps=12, seed=0):
    """(rebuilt plan length, recorded plan length) before and after each command of half-expert, half-random
    episodes."""
    rng = random.Random(seed)
    pairs = []
    for i in indices:
        _, info = env.reset(options={"task_index": i})
        seen = []
        for _ in range(steps):
            p = info["privileged"]
            seen.append(p["agent_location"])
            world, goal = world_from_privileged(p, seen), goal_of(p)
            pairs.append((remaining(world, goal), len(p["expert_plan"]) or None))
            action = p["expert_action"] if rng.random() < 0.5 else rng.choice(info["admissible_actions"])
            after = remaining(apply(world, action), goal)
            _, _, terminated, _, info = env.step(action)
            pairs.append((after, 0 if info["won"] else len(info["privileged"]["expert_plan"]) or None))
            if terminated:
                break
    return pairs


def test_rebuilt_state_plans_like_the_engine_on_generated_games():
    pairs = replay_random(ALFWorldEnv(split="train"), range(4))
    assert len(pairs) > 40 and all(a == b for a, b in pairs), [p for p in pairs if p[0] != p[1]]


def test_rebuilt_state_plans_like_the_engine_on_real_games(shared_data):
    root = shared_data / "alfworld"
    if not (root / "json_2.1.1").is_dir():
        pytest.skip("no ALFWorld games in shared data")
    env = ALFWorldEnv(tasks="files", split="valid_seen", data_dir=str(root))
    pairs = replay_random(env, range(0, 140, 35))
    assert len(pairs) > 40 and all(a == b for a, b in pairs), [p for p in pairs if p[0] != p[1]]
