"""``OpenAIChat``: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, SGLang,
``leap-gym serve``).

Built for long teacher/baseline runs that must survive rate limits and interruptions:

- retries with exponential backoff and jitter on 429, 5xx, timeouts, connection errors and malformed JSON
  (``Retry-After`` honoured, capped); other 4xx fail at once with the server's message;
- a cap on concurrent requests shared by all threads (``chat_many`` fans out over a thread pool);
- token and cost accounting (``usage``), with cache hits counted apart because they cost nothing;
- an on-disk cache keyed by the request (endpoint, model, messages, sampling parameters; never the API key),
  written atomically, so re-running an interrupted job replays paid answers instead of buying them again;
  a caller that cannot use an answer ``forget``s it, so a re-run asks again instead of replaying the failure;
- tolerant reading of what servers really send: message content as a list of parts (the text parts are
  joined), ``usage`` counts that are missing or not integers (counted as 0, never an error after a paid
  reply).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from leap_gym.io import atomic_write_json

# USD per 1M (prompt, completion) tokens: OpenAI list prices for the models the LEAP paper used.
# Pass ``prices=`` for anything else (a model missing here is accounted at 0, with a warning unless the
# endpoint is local).
KNOWN_PRICES_PER_1M: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
}

RETRY_STATUS = frozenset({408, 429}) | frozenset(range(500, 600))


class BackendError(RuntimeError):
    """A request that failed for good (non-retryable status, or retries exhausted); carries the last
    status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class ChatResult:
    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    response: dict[str, Any] = field(default_factory=dict, repr=False)
    cache_key: str | None = field(default=None, repr=False)  # what ``OpenAIChat.forget`` removes


