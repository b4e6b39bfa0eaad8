"""``leap/InterCodeBash-v0``: episodes, the original's quirks, the reward through real sandboxes, privileged
state."""

from __future__ import annotations

import glob
import os
import signal
import time

import gymnasium as gym
import pytest

import leap_gym  # noqa: F401
from leap_gym.envs.intercode_bash.env import (
    MALFORMED,
    MAX_ACTION_BYTES,
    SANDBOX_LOST,
    TIMED_OUT,
    InterCodeBashEnv,
    simplify_path,
)
from leap_gym.envs.intercode_bash.generated import FAMILIES, generate_task
from leap_gym.info import check_info
from leap_gym.wrappers import StudentView


@pytest.fixture(scope="module")
def env():
    e = InterCodeBashEnv(spares=2)
    yield e
    e.close()


@pytest.fixture(scope="module")
def clean_env():
    e = InterCodeBashEnv(compat="clean", spares=1)
    yield e
    e.close()


def ensure_debian_rootfs() -> None:
    """Build the Debian root once (cached) where this machine can (root + mmdebstrap), else skip."""
    import os
    import shutil

    from leap_gym.envs.intercode_bash.rootfs import build_debian_rootfs, debian_rootfs
    try:
        debian_rootfs()
        return
    except FileNotFoundError as e:
        if os.geteuid() != 0 or shutil.which("mmdebstrap") is None:
            pytest.skip(f"{e} (and this machine cannot build it: needs root and mmdebstrap)")
    build_debian_rootfs()


def task_root(index: int) -> str:
    return generate_task(index).entries[0]["path"]


def play_gold(env, index: int):
    obs, info = env.reset(options={"task_index": index})
    gold = info["privileged"]["gold_command"]
    obs, reward, term, trunc, info = env.step(gold)
    assert reward == 0.0 and not term and info["privileged"]["expert_action"] == "submit", (gold, obs)
    obs, reward, term, trunc, info = env.step("submit")
    check_info(info)
    return reward, info


@pytest.mark.parametrize("compat", ["intercode", "clean"])
def test_gold_solves_every_generated_family(env, clean_env, compat):
    e = env if compat == "intercode" else clean_env
    for index in range(len(FAMILIES)):
        reward, info = play_gold(e, index)
        assert reward == 1.0 and info["won"] and info["score"] == 1.0, (info["task_type"],
                                                                        info["reward_info"])


def test_generated_tasks_are_seeded_and_families_cycle():
    a, b = generate_task(5, seed=1), generate_task(5, seed=1)
    assert a == b and a.task_id == "train/1/5"
    assert generate_task(5, seed=2) != a and generate_task(5, seed=1, split="test") != a
    assert [generate_task(i).task_type for i in range(len(FAMILIES))] == list(FAMILIES)
    for i in range(60):  # a student can realise every gold: its paths and patterns are all in the query
        t = generate_task(i, split="test")
        for token in t.gold.replace("'", " ").split():
            if token.startswith("/"):
                assert token.split("*")[0].rstrip("/") in t.query, (t.query, t.gold)


def test_reset_observation_privileged_state_and_determinism(env):
    obs, info = env.reset(seed=3)
    obs2, info2 = env.reset(seed=3)
    assert obs == obs2 == info["task"] and info == info2
    priv = info["privileged"]
    assert priv["expert_action"] == priv["gold_command"]
    assert priv["expert_plan"] == [priv["gold_command"], "submit"]
    assert info["admissible_actions"] is None and info["task_type"] in FAMILIES
    check_info(info)


def test_gold_output_and_changes_are_privileged(env):
    obs, info = env.reset(options={"task_index": list(FAMILIES).index("delete_ext")})
    changes = info["privileged"]["gold_changes"]
    assert changes and all(code == "D" for _, code in changes)
    obs, info = env.reset(options={"task_index": list(FAMILIES).index("find_ext")})
    out = info["privileged"]["gold_output"]
    assert out and all(line.startswith("/") for line in out.splitlines())
    assert info["privileged"]["gold_changes"] == []


