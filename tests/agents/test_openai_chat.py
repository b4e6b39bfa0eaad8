"""OpenAIChat over real HTTP on 127.0.0.1: a scripted server (errors, slow replies, malformed JSON) and the
real ``leap-gym serve`` app with the tiny model."""

from __future__ import annotations

import json
import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402

from leap_gym.agents.backends import BackendError, OpenAIChat  # noqa: E402
from leap_gym.agents.serve import BackgroundServer  # noqa: E402

MSGS = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


class Scripted:
    """A chat-completions server whose next replies follow a script; records what it received."""

    def __init__(self):
        self.script: list[str] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/v1/chat/completions")
        def chat(body: dict, request: Request):
            with self.lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
                step = self.script.pop(0) if self.script else "ok"
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if step.startswith("slow"):
                    time.sleep(float(step.split(":")[1]))
                if step == "429":
                    return JSONResponse({"error": {"message": "rate limited"}}, 429,
                                        headers={"Retry-After": "0"})
                if step in ("500", "503", "400", "401"):
                    return JSONResponse({"error": {"message": f"boom {step}"}}, int(step))
                if step == "malformed":
                    return Response('{"choices": [{"message": {"content": "trunc',
                                    media_type="application/json")
                if step == "wrong-shape":
                    return {"object": "chat.completion", "data": []}
                content = body["messages"][-1]["content"]
                return {"id": "x", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0,
                                     "message": {"role": "assistant", "content": f"echo: {content}"},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
            finally:
                with self.lock:
                    self.in_flight -= 1

        self.app = app


@pytest.fixture(scope="module")
def scripted():
    s = Scripted()
    with BackgroundServer(s.app) as server:
        s.url = server.url + "/v1"
        yield s


@pytest.fixture
def fresh(scripted):
    deadline = time.monotonic() + 5
    while scripted.in_flight and time.monotonic() < deadline:  # a timed-out slow reply may still be sleeping
        time.sleep(0.05)
    scripted.script.clear()
    scripted.requests.clear()
    scripted.headers.clear()
    scripted.max_in_flight = 0
    return scripted


def client(server, **kw) -> OpenAIChat:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("prices", (2.0, 4.0))
    return OpenAIChat("test-model", server.url, **kw)


def test_ok_and_accounting(fresh, monkeypatch):
    monkeypatch.setenv("LEAPGYM_TEST_KEY", "sk-SENTINEL")
    with client(fresh, api_key_env="LEAPGYM_TEST_KEY", max_tokens=7) as c:
        r = c.chat(MSGS)
        assert (r.text, r.finish_reason, r.cached) == ("echo: hello", "stop", False)
        assert (r.prompt_tokens, r.completion_tokens) == (10, 5)
        assert r.cost == pytest.approx((10 * 2.0 + 5 * 4.0) / 1e6)
        assert c.usage.requests == 1 and c.usage.cost == pytest.approx(r.cost) and c.usage.retries == 0
        c.chat(MSGS, max_tokens=None)  # None means "server default": the key is left out
    body = fresh.requests[0]
    assert body["model"] == "test-model" and body["max_tokens"] == 7 and body["temperature"] == 0.0
    assert "max_tokens" not in fresh.requests[1]
    assert fresh.headers[0]["authorization"] == "Bearer sk-SENTINEL"


@pytest.mark.parametrize("script",
                         [["429", "500"], ["503", "malformed"], ["wrong-shape"], ["429", "429", "429"]])
def test_retries_transient_failures(fresh, script):
    fresh.script[:] = list(script)
    with client(fresh) as c:
        assert c.chat(MSGS).text == "echo: hello"
        assert c.usage.retries == len(script) and c.usage.requests == 1
    assert len(fresh.requests) == len(script) + 1


def test_slow_reply_times_out_and_is_retried(fresh):
    fresh.script[:] = ["slow:1.5"]
    with client(fresh, timeout=0.3) as c:
        assert c.chat(MSGS).text == "echo: hello"
        assert c.usage.retries == 1


def test_gives_up_after_max_retries(fresh):
    fresh.script[:] = ["500"] * 10
    with client(fresh, max_retries=2) as c, pytest.raises(BackendError,
                                                          match="giving up after 3 attempts") as e:
        c.chat(MSGS)
    assert e.value.status == 500 and len(fresh.requests) == 3


@pytest.mark.parametrize("status", ["400", "401"])
def test_client_errors_are_not_retried(fresh, status):
    fresh.script[:] = [status]
    with client(fresh) as c, pytest.raises(BackendError, match=f"HTTP {status}.*boom") as e:
        c.chat(MSGS)
    assert e.value.status == int(status) and len(fresh.requests) == 1


def test_unreachable_endpoint_raises_after_retries():
    with OpenAIChat("m", "http://127.0.0.1:9/v1", backoff=0.01, max_retries=1, timeout=2) as c, \
            pytest.raises(BackendError, match="ConnectError"):
        c.chat(MSGS)


def test_disk_cache_never_pays_twice(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("LEAPGYM_TEST_KEY", "sk-SENTINEL")
    with client(fresh, cache_dir=tmp_path, api_key_env="LEAPGYM_TEST_KEY") as c:
        first = c.chat(MSGS)
        again = c.chat(MSGS)
        assert again.cached and again.text == first.text and again.cost == 0.0
        c.chat(MSGS, temperature=0.5)  # different request, different key
        assert c.usage.requests == 2 and c.usage.cache_hits == 1 and c.usage.cached_prompt_tokens == 10
    assert len(fresh.requests) == 2
    with client(fresh, cache_dir=tmp_path) as resumed:  # an interrupted run restarts: nothing is re-bought
        assert resumed.chat(MSGS).cached and resumed.chat(MSGS, temperature=0.5).cached
        assert resumed.usage.requests == 0 and resumed.usage.cost == 0.0
    assert len(fresh.requests) == 2
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 2 and not list(tmp_path.rglob("*.tmp"))
    assert all("SENTINEL" not in f.read_text() for f in files)
    for f in files:
        f.write_text("{not json")  # a damaged entry is re-fetched, with a warning
    with client(fresh, cache_dir=tmp_path) as c, pytest.warns(UserWarning, match="unreadable cache entry"):
        assert not c.chat(MSGS).cached and not c.chat(MSGS, temperature=0.5).cached
    assert len(fresh.requests) == 4
    for f in files:
        assert json.loads(f.read_text())["response"]["choices"][0]["message"]["content"] == "echo: hello"


def test_concurrency_cap_and_order(fresh):
    fresh.script[:] = ["slow:0.2"] * 12
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
    with client(fresh, max_concurrency=3) as c:
        out = c.chat_many(convs)
    assert [r.text for r in out] == [f"echo: q{i}" for i in range(12)]
    assert 2 <= fresh.max_in_flight <= 3


def test_retry_after_is_honoured_and_capped():
    with OpenAIChat("m", "http://127.0.0.1:9/v1", max_backoff=5.0, backoff=1.0) as c:
        assert c._delay(0, "2") == 2.0 and c._delay(0, "600") == 5.0
        assert 0.5 <= c._delay(0, None) <= 1.0 and 2.0 <= c._delay(2, "soon") <= 4.0


# -- the real server -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from leap_gym.agents.serve import build_app
    from leap_gym.agents.student import HFStudent
    from leap_gym.models import build_tiny_student

    path = tmp_path_factory.mktemp("served")
    build_tiny_student("tiny", seed=0, save_to=str(path))
    student = HFStudent(str(path), max_new_tokens=12, seed=None)
    with BackgroundServer(build_app(student, "tiny-student", batch_window_ms=20)) as server:
        yield student, server


def test_serve_matches_local_generation(served):
    student, server = served
    from leap_gym.agents.student import render_prompt

    convs = [[{"role": "user", "content": f"TASK: find the key {i}"}] for i in range(5)]
    prompts = [student.tokenizer(render_prompt(student.tokenizer, m), add_special_tokens=False)["input_ids"]
               for m in convs]
    expected = [student.complete([p], max_new_tokens=12)[0] for p in prompts]
    with OpenAIChat("tiny-student", server.url + "/v1", max_tokens=12, max_concurrency=5) as c:
        answers = c.chat_many(convs)  # concurrent: micro-batched on the server
        assert [a.text for a in answers] == [e.text for e in expected]
        assert [a.completion_tokens for a in answers] == [e.tokens for e in expected]
        assert all(a.prompt_tokens > 0 and a.finish_reason in ("stop", "length") for a in answers)
        with pytest.raises(ValueError, match="stream=True is not supported"):
            c.chat(convs[0], stream=True)
        with pytest.raises(BackendError, match="context"):
            c.chat([{"role": "user", "content": "word " * 3000}])
        seeded = [c.chat(convs[0], temperature=1.0, seed=7, max_tokens=8).text for _ in range(2)]
    assert seeded[0] == seeded[1]
    models = httpx.get(server.url + "/v1/models").json()
    assert models["data"][0]["id"] == "tiny-student"
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    bad = httpx.post(server.url + "/v1/chat/completions", content=b"{oops", timeout=10)
    assert bad.status_code == 400 and "could not parse the JSON" in bad.json()["error"]["message"]


def test_micro_batcher_groups_compatible_requests(served):
    from leap_gym.agents.serve import MicroBatcher

    student, _ = served

    class Recording:
        def __init__(self):
            self.calls = []

        def complete(self, prompts, **kw):
            self.calls.append((len(prompts), kw["max_new_tokens"], kw["do_sample"]))
            return student.complete(prompts, **kw)

    rec = Recording()
    batcher = MicroBatcher(rec, max_batch=8, window_s=0.5)
    try:
        prompts = [[5, 6, 7 + i] for i in range(4)]
        greedy = [batcher.submit(p, 6, False, 0.0, 1.0, None) for p in prompts]
        seeded = batcher.submit(prompts[0], 6, True, 1.0, 1.0, 3)
        longer = batcher.submit(prompts[1], 9, False, 0.0, 1.0, None)
        results = [f.result(timeout=60) for f in greedy]
        seeded.result(timeout=60)
        longer.result(timeout=60)
    finally:
        batcher.close()
    assert sorted(rec.calls) == [(1, 6, True), (1, 9, False), (4, 6, False)]
    assert [r.text for r in results] == [c.text for c in student.complete(prompts, max_new_tokens=6,
                                                                          do_sample=False)]
