import io
import subprocess
import sys

import pytest

import leap_gym
from leap_gym.cli import main
from leap_gym.play import play
from tests.toy_env import TOY_ID


def test_envs_lists_every_env(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for env_id in leap_gym.list_envs():
        assert env_id in out


def test_play_toy_env_with_piped_stdin():
    stdin = io.StringIO(":actions\n:privileged\nfly away\n0\n1\n:quit\n")
    stdout = io.StringIO()
    assert play(TOY_ID, {}, seed=0, task_index=None, stdin=stdin, stdout=stdout) == 0
    out = stdout.getvalue()
    assert "go to kitchen" in out and "key_room" in out
    assert "Nothing happens." in out and "did not accept" in out


def test_play_misspelt_env_suggests(capsys):
    assert main(["play", "leap/AlfWorld-v0"]) == 2
    assert "Did you mean" in capsys.readouterr().err


@pytest.mark.parametrize("env_id", leap_gym.list_envs())
def test_play_every_env_through_the_console_script(env_id):
    """Drive the real `leap-gym play` process with piped stdin: look, peek at privileged state, act, quit."""
    script = ":actions\n:privileged\n0\n:quit\n"
    proc = subprocess.run([sys.executable, "-m", "leap_gym.cli", "play", env_id, "--seed", "1"], input=script,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "\nexpert_action " in proc.stdout  # the :privileged summary


def test_ctrl_c_in_play_is_one_line_and_exit_130():
    """SIGINT at the prompt of the real `leap-gym play` process: no traceback, exit status 130."""
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "leap_gym.cli", "play", "leap/ALFWorld-v0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a shell
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        shown = ""
        while not shown.endswith("> "):  # the prompt: the env is up and play waits for a command
            ch = proc.stdout.read(1)
            assert ch, proc.stderr.read()[-3000:]
            shown += ch
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines() == ["interrupted"]
