"""``leap-gym serve``: a student (run directory, model directory or built-in name) on an OpenAI-compatible
API.

Routes: ``POST /v1/chat/completions`` (streaming included), ``GET /v1/models``, ``GET /v1/models/{id}``,
``GET /health``. Any tool that speaks the OpenAI protocol (``OpenAIChat``, the official ``openai`` client,
evaluation harnesses) can then drive a student checkpoint. Requests are answered as OpenAI answers them: what
this text-only server cannot honour (tools, structured output, log-probabilities, images, ``n > 1``, unknown
parameters or models, unknown routes) is a 400/404 in OpenAI's error shape, never silently ignored. For tool
calling or token-by-token streaming of large models use ``vllm serve --enable-lora`` or
``transformers serve``.

Concurrent requests are micro-batched: a worker thread takes the first waiting request, gathers the others
that arrive within ``batch_window_ms`` and share its sampling settings, and answers them with one left-padded
``generate`` call (greedy answers are the same batched or not). Importing this module is cheap (every
``leap-gym`` command imports it for its subcommand): asyncio, FastAPI, uvicorn and torch load when a server is
built.
"""

import argparse
import contextlib
import json
import queue
import re
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leap_gym.agents.student import HFStudent, default_device_dtype, render_prompt
from leap_gym.leap.layout import RunLayout
from leap_gym.models import MODEL_SIZES, build_tiny_student

# No ``from __future__ import annotations`` here: FastAPI resolves handler annotations (``Request``) at
# runtime.


@dataclass
class _Job:
    prompt: list[int]
    settings: tuple
    future: Future = field(default_factory=Future)


class MicroBatcher:
    """Runs ``student.complete`` in one worker thread over batches of compatible waiting requests."""

    def __init__(self, student, max_batch: int = 32, window_s: float = 0.005):
        self.student, self.max_batch, self.window_s = student, max(1, max_batch), max(0.0, window_s)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="leap-gym-serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, prompt: list[int], max_new_tokens: int, do_sample: bool, temperature: float,
               top_p: float, seed: int | None) -> Future:
        job = _Job(prompt, (max_new_tokens, do_sample, temperature, top_p, seed))
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        held: list[_Job] = []
        while True:
            job = held.pop(0) if held else self._queue.get()
            if job is None:  # shutting down: fail what is still waiting instead of leaving it hanging
                while not self._queue.empty():
                    held.append(self._queue.get_nowait())
                for j in held:
                    if j is not None:
                        j.future.set_exception(RuntimeError("server is shutting down"))
                return
            batch = [job]
            # a seeded sampled request runs alone, so its answer does not depend on what else was waiting
            batchable = not (job.settings[1] and job.settings[4] is not None)
            deadline = time.monotonic() + self.window_s
            while batchable and len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is not None and nxt.settings == job.settings:
                    batch.append(nxt)
                else:
                    held.append(nxt)
                    if nxt is None:
                        break
            max_new, do_sample, temperature, top_p, seed = job.settings
            try:
                results = self.student.complete([j.prompt for j in batch], max_new_tokens=max_new,
                                                do_sample=do_sample, temperature=temperature, top_p=top_p,
                                                seed=seed)
            except Exception as e:  # the request fails, the server lives on
                for j in batch:
                    j.future.set_exception(e)
                continue
            for j, r in zip(batch, results, strict=True):
                j.future.set_result(r)


class APIError(Exception):
    """A request answered with OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``.

    ``code`` is a string (``"model_not_found"``, ``"unsupported_parameter"`` ...) or ``None``, as OpenAI sends
    it, so clients that branch on it (the official ``openai`` client raises
    ``BadRequestError``/``NotFoundError`` by status and exposes ``code``) behave as they do against OpenAI.
    """

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass
class ChatRequest:
    """A validated chat-completions request (what this server honours; everything else was refused)."""

    messages: list[dict[str, str]]
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    stream: bool
    include_usage: bool


# Request fields that leave a text-only answer unchanged: accepted and ignored, as OpenAI accepts them.
_NO_EFFECT = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "safety_identifier",
              "prompt_cache_key"}
