"""Training's peak memory and time on a run's longest demonstration rows, in one process.

Why: on a CPU the training peak is set less by the rows than by the heap. glibc keeps freed activation blocks
in pieces that later, differently sized rows cannot reuse, so the resident set climbs while the rows get
shorter. This replays ``leap_gym.leap.train.train`` (the run's own training config) on the ``--rows`` longest
rows of ``<run-dir>/iter_0/dataset.jsonl``, longest first, for ``--steps`` optimizer steps, sampling the
process's RSS every 10 ms, and prints the peak of each fifth of the run, the peak and the wall time (loading
and saving included). Allocator settings are the environment's, so compare them one process at a time:

    python benchmarks/train_memory.py --run-dir runs/demo --label default
    MALLOC_MMAP_THRESHOLD_=1048576 python benchmarks/train_memory.py --run-dir runs/demo --label mmap1m
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def measure(run_dir: Path, rows: int, steps: int) -> dict:
    from leap_gym.leap.layout import RunLayout, read_rows
    from leap_gym.leap.run import set_student_threads
    from leap_gym.leap.train import train
    from leap_gym.memory import PeakRSS
    from leap_gym.models.pretrained import resolve_model

    layout = RunLayout(run_dir)
    config = layout.load_config()
    data = sorted(read_rows(layout.dataset(0)), key=lambda r: -int(r.get("meta", {}).get("tokens", 0)))[:rows]
    cfg = replace(config.training, checkpoint_steps=0)
    set_student_threads(config)
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(PeakRSS.current_mib() or 0.0)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        train(data, resolve_model(config.student.model), out, cfg, max_steps=steps, progress=False)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    n = len(samples)
    fifths = [round(max(samples[i * n // 5:(i + 1) * n // 5] or [0.0])) for i in range(5)]
    return {"rows": len(data), "longest_tokens": int(data[0].get("meta", {}).get("tokens", 0)),
            "steps": steps, "wall_s": round(wall, 1), "peak_fifths_mib": fifths, "peak_mib": max(fifths)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path, help="a run with iter_0/dataset.jsonl")
    parser.add_argument("--rows", type=int, default=40, help="the longest demonstration rows trained on")
    parser.add_argument("--steps", type=int, default=10, help="optimizer steps")
    parser.add_argument("--label", default="", help="names the allocator setting in the output")
    args = parser.parse_args(argv)
    result = measure(args.run_dir, args.rows, args.steps)
    print(json.dumps({"label": args.label, **result, "machine": common.machine()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
