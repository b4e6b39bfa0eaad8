"""The WebShop expert teacher: replay success per privilege level, no leaks at <= 0.5, planted leaks
caught."""

import gymnasium as gym
import pytest

import leap_gym  # noqa: F401
from leap_gym.agents.teachers import TeacherAgent, make_expert
from leap_gym.agents.teachers.leak import find_leaks, leak_report
from leap_gym.agents.teachers.webshop import WebShopExpertTeacher, instruction_query, privileged_only_facts
from leap_gym.info import record_info
from leap_gym.records import Step, Trajectory

ENV_ID = "leap/WebShop-v0"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("wscache"))


@pytest.fixture(scope="module")
def env(cache):
    e = gym.make(ENV_ID, num_products=2_000, split="test", cache_dir=cache)
    yield e
    e.close()


def replay(env, teacher, n, start=0):
    """Run the teacher as an agent on test goals; return (success rate, trajectories)."""
    agent = TeacherAgent(teacher, ENV_ID)
    wins, trajs = 0, []
    for i in range(start, start + n):
        obs, info = env.reset(seed=i, options={"task_index": i})
        agent.reset(info["task"])
        agent.trajectory.task_id = info["task_id"]
        for _ in range(15):
            out = agent.act(obs, info)
            obs, r, term, trunc, info = env.step(out.action)
            if term or trunc:
                break
        wins += info["won"]
        trajs.append(agent.trajectory)
    return wins / n, trajs


def test_registry_builds_the_teacher():
    t = make_expert(ENV_ID, privilege=0.5, seed=3)
    assert isinstance(t, WebShopExpertTeacher) and t.privilege == 0.5
    with pytest.raises(ValueError):
        WebShopExpertTeacher(privilege=1.5)


def test_instruction_query():
    q = instruction_query("i am looking for a pair of trail men's hiking boots with ankle support in size "
                          "10, and price lower than 90.00 dollars")
    assert q == "pair trail men's hiking boots ankle support 10"


def test_replay_success_by_privilege(env):
    n = 150
    full, _ = replay(env, WebShopExpertTeacher(privilege=1.0), n)
    hint, _ = replay(env, WebShopExpertTeacher(privilege=0.5), n)
    none, _ = replay(env, WebShopExpertTeacher(privilege=0.0), n)
    assert full >= 0.99 and hint >= 0.99
    assert none <= hint - 0.3, (none, hint)


def test_no_leaks_at_half_privilege_and_leaks_at_full(env):
    _, trajs = replay(env, WebShopExpertTeacher(privilege=0.5), 60, start=200)
    _, trajs0 = replay(env, WebShopExpertTeacher(privilege=0.0), 30, start=200)
    pairs = [(tr, WebShopExpertTeacher(privilege=0.5).correct(tr)) for tr in trajs]
    pairs += [(tr, WebShopExpertTeacher(privilege=0.0).correct(tr)) for tr in trajs0]
    report = leak_report(pairs)
    assert report.steps > 300 and report.leaks == 0, report.examples
    full = leak_report((tr, WebShopExpertTeacher(privilege=1.0).correct(tr)) for tr in trajs)
    assert full.leaks > 0  # privilege 1 may state the target: the meter sees it


def test_planted_leak_is_caught(env):
    _, (traj,) = replay(env, WebShopExpertTeacher(privilege=0.5), 1, start=300)
    priv = traj.steps[0].info["privileged"]
    facts = privileged_only_facts(traj, 0)
    assert priv["target_asin"] in facts and priv["target"]["Title"] in facts
    assert find_leaks(f"Buy {priv['target_asin'].lower()} right away.", traj, 0) == [priv["target_asin"]]
    assert find_leaks(f"Look for {priv['target']['Title']}.", traj, 0)
    assert find_leaks("I'll search for the product type with the key features.", traj, 0) == []
    # once the target is on screen its ASIN is no longer privileged-only
    t_seen = next(t for t, s in enumerate(traj.steps) if priv["target_asin"] in s.observation)
    assert priv["target_asin"] not in privileged_only_facts(traj, t_seen)