# Features this server does not have, with the values that mean "not used" (those are accepted).
_UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "tools": (None, []), "tool_choice": (None, "none"), "functions": (None, []),
    "function_call": (None, "none"), "response_format": (None, {"type": "text"}), "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "frequency_penalty": (None, 0), "presence_penalty": (None, 0), "logit_bias": (None, {}),
    "modalities": (None, ["text"]), "audio": (None,), "prediction": (None,), "web_search_options": (None,),
    "reasoning_effort": (None,), "verbosity": (None,),
}
_HONOURED = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
             "stop", "stream", "stream_options", "n"}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a decimal", str: "a string", list: "an array",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _number(body: dict[str, Any], key: str, lo: float | None = None, hi: float | None = None,
            integer: bool = False) -> Any:
    """``body[key]`` checked like OpenAI checks it (type, then range); ``None`` when absent or null."""
    value = body.get(key)
    if value is None:
        return None
    kind = "integer" if integer else "decimal"
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise APIError(400, f"Invalid type for '{key}': expected {'an integer' if integer else 'a decimal'}, "
                            f"but got {_type_name(value)} instead.", key, "invalid_type")
    if lo is not None and value < lo:
        raise APIError(400,
                       f"Invalid '{key}': {kind} below minimum value. Expected a value >= {lo:g}, but got "
                       f"{value} instead.", key, f"{kind}_below_min_value")
    if hi is not None and value > hi:
        raise APIError(400,
                       f"Invalid '{key}': {kind} above maximum value. Expected a value <= {hi:g}, but got "
                       f"{value} instead.", key, f"{kind}_above_max_value")
    return value


def _messages(raw: Any) -> list[dict[str, str]]:
    """OpenAI messages as ``{"role", "content"}`` text; images, audio, files and tool turns are refused."""
    if raw is None:
        raise APIError(400, "Missing required parameter: 'messages'.", "messages",
                       "missing_required_parameter")
    if not isinstance(raw, list):
        raise APIError(400,
                       f"Invalid type for 'messages': expected an array, but got {_type_name(raw)} instead.",
                       "messages", "invalid_type")
    if not raw:
        raise APIError(400,
                       "Invalid 'messages': empty array. Expected an array with minimum length 1, but got "
                       "an empty array instead.", "messages", "empty_array")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise APIError(400, f"Invalid type for '{where}': expected an object, but got {_type_name(m)} "
                                "instead.", where, "invalid_type")
        role = m.get("role")
        if role in ("tool", "function") or m.get("tool_calls") or m.get("function_call"):
            raise APIError(400, f"Unsupported value: '{where}' is a tool-calling turn; leap-gym serve has no "
                                "tool calling.", f"{where}.role", "unsupported_value")
        if role not in _ROLES:
            raise APIError(400,
                           f"Invalid value: {role!r}. Supported values are: 'system', 'developer', 'user' "
                           "and 'assistant'.", f"{where}.role", "invalid_value")
        content = m.get("content")
        if isinstance(content, list):
            texts = []
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text" or not isinstance(part.get("text"), str):
                    raise APIError(400, f"Invalid content type: {kind!r} parts are not supported by leap-gym "
                                        "serve (a text-only model); send 'text' parts.",
                                   f"{where}.content[{j}].type", "unsupported_value")
                texts.append(part["text"])
            content = "".join(texts)
        if not isinstance(content, str):
            raise APIError(400, f"Invalid type for '{where}.content': expected a string or an array of text "
                                f"parts, but got {_type_name(content)} instead.", f"{where}.content",
                           "invalid_type")
        out.append({"role": _ROLES[role], "content": content})
    return out