def test_partial_rewards(env):
    obs, info = env.reset(options={"task_index": list(FAMILIES).index("find_ext")})
    obs, reward, term, trunc, info = env.step("submit")  # nothing done: the last observation is the query
    assert term and 0.66 <= reward < 1.0 and not info["won"]
    parts = info["reward_info"]["parts"]
    assert parts["file_diff"] == 0.33 and parts["file_changes"] == 0.33 and parts["answer_similarity"] < 0.33

    obs, info = env.reset(options={"task_index": list(FAMILIES).index("make_file")})
    gold = info["privileged"]["gold_command"]
    path = gold.rsplit("> ", 1)[1]
    env.step(f"echo wrong > {path}")  # same new file, other content: md5 differs
    obs, reward, term, trunc, info = env.step("submit")
    assert info["reward_info"]["diff_same"] and info["reward_info"]["diff_same_correct"] == 0
    assert info["reward_info"]["parts"]["file_changes"] == 0.0 and reward < 1.0

    index = list(FAMILIES).index("delete_ext")
    obs, info = env.reset(options={"task_index": index})
    env.step("rm -rf " + task_root(index))  # deletes far too much
    obs, reward, term, trunc, info = env.step("submit")
    assert info["reward_info"]["parts"]["file_diff"] == 0.0


def test_intercode_quoting_quirk_and_clean_mode(env, clean_env):
    env.reset(options={"task_index": 0})
    clean_env.reset(options={"task_index": 0})
    # the action is pasted into /bin/bash -c "..." and re-split: "a b" ends the script, the rest becomes $0
    assert env.step('echo "a b" c')[0] == "a\n"
    assert clean_env.step('echo "a b" c')[0] == "a b c\n"
    assert env.step("echo \"it's\"")[0] == MALFORMED
    assert clean_env.step("echo \"it's\"")[0] == "it's\n"


def test_cd_emulation(env, clean_env):
    assert simplify_path("/a/b", "../c/./d") == "/a/c/d" and simplify_path("/a", "/x/..") == "/"
    env.reset(options={"task_index": 0})
    obs, _, _, _, info = env.step("cd /usr/bin")
    assert obs == "" and info["workdir"] == "/usr/bin" and info["action_executed"]
    assert env.step("pwd")[0] == "/usr/bin\n"
    obs, _, _, _, info = env.step("cd ..")
    assert info["workdir"] == "/usr"
    obs, _, _, _, info = env.step("cd /tmp && ls")  # the original stores the junk path ...
    assert info["workdir"] == "/tmp && ls"
    obs, _, _, _, info = env.step("pwd")  # ... and later commands fail to start there
    assert "chdir to cwd" in obs and not info["action_executed"]
    obs, _, _, _, info = env.step("cd")
    assert obs == MALFORMED and info["action_valid"] is False

    clean_env.reset(options={"task_index": 0})
    obs, _, _, _, info = clean_env.step("cd /usr/bin")
    assert obs == "" and info["workdir"] == "/usr/bin"
    obs, _, _, _, info = clean_env.step("cd /tmp && ls")  # a compound command does not move the episode
    assert info["workdir"] == "/usr/bin"
    obs, _, _, _, info = clean_env.step("cd /nonexistent")
    assert "No such file or directory" in obs and info["workdir"] == "/usr/bin"


def test_skip_submit_and_after_the_end(env):
    env.reset(options={"task_index": 1})
    obs, reward, term, trunc, info = env.step("skip")
    assert (obs, reward, term) == ("skipped", 0.0, True)
    obs, reward, term, trunc, info = env.step("ls")  # nothing runs after the end (leap_gym.envs.contract)
    assert (obs, reward, term) == ("skipped", 0.0, True) and info["action_valid"] is False
    env.reset(options={"task_index": 1})
    with pytest.raises(TypeError, match="expected a str"):
        env.step(123)


