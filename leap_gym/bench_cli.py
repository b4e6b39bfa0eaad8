"""``leap-gym bench``: runs ``benchmarks/run.py`` of a source checkout (benchmarks are not shipped in
wheels)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def _runner() -> Path:
    return Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def cmd_bench(args: argparse.Namespace) -> int:
    runner = _runner()
    if not runner.is_file():
        print(f"error: {runner} not found: `leap-gym bench` needs a source checkout of leap-gym "
              "(pip install -e .)", file=sys.stderr)
        return 2
    extra = (["--quick"] if args.quick else []) + (["--suites", *args.suites] if args.suites else [])
    return subprocess.call([sys.executable, str(runner), *extra])


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the benchmark suites (writes benchmarks/results/)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--suites", nargs="*", default=None)
    p.set_defaults(func=cmd_bench)