def parse_request(body: Any, served: set[str]) -> ChatRequest:
    """Validate a chat-completions body the way OpenAI does; raise ``APIError`` for what cannot be honoured.

    Nothing is silently ignored: a feature this server lacks (tools, structured output, log-probabilities,
    penalties, images ...) is a 400 naming the parameter, and an unknown parameter is a 400 as on OpenAI.
    """
    if not isinstance(body, dict):
        raise APIError(400, f"Invalid type for request body: expected an object, but got {_type_name(body)} "
                            "instead.", None, "invalid_type")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise APIError(400, "you must provide a model parameter", "model")
    if model not in served:
        raise APIError(404,
                       f"The model `{model}` does not exist or you do not have access to it. This server "
                       f"serves: {', '.join(sorted(served))}.", "model", "model_not_found")
    for key in body:
        if key not in _HONOURED and key not in _NO_EFFECT and key not in _UNSUPPORTED:
            raise APIError(400, f"Unrecognized request argument supplied: {key}", None)
    for key, unused in _UNSUPPORTED.items():
        if key in body and body[key] not in unused:
            raise APIError(400,
                           f"Unsupported parameter: '{key}' is not supported by leap-gym serve (a text-only "
                           "model without tool calling, structured output or log-probabilities; vLLM serves "
                           "these).", key, "unsupported_parameter")
    n = _number(body, "n", 1, 128, integer=True)
    if n not in (None, 1):
        raise APIError(400, f"Unsupported value: 'n' must be 1 with leap-gym serve, got {n}.", "n",
                       "unsupported_value")
    max_tokens = _number(body, "max_completion_tokens", 1, integer=True)
    legacy = _number(body, "max_tokens", 1, integer=True)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise APIError(400, f"Invalid type for 'stream': expected a boolean, but got {_type_name(stream)} "
                            "instead.", "stream", "invalid_type")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise APIError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       "stream_options")
    if options is not None and not isinstance(options, dict):
        raise APIError(400, f"Invalid type for 'stream_options': expected an object, but got "
                            f"{_type_name(options)} instead.", "stream_options", "invalid_type")
    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise APIError(400, "Invalid 'stop': expected a string or an array of at most 4 strings.", "stop",
                       "invalid_value")
    temperature = _number(body, "temperature", 0, 2)
    top_p = _number(body, "top_p", 0, 1)
    return ChatRequest(messages=_messages(body.get("messages")),
                       max_tokens=max_tokens if max_tokens is not None else legacy,
                       temperature=1.0 if temperature is None else float(temperature),
                       top_p=1.0 if top_p is None else float(top_p), seed=_number(body, "seed", integer=True),
                       stop=[s for s in stop if s], stream=bool(stream),
                       include_usage=bool((options or {}).get("include_usage")))


