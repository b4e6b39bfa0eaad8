"""The ALFWorld expert teacher: replay success per privilege level, honest reasons, and the leak meter."""

from __future__ import annotations

import gymnasium as gym
import pytest

pytest.importorskip("alfworld")

from leap_gym.agents.teachers import make_expert  # noqa: E402
from leap_gym.agents.teachers.alfworld import ALFWorldExpertTeacher, privileged_only_facts  # noqa: E402
from leap_gym.agents.teachers.base import TeacherAgent  # noqa: E402
from leap_gym.agents.teachers.leak import find_leaks, leak_report  # noqa: E402
from leap_gym.info import record_info  # noqa: E402
from leap_gym.records import Step, Trajectory  # noqa: E402

ENV_ID = "leap/ALFWorld-v0"


def replay_many(privileges, indices, split: str = "test"):
    """Each game once per privilege level, game by game (a generated game is built once for all levels)."""
    env = gym.make(ENV_ID, split=split)
    agents = {p: TeacherAgent(ALFWorldExpertTeacher(privilege=p), ENV_ID) for p in privileges}
    results = {p: ([], 0) for p in privileges}
    for i in indices:
        for p, agent in agents.items():
            obs, info = env.reset(options={"task_index": i})
            agent.reset(info["task"])
            while True:
                out = agent.act(obs, info)
                obs, _, terminated, truncated, info = env.step(out.action)
                if terminated or truncated:
                    break
            traj = agent.trajectory
            traj.task_id, traj.won = info["task_id"], info["won"]
            trajs, wins = results[p]
            trajs.append(traj)
            results[p] = (trajs, wins + info["won"])
    return results


@pytest.fixture(scope="module")
def runs():
    return replay_many((0.0, 0.5, 1.0), range(12))  # two of each task type


def test_privileged_teachers_solve_generated_test_tasks(runs):
    assert runs[1.0][1] == 12 and runs[0.5][1] == 12


def test_unprivileged_teacher_needs_more_steps(runs):
    """Privilege 0 searches: within ALFWorld's 50 steps it usually still wins, but it needs far more steps, so
    under a tight step budget it solves clearly fewer tasks."""
    steps0 = sum(len(t) for t in runs[0.0][0])
    steps1 = sum(len(t) for t in runs[1.0][0])
    assert steps0 > 1.3 * steps1

    def within(p, budget=10):
        return sum(t.won and len(t) <= budget for t in runs[p][0])

    assert within(0.5) == 12 and within(0.0) <= 10


def test_actions_are_admissible_and_reasons_short_first_person(runs):
    for privilege, (trajs, _) in runs.items():
        for traj in trajs:
            for step in traj.steps:
                assert step.action in step.admissible_actions, (privilege, step.action)
                assert 10 < len(step.reason) < 160 and ("I" in step.reason.split() or "I'" in step.reason
                                                        or " my " in step.reason or "I'll" in step.reason)
    reasons = {s.reason for traj in runs[0.5][0] for s in traj.steps}
    assert len(reasons) > 20  # step-specific and varied, not one canned sentence


def test_no_leaks_up_to_half_privilege_and_leaks_at_full(runs):
    for privilege in (0.0, 0.5):
        pairs = [(t, ALFWorldExpertTeacher(privilege).correct(t)) for t in runs[privilege][0]]
        report = leak_report(pairs)
        assert report.steps > 0 and report.leaks == 0, report.examples
    pairs = [(t, ALFWorldExpertTeacher(1.0).correct(t)) for t in runs[1.0][0]]
    assert leak_report(pairs).leaks > 0  # privilege 1 may say where things are, and the meter sees it


def test_leak_meter_catches_a_planted_leak(runs):
    traj = runs[0.5][0][0]
    p = traj.steps[0].info["privileged"]
    goal_obj = p["goal"]["object"]
    hidden = [(o, r) for o, r in p["object_locations"].items() if o.startswith(goal_obj + " ")]
    assert hidden
    obj, recep = hidden[0]
    facts = privileged_only_facts(traj, 0)
    assert f"{obj} is in {recep}" in facts
    assert find_leaks(f"The {obj} is in {recep}, go get it.", traj, 0)
    assert find_leaks(f"Try {recep}.", traj, 0)
    assert not find_leaks(f"A {goal_obj} is often found on a countertop; I'll look around.", traj, 0)


def test_propose_reads_only_the_prefix(runs):
    """Appending future steps must not change the proposal for step t."""
    traj = runs[0.0][0][3]
    teacher = ALFWorldExpertTeacher(0.5)
    t = 2
    prefix = Trajectory(env_id=traj.env_id, task_id=traj.task_id, task=traj.task, steps=traj.steps[: t + 1])
    assert teacher.propose(prefix, t) == teacher.propose(traj, t)


def test_corrections_on_a_bad_student_trajectory():
    env = gym.make(ENV_ID, split="test")
    obs, info = env.reset(options={"task_index": 4})
    traj = Trajectory(env_id=ENV_ID, task_id=info["task_id"], task=info["task"])
    for _ in range(5):  # a student that keeps looking around
        traj.steps.append(Step(observation=obs, action="look", admissible_actions=info["admissible_actions"],
                               info=record_info(info)))
        obs, _, _, _, info = env.step("look")
    corrections = make_expert(ENV_ID, privilege=0.5).correct(traj)
    assert len(corrections) == 5 and all(c.was_corrected for c in corrections)
    assert corrections[0].action == traj.steps[0].info["privileged"]["expert_action"]


def test_bad_privilege_is_rejected():
    with pytest.raises(ValueError):
        ALFWorldExpertTeacher(privilege=1.5)


