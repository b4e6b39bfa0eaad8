"""Page mechanics and observation formats of the text env, checked against the original's rules."""

import json

import pytest

from leap_gym.envs.webshop.env import SEARCH_PLACEHOLDER, parse_action
from leap_gym.envs.webshop.reward import compute_reward
from leap_gym.wrappers import StudentView


def _to_target_item(env, info):
    """Follow the expert until the target's item page is open."""
    while info["page"] != "item" or info["privileged"]["current_asin"] != info["privileged"]["target_asin"]:
        _, _, _, _, info = env.step(info["privileged"]["expert_action"])
    return info


def _goal_with_options(env, min_options=1):
    for i in range(200):
        obs, info = env.reset(seed=0, options={"task_index": i})
        if len(info["privileged"]["goal"]["goal_options"]) >= min_options:
            return obs, info
    raise AssertionError("no goal with options")


def test_parse_action_like_the_original():
    assert parse_action("search[Red Boots]") == ("search", "red boots")
    assert parse_action("click[a[b]]") == ("click[a", "b]")  # greedy name
    assert parse_action("click[x] trailing") == ("click", "x")
    assert parse_action("click[]") == ("click[]", None)
    assert parse_action("buy now") == ("buy now", None)
    assert parse_action("[" * 100_000) == ("[" * 100_000, None)  # too long: invalid, and no regex blow-up


def test_search_page_and_admissible_actions(make_env):
    env = make_env(observation_mode="text")
    obs, info = env.reset(seed=1, options={"task_index": 3})
    assert obs == f"WebShop [SEP] Instruction: [SEP] {info['task']} [SEP] Search"
    assert info["admissible_actions"] == [SEARCH_PLACEHOLDER]
    assert info["available_actions"] == {"has_search_bar": True, "clickables": ["search"]}
    assert info["task_type"] in {"beauty", "food", "fashion", "furniture", "electronics"}


def test_results_pages_and_paging(make_env):
    env = make_env(observation_mode="text")
    _, info = env.reset(seed=0, options={"task_index": 0})
    query = info["privileged"]["goal"]["query"]
    obs, r, term, trunc, info = env.step(f"search[{query.upper()}]")
    assert info["action_valid"] and r == 0.0 and not term
    hits = env.unwrapped.state.hits
    assert len(hits) == 50
    assert obs.startswith(f"Instruction: [SEP] {info['task']} [SEP] Back to Search [SEP] Page 1 (Total "
                          f"results: 50) [SEP] Next > [SEP] ")
    cat = env.unwrapped.catalog
    first = cat.product(hits[0])
    assert f"Next > [SEP] {first['asin']} [SEP] {first['Title']} [SEP] {first['Price']}" in obs
    keys = info["available_actions"]["clickables"]
    assert keys == ["back to search", "next >"] + [cat.asin(i).lower() for i in hits[:10]]
    assert info["admissible_actions"] == [f"click[{k}]" for k in keys] + [SEARCH_PLACEHOLDER]
    obs, *_, info = env.step("click[Next >]")  # the argument is lowercased
    assert "Page 2 (Total results: 50) [SEP] < Prev [SEP] Next >" in obs
    assert info["available_actions"]["clickables"][:3] == ["back to search", "< prev", "next >"]
    for _ in range(4):
        obs, *_, info = env.step("click[next >]")
    # past the end: empty, Next stays
    assert obs.endswith("Page 6 (Total results: 50) [SEP] < Prev [SEP] Next >")
    obs, *_, info = env.step("click[< prev]")
    assert "Page 5 (Total results: 50)" in obs


