"""Atomic file writes: a crash or Ctrl-C mid-write never leaves a half-written file in place.

Files are created with the mode ``open()`` would give them (0666 minus the umask), so colleagues sharing a
machine can read a run as they can read any other file of its owner. A process killed mid-write (``kill -9``)
leaves its temporary ``.<name>.<hex>.tmp`` behind; ``remove_stale_temporaries`` clears those when a run
starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# ``.<target name>.<16 hex>.tmp``: the temporaries atomic_open creates, and nothing else.
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new exclusive file beside ``path``; ``os.open`` applies the umask (``mkstemp`` forces 0600)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                           0o666), tmp
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit fsync it and rename it over ``path``.

    If the block raises, ``path`` keeps its previous content and the temporary is removed; if the process
    dies, ``path`` keeps its previous content and the temporary stays until ``remove_stale_temporaries``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports 'w' and 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_stale_temporaries(root: str | os.PathLike) -> list[Path]:
    """Delete the temporaries ``atomic_open`` left under ``root`` (writers killed mid-write); returns them.

    Only call this while no other process writes under ``root``: a live writer's temporary looks the same.
    """
    removed = []
    for p in Path(root).rglob(".*.tmp"):
        if _TEMPORARY.match(p.name) and p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
