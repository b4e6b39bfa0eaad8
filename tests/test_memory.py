"""``release_freed_memory`` hands freed heap pages back to the OS."""

from __future__ import annotations

import ctypes

import pytest

from leap_gym.memory import _malloc_trim, release_freed_memory


def test_release_freed_memory_hands_pages_back():
    """On glibc a freed heap block's pages go back to the OS: resident memory falls after the call."""
    psutil = pytest.importorskip("psutil")
    if _malloc_trim() is None:
        pytest.skip("not glibc")
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 << 10  # below glibc's mmap threshold: these blocks live on the heap
    blocks = [libc.malloc(size) for _ in range(4096)]
    for b in blocks:
        ctypes.memset(b, 1, size)
    for b in blocks[:-1]:  # the last one pins the top of the heap: only trimming inside the heap helps
        libc.free(b)
    proc = psutil.Process()
    before = proc.memory_info().rss
    release_freed_memory()
    after = proc.memory_info().rss
    libc.free(blocks[-1])
    assert before - after > 128 << 20
