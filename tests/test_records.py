import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from leap_gym.io import atomic_open, atomic_write_text, remove_stale_temporaries
from leap_gym.records import (
    SCHEMA_VERSION,
    Correction,
    RecordError,
    Step,
    Trajectory,
    read_jsonl,
    read_trajectories,
    to_record,
    write_jsonl,
)


def _traj(n=3):
    steps = [Step(observation=f"obs {i} ünïcode", action=f"go to shelf {i}",
                  admissible_actions=["look", "inventory"], reason="I look around.", reward=float(i == n - 1),
                  action_valid=i != 1,
                  info={"privileged": {"expert_action": "look", "expert_plan": ["look"]}}) for i in range(n)]
    return Trajectory(env_id="leap/ALFWorld-v0", task_id="train/0/1", task="put a mug in the sink",
                      steps=steps, seed=7, won=True, score=1.0, metadata={"iteration": 2})


def test_roundtrip(tmp_path):
    path = tmp_path / "t.jsonl"
    trajs = [_traj(3), _traj(0)]
    assert write_jsonl(path, trajs) == 2
    assert read_trajectories(path) == trajs
    corr = [Correction(step_index=0, reason="r", action="a", was_corrected=True)]
    write_jsonl(tmp_path / "c.jsonl", corr)
    assert read_jsonl(tmp_path / "c.jsonl", Correction) == corr


def test_records_carry_schema_version(tmp_path):
    rec = to_record(_traj(1))
    assert rec["schema_version"] == SCHEMA_VERSION and rec["kind"] == "trajectory"


def test_truncated_file_names_line(tmp_path):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [_traj(2), _traj(2)])
    data = path.read_text()
    path.write_text(data[: len(data) - 20])  # cut the second record
    with pytest.raises(RecordError, match=r"line 2: invalid JSON.*truncated"):
        read_trajectories(path)


def test_missing_field_names_line_and_field(tmp_path):
    path = tmp_path / "t.jsonl"
    rec = to_record(_traj(2))
    del rec["steps"][1]["action"]
    path.write_text(json.dumps(to_record(_traj(1))) + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(RecordError, match=r"line 2: field 'steps\[1\]\.action': missing required field"):
        read_trajectories(path)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda r: r.update(won="yes"), r"field 'won': expected bool"),
    (lambda r: r.update(schema_version=99), r"unsupported schema_version 99"),
    (lambda r: r.update(kind="nope"), r"unknown kind 'nope'"),
    (lambda r: r.update(extra=1), r"unknown field"),
    (lambda r: r.pop("schema_version"), r"field 'schema_version': missing"),
])
def test_malformed_records(tmp_path, mutate, pattern):
    rec = to_record(_traj(1))
    mutate(rec)
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    with pytest.raises(RecordError, match=pattern):
        read_trajectories(path)


def test_wrong_kind_is_rejected(tmp_path):
    path = tmp_path / "c.jsonl"
    write_jsonl(path, [Correction(0, "r", "a", False)])
    with pytest.raises(RecordError, match="expected a Trajectory record"):
        read_jsonl(path, Trajectory)


def test_atomic_write_keeps_old_content_on_error(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("new partial")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]  # the temporary is cleaned up


def test_killed_writer_never_leaves_partial_file(tmp_path):
    """SIGKILL a process in the middle of a large write: the target is the old file, never a prefix."""
    path = tmp_path / "big.jsonl"
    atomic_write_text(path, "old\n")
    script = textwrap.dedent(f"""
        import sys, time
        from leap_gym.io import atomic_open
        with atomic_open({str(path)!r}) as f:
            for i in range(10**7):
                f.write("x" * 100 + "\\n")
                if i == 1000:
                    f.flush(); print("writing", flush=True)
                    time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert path.read_text() == "old\n"
    # the killed writer's temporary is left behind; a run clears such leftovers when it starts
    (stale,) = [p for p in tmp_path.iterdir() if p.name != "big.jsonl"]
    (tmp_path / "sub").mkdir()
    keep = [tmp_path / ".hidden.tmp", tmp_path / "sub" / "notes.tmp"]  # not atomic_open's: never touched
    for p in keep:
        p.write_text("mine")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "big.jsonl", "sub"]
    assert all(p.read_text() == "mine" for p in keep)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_files_respect_the_umask(tmp_path, umask):
    """Written as ``open()`` would: 0666 minus the umask (mkstemp's 0600 hid runs from colleagues)."""
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~umask
