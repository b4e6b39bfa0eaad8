"""The worker processes that leap-gym's tools spawn: running a function in a fresh one, and their hygiene."""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

_T = TypeVar("_T")

_PR_SET_PDEATHSIG = 1


class ProcessDied(RuntimeError):
    """A process started by ``in_fresh_process`` ended without an answer."""


def die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies (a no-op elsewhere).

    Why: a spawned worker outlives a parent stopped with ``kill``; the learning benchmark's per-seed worker
    then kept training, holding its run directory (a retry got ``RunInUse``) and the machine's cores. Meant
    as a ``ProcessPoolExecutor`` initializer: it runs in the worker, and must be importable from it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def in_fresh_process(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``fn(*args, **kwargs)`` in a newly spawned Python process; its result (or its exception) comes back
    here, and the process ends (it dies with this one if this one is killed first: ``die_with_parent``).

    Why: a stage that loads a model leaves glibc's heap fragmented after it frees the model, its activations
    and its KV caches, and the next stage in the same process starts from that higher floor; a fresh process
    starts from nothing and hands everything back when it ends. ``fn`` and its arguments must be picklable
    (a module-level function). A process that dies without an answer (killed, out of memory) raises
    ``ProcessDied``."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that has started torch's threads
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=die_with_parent) as pool:
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            raise ProcessDied(f"the process running {fn.__name__} died without an answer (killed, or out "
                               "of memory?)") from None