def test_propose_reads_only_the_prefix(env):
    _, (traj,) = replay(env, WebShopExpertTeacher(privilege=0.5), 1, start=310)
    teacher = WebShopExpertTeacher(privilege=0.5)
    for t in range(len(traj.steps)):
        prefix = Trajectory(env_id=traj.env_id, task_id=traj.task_id, task=traj.task,
                            steps=traj.steps[: t + 1])
        assert teacher.propose(prefix, t) == teacher.propose(traj, t)
    corrections = teacher.correct(traj)
    assert len(corrections) == len(traj.steps) and not any(c.was_corrected for c in corrections)
    assert all(c.reason and c.reason[0].isupper() for c in corrections)


def test_without_recorded_privileged_state_it_acts_on_the_visible_page(env):
    _, (traj,) = replay(env, WebShopExpertTeacher(privilege=0.5), 1, start=320)
    for s in traj.steps:
        s.info = {k: v for k, v in s.info.items() if k != "privileged"}
    teacher = WebShopExpertTeacher(privilege=0.5)
    assert [teacher.propose(traj, t) for t in range(len(traj.steps))] == [
        WebShopExpertTeacher(privilege=0.0).propose(traj, t) for t in range(len(traj.steps))]


@pytest.mark.slow
def test_no_leaks_on_500_episodes_per_level(env):
    for level in (0.0, 0.5):
        teacher = WebShopExpertTeacher(privilege=level)
        _, trajs = replay(env, teacher, 500)
        report = leak_report((tr, teacher.correct(tr)) for tr in trajs)
        assert report.steps >= 1500 and report.leaks == 0, report.examples


def test_half_privilege_types_queries_from_the_instruction_when_they_work(env):
    _, trajs = replay(env, WebShopExpertTeacher(privilege=0.5), 80, start=100)
    realizable_used = 0
    for tr in trajs:
        first = tr.steps[0]
        queries = first.info["privileged"]["search_queries"]
        usable = [q["query"] for q in queries if q["kind"] != "title" and q["rank"] is not None]
        query = first.action[len("search["):-1]
        if usable:
            assert query in usable
            realizable_used += 1
        else:
            assert query == queries[-1]["query"]  # the title: the only query that lists the target
    assert realizable_used >= 40


def test_unprivileged_teacher_reads_both_observation_modes(env, cache):
    text_env = gym.make(ENV_ID, num_products=2_000, split="test", observation_mode="text", cache_dir=cache)
    for start in (0, 40):
        _, rich = replay(env, WebShopExpertTeacher(privilege=0.0), 5, start=start)
        _, plain = replay(text_env, WebShopExpertTeacher(privilege=0.0), 5, start=start)
        assert [[s.action for s in t.steps] for t in rich] == [[s.action for s in t.steps] for t in plain]
    text_env.close()


def test_goal_options_in_another_order_are_kept(env):
    """The expert clicks the goal's options in a fixed order; a student that clicks them the other way round
    is on a shortest route too and is not corrected, while a detour (``next >`` on the first results page,
    away from the target) still is, and only it counts."""
    for i in range(40):
        obs, info = env.reset(seed=i, options={"task_index": i})
        plan = info["privileged"]["expert_plan"]
        options = [a for a in plan[2:-1] if a.startswith("click[")]
        if len(options) >= 2 and info["privileged"]["target_rank"] == -1 and plan[1].startswith("click[b"):
            break
    else:
        pytest.skip("no goal with two options found")
    k = plan.index(options[0])
    student = plan[:1] + ["click[next >]",
                          "click[< prev]"] + plan[1:k] + [options[1], options[0]] + plan[k + 2:]
    traj = Trajectory(env_id=ENV_ID, task_id=info["task_id"], task=info["task"])
    for action in student:
        traj.steps.append(Step(observation=obs, action=action, admissible_actions=info["admissible_actions"],
                               info=record_info(info)))
        obs, _, terminated, _, info = env.step(action)
        if terminated:
            break
    traj.won = info["won"]
    assert traj.won and len(traj.steps) == len(student)
    for privilege in (0.5, 1.0):
        corrections = WebShopExpertTeacher(privilege).correct(traj)
        changed = [c.step_index for c in corrections if c.was_corrected]
        assert changed == [1]  # the detour; "< prev" back to the target's page is optimal again
        swapped = corrections[1 + 2 + k - 1]
        assert swapped.action == options[1] and not swapped.was_corrected
    assert leak_report([(traj, WebShopExpertTeacher(0.5).correct(traj))]).leaks == 0
