"""The ``leap-gym`` command line.

Subcommands: ``envs`` (list registered envs) and ``play`` (play an env in the terminal). Later parts of the
library add theirs through ``_SUBCOMMAND_MODULES``; those keep heavy imports inside their handlers so
``leap-gym envs`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import yaml

import leap_gym
from leap_gym.play import play


def parse_kv(pairs: list[str]) -> dict[str, Any]:
    """``["tasks=files", "max_episode_steps=30"]`` -> ``{"tasks": "files", "max_episode_steps": 30}`` (YAML
    values)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"error: expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out


def cmd_envs(args: argparse.Namespace) -> int:
    for env_id in leap_gym.list_envs():
        spec = gym.spec(env_id)
        print(f"{env_id:<24} max_episode_steps={spec.max_episode_steps:<4} {spec.entry_point}")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    try:
        gym.spec(args.env_id)
    except gym.error.Error as e:  # Gymnasium's own "did you mean" message
        print(f"error: {e}", file=sys.stderr)
        return 2
    return play(args.env_id, parse_kv(args.kw), args.seed, args.task_index)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leap-gym",
                                     description="leap-gym: benchmark envs with privileged state, teachers, "
                                                 "students and the LEAP loop.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("envs", help="list the registered environments")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("play", help="play an environment in the terminal")
    p.add_argument("env_id")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task-index", type=int, default=None)
    p.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE",
                   help="keyword argument for gym.make (YAML value), repeatable")
    p.set_defaults(func=cmd_play)

    for register in _SUBCOMMANDS:
        register(sub)
    return parser


def _subcommand_modules() -> list[Any]:
    return [importlib.import_module(module) for module in _SUBCOMMAND_MODULES]


def _extra_subcommands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands contributed by other modules; each module exposes ``add_subcommand(subparsers)`` and may
    expose ``rewrite_argv(argv)`` (e.g. ``--key.sub value`` config options into overrides)."""
    return [module.add_subcommand for module in _subcommand_modules()]


# Modules that add subcommands; each must import cheaply (heavy imports go inside their handlers).
_SUBCOMMAND_MODULES: list[str] = ["leap_gym.leap.cli", "leap_gym.bench_cli", "leap_gym.agents.serve",
                                   "leap_gym.envs.intercode_bash.cli"]
_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 on success, 2 on bad input (one line on stderr), 130 on Ctrl-C."""
    try:
        _SUBCOMMANDS[:] = _extra_subcommands()
        argv = list(sys.argv[1:] if argv is None else argv)
        for module in _subcommand_modules():
            argv = getattr(module, "rewrite_argv", lambda a: a)(argv)
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        # key=value overrides after an option (argparse stops a positional list at the first option)
        if extra and hasattr(args, "overrides") and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides = [*args.overrides, *extra]
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