def test_timeout_and_fresh_state_per_episode():
    e = InterCodeBashEnv(timeout=1.0, spares=0)
    try:
        e.reset(options={"task_index": 0})
        assert e.step("sleep 5")[0] == TIMED_OUT
        e.step("touch /marker_file && echo made")
        e.reset(options={"task_index": 0})
        assert "No such file" in e.step("ls /marker_file")[0]
    finally:
        e.close()


def test_broken_reward_is_flagged_not_raised(env):
    env.reset(options={"task_index": 0})
    env.step(f"touch '{task_root(0)}/a b'")  # git quotes the path; the original's parser breaks on it
    obs, reward, term, trunc, info = env.step("submit")
    assert term and reward == 0.0 and "IndexError" in info["reward_info"]["error"]


def test_gym_make_and_student_view():
    e = gym.make("leap/InterCodeBash-v0")
    try:
        assert e.spec.max_episode_steps == 10
        obs, info = StudentView(e).reset(seed=0)
        assert "privileged" not in info and obs == info["task"]
    finally:
        e.close()


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="compat"):
        InterCodeBashEnv(compat="docker")
    with pytest.raises(ValueError, match="data_dir"):
        InterCodeBashEnv(tasks="files")
    with pytest.raises(ValueError, match="families"):
        InterCodeBashEnv(families=["nope"])


def test_original_tasks_from_files(shared_data):
    e = InterCodeBashEnv(tasks="files", data_dir=str(shared_data / "intercode"), spares=1)
    try:
        assert len(e) == 200
        for index in (0, 61, 120, 190):  # one per file system
            reward, info = play_gold(e, index)
            assert reward == 1.0, (info["task_id"], info["reward_info"])
        obs, info = e.reset(options={"task_index": 60})
        assert info["task_id"] == "nl2bash_fs_2.json:0"
        assert e.step("ls -a / | grep -c placeholder")[0] == "1\n"  # the stray touch of setup_nl2b_fs_2.sh
        assert e.step("echo $file_system_version $script")[0] == "2 setup_nl2b_fs_2.sh\n"
    finally:
        e.close()


def test_files_split_picks_file_systems(shared_data):
    """The LEAP paper trains on file systems 1-2 and tests on 3-4; task ids name the file system."""
    data = str(shared_data / "intercode")
    sizes = {"train": 60 + 53, "test": 60 + 27, "all": 200, "fs3": 60}
    for split, want in sizes.items():
        e = InterCodeBashEnv(tasks="files", data_dir=data, split=split, spares=0)
        try:
            systems = {t.task_id.split(".json:")[0] for t in e._source.tasks}
            assert len(e) == want, split
            assert systems == {"train": {"nl2bash_fs_1", "nl2bash_fs_2"},
                               "test": {"nl2bash_fs_3", "nl2bash_fs_4"},
                               "all": {f"nl2bash_fs_{n}" for n in range(1, 5)},
                               "fs3": {"nl2bash_fs_3"}}[split]
        finally:
            e.close()
    e = InterCodeBashEnv(tasks="files", data_dir=data, split="test", spares=0)
    try:
        obs, info = e.reset(options={"task_index": 0})
        assert info["task_id"] == "nl2bash_fs_3.json:0"
        assert e.step("echo $file_system_version")[0] == "3\n"
    finally:
        e.close()
    with pytest.raises(ValueError, match="split must be one of"):
        InterCodeBashEnv(tasks="files", data_dir=data, split="valid")


@pytest.mark.slow
@pytest.mark.parametrize("rootfs", ["host", pytest.param("debian", marks=pytest.mark.debian)])
def test_gold_on_all_original_tasks(shared_data, rootfs):
    if rootfs == "debian":
        ensure_debian_rootfs()
    e = InterCodeBashEnv(tasks="files", data_dir=str(shared_data / "intercode"), rootfs=rootfs)
    try:
        failed = []
        for index in range(len(e)):
            obs, info = e.reset(options={"task_index": index})
            e.step(info["privileged"]["gold_command"])
            reward = e.step("submit")[1]
            if reward != 1.0:
                failed.append(info["task_id"])
        # the bar: >= 199 of 200 (the `date` task may cross a second); the host root reaches it here
        # too
        assert len(failed) <= 1, failed
    finally:
        e.close()