def build_app(student, model_name: str, context_tokens: int | None = None, batch_window_ms: float = 5.0):
    """The FastAPI app serving ``student`` (an ``HFStudent``: model, tokenizer, device and stop tokens).

    ``context_tokens`` (default: the model's ``max_position_embeddings``) bounds prompt + completion; a
    request without ``max_tokens`` gets the student's ``max_new_tokens``, shortened to fit that context.
    """
    import asyncio

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    limit = context_tokens or int(getattr(student.model.config, "max_position_embeddings", 4096))
    batcher = MicroBatcher(student, max_batch=student.batch_size, window_s=batch_window_ms / 1000)
    served = {model_name}
    model_card = {"id": model_name, "object": "model", "created": int(time.time()), "owned_by": "leap-gym"}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        batcher.close()

    app = FastAPI(title="leap-gym serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher

    @app.exception_handler(APIError)
    async def api_error(_request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # unknown routes and methods: OpenAI's "Invalid URL" answer instead of FastAPI's {"detail": ...}
        message = f"Invalid URL ({request.method} {request.url.path})" if exc.status_code in (404, 405) \
            else str(exc.detail)
        if exc.status_code in (404, 405):
            message += ": leap-gym serve answers POST /v1/chat/completions, GET /v1/models and GET /health"
        return JSONResponse(APIError(exc.status_code, message).body(), status_code=exc.status_code)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card]}

    @app.get("/v1/models/{model:path}")
    def model(model: str) -> dict[str, Any]:
        if model not in served:
            raise APIError(404, f"The model `{model}` does not exist or you do not have access to it.",
                           "model", "model_not_found")
        return model_card

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = json.loads(await request.body())
        except ValueError as e:
            raise APIError(400, f"We could not parse the JSON body of your request: {e}") from None
        req = parse_request(body, served)
        prompt = student.tokenizer(render_prompt(student.tokenizer, req.messages), add_special_tokens=False,
                                   verbose=False)["input_ids"]  # an over-long prompt is answered below
        max_new = req.max_tokens if req.max_tokens is not None else \
            max(1, min(student.max_new_tokens, limit - len(prompt)))
        if len(prompt) + max_new > limit:
            raise APIError(400,
                           f"This model's maximum context length is {limit} tokens. However, you requested "
                           f"{len(prompt) + max_new} tokens ({len(prompt)} in the messages, {max_new} in the "
                           "completion). Please reduce the length of the messages or completion.",
                           "messages", "context_length_exceeded")
        future = batcher.submit(prompt, max_new, req.temperature > 0, req.temperature, req.top_p, req.seed)
        try:
            result = await asyncio.wrap_future(future)
        except Exception as e:  # the request fails, the server lives on
            raise APIError(500, f"generation failed: {type(e).__name__}: {e}", kind="server_error") from None
        text, finish = result.text, result.finish_reason
        cut = min((i for i in (text.find(s) for s in req.stop) if i >= 0), default=None)
        if cut is not None:
            text, finish = text[:cut], "stop"
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model_name,
                "system_fingerprint": None}
        usage = {"prompt_tokens": len(prompt), "completion_tokens": result.tokens,
                 "total_tokens": len(prompt) + result.tokens}
        if not req.stream:
            return {**head, "object": "chat.completion",
                    "choices": [{"index": 0,
                                 "message": {"role": "assistant", "content": text, "refusal": None},
                                 "logprobs": None, "finish_reason": finish}],
                    "usage": usage}
        return StreamingResponse(_sse(head, text, finish, usage if req.include_usage else None),
                                 media_type="text/event-stream")

    return app


def _sse(head: dict[str, Any], text: str, finish: str, usage: dict[str, Any] | None):
    """A finished completion as OpenAI's stream of ``chat.completion.chunk`` events, then ``data: [DONE]``.

    The micro-batcher generates whole completions, so the text arrives as one content chunk once it is done
    (token-by-token streaming is what ``transformers serve`` and vLLM offer).
    """
    extra = {"usage": None} if usage is not None else {}

    def event(choices: list[dict[str, Any]], **more: Any) -> bytes:
        chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra, **more}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                  "finish_reason": None}])
    if text:
        yield event([{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}])
    if usage is not None:
        yield event([], usage=usage)
    yield b"data: [DONE]\n\n"


