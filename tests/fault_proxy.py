"""A fault-injecting HTTP proxy for tests: forwards POSTs to a real upstream, or injects a failure per request.

Raw asyncio streams (not a web framework) so it can misbehave at the socket level: drop the connection, send
truncated JSON, answer slowly. Every response closes its connection. Requests are keyed by the content of their
last message; the proxy records each attempt (time, fault) and counts intact deliveries of upstream answers.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Fault:
    """One injected failure. kind: an HTTP status ("429", "500", "503", "401", ...) | "slow" | "drop" | "truncate"."""

    kind: str
    retry_after: str | None = None  # Retry-After header value, for status faults
    delay_s: float = 0.0  # for "slow": wait this long, then forward if the client is still there
    body: str = "injected fault"


Plan = Callable[[str, int], Fault | None]  # (request key, attempt number from 0) -> a fault, or None to forward


def scripted(faults: dict[str, list[Fault]]) -> Plan:
    """A plan injecting faults[key][k] on attempt k of that key, then forwarding."""
    return lambda key, attempt: faults.get(key, [])[attempt] if attempt < len(faults.get(key, [])) else None


@dataclass
class Attempt:
    at: float  # time.monotonic() when the request arrived
    fault: str  # the injected fault kind, or "ok"


@dataclass
class FaultProxy:
    """Run with `with FaultProxy(upstream, plan) as proxy:`; point clients at proxy.base_url."""

    upstream: str  # e.g. http://127.0.0.1:8000/v1
    plan: Plan = field(default=lambda key, attempt: None)
    attempts: dict[str, list[Attempt]] = field(default_factory=lambda: defaultdict(list))
    delivered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    auth_seen: set[str] = field(default_factory=set)
    port: int = 0

    def __enter__(self) -> FaultProxy:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            self._handlers: set[asyncio.Task[None]] = set()
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await self._stop.wait()
            for task in self._handlers:  # e.g. "slow" faults still sleeping
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._session.close()

        self._loop.run_until_complete(main())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if "authorization" in headers:
                self.auth_seen.add(headers["authorization"])
            path = request_line.split()[1]
            key = _key(body)
            fault = self.plan(key, len(self.attempts[key]))
            self.attempts[key].append(Attempt(time.monotonic(), fault.kind if fault else "ok"))
            await self._respond(reader, writer, path, headers, body, key, fault)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)

    async def _respond(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        path: str,
        headers: dict[str, str],
        body: bytes,
        key: str,
        fault: Fault | None,
    ) -> None:
        if fault is not None and fault.kind.isdigit():
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            await _write(writer, int(fault.kind), fault.body.encode(), extra)
            return
        if fault is not None and fault.kind == "drop":
            writer.transport.abort()
            return
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay_s)
            if reader.at_eof():  # the client hung up (timed out): nothing to forward to
                return
        upstream_path = path.removeprefix("/v1")
        fwd = {k: v for k, v in headers.items() if k in {"authorization", "content-type"}}
        async with self._session.post(self.upstream + upstream_path, data=body, headers=fwd) as resp:
            status, payload = resp.status, await resp.read()
        if fault is not None and fault.kind == "truncate":
            payload = payload[: len(payload) // 2]
        await _write(writer, status, payload, {})
        if status == 200 and (fault is None or fault.kind == "slow"):
            self.delivered[key] += 1


def _key(body: bytes) -> str:
    try:
        return str(json.loads(body)["messages"][-1]["content"])
    except (ValueError, KeyError, IndexError, TypeError):
        return ""


async def _write(writer: asyncio.StreamWriter, status: int, payload: bytes, extra: dict[str, Any]) -> None:
    reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
    lines = [f"HTTP/1.1 {status} {reason.get(status, 'Error')}", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(payload)}", "Connection: close", *(f"{k}: {v}" for k, v in extra.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    await writer.drain()
