"""Kill-resume check: ``kill -9`` a LEAP run at random moments, re-run it until it finishes, and compare every
output with an uninterrupted run of the same config (byte for byte; wall times and logs aside).

Each kill lands in whatever stage is running (rollouts, corrections, training mid-checkpoint, evaluation, a
file being written); the resumed run must keep finished stages, redo only the killed one (training from its
last checkpoint) and end with the same datasets, corrections, weights and evaluations.

    python benchmarks/kill_resume.py [--kills 12] [--seed 0] [--run-root /tmp/kill_resume]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import common

REPO = Path(__file__).resolve().parents[1]
# The loop on generated ALFWorld tasks with the tiny student, about 5 minutes on 2 shared cores.
CONFIG = {
    "iterations": 2,
    "env": {"env_id": "leap/ALFWorld-v0", "num_train_tasks": 12, "max_steps": 10},
    "student": {"model": "tiny", "history_k": 2, "batch_size": 12, "max_new_tokens": 40, "num_threads": 1,
                "snap_to_admissible": True, "tokenizer_episodes": 12},
    "training": {"bc_max_steps": 60, "max_steps": 30, "batch_size": 8, "checkpoint_steps": 10,
                 "bc_learning_rate": 2e-3, "learning_rate": 5e-4},
    "evaluation": {"num_test_tasks": 8},
}
# Outputs whose bytes carry wall times or the run directory's path (the two runs live in different
# directories): not compared. Weights, datasets, rollouts, corrections and evaluations are.
VOLATILE = ("metrics.jsonl", "report.html", "learning_curve.png", "train_log.json", "trainer_state.json",
            "adapter_config.json", "README.md", "inputs.sha256")
_CHILD = "import json, sys; from leap_gym.leap.run import run; run(json.loads(sys.argv[1]), progress=False)"


def _start(run_dir: Path) -> subprocess.Popen:
    cfg = {**CONFIG, "run_dir": str(run_dir)}
    return subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(cfg)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_WAIT_POLICY": "PASSIVE"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def digests(run_dir: Path) -> dict[str, str]:
    """sha256 of every output file except the volatile ones (and eval wall times, stripped)."""
    out = {}
    for p in sorted(run_dir.rglob("*")):
        if not p.is_file() or p.name in VOLATILE or p.name == "config.yaml":
            continue
        data = p.read_bytes()
        if p.suffix == ".json":
            obj = json.loads(data)
            if isinstance(obj, dict):
                obj.pop("wall_s", None)
            data = json.dumps(obj, sort_keys=True).encode()
        out[str(p.relative_to(run_dir))] = hashlib.sha256(data).hexdigest()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-root", default="/tmp/kill_resume")
    args = ap.parse_args()
    root = Path(args.run_root)
    shutil.rmtree(root, ignore_errors=True)

    t = time.monotonic()
    ref = _start(root / "reference")
    assert ref.wait() == 0, "the uninterrupted run failed"
    total = time.monotonic() - t
    print(f"reference run: {total:.0f} s", flush=True)

    rng = random.Random(args.seed)
    killed = root / "killed"
    kills = []
    for k in range(args.kills):
        proc = _start(killed)
        delay = rng.uniform(0.05, 1.0) * total / 3
        try:
            rc = proc.wait(timeout=delay)
            kills.append({"kill": k, "after_s": round(delay, 1), "killed": False, "rc": rc})
            break  # it finished before the kill
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append({"kill": k, "after_s": round(delay, 1), "killed": True})
            print(f"kill {k + 1}: after {delay:.1f} s", flush=True)
    final = _start(killed)
    assert final.wait() == 0, "the resumed run failed"
    a, b = digests(root / "reference"), digests(killed)
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    result = {"kills": kills, "reference_s": round(total, 1), "files_compared": len(a), "differ": differ,
              "identical": not differ}
    md = (f"{sum(x['killed'] for x in kills)} kill -9 of a {total:.0f} s run, resumed: {len(a)} output files "
          f"compared, {'all identical' if not differ else 'differing: ' + ', '.join(differ)}\n")
    print(md)
    common.save("kill_resume", result, md, " ".join(["python", "benchmarks/kill_resume.py", *sys.argv[1:]]))
    sys.exit(0 if not differ else 1)


if __name__ == "__main__":
    main()
