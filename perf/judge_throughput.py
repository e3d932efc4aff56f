"""Requests/s of the OpenAI backend at concurrency 1 vs 16, against a local server.

By default the server is a stub that sleeps --latency-ms per request and returns a fixed answer: it stands in for
a remote API, where the client waits on the network and the provider, not on a local CPU. Pass --base-url and
--model to measure a real OpenAI-compatible server instead (e.g. `transformers serve`).

Prints one line per figure, then `ratio: X` = (requests/s at 16) / (requests/s at 1).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from fusebench.backends.base import GenParams
from fusebench.backends.openai import OpenAIBackend


@contextmanager
def stub_server(latency_s: float) -> Iterator[str]:
    """An OpenAI-style /v1/chat/completions on 127.0.0.1 that waits latency_s per request; yields its base URL."""

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(latency_s)
        choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        usage = {"prompt_tokens": len(str(body["messages"])) // 4, "completion_tokens": 1}
        return web.json_response({"model": body["model"], "choices": [choice], "usage": usage})

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def requests_per_s(base_url: str, model: str, concurrency: int, n_requests: int, max_tokens: int) -> float:
    """Send n_requests distinct one-turn chats; fail loudly if any comes back as an error."""
    backend = OpenAIBackend(model, base_url, concurrency=concurrency, timeout_s=300, max_retries=0)
    convs = [[{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}] for i in range(n_requests)]
    start = time.perf_counter()
    done = list(backend.generate(convs, GenParams(max_new_tokens=max_tokens)))
    elapsed = time.perf_counter() - start
    errors = [c.meta["error"] for c in done if c.finish_reason == "error"]
    if errors or len(done) != n_requests:
        raise SystemExit(f"{len(errors)} of {n_requests} requests failed, e.g. {errors[:1]}")
    return n_requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="stub server delay per request")
    parser.add_argument("--base-url", help="a real OpenAI-compatible server instead of the stub")
    parser.add_argument("--model", default="stub", help="model name sent to --base-url")
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()

    with stub_server(args.latency_ms / 1000) if args.base_url is None else _given(args.base_url) as url:
        what = f"stub server sleeping {args.latency_ms:g} ms/request (simulates a remote API)"
        print(f"server: {what if args.base_url is None else url}, {args.requests} requests")
        rates = {c: requests_per_s(url, args.model, c, args.requests, args.max_tokens) for c in (1, 16)}
    for concurrency, rate in rates.items():
        print(f"concurrency {concurrency} req/s: {rate:.1f}")
    print(f"ratio: {rates[16] / rates[1]:.2f}")


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
