"""Where a run's output goes: the library's lines on the console, everything in the log file, the process's
logging restored afterwards, quarter lines instead of bars off a terminal, no bitsandbytes off CUDA."""

from __future__ import annotations

import importlib.util
import logging
import warnings

import pytest

from leap_gym.leap import logs
from leap_gym.leap.logs import progress, run_logging


def _emit() -> None:
    logging.getLogger("leap_gym.leap.run").info("our line")
    logging.getLogger("leap_gym.leap.train").debug("step 10: {'loss': 1.0}")
    logging.getLogger("transformers.modeling_utils").warning("library chatter")
    warnings.warn("a future warning", FutureWarning, stacklevel=1)


def test_console_gets_our_lines_and_the_file_everything(tmp_path, capsys):
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger()  # transformers' own console handler, installed on first use
    root = logging.getLogger()
    before = (list(root.handlers), root.level, list(logging.getLogger("transformers").handlers))
    with run_logging(tmp_path / "leap.log"):
        _emit()
    err = capsys.readouterr().err
    assert err.strip() == "our line"
    log = (tmp_path / "leap.log").read_text()
    for text in ("our line", "{'loss': 1.0}", "library chatter", "a future warning"):
        assert text in log
    assert (list(root.handlers), root.level, list(logging.getLogger("transformers").handlers)) == before


def test_verbose_shows_the_rest(tmp_path, capsys):
    with run_logging(tmp_path / "leap.log", verbose=True):
        _emit()
    err = capsys.readouterr().err
    for text in ("our line", "{'loss': 1.0}", "library chatter", "a future warning"):
        assert text in err


def test_no_console_when_the_caller_collects_the_lines(tmp_path, capsys):
    with run_logging(tmp_path / "leap.log", console=False):
        _emit()
    assert capsys.readouterr().err == ""
    assert "our line" in (tmp_path / "leap.log").read_text()


def test_line_progress_off_a_terminal(tmp_path, capsys, monkeypatch):
    """stderr is captured (not a terminal): a stage reports at most three quarter lines, none when short."""
    monkeypatch.setattr(logs._LineProgress, "quiet_s", 0.0)
    with run_logging(tmp_path / "leap.log"):
        bar = progress(100, "rollout iter 1")
        for _ in range(100):
            bar.update(1)
        bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0].strip() for line in lines] == [
        "rollout iter 1: 25/100 ep", "rollout iter 1: 50/100 ep", "rollout iter 1: 75/100 ep"]
    assert "\r" not in "".join(lines)


def test_short_stage_and_disabled_progress_print_nothing(tmp_path, capsys):
    with run_logging(tmp_path / "leap.log"):
        for bar in (progress(4, "fast"), progress(4, "off", enabled=False)):
            for _ in range(4):
                bar.update(1)
            bar.close()
    assert capsys.readouterr().err == ""


def test_bitsandbytes_is_not_imported_off_cuda(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available() or importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("needs bitsandbytes installed and no CUDA")
    import sys

    if "bitsandbytes" in sys.modules:
        pytest.skip("bitsandbytes already imported in this process")
    with run_logging(tmp_path / "leap.log"):
        assert importlib.util.find_spec("bitsandbytes") is None
        from peft.import_utils import is_bnb_available

        is_bnb_available.cache_clear()
        assert not is_bnb_available()
    assert importlib.util.find_spec("bitsandbytes") is not None  # restored for the rest of the process
    is_bnb_available.cache_clear()
