"""``die_with_parent``: a spawned worker ends when the process that started it is killed.
``in_fresh_process``: a function runs in another process, and its answer, exception or death comes back."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PARENT = """
import multiprocessing, os, time
from concurrent.futures import ProcessPoolExecutor
from leap_gym.process import die_with_parent

def work():
    print(os.getpid(), flush=True)
    time.sleep(120)

if __name__ == "__main__":
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn, initializer=die_with_parent) as p:
        p.submit(work).result()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waiting for its reaper has ended too
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_its_killed_parent(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    worker = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no cleanup of its own runs
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _alive(worker)
    if alive:
        os.kill(worker, 9)
    assert not alive


def test_in_fresh_process_runs_the_function_elsewhere_and_returns_its_answer_or_exception():
    from leap_gym.process import in_fresh_process

    assert in_fresh_process(os.getpid) != os.getpid()
    assert in_fresh_process(divmod, 7, 2) == (3, 1)
    assert in_fresh_process(int, "ff", base=16) == 255
    with pytest.raises(ValueError, match="invalid literal"):
        in_fresh_process(int, "seven")


def test_a_fresh_process_that_dies_without_an_answer_is_one_clear_error():
    from leap_gym.process import ProcessDied, in_fresh_process

    with pytest.raises(ProcessDied, match="process running _exit died without an answer"):
        in_fresh_process(os._exit, 3)
