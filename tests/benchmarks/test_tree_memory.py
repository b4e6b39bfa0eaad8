"""The process-tree memory benchmark counts a command's children with it, at the same moment."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

TREE_MEMORY = Path(__file__).resolve().parents[2] / "benchmarks" / "tree_memory.py"

# 200 MiB in the command, 300 MiB in its child, both held for two seconds at once
HOLD = """
import subprocess, sys, time
x = bytearray(200 * 2**20)
child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(300 * 2**20); time.sleep(2)"])
child.wait()
sys.exit(3)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_peak_is_the_sum_of_the_processes_alive_together(tmp_path):
    out = tmp_path / "tree.json"
    proc = subprocess.run([sys.executable, str(TREE_MEMORY), "--interval", "0.05", "--out", str(out), "--",
                           sys.executable, "-c", HOLD], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3  # the command's own exit status
    result = json.loads(out.read_text())
    assert result["exit"] == 3 and result["wall_s"] >= 2
    assert result["peak_single_process_mib"] >= 300
    assert result["peak_sum_mib"] >= 500 + 5  # both, and the interpreters around them
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == result


def test_a_command_that_cannot_run_is_one_line():
    proc = subprocess.run([sys.executable, str(TREE_MEMORY), "--", "/nonexistent/command"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "tree_memory.py: error: cannot run /nonexistent/command: No such file or directory"
