"""Process hygiene for the worker processes that leap-gym's tools spawn."""

from __future__ import annotations

import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies (a no-op elsewhere).

    Why: a spawned worker outlives a parent stopped with ``kill``; the learning benchmark's per-seed worker
    then kept training, holding its run directory (a retry got ``RunInUse``) and the machine's cores. Meant
    as a ``ProcessPoolExecutor`` initializer: it runs in the worker, and must be importable from it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
