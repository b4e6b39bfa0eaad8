"""Game sources: real ALFWorld game files (``json_2.1.1`` layout) and the grammar/domain texts games need.

ALFWorld keeps a trial directory unless its path mentions ``movable`` or ``Sliced``, its task type is not
requested, or its ``game.tw-pddl`` is missing or not marked solvable; paths are sorted for determinism. Every
kept game is checked when the env is built (JSON, PDDL parentheses, grammar blocks), so a corrupt or truncated
file is reported with its path and line then, not by the engine's parser in the middle of a run.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leap_gym.envs.alfworld.engine import alfworld_package_dir
from leap_gym.envs.alfworld.world import TASK_TYPES, Goal

GRAMMARS = ("file", "alfworld")


@dataclass
class Game:
    """A loadable game: the ``game.tw-pddl`` dict plus what the env reports about it."""

    task_id: str
    data: dict[str, Any]
    goal: Goal
    meta: dict[str, Any] = field(default_factory=dict)


def _wheel_file(name: str) -> str:
    return (alfworld_package_dir() / "data" / name).read_text()


@functools.cache
def wheel_grammar() -> str:
    """The alfworld package's TWL2 grammar (``move X to Y``; task text ``UNKNOWN GOAL``)."""
    return _wheel_file("alfred.twl2")


@functools.cache
def legacy_domain() -> str:
    """The PDDL domain of the released game files, rebuilt from the wheel's: Sink cleans too, no ``help``."""
    text = _wheel_file("alfred.pddl")
    text = text.replace(";(receptacleType ?r SinkType)", "(receptacleType ?r SinkType)")
    text, n = re.subn(r"\(:action help\s*:parameters \(\?a - agent\)\s*:precondition\s*\(\)\s*:effect\s*"
                      r"\(and\s*\(checked \?a\)\s*\)\s*\)\s*", "", text)
    if n != 1:
        raise RuntimeError("unexpected alfworld alfred.pddl: cannot derive the legacy domain")
    return text


_TASK_RE = re.compile(r'"rhs": "Your task is to: (.*?)\."')


def task_description(grammar: str) -> str:
    m = _TASK_RE.search(grammar)
    if not m:
        raise ValueError("game grammar has no 'Your task is to: ...' rule")
    return m.group(1)


def with_grammar(data: dict[str, Any], grammar: str) -> dict[str, Any]:
    """``grammar="alfworld"``: keep the file's domain and problem, use the package grammar with the file's
    task."""
    if grammar == "file":
        return data
    if grammar != "alfworld":
        raise ValueError(f"grammar must be one of {GRAMMARS}, got {grammar!r}")
    return {**data, "grammar": wheel_grammar().replace("UNKNOWN GOAL", task_description(data["grammar"]))}


def data_root(data_dir: str | os.PathLike | None) -> Path:
    """``data_dir`` or ``$ALFWORLD_DATA``: the folder holding ``json_2.1.1`` (or ``json_2.1.1`` itself)."""
    root = data_dir if data_dir is not None else os.environ.get("ALFWORLD_DATA")
    if root is None or not str(root).strip():  # an empty value would silently mean the working directory
        what = "data_dir is empty" if data_dir is not None else (
            "$ALFWORLD_DATA is empty" if root is not None else "no data_dir given and $ALFWORLD_DATA is not "
                                                               "set")
        raise ValueError("tasks='files' needs data_dir= (or $ALFWORLD_DATA) pointing at ALFWorld's "
                         f"json_2.1.1 data: {what}")
    root = Path(root).expanduser()
    if (root / "json_2.1.1").is_dir():
        root = root / "json_2.1.1"
    if not root.is_dir():
        raise FileNotFoundError(f"ALFWorld data folder not found: {root}")
    return root


