"""The record types shared by envs, students, teachers and the LEAP loop, with versioned JSONL storage.

A ``Trajectory`` is what a student did in one episode; each ``Step`` keeps the observation the action was
taken on, the candidates the env offered, the student's reason and action, and the subset of ``info`` the
teachers need (``leap_gym.info.record_info``: ``info["privileged"]`` included, so corrections can be computed
later without re-running the env). A ``Correction`` is a teacher's verdict on one step.

Files are JSON Lines; every record carries ``"schema_version"`` and ``"kind"`` so future layouts can be read
or rejected with a clear message. Writes are atomic (see ``leap_gym.io``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from leap_gym.io import atomic_open

SCHEMA_VERSION = 1


class RecordError(ValueError):
    """A JSONL record that cannot be read, with the file, line number and offending field."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None,
                 field_name: str | None = None):
        self.path, self.line, self.field = path, line, field_name
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field_name is not None:
            where.append(f"field {field_name!r}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


@dataclass
class Step:
    """One decision of an agent: the observation it saw and what it did about it."""

    observation: str
    action: str
    admissible_actions: list[str] | None = None
    reason: str = ""
    reward: float = 0.0
    action_valid: bool = True
    info: dict[str, Any] = field(default_factory=dict)  # decision-time info subset, "privileged" included
    raw_output: str = ""  # the model's unparsed text, kept for debugging and DPO "rejected" targets


@dataclass
class Trajectory:
    """One episode of one agent on one task."""

    env_id: str
    task_id: str
    task: str
    steps: list[Step] = field(default_factory=list)
    seed: int | None = None
    won: bool = False
    score: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class Correction:
    """A teacher's answer for one student step, computed for the state the student actually reached."""

    step_index: int
    reason: str
    action: str
    was_corrected: bool
    metadata: dict[str, Any] = field(default_factory=dict)


_KINDS: dict[str, type] = {"step": Step, "trajectory": Trajectory, "correction": Correction}
_T = TypeVar("_T", Step, Trajectory, Correction)


def to_record(obj: Step | Trajectory | Correction) -> dict[str, Any]:
    """A JSON-ready dict with ``kind`` and ``schema_version``."""
    kind = {v: k for k, v in _KINDS.items()}[type(obj)]
    return {"kind": kind, "schema_version": SCHEMA_VERSION, **dataclasses.asdict(obj)}


def _build(cls: type[_T], data: Any, path, line: int, prefix: str = "") -> _T:
    if not isinstance(data, dict):
        raise RecordError(f"expected a JSON object, got {type(data).__name__}", path, line, prefix or None)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for name in required:
        if name not in data:
            raise RecordError("missing required field", path, line, prefix + name)
    unknown = set(data) - set(fields)
    if unknown:
        raise RecordError(f"unknown field(s) {sorted(unknown)}", path, line, prefix + sorted(unknown)[0])
    kwargs = dict(data)
    if cls is Trajectory:
        steps = kwargs.get("steps", [])
        if not isinstance(steps, list):
            raise RecordError("must be a list", path, line, prefix + "steps")
        kwargs["steps"] = [_build(Step, s, path, line, f"{prefix}steps[{i}].") for i, s in enumerate(steps)]
    _check_types(cls, kwargs, path, line, prefix)
    return cls(**kwargs)


_EXPECTED: dict[str, tuple[type, ...]] = {
    "observation": (str,), "action": (str,), "reason": (str,), "raw_output": (str,), "env_id": (str,),
    "task_id": (str,), "task": (str,), "reward": (int, float), "score": (int, float),
    "action_valid": (bool,), "won": (bool,), "was_corrected": (bool,), "step_index": (int,),
    "info": (dict,), "metadata": (dict,), "admissible_actions": (list, type(None)), "seed": (int, type(None)),
}


def _check_types(cls, kwargs: dict, path, line: int, prefix: str) -> None:
    for name, value in kwargs.items():
        expected = _EXPECTED.get(name)
        if expected is None:
            continue
        if isinstance(value, bool) and bool not in expected:
            raise RecordError(f"expected {expected[0].__name__}, got bool", path, line, prefix + name)
        if not isinstance(value, expected):
            raise RecordError(f"expected {' or '.join(t.__name__ for t in expected)}, got "
                              f"{type(value).__name__}",
                              path, line, prefix + name)


def from_record(data: Any, expected: type[_T] | None = None, path=None, line: int | None = None) -> _T:
    """Rebuild a record; errors name the line and field."""
    if not isinstance(data, dict):
        raise RecordError(f"expected a JSON object, got {type(data).__name__}", path, line)
    version = data.get("schema_version")
    if version is None:
        raise RecordError("missing required field", path, line, "schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(f"unsupported schema_version {version!r} (this leap-gym reads {SCHEMA_VERSION})",
                          path, line, "schema_version")
    kind = data.get("kind")
    if kind not in _KINDS:
        raise RecordError(f"unknown kind {kind!r} (expected one of {sorted(_KINDS)})", path, line, "kind")
    cls = _KINDS[kind]
    if expected is not None and cls is not expected:
        raise RecordError(f"expected a {expected.__name__} record, got {kind!r}", path, line, "kind")
    body = {k: v for k, v in data.items() if k not in ("kind", "schema_version")}
    return _build(cls, body, path, line or 0)


def write_jsonl(path: str | os.PathLike, records: Iterable[Step | Trajectory | Correction | dict]) -> int:
    """Atomically write records (dataclasses or plain dicts) as JSON Lines; returns the count."""
    n = 0
    with atomic_open(path, "w") as f:
        for rec in records:
            payload = rec if isinstance(rec, dict) else to_record(rec)
            f.write(json.dumps(payload, ensure_ascii=False) + "\n")
            n += 1
    return n


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_json)``; a malformed or truncated line raises ``RecordError`` naming
    it."""
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw)
            except json.JSONDecodeError as e:
                hint = " (truncated file?)" if not raw.endswith("\n") else ""
                raise RecordError(f"invalid JSON: {e.msg} at column {e.colno}{hint}", path, lineno) from None


def read_jsonl(path: str | os.PathLike, expected: type[_T] | None = None) -> list[_T]:
    """Read typed records written by ``write_jsonl``."""
    return [from_record(obj, expected, path, lineno) for lineno, obj in iter_jsonl(path)]


def read_trajectories(path: str | os.PathLike) -> list[Trajectory]:
    return read_jsonl(path, Trajectory)
