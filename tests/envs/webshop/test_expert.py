"""The privileged expert solves generated test goals from the start and from wherever a student wandered."""

import random

from leap_gym.envs.webshop.env import SEARCH_PLACEHOLDER
from leap_gym.info import check_info


def _run(env, i, policy, limit=15):
    obs, info = env.reset(seed=i, options={"task_index": i})
    r = 0.0
    for _ in range(limit):
        obs, r, term, trunc, info = env.step(policy(info))
        if term or trunc:
            break
    return info["won"], r


def test_expert_solves_test_goals_and_random_does_not(make_env):
    env = make_env(split="test")
    n = 300
    wins = sum(_run(env, i, lambda info: info["privileged"]["expert_action"])[0] for i in range(n))
    assert wins / n >= 0.99
    rng = random.Random(0)

    def rand(info):
        a = rng.choice(info["admissible_actions"])
        if a == SEARCH_PLACEHOLDER:
            words = info["task"].split(", and price")[0].split()
            a = f"search[{' '.join(rng.sample(words, min(4, len(words))))}]"
        return a

    random_wins = sum(_run(env, i, rand)[0] for i in range(n))
    assert random_wins / n <= 0.15, random_wins


def test_expert_recovers_from_any_detour(make_env):
    env = make_env(split="test")
    rng = random.Random(1)
    for i in range(60):
        _, info = env.reset(seed=i, options={"task_index": i})
        for _ in range(rng.randrange(1, 6)):  # a few random valid clicks/searches first
            acts = [a for a in info["admissible_actions"] if a not in ("click[buy now]", SEARCH_PLACEHOLDER)]
            a = rng.choice(acts + ["search[something nice]"])
            _, _, term, _, info = env.step(a)
        plan = info["privileged"]["expert_plan"]
        assert plan and plan[0] == info["privileged"]["expert_action"]
        for a in plan:
            _, r, term, _, info = env.step(a)
            check_info(info)
        assert term and r == 1.0, (i, plan)
