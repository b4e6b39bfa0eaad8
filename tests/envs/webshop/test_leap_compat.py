"""LEAP's candidate format and reward scale as an optional wrapper."""

from leap_gym.envs.webshop.leap_compat import LEAP_SEARCH, LeapWebShop


def test_candidates_titles_and_reward_scale(make_env):
    env = LeapWebShop(make_env(split="test"))
    obs, info = env.reset(seed=0, options={"task_index": 4})
    assert info["admissible_actions"] == [LEAP_SEARCH]
    catalog = env.unwrapped.catalog
    total = 0.0
    for _ in range(15):
        action = info["privileged"]["expert_action"]
        assert "b0" not in action or action.startswith("search[")  # ASIN clicks are rewritten to titles
        obs, r, term, trunc, info = env.step(action)
        total += r
        if info["page"] == "results":
            cands = info["admissible_actions"]
            assert cands[:2] == ["click[back to search]", "click[next >]"] and len(cands) == 12
            hits = env.unwrapped.state.hits[:10]
            assert cands[2:] == [f"click[item - {catalog.product(i)['Title'].lower()}]" for i in hits]
        if term:
            break
    assert term and total == 10.0 and info["score"] == 1.0
    assert info["admissible_actions"] == ["finish"]


def test_unknown_item_is_a_no_op(make_env):
    env = LeapWebShop(make_env(split="test"))
    env.reset(seed=1, options={"task_index": 2})
    obs, *_, info = env.step("search[shampoo]")
    obs2, r, term, _, info2 = env.step("click[item - no such product]")
    assert obs2 == obs and r == 0.0 and not term and info2["action_valid"] is False


def test_more_than_twenty_candidates_keep_six_and_sample_ten(make_env):
    env = LeapWebShop(make_env(split="test"))
    env.reset(seed=3, options={"task_index": 0})
    acts = [f"click[{v}]" for v in range(25)] + ["search[<query>]"]
    info = env._translate({"page": "item", "admissible_actions": acts})
    cands = info["admissible_actions"]
    assert len(cands) == 16 and cands[:6] == acts[:6] and set(cands[6:]) <= set(acts[6:25])
    assert env._translate({"page": "item",
                           "admissible_actions": acts[:20]})["admissible_actions"] == acts[:20]


def test_teachers_work_in_the_leap_candidate_format(make_env):
    from leap_gym.agents.teachers import TeacherAgent
    from leap_gym.agents.teachers.webshop import WebShopExpertTeacher

    def success(env, level, n=30):
        agent, wins = TeacherAgent(WebShopExpertTeacher(privilege=level), "leap/WebShop-v0"), 0
        for i in range(n):
            obs, info = env.reset(seed=i, options={"task_index": i})
            agent.reset(info["task"])
            for _ in range(15):
                obs, r, term, trunc, info = env.step(agent.act(obs, info).action)
                if term or trunc:
                    break
            wins += info["won"]
        return wins

    plain, leap = make_env(split="test"), LeapWebShop(make_env(split="test"))
    assert success(leap, 0.5) == success(plain, 0.5) == 30
    assert success(leap, 0.0) == success(plain, 0.0) > 0
