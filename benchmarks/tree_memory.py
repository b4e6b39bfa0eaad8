"""A command's peak memory counting every process it starts: the peak of the sum of their resident sets.

Why: a run of a pretrained student trains, rolls out and evaluates in processes of its own
(``student.stage_processes``), so the machine's memory is the run's process plus the stage's, at once.
``/usr/bin/time -v`` reports the largest single process; this samples ``/proc`` every ``--interval`` seconds
(Linux) and prints the peak of the sum, the largest single process and the wall time:

    python benchmarks/tree_memory.py -- leap-gym demo --quiet
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leap_gym.memory import rss_mib  # noqa: E402


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            kids.setdefault(ppid, []).append(int(name))
    return kids


def tree_rss(root: int) -> list[float]:
    """The resident memory (MiB) of ``root`` and of each of its descendants now."""
    kids, todo, out = _children(), [root], []
    while todo:
        pid = todo.pop()
        out.append(rss_mib(pid) or 0.0)  # 0: ended meanwhile
        todo += kids.get(pid, [])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    ap.add_argument("--out", help="also write the result here (JSON)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command given (put it after --)")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(command)
    except OSError as e:
        ap.error(f"cannot run {command[0]}: {e.strerror}")
    peak_sum = peak_one = 0.0
    while proc.poll() is None:
        sizes = tree_rss(proc.pid)
        peak_sum, peak_one = max(peak_sum, sum(sizes)), max(peak_one, max(sizes, default=0.0))
        time.sleep(args.interval)
    result = {"command": " ".join(command), "exit": proc.returncode,
              "wall_s": round(time.monotonic() - t0, 1), "peak_sum_mib": round(peak_sum),
              "peak_single_process_mib": round(peak_one)}
    print(json.dumps(result), file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
