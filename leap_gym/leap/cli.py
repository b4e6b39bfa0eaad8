"""``leap-gym train``, ``leap-gym eval`` and ``leap-gym demo`` (heavy imports happen inside the handlers).

Overrides are ``key.sub=value`` pairs or ``--key.sub value`` options with YAML values, applied after the config
file, e.g. ``leap-gym train --config run.yaml training.max_steps=50 --env.kwargs '{tasks: files}'``; ``--help``
lists every config field with its default and doc, ``--print-config`` prints the resolved config as YAML.
Errors in the config (also a changed key when resuming a run) are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

# The embedded demo: generated ALFWorld tasks, the pretrained SmolLM2-135M-Instruct student in the episode prompt
# format (bf16, LoRA on its top 10 layers), the privilege-0.5 expert teacher, BC + 2 LEAP iterations. Sized for a
# 2-core CPU: about 40-45 minutes there (BENCHMARKS.md, "The demo on the pretrained student"), less on a GPU.
DEMO_CONFIG: dict[str, Any] = {
    "run_dir": "runs/demo",
    "seed": 0,
    "iterations": 2,
    "env": {"env_id": "leap/ALFWorld-v0", "num_train_tasks": 100, "max_steps": 20},
    "student": {"model": "smollm2-135m", "batch_size": 40, "max_new_tokens": 48, "snap_to_admissible": True},
    "teacher": {"privilege": 0.5, "demo_privilege": 0.5},
    "rollout": {"tasks_per_iteration": 40},
    "training": {"max_length": 2048, "bc_max_steps": 50, "max_steps": 30, "batch_size": 1, "grad_accum": 4,
                 "bc_learning_rate": 5e-4, "learning_rate": 2e-4, "lora_layers": 10, "bf16": True,
                 "warmup_steps": 3},
    "evaluation": {"num_test_tasks": 40},
}


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
    from leap_gym.leap.config_help import options_to_overrides

    return [argv[0], *options_to_overrides(argv[1:])]


def _resolve(args: argparse.Namespace, base: dict[str, Any] | None):
    """The config of ``train``/``demo``: defaults <- ``base`` <- ``--config`` <- overrides."""
    from leap_gym.leap.config import load_config

    return load_config(getattr(args, "config", None), args.overrides, base=base)


def cmd_train(args: argparse.Namespace) -> int:
    return _train(args, None)


def cmd_demo(args: argparse.Namespace) -> int:
    return _train(args, DEMO_CONFIG)


def _train(args: argparse.Namespace, base: dict[str, Any] | None) -> int:
    from leap_gym.leap.config import ConfigError, dump_config

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
              f"privilege-{cfg.teacher.privilege:g} expert teacher, BC + {cfg.iterations} LEAP iterations; run dir "
              f"{cfg.run_dir} (re-run to resume)", flush=True)
    try:
        return _run_and_print(cfg, args.quiet, args.verbose)
    except ConfigError as e:  # e.g. a resumed run whose config changed
        return _error(e)
    except KeyboardInterrupt:
        print(f"interrupted: re-run the same command to resume {cfg.run_dir} from its last finished stage",
              file=sys.stderr)
        return 130


def _run_and_print(cfg, quiet: bool, verbose: bool = False) -> int:
    from leap_gym.leap.report import results_table
    from leap_gym.leap.run import StageError, run

    t = time.monotonic()
    try:
        rows = run(cfg, progress=not quiet, verbose=verbose)
    except StageError as e:  # the stage is not marked done: a re-run retries it
        print(f"error: {e}", file=sys.stderr)
        return 1
    print()
    print(f"Held-out test tasks ({cfg.env.env_id}, {cfg.env.test_kwargs}):")
    print(results_table(_table_rows(rows)))
    print(f"\nwall time {time.monotonic() - t:.0f} s; report: {Path(cfg.run_dir) / 'report.html'}")
    return 0


def _table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Teacher without privilege first, then the student's iterations, then the privileged teacher."""
    nopriv = [r for r in rows if r.get("key") == "teacher_no_privilege"]
    students = [r for r in rows if r.get("agent") == "student"]
    others = [r for r in rows if r not in nopriv and r not in students]
    return nopriv + students + others


def eval_run(run_dir: str | Path, overrides: list[str] | None = None, *, name: str = "test",
             num_tasks: int | None = None, iterations: list[int] | None = None, quiet: bool = True,
             verbose: bool = False) -> list[dict[str, Any]]:
    """Evaluate a run's trained students on held-out tasks (``env.test_kwargs`` overrides pick e.g. real game
    files); ``num_tasks=None`` uses every task of a file source, else ``evaluation.num_test_tasks``. Results go to
    ``run_dir/evals/<name>/``; library output to ``run_dir/leap.log`` (see ``leap_gym.leap.logs``)."""
    from leap_gym.leap.config import load_config, to_dict
    from leap_gym.leap.logs import LOG_FILE, run_logging

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{run_dir} has no config.yaml (not a leap-gym run)")
    cfg = load_config(None, overrides, base=to_dict(load_config(run_dir / "config.yaml")))
    env = _check_env_kwargs(cfg)  # before anything heavy loads: a bad keyword fails at once
    if num_tasks is None and {**cfg.env.kwargs, **cfg.env.test_kwargs}.get("tasks") == "files":
        num_tasks = getattr(env.unwrapped, "num_tasks", None)
    env.close()
    with run_logging(run_dir / LOG_FILE, verbose=verbose):
        return _eval_run(run_dir, cfg, name, num_tasks, iterations, quiet)