@pytest.mark.slow
def test_replay_success_on_200_generated_test_tasks():
    for privilege, (trajs, wins) in replay_many((1.0, 0.5), range(200)).items():
        assert wins >= 198, (privilege, wins)
        report = leak_report([(t, ALFWorldExpertTeacher(privilege).correct(t)) for t in trajs])
        assert privilege == 1.0 or report.leaks == 0


# -- goal-equivalent actions are not mistakes ----------------------------------------------------------------

def student_run(actions, split="train", index=0):
    """A student trajectory that takes ``actions`` in a generated game, recorded as a rollout records it."""
    env = gym.make(ENV_ID, split=split)
    obs, info = env.reset(options={"task_index": index})
    traj = Trajectory(env_id=ENV_ID, task_id=info["task_id"], task=info["task"])
    for action in actions:
        assert action in info["admissible_actions"], action
        traj.steps.append(Step(observation=obs, action=action, admissible_actions=info["admissible_actions"],
                               info=record_info(info)))
        obs, _, terminated, _, info = env.step(action)
        if terminated:
            break
    traj.won = info["won"]
    return traj


@pytest.fixture(scope="module")
def alarmclock_run():
    """The demo case (generated/train/0/0, "put a alarmclock in sidetable", three alarmclocks on desk 1): the
    oracle's plan takes alarmclock 3; the student takes alarmclock 2, which serves the goal as well."""
    traj = student_run(["go to desk 1", "take alarmclock 2 from desk 1", "go to sidetable 1",
                        "move alarmclock 2 to sidetable 1"])
    assert traj.won and traj.steps[1].info["privileged"]["expert_action"] != traj.steps[1].action
    return traj


@pytest.mark.parametrize("privilege", [0.0, 0.5, 1.0])
def test_goal_equivalent_instance_is_not_corrected(alarmclock_run, privilege):
    """Without privilege the teacher does not know the alarmclocks are on the desk: heading there first is a
    lucky guess it corrects to its own search order (side tables before desks); the rest it keeps, as the
    others do."""
    corrections = ALFWorldExpertTeacher(privilege).correct(alarmclock_run)
    assert [c.was_corrected for c in corrections] == [privilege == 0.0, False, False, False]
    assert [c.action for c in corrections[1:]] == [s.action for s in alarmclock_run.steps[1:]]
    assert "alarmclock 2" in corrections[1].reason and "desk 1" in corrections[1].reason
    assert "alarmclock 2" in corrections[3].reason and "sidetable 1" in corrections[3].reason
    if privilege < 1:
        assert leak_report([(alarmclock_run, corrections)]).leaks == 0


def test_real_mistakes_are_corrected_and_only_they_count():
    """Going to a drawer first (one command more than needed) and picking up a book are mistakes; heading for
    the desk from the drawer is optimal again and stays."""
    traj = student_run(["go to drawer 1", "go to desk 1", "take book 2 from desk 1", "go to sidetable 1"])
    for privilege in (0.5, 1.0):
        corrections = ALFWorldExpertTeacher(privilege).correct(traj)
        assert [c.was_corrected for c in corrections] == [True, False, True, True]
        assert corrections[0].action == "go to desk 1" and corrections[1].action == "go to desk 1"
        assert corrections[2].action.startswith("take alarmclock ")
        assert corrections[2].action.endswith("desk 1")
        assert corrections[3].action.startswith("move book 2 to ")  # put the wrong object down first
        assert sum(c.was_corrected for c in corrections) == 3
        assert corrections[1].metadata == {"kept": "optimal"} and not corrections[0].metadata


def test_an_equally_likely_search_move_is_corrected_only_at_full_privilege():
    """Without privilege the teacher searches in a common-sense order: for a cup (generated/train/0/3) it
    checks a countertop first, and any countertop is as good a guess as the one it names, while a garbage can
    is not. Which countertop holds the cup is hidden state: the privilege-0.5 teacher, which acts on it but
    may not say it, keeps the move too (a correction there could not be learned from the student's view);
    the full-privilege teacher corrects it. The garbage can is corrected at every level."""
    teacher = ALFWorldExpertTeacher(0.0)
    _, own = teacher.propose(student_run(["look"], index=3), 0)
    assert own == "go to countertop 1"
    traj = student_run(["go to countertop 2"], index=3)
    kept = teacher.correct(traj)[0]
    assert not kept.was_corrected and kept.action == "go to countertop 2" and "countertop" in kept.reason
    assert traj.steps[0].info["privileged"]["expert_action"] == "go to countertop 3"
    half = ALFWorldExpertTeacher(0.5).correct(traj)[0]
    assert not half.was_corrected and half.action == "go to countertop 2"
    assert ALFWorldExpertTeacher(1.0).correct(traj)[0].action == "go to countertop 3"
    garbage = student_run(["go to garbagecan 1"], index=3)
    assert teacher.correct(garbage)[0].action == own
    assert ALFWorldExpertTeacher(0.5).correct(garbage)[0].action == "go to countertop 3"


def test_once_the_goal_object_is_seen_the_half_privilege_teacher_corrects_search_moves_again():
    """The search rule holds only while the student has not seen what the goal needs: with a cup in view the
    privilege-0.5 teacher corrects a move on to another countertop (the cup here is on the student's plan)."""
    traj = student_run(["go to countertop 3", "go to countertop 1"], index=3)
    assert "cup" in traj.steps[1].observation
    fixed = ALFWorldExpertTeacher(0.5).correct(traj)[1]
    assert fixed.was_corrected and fixed.action.startswith("take cup ")
