"""``leap-gym train``, ``leap-gym eval`` and ``leap-gym demo``: their arguments and what they print (the work
is ``leap_gym.leap.run``'s, which loads torch only when a stage needs it).

Overrides are ``key.sub=value`` pairs or ``--key.sub value`` options with YAML values, applied after the
config file, e.g. ``leap-gym train --config run.yaml training.max_steps=50 --env.kwargs '{tasks: files}'``;
``--help`` lists every config field with its default and doc, ``--print-config`` prints the resolved config as
YAML. Errors in the config (also a changed key when resuming a run) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from leap_gym.leap.config import ConfigError, dump_config, load_config
from leap_gym.leap.config_help import format_config_help, options_to_overrides
from leap_gym.leap.layout import UNPRIVILEGED_TEACHER, RunInUse, RunLayout
from leap_gym.leap.presets import DEMO_CONFIG
from leap_gym.leap.report import results_table
from leap_gym.leap.run import StageError, evaluate_students, run
from leap_gym.process import ProcessDied


def _quiet_threads() -> None:
    """Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning made a 2-thread
    training step 3x slower (measured); set before torch loads. A user's own setting wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _overrides_help() -> str:
    return "config overrides key.sub=value (YAML values), e.g. training.max_steps=50; or --key.sub value"


def _error(message: Any) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def rewrite_argv(argv: list[str]) -> list[str]:
    """``--key.sub value`` options of the config commands become ``key.sub=value`` overrides (see
    ``leap_gym.leap.config_help``)."""
    if not argv or argv[0] not in ("train", "demo", "eval"):
        return argv
    return [argv[0], *options_to_overrides(argv[1:])]


def _resolve(args: argparse.Namespace, base: dict[str, Any] | None):
    """The config of ``train``/``demo``: defaults <- ``base`` <- ``--config`` <- overrides."""
    return load_config(getattr(args, "config", None), args.overrides, base=base)


def cmd_train(args: argparse.Namespace) -> int:
    return _train(args, None)


def cmd_demo(args: argparse.Namespace) -> int:
    return _train(args, DEMO_CONFIG)


def _train(args: argparse.Namespace, base: dict[str, Any] | None) -> int:
    try:
        cfg = _resolve(args, base)
    except (ConfigError, OSError) as e:
        return _error(e)
    if args.print_config:
        sys.stdout.write(dump_config(cfg))
        return 0
    _quiet_threads()
    if base is DEMO_CONFIG:
        print(f"leap-gym demo: {cfg.env.env_id} (generated tasks), {cfg.student.model} student, "
              f"privilege-{cfg.teacher.privilege:g} expert teacher, BC + {cfg.iterations} LEAP iterations; "
              f"run dir {cfg.run_dir} (re-run to resume)", flush=True)
    try:
        return _run_and_print(cfg, args.quiet, args.verbose)
    except (ConfigError, RunInUse) as e:  # a resumed run whose config changed; another process on the run
        return _error(e)
    except KeyboardInterrupt:
        print(f"interrupted: re-run the same command to resume {cfg.run_dir} from its last finished stage",
              file=sys.stderr)
        return 130


def _run_and_print(cfg, quiet: bool, verbose: bool = False) -> int:
    t = time.monotonic()
    try:
        rows = run(cfg, progress=not quiet, verbose=verbose)
    except StageError as e:  # the stage is not marked done: a re-run retries it
        print(f"error: {e}", file=sys.stderr)
        return 1
    print()
    print(f"Held-out test tasks ({cfg.env.env_id}, {cfg.env.test_kwargs}):")
    print(results_table(_table_rows(rows)))
    print(f"\nwall time {time.monotonic() - t:.0f} s; report: {RunLayout(cfg.run_dir).report}")
    return 0


def _table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Teacher without privilege first, then the student's iterations, then the privileged teacher."""
    nopriv = [r for r in rows if r.get("key") == UNPRIVILEGED_TEACHER]
    students = [r for r in rows if r.get("agent") == "student"]
    others = [r for r in rows if r not in nopriv and r not in students]
    return nopriv + students + others


def cmd_eval(args: argparse.Namespace) -> int:
    _quiet_threads()
    try:
        rows = evaluate_students(args.run_dir, args.overrides, name=args.name, num_tasks=args.num_tasks,
                                  iterations=args.iteration, quiet=args.quiet, verbose=args.verbose,
                                  first_task=args.first_task)
    except (ConfigError, FileNotFoundError, ValueError, ProcessDied) as e:
        return _error(e)
    first, n = rows[0]["first_task"], rows[0]["n"]
    print(f"{args.run_dir}: {rows[0]['env_kwargs']}, {n} tasks ({first}..{first + n - 1}):")
    print(results_table(rows))
    if args.per_type:
        print(json.dumps({r["name"]: r["per_type"] for r in rows}, indent=1))
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config as YAML (usable as --config) and exit")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--verbose", action="store_true",
                   help="also show third-party output (always in run_dir/leap.log)")
    p.add_argument("overrides", nargs="*", help=_overrides_help())


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="run (or resume) the LEAP loop from a YAML config and/or overrides",
        description="Run (or resume) the LEAP loop. Example configs per env and scale are in "
                    "examples/configs/,\ne.g. leap-gym train --config examples/configs/webshop.yaml "
                    "training.max_steps=50",
        epilog=format_config_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML config; fields not given keep the defaults listed below")
    _add_run_options(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "demo",
        help="BC + 1 LEAP iteration on generated ALFWorld, SmolLM2-135M student (~30 min, 2-core CPU)",
        description="The demo: the train command with the demo's settings (the defaults below).",
        epilog=format_config_help(DEMO_CONFIG), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_options(p)
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("eval",
                              help="evaluate a run's students on held-out tasks (e.g. real game files)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--iteration", type=int, action="append", help="iteration(s) to evaluate (default: all)")
    p.add_argument("--num-tasks", type=int, default=None,
                   help="how many held-out tasks (default: evaluation.num_test_tasks; every task of a file "
                        "source)")
    p.add_argument("--first-task", type=int, default=0,
                   help="index of the first held-out task; e.g. the run's evaluation.num_test_tasks for "
                        "tasks the run never evaluated")
    p.add_argument("--name", default="test", help="subfolder of run_dir/evals for the results")
    p.add_argument("--per-type", action="store_true", help="also print per-task-type success as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--verbose", action="store_true",
                   help="also show third-party output (always in run_dir/leap.log)")
    p.add_argument("overrides", nargs="*",
                   help="overrides of the run's config (its fields: leap-gym train --help), "
                                                "e.g. env.test_kwargs='{tasks: files, split: valid_seen}'")
    p.set_defaults(func=cmd_eval)
