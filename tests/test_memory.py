"""``release_freed_memory`` hands freed heap pages back to the OS; ``PeakRSS`` measures a stage's peak."""

from __future__ import annotations

import ctypes
import sys
import time

import pytest

from leap_gym.memory import PeakRSS, _malloc_trim, release_freed_memory


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


@pytest.mark.skipif(sys.platform != "linux", reason="sampled from /proc")
def test_peak_rss_reports_each_intervals_own_peak():
    """A short-lived 300 MB block shows in the interval it lived in, not in the next one."""
    with PeakRSS(interval_s=0.01) as rss:
        start = rss.take()
        block = bytearray(300 << 20)  # zero-filled: its pages are touched
        time.sleep(0.2)
        del block
        first = rss.take()
        time.sleep(0.05)
        second = rss.take()
    assert first - start > 250
    assert second < first - 250
    assert rss.take() is None  # outside the block nothing is measured