def test_item_page_options_subpages_and_prev(make_env):
    env = make_env(observation_mode="text")
    _, info = _goal_with_options(env)
    info = _to_target_item(env, info)
    target = info["privileged"]["target"]
    obs = env.unwrapped._observe()
    opts = " [SEP] ".join(f"{g} [SEP] " + " [SEP] ".join(v) for g, v in target["options"].items())
    assert obs == (f"Instruction: [SEP] {info['task']} [SEP] Back to Search [SEP] < Prev [SEP] {opts} [SEP] "
                   f"{target['Title']} [SEP] Price: {target['Price']} [SEP] Rating: N.A. [SEP] Description "
                   f"[SEP] Features [SEP] Reviews [SEP] Buy Now")
    keys = info["available_actions"]["clickables"]
    assert keys[:6] == ["back to search", "< prev", "description", "features", "reviews", "buy now"]
    group, value = next(iter(info["privileged"]["option_assignment"].items()))
    _, _, _, _, info = env.step(f"click[{value}]")
    assert info["privileged"]["chosen_options"] == {group: value}
    obs, *_, info = env.step("click[description]")
    assert obs == (f"Instruction: [SEP] {info['task']} [SEP] Back to Search [SEP] < Prev [SEP] "
                   f"{target['Description']}")
    obs, *_, info = env.step("click[< prev]")  # back to the item, options kept
    assert info["page"] == "item" and info["privileged"]["chosen_options"] == {group: value}
    obs, *_, info = env.step("click[features]")
    assert obs.endswith(" [SEP] ".join(target["BulletPoints"]))
    env.step("click[< prev]")
    obs, *_, info = env.step("click[reviews]")
    assert obs.endswith("Back to Search [SEP] < Prev")
    env.step("click[< prev]")
    obs, *_, info = env.step("click[< prev]")  # item -> the results it came from, options reset
    assert info["page"] == "results" and info["privileged"]["chosen_options"] == {}
    obs, *_, info = env.step("click[back to search]")
    assert info["page"] == "search" and env.unwrapped.state.asins == set()


def test_text_rich_markup_and_clicked_state(make_env):
    env = make_env(observation_mode="text_rich")
    _, info = _goal_with_options(env, min_options=2)
    info = _to_target_item(env, info)
    assignment = info["privileged"]["option_assignment"]
    for v in assignment.values():
        obs, *_, info = env.step(f"click[{v}]")
    values = list(assignment.values())
    target = info["privileged"]["target"]
    # the later clicked label is prepended last, so it comes first
    order = [v for g, vs in target["options"].items() for v in vs if v in values]
    assert obs.startswith("".join(f"You have clicked {v}.\n" for v in reversed(order)) + "Instruction:\n")
    for v in values:
        assert f"\n  [clicked button] {v} [clicked button_]\n" in obs
    assert "\n[button] Back to Search [button_]\n[button] < Prev [button_]\n" in obs
    assert obs.endswith("[button] Reviews [button_]\n[button] Buy Now [button_]")
    obs, *_, info = env.step("click[< prev]")
    asin = info["privileged"]["target_asin"]
    assert f"\n\n[clicked button] {asin} [clicked button_]\n" in obs  # visited since the last search page
    assert "\n\n[button] " in obs  # others not


@pytest.mark.parametrize("action",
                         ["click[nothing here]", "Search[boots]", "click[search]", "search[]", "buy now",
                          "Click[back to search]", "", "click[buy now]"])
def test_invalid_actions_are_silent_no_ops(make_env, action):
    env = make_env()
    obs0, info0 = env.reset(seed=0, options={"task_index": 5})
    obs, r, term, trunc, info = env.step(action)
    assert obs == obs0 and r == 0.0 and not term and info["action_valid"] is False
    obs, r, term, trunc, info = env.step("search[boots]")
    assert info["action_valid"] is True


def test_search_works_from_any_page(make_env):
    env = make_env()
    _, info = env.reset(seed=0, options={"task_index": 0})
    info = _to_target_item(env, info)
    _, _, _, _, info = env.step("search[coffee]")
    assert info["page"] == "results" and info["privileged"]["current_asin"] is None


