"""The ALFWorld expert teacher: replay success per privilege level, honest reasons, and the leak meter."""

from __future__ import annotations

import gymnasium as gym
import pytest

pytest.importorskip("alfworld")

from leap_gym.agents.teachers import make_expert  # noqa: E402
from leap_gym.agents.teachers.alfworld import ALFWorldExpertTeacher, privileged_only_facts  # noqa: E402
from leap_gym.agents.teachers.base import TeacherAgent  # noqa: E402
from leap_gym.agents.teachers.leak import find_leaks, leak_report  # noqa: E402
from leap_gym.core import Step, Trajectory, record_info  # noqa: E402

ENV_ID = "leap/ALFWorld-v0"


def replay(privilege: float, indices, split: str = "test"):
    """Run the teacher as the agent from reset; returns (trajectories, wins)."""
    env = gym.make(ENV_ID, split=split)
    agent = TeacherAgent(ALFWorldExpertTeacher(privilege=privilege), ENV_ID)
    trajs, wins = [], 0
    for i in indices:
        obs, info = env.reset(options={"task_index": i})
        agent.reset(info["task"])
        while True:
            out = agent.act(obs, info)
            obs, _, terminated, truncated, info = env.step(out.action)
            if terminated or truncated:
                break
        traj = agent.trajectory
        traj.task_id, traj.won = info["task_id"], info["won"]
        trajs.append(traj)
        wins += info["won"]
    return trajs, wins


@pytest.fixture(scope="module")
def runs():
    indices = range(12)  # two of each task type
    return {p: replay(p, indices) for p in (0.0, 0.5, 1.0)}


def test_privileged_teachers_solve_generated_test_tasks(runs):
    assert runs[1.0][1] == 12 and runs[0.5][1] == 12


def test_unprivileged_teacher_needs_more_steps(runs):
    """Privilege 0 searches: it may still win, but never faster than the privileged teacher."""
    steps0 = sum(len(t) for t in runs[0.0][0])
    steps1 = sum(len(t) for t in runs[1.0][0])
    assert steps0 > 1.3 * steps1


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
    for privilege in (1.0, 0.5):
        trajs, wins = replay(privilege, range(200))
        assert wins >= 198, (privilege, wins)
        report = leak_report([(t, ALFWorldExpertTeacher(privilege).correct(t)) for t in trajs])
        assert privilege == 1.0 or report.leaks == 0
