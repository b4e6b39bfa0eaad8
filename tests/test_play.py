"""``leap-gym play``: piped stdin, a real pseudo-terminal (readline history and completion), and every env."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from leap_gym.play import Console, columns, play, summarize, wrap
from tests.toy_env import TOY_ID

REPO = Path(__file__).resolve().parents[1]
TOY_PLAY = f"import sys, tests.toy_env; from leap_gym.cli import main; sys.exit(main(['play', '{TOY_ID}']))"


def test_wrap_breaks_at_word_boundaries_only():
    text = ("You are in the middle of a room. Looking quickly around you, you see a cabinet 17, a countertop "
            "3.\n\n  x")
    out = wrap(text, 30)
    assert all(len(line) <= 30 for line in out.splitlines())
    assert out.split() == text.split() and out.endswith("\n\n  x")  # no word cut, blank line and indent kept
    assert wrap("a " + "z" * 50, 20).splitlines() == ["a", "z" * 50]  # a long word is not split


def test_columns_fill_top_to_bottom_within_width():
    acts = [f"go to cabinet {i}" for i in range(12)]
    out = columns(acts, 70).splitlines()
    assert len(out) == 4 and all(len(line) <= 70 for line in out)  # 3 columns of 4 rows
    assert (out[0].startswith(" 0. go to cabinet 0  ")
            and out[0].split()[-4:] == ["8.", "go", "to", "cabinet"]
            or out[0].endswith(" 8. go to cabinet 8"))
    assert len(columns(acts, 60).splitlines()) == 6  # 3 columns need 64 characters
    assert columns(acts, 10).count("\n") == 11 and columns([], 80) == "(no admissible actions)"


def test_privileged_summary_is_a_line_per_key():
    priv = {"object_locations": {f"apple {i}": f"fridge {i}" for i in range(30)},
            "expert_action": "go to fridge 1", "expert_plan": ["go to fridge 1", "open fridge 1"],
            "target_rank": None}
    lines = summarize(priv, 70).splitlines()
    assert len(lines) == len(priv) + 1 and all(len(line) <= 70 for line in lines)
    assert lines[0].startswith("object_locations  {30} apple 0: fridge 0") and lines[0].endswith("...")
    assert lines[1].split() == ["expert_action", "go", "to", "fridge", "1"]
    assert "[2] go to fridge 1, open fridge 1" in lines[2] and lines[3].endswith("null")


def test_completion_offers_admissible_actions_and_commands():
    console = Console(io.StringIO(), io.StringIO(), lambda: ["go to garden", "go to kitchen", "look"])
    assert console.readline is None  # piped: plain line reading

    def all_matches(text):
        out = []
        while (match := console.complete(text, len(out))) is not None:
            out.append(match)
        return out

    assert all_matches("go to ") == ["go to garden", "go to kitchen"]
    assert all_matches("go to g") == ["go to garden"] and all_matches("x") == []
    assert all_matches(":pr") == [":privileged", ":privileged full"]


def test_play_toy_env_with_piped_stdin():
    stdin = io.StringIO(":actions\n:privileged\n:privileged full\nfly "
                        "away\n7\n:nope\n0\n1\n0\n:reset\n:quit\n")
    stdout = io.StringIO()
    assert play(TOY_ID, {}, seed=0, task_index=None, stdin=stdin, stdout=stdout, width=60) == 0
    out = stdout.getvalue()
    assert "0. go to kitchen  1. go to garden" in out  # :actions in columns
    assert re.search(r"> key_room +garden\nexpert_action +go to garden\n", out)  # the summary
    full = out[out.index("{\n"):out.index("\n}") + 2]
    assert json.loads(full)["key_room"] == "garden"  # :privileged full is valid JSON
    assert "Nothing happens." in out and "did not accept" in out
    assert "no action 7: there are 2" in out and "unknown command :nope" in out
    # the invalid step is counted
    assert "[step 1/5] > " in out and "[step 2/5] > " in out and "[step 3/5] > " in out
    assert "episode over after 3 steps: won=True" in out and "the episode is over" in out
    assert "== new episode" in out


def test_play_webshop_placeholder_is_asked_for_never_sent():
    """`0` on WebShop's search page picks `search[<query>]`: the query is asked for (or given after the
    number)."""
    script = "0\n\n0\n:actions\n0 lipstick\n:quit\n"
    proc = subprocess.run([sys.executable, "-m", "leap_gym.cli", "play", "leap/WebShop-v0", "--seed", "0"],
                          input=script, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert out.count("query (empty to cancel): ") == 2 and out.count("(cancelled)") == 2
    assert "(search[lipstick])" in out and "search[<query>]" not in out.split("(search[lipstick])")[1]
    assert "[step 2/15] > " in out and "[step 3/15]" not in out  # only the real search was a step
    assert "Total results: 0" not in out


# -- a real terminal -----------------------------------------------------------------------------------------

class Terminal:
    """``leap-gym play`` on a pseudo-terminal of ``cols`` columns: what a user at a terminal gets."""

    def __init__(self, code: str, cols: int, env: dict[str, str]):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
        # the size comes from the terminal alone: a COLUMNS/LINES left in this process's environment (another
        # test's, a tool's) would win over it in shutil.get_terminal_size
        base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave,
                                     cwd=REPO, env={**base, **env, "TERM": "dumb"}, close_fds=True,
                                     # a user's shell starts it with Ctrl-C's default action, whatever this
                                     # test process inherited (an ignored SIGINT would stay ignored in Python)
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not seen in:\n{self.seen[-2000:]}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace").replace("\r", "")
                except OSError:  # the child closed the terminal
                    assert text in self.seen, f"{text!r} not seen in:\n{self.seen[-2000:]}"

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self, timeout: float = 120) -> int:
        """The exit status, reading the terminal meanwhile (a full terminal buffer would block the child)."""
        deadline = time.monotonic() + timeout
        try:
            while self.proc.poll() is None:
                assert time.monotonic() < deadline, f"play did not exit; last output:\n{self.seen[-2000:]}"
                if select.select([self.master], [], [], 0.2)[0]:
                    try:
                        self.seen += os.read(self.master, 4096).decode(errors="replace").replace("\r", "")
                    except OSError:  # the child closed the terminal
                        pass
            return self.proc.returncode
        finally:
            os.close(self.master)


@pytest.fixture
def state_home(tmp_path):
    return {"XDG_STATE_HOME": str(tmp_path)}


def test_play_terminal_completes_actions_and_keeps_history(state_home):
    term = Terminal(TOY_PLAY, 60, state_home)
    try:
        term.expect("[step 1/5] > ")
        term.send("go to ga\t\n")  # Tab completes the unique admissible action
        term.expect("[episode over] > ")  # the prompt: readline reads again
        assert "You are in the garden." in term.seen
        term.send(":qu\t\n")
        assert term.close() == 0
    except BaseException:
        term.proc.kill()
        raise
    history = Path(state_home["XDG_STATE_HOME"], "leap-gym", "play_history").read_text().splitlines()
    assert history[-2:] == ["go to garden", ":quit"]

    term = Terminal(TOY_PLAY, 60, state_home)  # a new session recalls the last one's lines (Up arrow)
    try:
        term.expect("[step 1/5] > ")
        term.send("\x1b[A\x1b[A\n")
        term.expect("[episode over] > ")  # keys sent before the prompt would reach the terminal, not readline
        assert "You are in the garden." in term.seen
        term.send("\x04")  # Ctrl-D: end of input
        assert term.close() == 0
    except BaseException:
        term.proc.kill()
        raise


def test_play_terminal_wraps_to_its_width_and_ctrl_c_exits_130(state_home):
    term = Terminal(TOY_PLAY, 44, state_home)
    try:
        term.expect("[step 1/5] > ")
        term.send(":privileged\n")
        term.expect("(:privileged full")
        too_long = [line for line in term.seen.splitlines() if len(line) > 44]
        assert not too_long, f"lines wider than the terminal: {too_long}"
        term.proc.send_signal(signal.SIGINT)
        term.expect("interrupted")
        assert term.close() == 130
        assert "Traceback" not in term.seen
    except BaseException:
        term.proc.kill()
        raise