@dataclass
class Usage:
    requests: int = 0  # answered by the server
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0  # paid (server) tokens only
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    cost: float = 0.0  # USD, server answers only

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class OpenAIChat:
    """Client for one model behind an OpenAI-compatible endpoint.

    ``base_url`` ends before ``/chat/completions`` (e.g. ``http://127.0.0.1:8000/v1``). The API key comes from
    the environment variable ``api_key_env`` (never stored in the cache or in results); endpoints that need no
    key (local servers) work without it. Default sampling parameters (``temperature``, ``max_tokens``, ...) go
    in ``params`` and can be overridden per call.
    """

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1", *,
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 60.0, max_retries: int = 6,
                 backoff: float = 1.0, max_backoff: float = 60.0, max_concurrency: int = 8,
                 cache_dir: str | os.PathLike | None = None, prices: tuple[float, float] | None = None,
                 headers: dict[str, str] | None = None, **params: Any):
        try:
            import httpx
        except ImportError as e:  # pragma: no cover - depends on the install
            raise ImportError("OpenAIChat needs httpx: pip install 'leap-gym[serve]'") from e
        self.model, self.base_url = model, base_url.rstrip("/")
        self.max_retries, self.backoff, self.max_backoff = max_retries, backoff, max_backoff
        self.max_concurrency = max(1, int(max_concurrency))
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.params = {"temperature": 0.0, **params}
        self.prices = prices if prices is not None else KNOWN_PRICES_PER_1M.get(model)
        if self.prices is None and urlsplit(self.base_url).hostname not in ("127.0.0.1", "localhost", "::1"):
            warnings.warn(f"no price known for model {model!r}: cost is accounted as 0 (pass prices=)",
                          stacklevel=2)
        self.prices = self.prices or (0.0, 0.0)
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            hdrs["Authorization"] = f"Bearer {key}"
        self._httpx = httpx
        self._client = httpx.Client(timeout=httpx.Timeout(timeout), headers=hdrs,
                                    limits=httpx.Limits(max_connections=self.max_concurrency))
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()
        self.usage = Usage()

    # -- public ----------------------------------------------------------------------------------------------
    def chat(self, messages: Sequence[dict[str, str]], **params: Any) -> ChatResult:
        """One chat completion; served from the cache when this exact request was answered before."""
        merged = {k: v for k, v in {**self.params, **params}.items() if v is not None}  # None: server default
        if merged.get("stream"):
            raise ValueError("OpenAIChat reads whole responses: stream=True is not supported (the openai "
                             "client streams)")
        body = {"model": self.model, "messages": [dict(m) for m in messages], **merged}
        key = self.cache_key(body)
        cached = self._cache_get(key)
        if cached is not None:
            result = self._result(cached, cached=True, key=key)
            with self._lock:
                self.usage.cache_hits += 1
                self.usage.cached_prompt_tokens += result.prompt_tokens
                self.usage.cached_completion_tokens += result.completion_tokens
            return result
        response = self._post_with_retries(body)
        result = self._result(response, cached=False, key=key)
        with self._lock:
            self.usage.requests += 1
            self.usage.prompt_tokens += result.prompt_tokens
            self.usage.completion_tokens += result.completion_tokens
            self.usage.cost += result.cost
        self._cache_put(key, body, response)
        return result

    def chat_many(self, conversations: Sequence[Sequence[dict[str, str]]], **params: Any) -> list[ChatResult]:
        """Many chats in parallel (at most ``max_concurrency`` in flight), results in input order."""
        if not conversations:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            return list(pool.map(lambda msgs: self.chat(msgs, **params), conversations))

    def forget(self, result: ChatResult) -> None:
        """Drop ``result`` from the cache: a reply the caller could not use must not be replayed by a
        re-run."""
        path = self._cache_path(result.cache_key) if result.cache_key else None
        if path is not None:
            path.unlink(missing_ok=True)

    def cache_key(self, body: dict[str, Any]) -> str:
        payload = json.dumps({"base_url": self.base_url, **body}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChat:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------
    def _result(self, response: dict[str, Any], cached: bool, key: str | None = None) -> ChatResult:
        choice = response["choices"][0]
        usage = response.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        pt, ct = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        cost = 0.0 if cached else (pt * self.prices[0] + ct * self.prices[1]) / 1e6
        finish = choice.get("finish_reason")
        return ChatResult(text=message_text(choice["message"].get("content")),
                          finish_reason=finish if isinstance(finish, str) else None, prompt_tokens=pt,
                          completion_tokens=ct, cost=cost, cached=cached, response=response, cache_key=key)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass
        return min(self.backoff * 2 ** attempt, self.max_backoff) * random.uniform(0.5, 1.0)

    def _post_with_retries(self, body: dict[str, Any]) -> dict[str, Any]:
        httpx = self._httpx
        url = f"{self.base_url}/chat/completions"
        last = "no attempt made"
        status: int | None = None
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                with self._slots:
                    resp = self._client.post(url, json=body)
                status = resp.status_code
                if status == 200:
                    data = _parse_completion(resp.content)
                    if data is not None:
                        return data
                    last = f"malformed response body: {resp.text[:200]!r}"
                elif status in RETRY_STATUS:
                    retry_after = resp.headers.get("retry-after")
                    last = f"HTTP {status}: {resp.text[:200]}"
                else:
                    raise BackendError(f"{url}: HTTP {status}: {resp.text[:500]}", status)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                status, last = None, f"{type(e).__name__}: {e}"
            if attempt < self.max_retries:
                with self._lock:
                    self.usage.retries += 1
                time.sleep(self._delay(attempt, retry_after))
        raise BackendError(f"{url}: giving up after {self.max_retries + 1} attempts; last error: {last}",
                           status)

    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        path = self._cache_path(key)
        if path is None or not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            response = entry["response"]
            if _parse_completion(json.dumps(response).encode()) is None:
                raise ValueError("not a chat completion")
            return response
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            warnings.warn(f"ignoring unreadable cache entry {path} ({e}); it will be replaced", stacklevel=3)
            return None

    def _cache_put(self, key: str, body: dict[str, Any], response: dict[str, Any]) -> None:
        path = self._cache_path(key)
        if path is not None:
            atomic_write_json(path, {"request": {"base_url": self.base_url, **body}, "response": response},
                              indent=None)


def _count(value: Any) -> int:
    """A token count as servers send it (int, float, numeric string); anything else counts 0."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


def message_text(content: Any) -> str:
    """A message's text: a string as is; a list of content parts (``{"type": "text", "text": ...}``, or bare
    strings) joined; nothing (``None``, a refusal) as ``""``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p if isinstance(p, str) else str(p.get("text") or "") for p in content
                       if isinstance(p, str) or (isinstance(p, dict) and isinstance(p.get("text", ""), str)))
    return ""


def _parse_completion(content: bytes) -> dict[str, Any] | None:
    """The response JSON if it has the chat-completion shape, else ``None`` (treated as a transient
    failure)."""
    try:
        data = json.loads(content)
        choice = data["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(choice, dict) or not isinstance(message, dict):
        return None
    if not isinstance(message.get("content"), (str, list, type(None))):
        return None
    return data
