"""A backend for any OpenAI-compatible `/chat/completions` endpoint (remote APIs, vLLM, `transformers serve`).

Requests run on an asyncio loop in a background thread, at most `concurrency` at a time; `generate()` yields each
Completion as soon as its request finishes. Transient failures (429, 5xx, timeouts, dropped connections, truncated
JSON) are retried with exponential backoff and jitter, honouring `Retry-After`. A request that still fails after
`max_retries` retries, or fails with a non-retryable status (e.g. 400, 401), is yielded as a Completion with
finish_reason="error" and meta["error"] = a short reason: the harness stores it, and a rerun retries it.

params.n > 1 sends n requests per conversation (each seeded by base.sample_seed from the run seed, the
conversation and the sample index) rather than the API's `n` field, which many servers ignore; each sample is then
retried on its own.

The API key is read from the environment variable named by `api_key_env` when `generate()` runs; it is never kept
on the backend, and it is scrubbed from every error reason.

The fingerprint holds the model name and endpoint host only: an API does not say which weights revision serves
the name, so a cache key cannot tell a silently updated remote model apart.

A prefill (a final assistant message) is sent with `continue_final_message: true, add_generation_prompt: false`, the
parameters vLLM's server takes for it. The no-system marker is dropped: the server's template renders its own
default system turn, if it has one (a server-side template cannot be told to cut it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import queue
import random
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from fusebench.backends.base import (
    Completion,
    Conversation,
    GenParams,
    TokenCallback,
    TokenLogprob,
    sample_seed,
)
from fusebench.backends.conventions import messages_of, prefill_of
from fusebench.errors import UsageError
from fusebench.keys import SAMPLER_FIELD

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 600.0
SAMPLER_VERSION = "prompt-seeded-1"  # the server's sampler, each request seeded from its conversation (sample_seed)
_DONE = object()


@dataclass(frozen=True)
class _Attempt:
    """The outcome of one HTTP attempt: a parsed body, or a reason plus whether to retry and when."""

    body: dict[str, Any] | None = None
    reason: str = ""
    retryable: bool = False
    retry_after_s: float | None = None


class OpenAIBackend:
    """Chat completions from an OpenAI-compatible HTTP API."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 120,
        max_retries: int = 6,
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise UsageError("openai backend: base_url must be an http(s) URL such as http://127.0.0.1:8000/v1")
        if parts.username or parts.password:
            raise UsageError("openai backend: put credentials in the env var named by api_key_env, not in base_url")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise UsageError(f"openai backend: environment variable {api_key_env} (the API key) is not set")
        if concurrency < 1 or timeout_s <= 0 or max_retries < 0:
            raise UsageError("openai backend: concurrency >= 1, timeout_s > 0 and max_retries >= 0 are required")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._endpoint = parts.hostname + (f":{parts.port}" if parts.port else "")

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, endpoint={self._endpoint!r}, concurrency={self.concurrency})"

    def fingerprint(self) -> dict[str, str]:
        """Model name, backend and endpoint host; the served weights revision is unknown to the client."""
        return {"model": self.model, "backend": self.name, "endpoint": self._endpoint, SAMPLER_FIELD: SAMPLER_VERSION}

    def describe(self) -> dict[str, Any]:
        """Engine details recorded with a run (no credentials)."""
        return {
            "backend": self.name,
            "model": self.model,
            "endpoint": self._endpoint,
            "aiohttp": aiohttp.__version__,
            "concurrency": self.concurrency,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "served_revision": "unknown",
        }

    def backoff_s(self, retry: int) -> float:
        """Delay before retry number `retry` (0-based): base * 2**retry, capped, times a jitter in [0.5, 1]."""
        return min(self.backoff_max_s, self.backoff_base_s * 2**retry) * random.uniform(0.5, 1.0)

    def request_body(self, conv: Conversation, params: GenParams, sample: int) -> dict[str, Any]:
        """The JSON body for one sample of one conversation."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages_of(conv),
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": sample_seed(params.seed, json.dumps(conv, sort_keys=True), sample, bits=31),
            "n": 1,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if prefill_of(conv) is not None:  # vLLM server's names: continue the last message
            body.update(continue_final_message=True, add_generation_prompt=False)
        if params.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = params.logprobs
        return body

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: TokenCallback | None = None
    ) -> Generator[Completion, None, None]:
        """Yield params.n Completions per conversation, in completion order; failures come back as errors. Each
        answer's tokens go to `on_tokens` as it arrives."""
        if not convs:
            return
        api_key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        results: queue.Queue[Any] = queue.Queue()
        loop = asyncio.new_event_loop()
        task = loop.create_task(self._run_all(convs, params, api_key, results))

        def run() -> None:
            try:
                loop.run_until_complete(task)
            except asyncio.CancelledError:
                pass
            except BaseException as exc:  # surfaced in the consumer's thread
                results.put(exc)
            finally:
                loop.close()
                results.put(_DONE)

        thread = threading.Thread(target=run, name="openai-backend", daemon=True)
        thread.start()
        try:
            while (item := results.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                if on_tokens is not None:
                    on_tokens(item.completion_tokens, max(0, params.max_new_tokens - item.completion_tokens))
                yield item
        finally:
            if thread.is_alive():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(task.cancel)
            thread.join()

    async def _run_all(
        self, convs: Sequence[Conversation], params: GenParams, api_key: str, results: queue.Queue[Any]
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        semaphore = asyncio.Semaphore(self.concurrency)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:

            async def one(index: int, sample: int) -> None:
                body = self.request_body(convs[index], params, sample)
                results.put(await self._request(session, semaphore, body, index, sample, api_key))

            await asyncio.gather(*(one(i, j) for i in range(len(convs)) for j in range(params.n)))

    async def _request(
        self,
        session: aiohttp.ClientSession,
        semaphore: asyncio.Semaphore,
        body: dict[str, Any],
        index: int,
        sample: int,
        api_key: str,
    ) -> Completion:
        start = time.monotonic()
        attempt = _Attempt()
        for retry in range(self.max_retries + 1):
            async with semaphore:
                attempt = await self._attempt(session, body)
            if attempt.body is not None:
                return _parse(attempt.body, index, sample, retry + 1, time.monotonic() - start)
            if not attempt.retryable or retry == self.max_retries:
                break
            delay = attempt.retry_after_s if attempt.retry_after_s is not None else self.backoff_s(retry)
            await asyncio.sleep(delay)
        reason = attempt.reason if not api_key else attempt.reason.replace(api_key, "***")
        if attempt.retryable:
            reason = f"gave up after {self.max_retries + 1} attempts: {reason}"
        meta = {"sample": sample, "error": reason, "attempts": retry + 1}
        return Completion(index, "", 0, 0, "error", time.monotonic() - start, meta)

    async def _attempt(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> _Attempt:
        try:
            async with session.post(f"{self.base_url}/chat/completions", json=body) as resp:
                raw = await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except TimeoutError:
            return _Attempt(reason=f"timeout after {self.timeout_s:g} s", retryable=True)
        except aiohttp.ClientError as exc:
            return _Attempt(reason=f"connection error: {type(exc).__name__}", retryable=True)
        if status != 200:
            text = raw[:200].decode("utf-8", "replace")
            retryable = status in RETRY_STATUSES or status >= 500
            return _Attempt(
                reason=f"HTTP {status}: {text}", retryable=retryable, retry_after_s=_retry_after(retry_after)
            )
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed["choices"][0]["message"], dict):
                raise TypeError("message is not an object")
        except (ValueError, KeyError, IndexError, TypeError):
            return _Attempt(reason="malformed or truncated JSON response", retryable=True)
        return _Attempt(body=parsed)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), capped; None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _parse(body: dict[str, Any], index: int, sample: int, attempts: int, latency_s: float) -> Completion:
    choice = body["choices"][0]
    usage: dict[str, Any] = body["usage"] if isinstance(body.get("usage"), dict) else {}
    finish = choice.get("finish_reason") or "stop"
    meta = {"sample": sample, "attempts": attempts, "usage": usage, "served_model": body.get("model")}
    if body.get("system_fingerprint"):
        meta["system_fingerprint"] = body["system_fingerprint"]
    if isinstance(choice.get("logprobs"), dict) and choice["logprobs"].get("content"):
        meta["logprobs"] = [
            asdict(
                TokenLogprob(
                    t["token"],
                    float(t["logprob"]),
                    {a["token"]: float(a["logprob"]) for a in t.get("top_logprobs") or []},
                )
            )
            for t in choice["logprobs"]["content"]
        ]
    return Completion(
        index=index,
        text=choice["message"].get("content") or "",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=finish,
        latency_s=latency_s,
        meta=meta,
    )
