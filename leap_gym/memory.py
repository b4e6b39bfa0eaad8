"""Handing freed heap memory back to the OS.

Why: acting frees a batch's KV buffers every step and allocates slightly larger ones, and training frees and
reallocates activations of rows of varying lengths; glibc keeps freed heap blocks, so a long run's resident
memory kept rising with them. Measured on a 40-env ALFWorld evaluation of SmolLM2-135M (bf16, chats up to
~1,900 tokens): peak RSS 4.8 -> 4.3 GB, no slower (a few milliseconds a step).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_freed_memory() -> None:
    """Hand the heap's freed pages back to the OS (glibc's ``malloc_trim``; nothing elsewhere)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
