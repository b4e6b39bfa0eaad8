"""``leap-gym serve`` driven by the official ``openai`` client against a real server on 127.0.0.1.

The server must answer as OpenAI does: what it cannot honour is a 400/404 in OpenAI's error shape (the client
turns those into ``BadRequestError``/``NotFoundError`` with ``code``), streaming follows the SSE chunk
protocol.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from leap_gym.agents.serve import BackgroundServer, build_app, load_student, run_checkpoint  # noqa: E402

USER = [{"role": "user", "content": "TASK: find the key"}]


@pytest.fixture(scope="module")
def server():
    import torch

    torch.set_num_threads(1)
    student, what = load_student("tiny", max_new_tokens=8)
    assert "untrained" in what
    with BackgroundServer(build_app(student, "tiny", batch_window_ms=0)) as bg:
        yield bg


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60) as c:
        yield c


def assert_openai_error(body: object, code: str | None, param: str | None) -> None:
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}, body
    assert body["code"] == code and body["param"] == param and body["message"], body
    assert isinstance(body["code"], str | type(None))


def test_chat_and_stream_give_the_same_greedy_answer(client):
    full = client.chat.completions.create(model="tiny", messages=USER, max_tokens=6, temperature=0)
    choice = full.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert 0 < full.usage.completion_tokens <= 6 and full.usage.prompt_tokens > 0
    chunks = list(client.chat.completions.create(model="tiny", messages=USER, max_tokens=6, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == choice.message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [choice.finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_stream_ends_with_done_and_omits_usage_unless_asked(server):
    body = {"model": "tiny", "messages": USER, "max_tokens": 3, "stream": True}
    resp = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in resp.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in events[:-1])


def test_max_tokens_and_stop_are_honoured(client):
    one = client.chat.completions.create(model="tiny", messages=USER, max_completion_tokens=1, temperature=0)
    assert one.usage.completion_tokens == 1 and one.choices[0].finish_reason in ("stop", "length")
    full = client.chat.completions.create(model="tiny", messages=USER, max_tokens=8, temperature=0)
    text = full.choices[0].message.content
    if len(text) > 2:  # a stop string taken from the answer cuts it there
        stop = text[1:3]
        cut = client.chat.completions.create(model="tiny", messages=USER, max_tokens=8, temperature=0,
                                             stop=stop)
        assert cut.choices[0].message.content == text[:text.find(stop)]
        assert cut.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("key", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_below_one_is_rejected(client, key):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny", messages=USER, **{key: 0})
    assert_openai_error(e.value.body, "integer_below_min_value", key)


@pytest.mark.parametrize(("kwargs", "code", "param"), [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
     "unsupported_parameter", "tools"),
    ({"response_format": {"type": "json_object"}}, "unsupported_parameter", "response_format"),
    ({"logprobs": True, "top_logprobs": 2}, "unsupported_parameter", "logprobs"),
    ({"n": 2}, "unsupported_value", "n"),
    ({"temperature": 3}, "decimal_above_max_value", "temperature"),
    ({"max_tokens": "8"}, "invalid_type", "max_tokens"),
    ({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]},
     "unsupported_value", "messages[0].content[1].type"),
    ({"messages": [{"role": "tool", "tool_call_id": "x", "content": "42"}]}, "unsupported_value",
     "messages[0].role"),
    ({"messages": []}, "empty_array", "messages"),
    ({"extra_body": {"top_k": 5}}, None, None),  # unknown parameter, as OpenAI answers it
])
def test_unsupported_requests_get_openai_400(client, kwargs, code, param):
    request = {"model": "tiny", "messages": USER, **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**request)
    assert_openai_error(e.value.body, code, param)


def test_default_values_of_unsupported_features_are_accepted(client):
    out = client.chat.completions.create(model="tiny",
                                         messages=[{"role": "developer", "content": "Be brief."}, *USER],
                                         max_tokens=2, tools=[],
                                         response_format={"type": "text"}, logprobs=False, n=1,
                                         frequency_penalty=0.0, user="someone")
    assert out.usage.completion_tokens <= 2


def test_unknown_model_is_404_model_not_found(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=USER)
    assert_openai_error(e.value.body, "model_not_found", "model")
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4o")
    assert_openai_error(e.value.body, "model_not_found", "model")


def test_models_lists_what_is_served(client):
    assert [m.id for m in client.models.list()] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"


def test_unknown_routes_answer_in_openai_shape(client, server):
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="tiny", prompt="hello")
    assert_openai_error(e.value.body, None, None)
    assert "/v1/completions" in e.value.body["message"]
    for method, path in [("GET", "/v1/nope"), ("GET", "/v1/chat/completions"), ("POST", "/v1/embeddings")]:
        resp = httpx.request(method, server.url + path, timeout=10)
        assert resp.status_code in (404, 405) and "detail" not in resp.json()
        assert_openai_error(resp.json()["error"], None, None)


def test_prompt_beyond_the_context_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 3000}])
    assert_openai_error(e.value.body, "context_length_exceeded", "messages")


# -- resolving what to serve ---------------------------------------------------------------------------------

def _fake_iteration(run_dir, i, model_dir=None, adapter=None):
    """The files a finished training stage leaves: train_log.json and the merged model or the adapter."""
    train = run_dir / f"iter_{i}" / "train"
    train.mkdir(parents=True)
    (train / "train_log.json").write_text("{}")
    if model_dir is not None:
        model_dir.save_pretrained(train / "model")
    if adapter is not None:
        adapter.save_pretrained(train / "adapter")
    return train


def test_run_directory_resolves_to_its_trained_student(tmp_path):
    from peft import LoraConfig, get_peft_model

    from leap_gym.models import build_tiny_student

    model, tok = build_tiny_student("tiny")
    merged = tmp_path / "merged"
    (merged).mkdir()
    (merged / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(ValueError, match="without a trained iteration"):
        run_checkpoint(merged)
    _fake_iteration(merged, 0, model_dir=model)
    last = _fake_iteration(merged, 1, model_dir=model)
    tok.save_pretrained(last / "model")
    assert run_checkpoint(merged) == (str(last / "model"), None, 1)
    with pytest.raises(ValueError, match="iteration 5 .* not trained"):
        run_checkpoint(merged, 5)
    student, what = load_student(str(merged), max_new_tokens=4)
    assert "iteration 1" in what and student.complete([[5, 6, 7]])[0].tokens >= 1

    stacked = tmp_path / "stacked"
    (stacked / "base").mkdir(parents=True)
    (stacked / "config.yaml").write_text("seed: 0\n")
    model.save_pretrained(stacked / "base")
    tok.save_pretrained(stacked / "base")
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    train = _fake_iteration(stacked, 0, adapter=peft_model)
    assert run_checkpoint(stacked) == (str(stacked / "base"), str(train / "adapter"), 0)
    student, what = load_student(str(stacked), max_new_tokens=4)
    assert "adapter" in what
    with pytest.raises(ValueError, match="own adapter"):
        load_student(str(stacked), adapter=str(train / "adapter"))


def test_unknown_model_spec_fails_without_network(tmp_path):
    with pytest.raises(ValueError, match="not a model directory.*tiny"):
        load_student("no-such-model")
    with pytest.raises(ValueError, match=f"{tmp_path}/ exists here but has no dmeo"):
        load_student(str(tmp_path / "dmeo"))  # a mistyped local path is not looked up on the hub
    with pytest.raises(ValueError, match="no config.json"):
        load_student(str(tmp_path))
    with pytest.raises(ValueError, match="needs the base"):
        load_student("tiny", adapter="/nowhere")