def collect_game_dirs(root: Path, split: str, task_types: tuple[str, ...] = TASK_TYPES) -> list[Path]:
    """ALFWorld's own filter over ``root/<split>``, sorted."""
    base = root / split
    if not base.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(f"no split {split!r} in the ALFWorld data folder {root} (its folders: "
                                f"{have})")
    keep = []
    for dirpath, _, filenames in os.walk(base):
        if "traj_data.json" not in filenames or "movable" in dirpath or "Sliced" in dirpath:
            continue
        d = Path(dirpath)
        game = d / "game.tw-pddl"
        if not game.is_file():
            continue
        traj = _read_json(d / "traj_data.json")
        if traj.get("task_type") not in task_types:
            continue
        data = _read_json(game)
        if not data.get("solvable", False):
            continue
        check_game(game, data)
        keep.append(d)
    return sorted(keep)


_COMMENT = re.compile(r";[^\n]*")
_SYMBOL_REF = re.compile(r'#([^#\s"]+)#')  # a grammar rule's reference to another rule: #look.feedback#


def _unbalanced(pddl: str) -> str | None:
    """What is wrong with a PDDL text's parentheses (with the line), or ``None`` if they balance."""
    text = _COMMENT.sub("", pddl)
    if text.count("(") == text.count(")"):
        return None
    depth, lineno = 0, 1
    for lineno, line in enumerate(text.split("\n"), 1):
        for c in line:
            depth += (c == "(") - (c == ")")
            if depth < 0:
                return f"unmatched ')' at line {lineno}"
    return f"truncated: it ends at line {lineno} with {depth} parentheses open"


def check_game(path: Path, data: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming ``path`` (and the line) if a ``game.tw-pddl`` cannot be loaded as a
    game."""
    for key in ("pddl_domain", "pddl_problem", "grammar"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"corrupt ALFWorld game {path}: missing {key!r}")
    for key in ("pddl_domain", "pddl_problem"):
        problem = _unbalanced(data[key])
        if problem is not None:
            raise ValueError(f"corrupt ALFWorld game {path}: {key} is {problem}")
    grammar = data["grammar"]
    blocks = grammar.split('"""')  # TextWorld grammar: JSON rule sets between triple quotes
    if len(blocks) % 2 == 0:
        raise ValueError(f"corrupt ALFWorld game {path}: grammar is truncated (a \"\"\" block is never "
                         "closed)")
    rules: set[str] = set()
    for block in blocks[1::2]:
        try:
            rules |= set(json.loads(block))
        except json.JSONDecodeError as e:
            line = grammar[: grammar.index(block)].count("\n") + e.lineno
            raise ValueError(f"corrupt ALFWorld game {path}: grammar line {line}: {e.msg}") from None
    for m in _SYMBOL_REF.finditer(grammar):
        if m.group(1) not in rules:
            line = grammar[: m.start()].count("\n") + 1
            raise ValueError(f"corrupt ALFWorld game {path}: grammar line {line} uses the rule "
                             f"{m.group(1)!r}, which is not defined (truncated?)")
    try:
        task_description(data["grammar"])
    except ValueError as e:
        raise ValueError(f"corrupt ALFWorld game {path}: {e}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"corrupt ALFWorld file {path}: {e}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"corrupt ALFWorld file {path}: not UTF-8 at byte {e.start}") from None
    if not isinstance(data, dict):
        raise ValueError(f"corrupt ALFWorld file {path}: expected a JSON object")
    return data


def load_game_dir(d: Path, root: Path, grammar: str = "file") -> Game:
    data = _read_json(d / "game.tw-pddl")
    check_game(d / "game.tw-pddl", data)
    traj = _read_json(d / "traj_data.json")
    params = traj.get("pddl_params", {})
    goal = Goal(task_type=traj["task_type"], object=params.get("object_target", "").lower(),
                receptacle=params.get("parent_target", "").lower(),
                lamp=params.get("toggle_target", "").lower())
    return Game(task_id=str(d.relative_to(root)), data=with_grammar(data, grammar), goal=goal,
                meta={"scene": traj.get("scene", {}).get("scene_num"), "path": str(d)})
