"""The InterCode Bash expert teacher: replayed from the start it solves generated tasks at privilege 0.5 and
1, clearly fewer at 0; its privilege-0.5 reasons leak nothing; the leak meter catches a planted leak."""

from __future__ import annotations

import pytest

from leap_gym.agents.teachers import make_expert
from leap_gym.agents.teachers.base import TeacherAgent
from leap_gym.agents.teachers.intercode_bash import (
    BashExpertTeacher,
    command_names,
    guess_command,
    privileged_only_facts,
)
from leap_gym.agents.teachers.leak import find_leaks, leak_report
from leap_gym.envs.intercode_bash.env import InterCodeBashEnv
from leap_gym.info import record_info
from leap_gym.records import Step, Trajectory

ENV_ID = "leap/InterCodeBash-v0"


@pytest.fixture(scope="module")
def env():
    e = InterCodeBashEnv(split="test", spares=2)
    yield e
    e.close()


def replay(env, teacher, index: int) -> tuple[Trajectory, bool]:
    agent = TeacherAgent(teacher, ENV_ID)
    obs, info = env.reset(options={"task_index": index})
    agent.reset(info["task"])
    agent.trajectory.task_id = info["task_id"]
    for _ in range(10):
        out = agent.act(obs, info)
        obs, reward, term, trunc, info = env.step(out.action)
        if term:
            break
    return agent.trajectory, bool(info["won"])


def run_level(env, privilege: float, n: int):
    teacher = BashExpertTeacher(privilege=privilege)
    results = [replay(env, teacher, i) for i in range(n)]
    wins = sum(won for _, won in results)
    report = leak_report((traj, teacher.correct(traj)) for traj, _ in results)
    return wins, report


N_TASKS = 38  # two per family


def test_privileged_levels_solve_generated_tasks_and_level_0_clearly_fewer(env):
    wins = {p: run_level(env, p, N_TASKS) for p in (0.0, 0.5, 1.0)}
    assert wins[0.5][0] >= 0.99 * N_TASKS and wins[1.0][0] >= 0.99 * N_TASKS
    assert wins[0.0][0] <= 0.9 * N_TASKS, "the teacher without privilege should not match the privileged one"
    assert wins[0.0][0] >= 0.5 * N_TASKS, "the query-only guesser should still solve the easy families"
    assert wins[0.5][1].leaks == 0 and wins[0.0][1].leaks == 0, wins[0.5][1].examples
    assert wins[1.0][1].leaks > 0  # privilege 1 states the gold output


def test_leak_meter_catches_a_planted_leak(env):
    traj, won = replay(env, BashExpertTeacher(0.5), 0)  # find_ext: the gold output lists files
    assert won
    facts = privileged_only_facts(traj, 0)
    assert facts and all(f not in traj.task for f in facts)
    first_file = traj.steps[0].info["privileged"]["gold_output"].splitlines()[0]
    assert find_leaks(f"I bet {first_file} is one of them.", traj, 0) != []
    assert find_leaks(f"I bet {first_file.rsplit('/', 1)[1]} is there.", traj, 0) != []
    assert find_leaks("I use find with -type f and a quoted -name pattern.", traj, 0) == []
    # once the student has seen the output, naming a file from it is no longer privileged
    assert find_leaks(f"{first_file} was listed.", traj, 1) == []


def test_correct_flags_student_mistakes_on_policy(env):
    obs, info = env.reset(options={"task_index": 2})  # grep_list
    traj = Trajectory(env_id=ENV_ID, task_id=info["task_id"], task=info["task"])
    for action in ("ls /", info["privileged"]["gold_command"], "submit"):
        traj.steps.append(Step(observation=obs, action=action, info=record_info(info)))
        obs, reward, term, trunc, info = env.step(action)
    corrections = BashExpertTeacher(0.5).correct(traj)
    assert [c.was_corrected for c in corrections] == [True, False, False]
    assert corrections[0].action == traj.steps[1].action and corrections[2].action == "submit"
    assert all(c.reason for c in corrections)


def test_command_equivalent_to_the_gold_is_kept(env):
    """``grep -lr`` where the gold says ``grep -rl``: same output, same files, so submitting next scores 1.0;
    the teacher keeps it and counts only the wasted ``ls /``."""
    obs, info = env.reset(options={"task_index": 2})  # grep_list
    gold = info["privileged"]["gold_command"]
    assert gold.startswith("grep -rl ")
    same = gold.replace("grep -rl ", "grep -lr ", 1)
    traj = Trajectory(env_id=ENV_ID, task_id=info["task_id"], task=info["task"])
    for action in ("ls /", same, "submit"):
        traj.steps.append(Step(observation=obs, action=action, info=record_info(info)))
        obs, reward, term, trunc, info = env.step(action)
    traj.won = info["won"]
    assert traj.won
    for privilege in (0.5, 1.0):
        corrections = BashExpertTeacher(privilege).correct(traj)
        assert [c.was_corrected for c in corrections] == [True, False, False]
        assert corrections[1].action == same and "grep" in corrections[1].reason
        assert sum(c.was_corrected for c in corrections) == 1
    assert leak_report([(traj, BashExpertTeacher(0.5).correct(traj))]).leaks == 0
    # without privilege the teacher cannot tell the command reached the gold's effect: it judges by its guess
    assert BashExpertTeacher(0.0).correct(traj)[1].was_corrected


def test_teacher_registry_and_guesser():
    teacher = make_expert(ENV_ID, privilege=0.5)
    assert isinstance(teacher, BashExpertTeacher)
    with pytest.raises(ValueError):
        BashExpertTeacher(privilege=1.5)
    assert guess_command("Print the first 3 lines of /data/a.txt.") == "head -n 3 /data/a.txt"
    assert guess_command("How many .py files are there under /src, including subdirectories?") == \
        "find /src -name '*.py' | wc -l"
    assert command_names("find /x -name '*.c' -exec md5sum {} + | sort | uniq -d") == [
        "find", "md5sum", "sort", "uniq"]


def test_reasons_are_first_person_and_vary_with_the_seed(env):
    reasons = set()
    for seed in range(4):
        traj, _ = replay(env, BashExpertTeacher(0.5, seed=seed), 3)
        reasons.add(traj.steps[0].reason)
        assert traj.steps[0].reason.startswith(("I ", "To ", "wc", "Counting", "grep", "Searching", "tail",
                                                "head"))
    assert len(reasons) >= 2


@pytest.mark.slow
def test_teacher_levels_on_500_generated_episodes():
    """Issue 7's bar at 500 episodes for the default level; the other levels on 100 (the benchmark runs
    500)."""
    e = InterCodeBashEnv(split="test")
    try:
        wins, report = run_level(e, 0.5, 500)
        assert wins >= 495 and report.leaks == 0, (wins, report.examples)
        assert run_level(e, 1.0, 100)[0] >= 99
        wins0, report0 = run_level(e, 0.0, 100)
        assert wins0 <= 90 and report0.leaks == 0
    finally:
        e.close()
