"""``leap-gym serve`` as a real process: start it on 127.0.0.1, talk to it with OpenAIChat, stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from leap_gym.agents.backends import OpenAIChat  # noqa: E402
from leap_gym.agents.serve import add_subcommand  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_subcommand_parses():
    import argparse

    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "/tmp/model", "--adapter", "/tmp/a", "--port", "9001"])
    assert (args.model, args.adapter, args.port, args.host) == ("/tmp/model", "/tmp/a", 9001, "127.0.0.1")
    assert callable(args.func)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "server did not come up"
        time.sleep(0.3)


# The hub is made unreachable: a lookup would fail (or hang) instead of passing silently.
OFFLINE = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9",
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_serve_builtin_model_name_without_the_hub():
    """`leap-gym serve tiny` builds the documented tiny model locally and answers the official openai
    client."""
    openai = pytest.importorskip("openai")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "leap_gym.cli", "serve", "tiny", "--port", str(port),
                             "--threads", "1", "--max-new-tokens", "4", "--log-level", "warning"],
                            env=OFFLINE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_up(proc, port)
        with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0) as client:
            assert [m.id for m in client.models.list()] == ["tiny"]
            out = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
            assert 1 <= out.usage.completion_tokens <= 4
    finally:
        proc.terminate()
        log = proc.communicate(timeout=30)[0]
    assert "untrained" in log and "OSError" not in log and "Traceback" not in log, log


@pytest.mark.parametrize(("argv", "message"), [
    (["no-such-model"], "not a model directory, a leap-gym run directory"),
    (["tiny", "--adapter", "/nowhere"], "needs the base it was trained on"),
])
def test_serve_bad_model_is_a_one_line_error(argv, message):
    proc = subprocess.run([sys.executable, "-m", "leap_gym.cli", "serve", *argv], env=OFFLINE,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.slow
def test_serve_process_answers_chat(tmp_path):
    from leap_gym.models import build_tiny_student

    build_tiny_student("tiny", save_to=str(tmp_path / "model"))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "leap_gym.agents.serve", str(tmp_path / "model"), "--name",
                             "tiny", "--port", str(port), "--threads", "1", "--max-new-tokens", "8"],
                            env=OFFLINE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_up(proc, port)
        with OpenAIChat("tiny", f"http://127.0.0.1:{port}/v1") as client:
            out = client.chat([{"role": "user", "content": "TASK: find the key"}])
            assert out.completion_tokens > 0 and out.finish_reason in ("stop", "length")
            assert client.chat([{"role": "user", "content": "TASK: find the key"}]).text == out.text  # greedy
    finally:
        proc.terminate()
        proc.wait(timeout=30)
