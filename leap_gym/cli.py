"""The ``leap-gym`` command line.

Subcommands: ``envs`` (list registered envs) and ``play`` (play an env in the terminal). Later parts of the
library add theirs through ``_SUBCOMMANDS``; heavy imports happen inside each handler so ``leap-gym envs`` stays
instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

import yaml


def parse_kv(pairs: list[str]) -> dict[str, Any]:
    """``["tasks=files", "max_episode_steps=30"]`` -> ``{"tasks": "files", "max_episode_steps": 30}`` (YAML values)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"error: expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out


def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import leap_gym

    for env_id in leap_gym.list_envs():
        spec = gym.spec(env_id)
        print(f"{env_id:<24} max_episode_steps={spec.max_episode_steps:<4} {spec.entry_point}")
    return 0


_PLAY_HELP = """commands: type an action, a number to pick that admissible action,
  :actions  list admissible actions    :privileged  show the privileged state (teacher's view)
  :reset    new episode                :quit        leave"""


def play(env_id: str, env_kwargs: dict[str, Any], seed: int | None, task_index: int | None,
         stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    """Interactive loop; reads commands line by line so it works with a terminal and with piped stdin."""
    import gymnasium as gym

    import leap_gym  # noqa: F401  (registers the envs)

    def out(text: str = "") -> None:
        print(text, file=stdout, flush=True)

    env = gym.make(env_id, **env_kwargs)
    options = {"task_index": task_index} if task_index is not None else None
    try:
        obs, info = env.reset(seed=seed, options=options)
        out(f"== {env_id}  task {info.get('task_id', '?')}")
        out(_PLAY_HELP)
        out(obs)
        total = 0.0
        while True:
            stdout.write("> ")
            stdout.flush()
            line = stdin.readline()
            if not line:
                out("\n(end of input)")
                return 0
            cmd = line.strip()
            if not cmd:
                continue
            if cmd == ":quit":
                return 0
            if cmd == ":privileged":
                out(json.dumps(info.get("privileged", {}), indent=2, ensure_ascii=False))
                continue
            if cmd == ":actions":
                acts = info.get("admissible_actions")
                out("(free text: any command)" if acts is None else
                    "\n".join(f"{i:3d}. {a}" for i, a in enumerate(acts)))
                continue
            if cmd == ":reset":
                obs, info = env.reset(options=options)
                total = 0.0
                out(obs)
                continue
            acts = info.get("admissible_actions")
            if cmd.isdigit() and acts is not None and int(cmd) < len(acts):
                cmd = acts[int(cmd)]
                out(f"({cmd})")
            obs, reward, terminated, truncated, info = env.step(cmd)
            total += float(reward)
            out(obs)
            if not info.get("action_valid", True):
                out("(the env did not accept that action)")
            if terminated or truncated:
                out(f"== episode over: won={info.get('won')} score={info.get('score')} "
                    f"return={total:g} ({'terminated' if terminated else 'truncated'})")
                out("type :reset for a new episode or :quit")
    finally:
        env.close()


def cmd_play(args: argparse.Namespace) -> int:
    import gymnasium as gym

    try:
        gym.spec(args.env_id)
    except gym.error.Error as e:  # Gymnasium's own "did you mean" message
        print(f"error: {e}", file=sys.stderr)
        return 2
    return play(args.env_id, parse_kv(args.kw), args.seed, args.task_index)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leap-gym", description="leap-gym: benchmark envs with privileged state, teachers, students and the LEAP loop.")
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
    import importlib

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
