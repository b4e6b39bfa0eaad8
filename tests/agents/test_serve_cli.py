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


@pytest.mark.slow
def test_serve_process_answers_chat(tmp_path):
    from leap_gym.models import build_tiny_student

    build_tiny_student("tiny", save_to=str(tmp_path / "model"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "leap_gym.agents.serve", str(tmp_path / "model"), "--name",
                             "tiny", "--port", str(port), "--threads", "1", "--max-new-tokens", "8"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.5)
        with OpenAIChat("tiny", f"http://127.0.0.1:{port}/v1") as client:
            out = client.chat([{"role": "user", "content": "TASK: find the key"}])
            assert out.completion_tokens > 0 and out.finish_reason in ("stop", "length")
            assert client.chat([{"role": "user", "content": "TASK: find the key"}]).text == out.text  # greedy
    finally:
        proc.terminate()
        proc.wait(timeout=30)