@pytest.mark.slow
def test_gold_on_many_generated_tasks():
    e = InterCodeBashEnv(split="test")
    try:
        for index in range(200):
            obs, info = e.reset(options={"task_index": index})
            e.step(info["privileged"]["gold_command"])
            assert e.step("submit")[1] == 1.0, info["task_id"]
    finally:
        e.close()


def test_package_tasks_when_intercode_bench_is_installed():
    pytest.importorskip("intercode",
                        reason="pip install --no-deps intercode-bench to run the package task set")
    e = InterCodeBashEnv(tasks="package", spares=1)
    try:
        assert len(e) == 24
        reward, info = play_gold(e, 0)
        assert reward == 1.0 and info["task_id"] == "bash_queries.json:0"
    finally:
        e.close()


def _pid_1_of(box) -> int:
    """Host pid of a sandbox's PID 1: the native helper's only child."""
    helper = box._helper.proc.pid
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(path).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == helper:
            return int(path.split("/")[2])
    pytest.skip("the sandbox's PID 1 is not the helper's child (bwrap backend)")


@pytest.mark.parametrize("action", ["ls /", "submit"])
def test_dead_sandbox_ends_the_episode_and_the_next_reset_recovers(action):
    e = InterCodeBashEnv(spares=1)
    try:
        e.reset(options={"task_index": 0})
        os.kill(_pid_1_of(e._sandbox), signal.SIGKILL)
        obs, reward, term, trunc, info = e.step(action)
        assert trunc and not term and reward == 0.0 and not info["action_valid"]
        assert obs.startswith(SANDBOX_LOST) and info["env_error"] == obs and "reward_info" not in info
        check_info(info)
        assert e.step("ls")[0] == obs  # the contract: nothing runs after the end
        e.reset(options={"task_index": 0})
        assert e.step("echo back")[0] == "back\n"
    finally:
        e.close()


def test_dead_spares_do_not_fail_the_reset():
    """Ready sandboxes killed while waiting (e.g. by the host's OOM killer): the reset takes or builds
    others."""
    e = InterCodeBashEnv(spares=2)
    try:
        e.reset(options={"task_index": 0})
        e.close_sandbox()
        deadline = time.monotonic() + 30
        while sum(map(len, e._pool._ready.values())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        for boxes in e._pool._ready.values():
            for box in boxes:
                os.kill(_pid_1_of(box), signal.SIGKILL)
        e.reset(options={"task_index": 0})
        assert e.step("echo back")[0] == "back\n"
    finally:
        e.close()


def test_action_over_the_kernel_argument_limit_is_invalid_at_once(env):
    env.reset(options={"task_index": 0})
    obs, reward, term, trunc, info = env.step("echo " + "a" * 1_000_000)
    assert info["action_valid"] is False and info["action_executed"] is False and not (term or trunc)
    assert obs.startswith("Invalid action") and "1000005 bytes" in obs and str(MAX_ACTION_BYTES) in obs
    longest = "echo " + "a" * (MAX_ACTION_BYTES - 5)  # still runs: exactly the kernel's limit
    obs, reward, term, trunc, info = env.step(longest)
    assert info["action_valid"] and obs == longest[5:] + "\n"
    assert env.step(longest + "a")[4]["action_valid"] is False


@pytest.mark.parametrize("action", ["echo a\0b", "\0", "submit\0"])
def test_nul_byte_is_an_invalid_action(env, action):
    env.reset(options={"task_index": 0})
    obs, reward, term, trunc, info = env.step(action)
    assert info["action_valid"] is False and "NUL" in obs and not (term or trunc)
    assert env.step("echo ok")[0] == "ok\n"