class BackgroundServer:
    """A uvicorn server for ``app`` in a daemon thread (tests, notebooks); ``port=0`` picks a free port."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="leap-gym-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {host}:{port} did not start")
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0].getsockname()
        self.host, self.port = host, int(sock[1])
        self.url = f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def run_checkpoint(run_dir: Path, iteration: int | None = None) -> tuple[str, str | None, int]:
    """``(model, adapter, iteration)`` of a leap-gym run directory's trained student (default: the last one).

    A merged iteration acts with its merged weights; a stacked-LoRA one with the run's base (built in the run
    directory, or the adapter's recorded base model) plus its adapter, as ``leap-gym eval`` does
    (``RunLayout.student_weights``).
    """
    layout = RunLayout(run_dir)
    iters = layout.trained_iterations()
    if not iters:
        raise ValueError(f"{run_dir} is a leap-gym run without a trained iteration yet")
    i = iters[-1] if iteration is None else iteration
    if i not in iters:
        raise ValueError(f"iteration {i} of {run_dir} is not trained (trained: {', '.join(map(str, iters))})")
    return (*layout.student_weights(i), i)


def load_student(spec: str, adapter: str | None = None, iteration: int | None = None,
                 tokenizer: str | None = None, device: str | None = None, dtype: str | None = None,
                 **student_kw: Any):
    """``(HFStudent, description)`` for what ``leap-gym serve SPEC`` names, resolved locally first.

    ``spec`` is a leap-gym run directory (its last trained student, or ``iteration``), a model directory, one
    of the library's model names (``tiny``/``small``/``base``: built here with random weights, nothing
    downloaded), or a hub id (``org/name`` where no local ``org/`` exists: the only case that reaches the
    network).
    """
    path = Path(spec).expanduser()
    if path.is_dir() and RunLayout(path).config.exists() and not (path / "config.json").exists():
        if adapter is not None:
            raise ValueError("a run directory brings its own adapter: drop --adapter (--iteration picks "
                             "another iteration)")
        model, adapter, i = run_checkpoint(path, iteration)
        what = f"run {spec}, iteration {i}" + (" (base + LoRA adapter)" if adapter else "")
    elif iteration is not None:
        raise ValueError("--iteration applies to a leap-gym run directory")
    elif path.is_dir() and not (path / "config.json").exists():
        raise ValueError(f"{spec} is neither a model directory (no config.json) nor a leap-gym run (no "
                         "config.yaml)")
    elif path.exists():
        model, what = str(path), f"model {spec}"
    elif spec in MODEL_SIZES:
        if adapter is not None:
            raise ValueError("an adapter needs the base it was trained on; serve the run directory instead "
                             f"of {spec!r}")
        built, tok = build_tiny_student(spec)
        dev, dt = default_device_dtype(device, dtype)
        student = HFStudent(built.to(device=dev, dtype=dt), tok, seed=None, **student_kw)
        return student, (f"{spec}: built here, untrained (random weights; serve a run directory for a "
                         "trained one)")
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", spec) and not path.parent.is_dir():
        model, what = spec, f"hub model {spec}"
    else:
        nearby = (f"; {path.parent}/ exists here but has no {path.name}"
                  if "/" in spec and path.parent.is_dir() else "")
        raise ValueError(f"{spec!r} is not a model directory, a leap-gym run directory, a hub id (org/name) "
                         f"or one of the built-in models ({', '.join(MODEL_SIZES)})" + nearby)
    student = HFStudent(model, tokenizer, adapter=adapter, device=device, dtype=dtype, seed=None,
                        **student_kw)
    return student, what + (f" + adapter {adapter}" if adapter and "adapter" not in what else "")


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="serve a model on an OpenAI-compatible chat API",
        description="Serve a student on an OpenAI-compatible chat-completions API (/v1/chat/completions, "
                    "/v1/models). MODEL is a leap-gym run directory (its last trained student), a model "
                    "directory, a built-in model name (tiny, small, base: untrained) or a hub id (org/name).")
    p.add_argument("model", help="run directory, model directory, tiny/small/base, or hub id")
    p.add_argument("--adapter", default=None,
                   help="PEFT/LoRA adapter directory to apply to a model directory")
    p.add_argument("--iteration", type=int, default=None,
                   help="which trained iteration of a run (default: last)")
    p.add_argument("--tokenizer", default=None, help="tokenizer path if it is not beside the model")
    p.add_argument("--name", default=None, help="model name clients send and /v1/models lists "
                                                "(default: the MODEL argument)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", default=None,
                   help="float32, bfloat16, float16 (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--max-new-tokens", type=int, default=256,
                   help="completion length of a request without max_tokens (shortened to fit the context)")
    p.add_argument("--batch-size", type=int, default=32, help="most requests answered by one generate call")
    p.add_argument("--batch-window-ms", type=float, default=5.0, help="wait this long to gather a batch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (info logs each request)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        student, what = load_student(args.model, args.adapter, args.iteration, args.tokenizer,
                                     device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens,
                                     batch_size=args.batch_size)
    except (OSError, ValueError) as e:  # missing files, hub unreachable, bad combination of options
        print(f"error: cannot serve {args.model}: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    name = args.name or args.model
    app = build_app(student, name, batch_window_ms=args.batch_window_ms)
    print(f"leap-gym serve: {what}\nleap-gym serve: model {name!r} on http://{args.host}:{args.port}/v1",
          file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leap-gym")
    add_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