def test_buy_now_ends_with_the_reward_and_breakdown(make_env):
    env = make_env(observation_mode="text")
    _, info = _goal_with_options(env)
    info = _to_target_item(env, info)
    obs, r, term, trunc, info = env.step("click[buy now]")  # no options chosen
    assert term and info["page"] == "done"
    target = info["privileged"]["target"]
    want, breakdown = compute_reward(target, env.unwrapped.goal, target["price"], {})
    assert r == want < 1.0 and info["score"] == want and not info["won"]
    assert info["reward_breakdown"] == breakdown and breakdown["r_option"] == 0.0
    assert obs.startswith("Thank you for shopping with us! [SEP] Your code: [SEP] None")
    assert f"asin [SEP] {target['asin']} [SEP] options [SEP] {json.dumps({})}" in obs
    assert obs.endswith(f"Your score (min 0.0, max 1.0) [SEP] {float(want)!r} [SEP] Reward Details [SEP] "
                        "None")
    assert info["admissible_actions"] == [SEARCH_PLACEHOLDER] and info["privileged"]["expert_plan"] == []
    obs2, r2, term2, _, info2 = env.step("search[boots]")
    assert obs2 == obs and r2 == 0.0 and term2 and info2["action_valid"] is False


def test_expert_episode_wins_and_student_view_hides_breakdown(make_env):
    env = StudentView(make_env())
    obs, info = env.reset(seed=2, options={"task_index": 7})
    assert "privileged" not in info
    plan = env.unwrapped._info()["privileged"]["expert_plan"]
    for a in plan:
        obs, r, term, trunc, info = env.step(a)
    assert term and r == 1.0 and info["won"] and "reward_breakdown" not in info


def test_determinism_and_bad_arguments(make_env):
    env = make_env()
    a = env.reset(seed=4, options={"task_index": 9})
    b = env.reset(seed=4, options={"task_index": 9})
    assert a == b
    c = env.reset(seed=11)
    d = env.reset(seed=11)
    assert c == d
    with pytest.raises(ValueError, match="task_index"):
        env.reset(options={"task_index": 10**6})
    with pytest.raises(ValueError, match="observation_mode"):
        make_env(observation_mode="html")
    with pytest.raises(ValueError, match="split"):
        make_env(split="dev")
    with pytest.raises(ValueError, match="num_products"):
        make_env(num_products=10)


def test_task_source_and_seed(make_env, tmp_path):
    with pytest.raises(ValueError, match="tasks must be one of"):
        make_env(tasks="nope")
    with pytest.raises(ValueError, match="tasks='files' needs data_dir="):
        make_env(tasks="files")
    with pytest.raises(ValueError, match="data_dir= is read with tasks='files' only"):
        make_env(data_dir=str(tmp_path))
    assert make_env(task_seed=1).unwrapped.goals[:5] != make_env().unwrapped.goals[:5]


def test_admissible_actions_never_carry_the_goal(make_env):
    env = make_env()
    for i in range(20):
        _, info = env.reset(seed=i, options={"task_index": i})
        searches = [a for a in info["admissible_actions"] if a.startswith("search[")]
        assert searches == [SEARCH_PLACEHOLDER]


def test_step_limit_from_registration_and_override(make_env):
    env = make_env()
    assert env.spec.max_episode_steps == 15
    env.reset(seed=0, options={"task_index": 0})
    for _ in range(15):
        _, r, term, trunc, info = env.step("click[nowhere]")
    assert trunc and not term and r == 0.0 and info["score"] == 0.0
    assert make_env(max_episode_steps=30).spec.max_episode_steps == 30


def test_vector_env_runs_expert_episodes(ws_cache):
    import gymnasium as gym

    fns = [lambda: gym.make("leap/WebShop-v0", num_products=2_000, cache_dir=ws_cache) for _ in range(3)]
    venv = gym.vector.SyncVectorEnv(fns)
    _, info = venv.reset(seed=0)
    wins = 0
    for _ in range(30):  # several autoresets: info values must keep one type per key across envs
        _, r, term, trunc, info = venv.step(tuple(info["privileged"]["expert_action"]))
        wins += int((r == 1.0).sum())
    venv.close()
    assert wins >= 9
