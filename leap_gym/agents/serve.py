"""``leap-gym serve``: a local model (base + optional LoRA adapter) behind an OpenAI-compatible API.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``. Any tool that speaks the OpenAI
protocol (``OpenAIChat``, the ``openai`` client, evaluation harnesses) can then drive a student checkpoint.

Concurrent requests are micro-batched: a worker thread takes the first waiting request, gathers the others that
arrive within ``batch_window_ms`` and share its sampling settings, and answers them with one left-padded
``generate`` call (greedy answers are the same batched or not). Streaming and ``n > 1`` are refused with a clear
400. Importing this module is cheap; FastAPI, uvicorn and torch load when a server is built.
"""

import argparse
import contextlib
import queue
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

# No ``from __future__ import annotations`` here: FastAPI resolves handler annotations (``Request``) at runtime.


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

    def submit(self, prompt: list[int], max_new_tokens: int, do_sample: bool, temperature: float, top_p: float,
               seed: int | None) -> Future:
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
            if job is None:
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


def _content_text(content: Any) -> str:
    """OpenAI message content: a string, or a list of parts of which the text parts count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise ValueError("message content must be a string or a list of text parts")


def build_app(student, model_name: str, max_prompt_tokens: int | None = None, max_tokens_limit: int = 1024,
              batch_window_ms: float = 5.0):
    """The FastAPI app serving ``student`` (an ``HFStudent``: model, tokenizer, device and stop tokens)."""
    import asyncio

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from leap_gym.agents.student import render_prompt

    limit = max_prompt_tokens or int(getattr(student.model.config, "max_position_embeddings", 4096))
    batcher = MicroBatcher(student, max_batch=student.batch_size, window_s=batch_window_ms / 1000)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        batcher.close()

    app = FastAPI(title="leap-gym serve", lifespan=lifespan)
    app.state.batcher = batcher

    def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0,
                                            "owned_by": "leap-gym"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = await request.json()
        except ValueError:
            return error(400, "request body is not valid JSON")
        if not isinstance(body, dict):
            return error(400, "request body must be a JSON object")
        if body.get("stream"):
            return error(400, "streaming is not supported by leap-gym serve; send stream=false")
        if int(body.get("n") or 1) != 1:
            return error(400, "only n=1 is supported")
        msgs = body.get("messages")
        try:
            if not isinstance(msgs, list) or not msgs:
                raise ValueError("messages must be a non-empty list")
            messages = [{"role": str(m["role"]), "content": _content_text(m.get("content", ""))} for m in msgs]
            max_new = int(body.get("max_completion_tokens") or body.get("max_tokens") or student.max_new_tokens)
            temperature = float(body["temperature"]) if body.get("temperature") is not None else 1.0
            top_p = float(body["top_p"]) if body.get("top_p") is not None else 1.0
            seed = int(body["seed"]) if body.get("seed") is not None else None
            stop = body.get("stop") or []
            stop = [stop] if isinstance(stop, str) else [str(s) for s in stop]
        except (KeyError, TypeError, ValueError) as e:
            return error(400, f"bad request: {e}")
        if not 1 <= max_new <= max_tokens_limit:
            return error(400, f"max_tokens must be in [1, {max_tokens_limit}]")
        prompt = student.tokenizer(render_prompt(student.tokenizer, messages), add_special_tokens=False)["input_ids"]
        if len(prompt) + max_new > limit:
            return error(400, f"prompt ({len(prompt)} tokens) + max_tokens ({max_new}) exceeds the model's "
                              f"context of {limit} tokens", "context_length_exceeded")
        future = batcher.submit(prompt, max_new, temperature > 0, temperature, top_p, seed)
        result = await asyncio.wrap_future(future)
        text, finish = result.text, result.finish_reason
        cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=None)
        if cut is not None:
            text, finish = text[:cut], "stop"
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}],
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": result.tokens,
                          "total_tokens": len(prompt) + result.tokens}}

    return app


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


def add_subcommand(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve a local model on an OpenAI-compatible chat API")
    p.add_argument("model", help="model directory or hub id (with its tokenizer)")
    p.add_argument("--adapter", default=None, help="PEFT/LoRA adapter directory to apply")
    p.add_argument("--tokenizer", default=None, help="tokenizer path if it is not beside the model")
    p.add_argument("--name", default=None, help="model name reported by the API (default: the model argument)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--max-new-tokens", type=int, default=256, help="default max_tokens of a request")
    p.add_argument("--batch-size", type=int, default=32, help="most requests answered by one generate call")
    p.add_argument("--batch-window-ms", type=float, default=5.0, help="wait this long to gather a batch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from leap_gym.agents.student import HFStudent

    if args.threads:
        torch.set_num_threads(args.threads)
    student = HFStudent(args.model, args.tokenizer, adapter=args.adapter, device=args.device, dtype=args.dtype,
                        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=None)
    app = build_app(student, args.name or args.model, batch_window_ms=args.batch_window_ms)
    print(f"leap-gym serve: {args.name or args.model} on http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leap-gym")
    add_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
