"""``leap-gym play``: play an environment in the terminal, as the student would (and peek at what the teacher
sees).

At a terminal, input goes through ``readline``: history (kept across sessions in
``$XDG_STATE_HOME/leap-gym/play_history``) and tab completion of the admissible actions and the ``:``
commands. Piped input is read line by line, so a script of commands plays an episode too. Text is wrapped at
word boundaries to the terminal width. Only the standard library is imported here; the env loads when play
starts.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import gymnasium as gym

HELP = """type an action, or the number N of an admissible action (`N words` fills its <placeholder>)
  :actions   admissible actions       :privileged [full|KEY]  the teacher's view
  :reset     new episode              :help                   this text
  :quit      leave                    Tab completes actions and commands"""
COMMANDS = [":actions", ":privileged", ":privileged full", ":reset", ":help", ":quit"]
_PLACEHOLDER = re.compile(r"<([^<>\[\]]+)>")


def wrap(text: str, width: int) -> str:
    """``text`` with each line wrapped at word boundaries to ``width``; continuations keep the line's
    indent."""
    out = []
    for line in str(text).splitlines() or [""]:
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        out.append(textwrap.fill(line.strip(), width, initial_indent=indent, subsequent_indent=indent,
                                 break_long_words=False, break_on_hyphens=False))
    return "\n".join(out)


def columns(items: Sequence[str], width: int) -> str:
    """Numbered ``items`` in as many columns as fit in ``width``, filled top to bottom like ``ls``."""
    if not items:
        return "(no admissible actions)"
    num = len(str(len(items) - 1))
    cells = [f"{i:>{num}}. {a}" for i, a in enumerate(items)]
    cell = max(len(c) for c in cells) + 2
    ncols = max(1, min(len(cells), (width + 2) // cell))
    nrows = math.ceil(len(cells) / ncols)
    rows = []
    for r in range(nrows):
        row = [cells[i] for i in range(r, len(cells), nrows)]
        rows.append("".join(c.ljust(cell) for c in row[:-1]) + row[-1])
    return "\n".join(rows)


def _short(value: Any, room: int) -> str:
    """One line of at most ``room`` characters saying what ``value`` holds."""
    if isinstance(value, dict):
        text = f"{{{len(value)}}} " + ", ".join(f"{k}: {_short(v, room)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = f"[{len(value)}] " + ", ".join(_short(v, room) for v in value)
    elif isinstance(value, str):
        text = " ".join(value.split()) or '""'
    else:
        text = json.dumps(value)
    text = text.rstrip()
    return text if len(text) <= room else text[:max(1, room - 3)] + "..."


def summarize(privileged: dict[str, Any], width: int) -> str:
    """A line per key of the privileged state: scalars in full, containers by size and first entries."""
    if not privileged:
        return "(no privileged state)"
    pad = max(len(k) for k in privileged) + 2
    lines = [f"{k:<{pad}}{_short(v, max(10, width - pad))}" for k, v in privileged.items()]
    return "\n".join(lines) + "\n(:privileged full for the JSON, :privileged KEY for one entry)"


class Console:
    """Line input with readline (history, completion) at a terminal, plain ``readline()`` on piped input."""

    def __init__(self, stdin: TextIO, stdout: TextIO, candidates: Callable[[], Sequence[str]]):
        self.stdin, self.stdout, self.candidates = stdin, stdout, candidates
        self.readline: Any = None
        self.history: Path | None = None
        if stdin is sys.stdin and stdout is sys.stdout and stdin.isatty() and stdout.isatty():
            try:  # only at a terminal: loading readline changes how input() reads lines
                import readline
            except ImportError:  # Python built without readline: plain input() still works
                return
            self.readline = readline
            readline.set_completer(self.complete)
            readline.set_completer_delims("")  # complete the whole line: actions contain spaces
            binding = "bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete"
            readline.parse_and_bind(binding)
            state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
            self.history = state / "leap-gym" / "play_history"
            try:
                readline.read_history_file(self.history)
            except OSError:  # first session, or an unreadable file: start with an empty history
                pass

    def complete(self, text: str, state: int) -> str | None:
        """readline completer: admissible actions (and ``:`` commands) that start with the typed text."""
        pool = COMMANDS if text.startswith(":") else list(self.candidates())
        matches = [c for c in pool if c.startswith(text)]
        return matches[state] if state < len(matches) else None

    def input(self, prompt: str) -> str | None:
        """The next line without its newline; ``None`` at end of input."""
        if self.readline is not None:
            try:
                return input(prompt)
            except EOFError:
                return None
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        return None if not line else line.rstrip("\n")

    def close(self) -> None:
        if self.readline is not None and self.history is not None:
            try:
                self.history.parent.mkdir(parents=True, exist_ok=True)
                self.readline.set_history_length(1000)
                self.readline.write_history_file(self.history)
            except OSError:  # a read-only home loses the history, not the session
                pass


def play(env_id: str, env_kwargs: dict[str, Any], seed: int | None, task_index: int | None,
         stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, width: int | None = None) -> int:
    """Interactive loop; returns the exit status (0, or 130 after Ctrl-C)."""
    width = width or max(40, shutil.get_terminal_size((100, 24)).columns - 1)

    def out(text: str = "") -> None:
        print(wrap(text, width), file=stdout, flush=True)

    info: dict[str, Any] = {}
    console = Console(stdin, stdout, lambda: info.get("admissible_actions") or [])
    env = None
    try:
        env = gym.make(env_id, **env_kwargs)
        max_steps = getattr(env.spec, "max_episode_steps", None)
        options = {"task_index": task_index} if task_index is not None else None
        obs, info = env.reset(seed=seed, options=options)
        out(f"== {env_id}  task {info.get('task_id', '?')}")
        out(HELP)
        out(obs)
        step, total, over = 0, 0.0, False
        while True:
            line = console.input("[episode over] > " if over else
                                 f"[step {step + 1}{f'/{max_steps}' if max_steps else ''}] > ")
            if line is None:
                out("\n(end of input)")
                return 0
            cmd = line.strip()
            if not cmd:
                continue
            if cmd == ":quit":
                return 0
            if cmd == ":help":
                out(HELP)
                continue
            if cmd.split()[0] == ":privileged":
                args = cmd.split(maxsplit=1)[1:]
                text = _privileged(info.get("privileged") or {}, args, width)
                print(text if args else wrap(text, width), file=stdout, flush=True)  # JSON stays valid JSON
                continue
            if cmd == ":actions":
                acts = info.get("admissible_actions")
                print("(free text: any command)" if acts is None else columns(acts, width), file=stdout,
                      flush=True)
                continue
            if cmd == ":reset":
                obs, info = env.reset(options=options)
                step, total, over = 0, 0.0, False
                out(f"== new episode  task {info.get('task_id', '?')}")
                out(obs)
                continue
            if cmd.startswith(":"):
                out(f"unknown command {cmd.split()[0]}; :help lists the commands")
                continue
            if over:
                out("the episode is over: :reset starts a new one, :quit leaves")
                continue
            action = _action(cmd, info.get("admissible_actions"), console, out)
            if action is None:
                continue
            obs, reward, terminated, truncated, info = env.step(action)
            step, total = step + 1, total + float(reward)
            out(obs)
            if not info.get("action_valid", True):
                out("(the env did not accept that action)")
            if terminated or truncated:
                over = True
                out(f"== episode over after {step} steps: won={info.get('won')} score={info.get('score')} "
                    f"return={total:g} ({'terminated' if terminated else 'truncated'})")
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        console.close()
        if env is not None:
            env.close()


def _privileged(privileged: dict[str, Any], args: list[str], width: int) -> str:
    if not args:
        return summarize(privileged, width)
    if args[0] == "full":
        return json.dumps(privileged, indent=2, ensure_ascii=False, default=str)
    if args[0] in privileged:
        return json.dumps(privileged[args[0]], indent=2, ensure_ascii=False, default=str)
    return f"no key {args[0]!r}; keys: {', '.join(privileged) or '(none)'}"


def _action(cmd: str, acts: Sequence[str] | None, console: Console, out: Callable[[str], None]) -> str | None:
    """What to send for ``cmd``: a number picks an admissible action; a ``<placeholder>`` in it is filled from
    the rest of the line (``0 red lipstick``) or asked for, never sent literally. ``None``: send nothing."""
    number, _, rest = cmd.partition(" ")
    if acts is not None and number.isdigit():
        if int(number) >= len(acts):
            out(f"no action {number}: there are {len(acts)} (:actions lists them)")
            return None
        cmd = acts[int(number)]
    elif acts is None or cmd not in acts:
        return cmd  # free text goes to the env as typed
    else:
        rest = ""
    slot = _PLACEHOLDER.search(cmd)
    if slot is None:
        if number.isdigit():
            out(f"({cmd})")
        return cmd
    value = rest.strip() or (console.input(f"{slot.group(1)} (empty to cancel): ") or "").strip()
    if not value or value.startswith(":"):
        out("(cancelled)")
        return None
    cmd = cmd[:slot.start()] + value + cmd[slot.end():]
    out(f"({cmd})")
    return cmd
