"""Where a run's output goes: the library's own lines and one progress display per stage on the console;
everything else (third-party logs and warnings, the trainer's per-step metrics) in the run's ``leap.log``.

``run_logging`` holds this arrangement for the length of a run and restores the process's logging afterwards,
so a notebook that calls ``run()`` keeps its own settings. ``verbose=True`` shows the third-party output on
the console too (it still goes to the file).
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

# transformers, datasets, torch and tqdm (the train extra) are imported inside the functions that use them, so
# the library runs without them.

logger = logging.getLogger("leap_gym")

# Libraries that print through handlers of their own (or pass records on only when asked): their records are
# sent through the root logger for the length of a run, so they land in the log file instead of the console.
_LIBRARY_LOGGERS = ("transformers", "datasets", "trl", "peft", "accelerate", "bitsandbytes",
                    "huggingface_hub", "torch")


class _ConsoleFilter(logging.Filter):
    """The library's own INFO+ lines; with ``verbose`` everything the file gets."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return True
        return record.name.startswith("leap_gym") and record.levelno >= logging.INFO


def interactive() -> bool:
    """A terminal or a notebook, where a redrawn progress bar reads well; a log file gets lines instead."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


@contextmanager
def run_logging(log_path: str | Path, *, verbose: bool = False, console: bool = True) -> Iterator[None]:
    """Route this process's logging for one run (see the module doc); ``console=False`` keeps the console
    handler off (a caller that collects the library's lines itself)."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    # the process id: a pretrained student's training, rollouts and evaluations run in processes of their own
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: "
                                                "%(message)s"))
    handlers: list[logging.Handler] = [file_handler]
    if console:
        console_handler = logging.StreamHandler(sys.stderr)
        console_handler.setFormatter(logging.Formatter("%(message)s"))
        console_handler.addFilter(_ConsoleFilter(verbose))
        handlers.append(console_handler)
    blocked_bnb = _block_bitsandbytes_off_cuda()
    bars = _library_bars(verbose)  # imports transformers and datasets, which install their handlers
    saved_root = (root.level, list(root.handlers))
    saved_lib = {name: _detach(name) for name in _LIBRARY_LOGGERS}
    saved_level, saved_propagate = logger.level, logger.propagate
    root.handlers = handlers
    root.setLevel(logging.INFO)
    logger.setLevel(logging.DEBUG)
    logger.propagate = True
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # each distinct warning once, into the log file
            yield
    finally:
        logging.captureWarnings(False)
        root.handlers, root.level = saved_root[1], saved_root[0]
        logger.setLevel(saved_level)
        logger.propagate = saved_propagate
        for name, state in saved_lib.items():
            _reattach(name, state)
        _library_bars(bars)
        if blocked_bnb:
            sys.modules.pop("bitsandbytes", None)
        file_handler.close()


def _detach(name: str) -> tuple[list[logging.Handler], bool]:
    lg = logging.getLogger(name)
    state = (list(lg.handlers), lg.propagate)
    lg.handlers = []
    lg.propagate = True
    return state


def _reattach(name: str, state: tuple[list[logging.Handler], bool]) -> None:
    lg = logging.getLogger(name)
    lg.handlers, lg.propagate = state


def _library_bars(enabled: bool | dict[str, bool]) -> dict[str, bool]:
    """Turn the loading/tokenising bars of transformers and datasets on or off (or back to a saved state);
    returns what they were."""
    try:  # the train extra; without it there are no such bars
        import datasets
        from transformers.utils import logging as hf_logging
    except ImportError:
        return {}
    hf_logging.get_logger()  # transformers installs its console handler on first use: install it now
    was = {"transformers": hf_logging.is_progress_bar_enabled(),
           "datasets": datasets.is_progress_bar_enabled()}
    want = enabled if isinstance(enabled, dict) else dict.fromkeys(was, enabled)
    (hf_logging.enable_progress_bar if want["transformers"] else hf_logging.disable_progress_bar)()
    (datasets.enable_progress_bars if want["datasets"] else datasets.disable_progress_bars)()
    return was


def _block_bitsandbytes_off_cuda() -> bool:
    """Off CUDA nothing is quantised (``leap_gym.leap.train``), yet peft and transformers import bitsandbytes
    whenever it is installed, and its CPU backend then tries to fetch a kernel from the Hub and warns. A
    ``None`` entry in ``sys.modules`` makes ``importlib.util.find_spec`` report the package absent for the
    run."""
    if "bitsandbytes" in sys.modules:
        return False
    try:
        import torch
    except ImportError:  # no torch, no bitsandbytes either
        return False

    if torch.cuda.is_available():
        return False
    sys.modules["bitsandbytes"] = None  # type: ignore[assignment]
    return True


class _LineProgress:
    """A stage's progress as a few log lines for a console that is not a terminal: one at each quarter, once
    the stage has run ``quiet_s`` seconds (a short stage is reported by its result line alone)."""

    quiet_s = 10.0

    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit = max(0, int(total)), desc, unit
        self.n, self.postfix, self.t0, self.quarters = 0, "", time.monotonic(), 0

    def update(self, n: int = 1) -> None:
        self.n += n
        quarters = min(3, 4 * self.n // self.total) if self.total else 0
        if quarters <= self.quarters:
            return
        self.quarters = quarters
        elapsed = time.monotonic() - self.t0
        if elapsed < self.quiet_s:
            return
        left = elapsed * (self.total - self.n) / max(self.n, 1)
        extra = f", {self.postfix}" if self.postfix else ""
        logger.info(f"  {self.desc}: {self.n}/{self.total} {self.unit} ({elapsed:.0f}s, ~{left:.0f}s "
                    f"left{extra})")

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def close(self) -> None:
        pass


class _NoProgress(_LineProgress):
    def update(self, n: int = 1) -> None:
        pass


def progress(total: int, desc: str, unit: str = "ep", enabled: bool = True) -> Any:
    """One progress display for a stage: a tqdm bar on a terminal or in a notebook, otherwise a line at each
    quarter (a log file then holds a few lines per stage, not thousands of carriage-return redraws)."""
    if not enabled:
        return _NoProgress(total, desc, unit)
    if interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr)
    return _LineProgress(total, desc, unit)


def quiet_trainer(trainer: Any, enabled: bool = True, desc: str = "train") -> None:
    """Replace the trainer's own progress bar and its printing of every log dict (to stdout) by one progress
    display with the loss and time left; the log dicts go to the log file."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    class _TrainProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Any = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = progress(state.max_steps, desc, "step", enabled)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - getattr(self.bar, "n", 0))

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = {k: v for k, v in (logs or {}).items() if k != "total_flos"}
            logging.getLogger("leap_gym.leap.train").debug(f"step {state.global_step}: {logs}")
            if self.bar is not None and "loss" in logs:
                self.bar.set_postfix_str(f"loss {float(logs['loss']):.3f}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    for cb in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(cb)
    with suppress(ImportError):
        from transformers.utils.notebook import NotebookProgressCallback

        trainer.remove_callback(NotebookProgressCallback)
    trainer.add_callback(_TrainProgress())