def _check_env_kwargs(cfg: Any) -> Any:
    """The test env made from the config; a keyword the env does not take is a config error naming the key,
    not a traceback."""
    import re

    from leap_gym.leap.config import ConfigError
    from leap_gym.leap.rollout import make_env

    kwargs = {**cfg.env.kwargs, **cfg.env.test_kwargs}
    try:
        return make_env(cfg.env.env_id, kwargs)
    except TypeError as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if bad is None:
            raise
        key = "env.test_kwargs" if bad.group(1) in cfg.env.test_kwargs else "env.kwargs"
        raise ConfigError(f"{key}: {cfg.env.env_id} takes no argument {bad.group(1)!r}") from None


def _eval_run(run_dir: Path, cfg: Any, name: str, num_tasks: int | None, iterations: list[int] | None,
              quiet: bool) -> list[dict[str, Any]]:
    from leap_gym.core import write_jsonl
    from leap_gym.io import atomic_write_json
    from leap_gym.leap.evaluate import summarize
    from leap_gym.leap.rollout import rollout
    from leap_gym.leap.run import (
        make_student,
        max_new_tokens_notice,
        trained_answer_tokens,
        trained_iterations,
    )
    from leap_gym.leap.train import set_threads
    from leap_gym.models import MODEL_SIZES

    kwargs = {**cfg.env.kwargs, **cfg.env.test_kwargs}
    set_threads(cfg.student.num_threads, tiny=cfg.student.model == "tiny")
    iters = [i for i in trained_iterations(run_dir) if iterations is None or i in iterations]
    if not iters:
        raise FileNotFoundError(f"no trained iteration found in {run_dir}")
    notice = max_new_tokens_notice(cfg, trained_answer_tokens(run_dir, max(iters)))
    if notice:
        logging.getLogger(__name__).warning(notice)
    tasks = list(range(num_tasks if num_tasks is not None else cfg.evaluation.num_test_tasks))
    stack = cfg.training.finetune == "lora" and cfg.training.continue_mode == "stack"
    base_model = str(run_dir / "base") if cfg.student.model in MODEL_SIZES else cfg.student.model
    out_dir = run_dir / "evals" / name
    rows = []
    for i in iters:
        train_dir = run_dir / f"iter_{i}" / "train"
        model_dir, adapter = (base_model, str(train_dir / "adapter")) if stack else (str(train_dir / "model"), None)
        student = make_student(cfg, model_dir, adapter, trained_answer_tokens(run_dir, i))
        trajs = rollout(cfg.env.env_id, student, tasks, env_kwargs=kwargs,
                        seed=cfg.seed, max_steps=cfg.env.max_steps, batch_size=cfg.student.batch_size,
                        progress=not quiet, desc=f"eval iter {i}", snap=cfg.student.snap_to_admissible)
        m = {"name": "BC" if i == 0 else f"LEAP iter {i}", "agent": "student", "key": f"iter_{i}",
             "iteration": i, "env_kwargs": kwargs, **summarize(trajs)}
        write_jsonl(out_dir / f"iter_{i}_trajectories.jsonl", trajs)
        atomic_write_json(out_dir / f"iter_{i}.json", m)
        rows.append(m)
    return rows


def cmd_eval(args: argparse.Namespace) -> int:
    _quiet_threads()
    from leap_gym.leap.config import ConfigError
    from leap_gym.leap.report import results_table

    try:
        rows = eval_run(args.run_dir, args.overrides, name=args.name, num_tasks=args.num_tasks,
                        iterations=args.iteration, quiet=args.quiet, verbose=args.verbose)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        return _error(e)
    print(f"{args.run_dir}: {rows[0]['env_kwargs']}, {rows[0]['n']} tasks:")
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
    from leap_gym.leap.config_help import format_config_help

    p = subparsers.add_parser(
        "train", help="run (or resume) the LEAP loop from a YAML config and/or overrides",
        description="Run (or resume) the LEAP loop. Example configs per env and scale are in examples/configs/,\n"
                    "e.g. leap-gym train --config examples/configs/webshop.yaml training.max_steps=50",
        epilog=format_config_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML config; fields not given keep the defaults listed below")
    _add_run_options(p)
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser(
        "demo", help="BC + 2 LEAP iterations on generated ALFWorld with a tiny student (<= 15 min on a 2-core CPU)",
        description="The demo: the train command with the demo's settings (the defaults below).",
        epilog=format_config_help(DEMO_CONFIG), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_run_options(p)
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("eval", help="evaluate a run's students on held-out tasks (e.g. real game files)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--iteration", type=int, action="append", help="iteration(s) to evaluate (default: all)")
    p.add_argument("--num-tasks", type=int, default=None)
    p.add_argument("--name", default="test", help="subfolder of run_dir/evals for the results")
    p.add_argument("--per-type", action="store_true", help="also print per-task-type success as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--verbose", action="store_true",
                   help="also show third-party output (always in run_dir/leap.log)")
    p.add_argument("overrides", nargs="*", help="overrides of the run's config (its fields: leap-gym train --help), "
                                                "e.g. env.test_kwargs='{tasks: files, split: valid_seen}'")
    p.set_defaults(func=cmd_eval)
