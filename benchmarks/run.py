"""One entry point for every benchmark suite (also ``leap-gym bench``).

Suites: ``envs`` (reset/step latency, steps/s for 1 env and vector envs, memory), ``act`` (student acting
throughput), ``train`` (training tokens/s and peak memory per model size), ``learn`` (the LEAP learning
benchmark over seeds), ``compare`` (ALFWorld: ours vs the unmodified engine in the same run), ``student`` (the
pretrained student's training and acting throughput, today's pipeline vs the new one), ``packing``
(training on teacher corrections: one row per corrected step vs one packed row per chat window), ``soak``
(vector envs of every env stepped for minutes: memory, descriptors, threads and child processes stay flat).
Each suite writes ``benchmarks/results/<suite>.json`` and ``.md``; ``--quick`` runs every suite at a size
that finishes in a few minutes on 2 cores.

    python benchmarks/run.py [--quick] [--suites envs act train learn compare student soak packing]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SUITES: dict[str, str] = {
    "envs": "envs_speed",
    "act": "act_speed",
    "train": "train_speed",
    "learn": "learn",
    "compare": "alfworld_speed",
    "student": "student_speed",
    "soak": "soak",
    "packing": "correction_packing",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: every suite in a few minutes")
    parser.add_argument("--suites", nargs="*", default=list(SUITES), choices=list(SUITES))
    args = parser.parse_args(argv)
    failed = []
    for suite in args.suites:
        print(f"\n=== suite {suite} ===", flush=True)
        t0 = time.perf_counter()
        try:
            rc = importlib.import_module(SUITES[suite]).main(["--quick"] if args.quick else [])
            if isinstance(rc, int) and rc != 0:  # a suite that checks a claim (soak) returns 1 when it fails
                failed.append(suite)
        except SystemExit as e:  # a suite's argparse error (e.g. compare without a data directory) exits
            if e.code not in (0, None):
                failed.append(suite)
                print(f"suite {suite} stopped (exit {e.code}); going on", file=sys.stderr, flush=True)
        except Exception as e:  # report and go on: one broken suite should not hide the others' numbers
            failed.append(suite)
            print(f"suite {suite} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        print(f"=== suite {suite}: {time.perf_counter() - t0:.0f} s ===", flush=True)
    print(f"\nresults in {Path(__file__).resolve().parent / 'results'}")
    if failed:
        print(f"failed suites: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
