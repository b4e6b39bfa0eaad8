"""The worker processes that leap-gym's tools spawn: running a function in a fresh one, and their hygiene."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

_PR_SET_PDEATHSIG = 1
_UNWIND_S = 30  # how long an interrupted child may take to unwind before it is killed


class ProcessDied(RuntimeError):
    """A process started by ``in_fresh_process`` ended without an answer."""


def die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies (a no-op elsewhere).

    Why: a spawned worker outlives a parent stopped with ``kill``; the learning benchmark's per-seed worker
    then kept training, holding its run directory (a retry got ``RunInUse``) and the machine's cores. It
    runs in the worker: first thing in ``in_fresh_process``'s, or as a ``ProcessPoolExecutor`` initializer."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def in_fresh_process(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``fn(*args, **kwargs)`` in a newly spawned Python process; its result (or its exception, with the
    process's traceback as the cause) comes back here, and the process ends. It dies with this one
    (``die_with_parent``), and is interrupted too when this one is interrupted while waiting for it.

    Why: a stage that loads a model leaves glibc's heap fragmented after it frees the model, its activations
    and its KV caches, and the next stage in the same process starts from that higher floor; a fresh process
    starts from nothing and hands everything back when it ends. ``fn`` and its arguments must be picklable
    (a module-level function). A process that dies without an answer (killed, out of memory) raises
    ``ProcessDied`` with its exit status."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process that has started torch's threads
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_answer, args=(send, fn, args, kwargs), name=f"leap-gym {fn.__name__}")
    proc.start()
    send.close()  # this end belongs to the child now: its death then reads as EOF here
    try:
        try:
            ok, value, trace = receive.recv()
        except EOFError:
            proc.join()
            raise ProcessDied(f"the process running {fn.__name__} died without an answer (exit status "
                              f"{proc.exitcode}: killed, or out of memory?)") from None
        proc.join()
    except BaseException:  # interrupted (Ctrl-C, a signal sent to this process alone): the child goes too
        if proc.is_alive():
            # as Ctrl-C would: it unwinds and exits, releasing what it registered (SIGTERM left its semaphores
            # to the resource tracker, which then warned on the console)
            os.kill(proc.pid, signal.SIGINT)
            proc.join(_UNWIND_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        raise
    finally:
        receive.close()
    if ok:
        return value
    raise value from _RemoteTraceback(trace)


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in the process ``in_fresh_process`` started."""

    def __str__(self) -> str:
        return self.args[0]


def _answer(send: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The child's side of ``in_fresh_process``: ``(ok, result or exception, traceback text)``."""
    die_with_parent()
    try:
        answer = (True, fn(*args, **kwargs), "")
    except BaseException as e:  # KeyboardInterrupt too: the parent decides
        answer = (False, e, traceback.format_exc())
    try:
        send.send(answer)
    except Exception as e:  # an exception that does not pickle: its text still comes back
        send.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({e})"), answer[2]))
    send.close()
