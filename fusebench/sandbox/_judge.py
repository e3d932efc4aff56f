"""The judge of split checks: a trusted process in which no untrusted code ever runs.

Each slot's fork server forks it first, before any program ran (so it inherits nothing of theirs); it runs as the
server's uid (not the model's), is not dumpable (no ptrace, no /proc/PID/mem by the model's process), and serves
jobs for the server's lifetime (`serve_jobs`). A job comes from the harness on the judge's own socket: a file with
the tests (and the dataset's helper code) and the judge's end of a fresh channel to the model's process, neither
ever held by that process. The judge binds each name the tests call in the model's code to a `Proxy` that forwards
the call over the channel and runs the tests itself in a fresh namespace. Return values come back as plain data
rebuilt by `_wire.decode`; an exception raised by the model's code comes back as the builtin exception it derives
from. So the assertions, their values and the verdict are computed here, out of reach of the model's frames, gc,
trace hooks, module globals and descriptors; the verdict goes back to the harness on the judge's socket.
Standard library only (loaded by `_runner`).
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import socket
import traceback
from typing import Any

import _wire  # type: ignore[import-not-found]  # loaded by _runner from this directory


class Broken(BaseException):
    """The channel to the model's process is unusable (BaseException: tests that catch Exception do not hide it)."""


class ModelGone(Broken):
    """The model's process ended (or closed the channel) before answering."""


class CallTimeout(Broken):
    """A call with a per-call time limit got no answer in time."""


class SolutionFailed(BaseException):
    """The model's code raised while it ran, before answering anything: `exc` is what it raised."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(exc)
        self.exc = exc


class ProtocolError(Broken):
    """The model's process answered something that is not a well-formed reply."""


def _rebuild(name: Any, message: Any, err: Any) -> BaseException:
    """The builtin exception the model's code raised (RuntimeError when it names no builtin exception class)."""
    cls = getattr(builtins, name, None) if isinstance(name, str) else None
    text = message if isinstance(message, str) else ""
    if not (isinstance(cls, type) and issubclass(cls, Exception)) and cls is not SystemExit:
        return RuntimeError(f"{name}: {text}" if isinstance(name, str) else text)
    try:
        if issubclass(cls, OSError) and isinstance(err, int):
            return cls(err, text)
        return cls(text)
    except Exception:
        return RuntimeError(f"{name}: {text}")


class Candidate:
    """The judge's end of the channel: calls into the model's process, with plain data both ways."""

    def __init__(self, chan: socket.socket) -> None:
        self.chan = chan
        self.calls = 0
        self.mutated = 0
        self.records: list[Any] = []
        self._broken: Broken | None = None
        self._timeout: float | None = None  # the channel's current timeout (a new socket blocks)
        self._ready = False

    def _exchange(self, request: dict[str, Any] | None, timeout: float | None) -> list[Any] | None:
        """Send `request` (if any) and return the reply. Until the model's "ready" has been read, the request
        goes out first and "ready" (or what its code raised: SolutionFailed) is read before the reply, so the
        start costs no round trip of its own."""
        if self._broken is not None:
            raise type(self._broken)(*self._broken.args)
        if timeout != self._timeout:
            self.chan.settimeout(timeout)
            self._timeout = timeout
        try:
            if request is not None:
                try:
                    _wire.send(self.chan, request)
                except OSError:
                    if self._ready:
                        raise  # before "ready", the model's process may have ended after saying why: read that
            if not self._ready:
                self._take_ready(_wire.recv(self.chan))
            if request is None:
                return None
            reply = _wire.recv(self.chan)
        except TimeoutError:
            self._broken = CallTimeout(f"no answer within {timeout:g} s")
        except (_wire.ChannelClosed, OSError) as exc:
            self._broken = ModelGone(f"the model's process ended before answering ({exc})")
        except ValueError as exc:
            self._broken = ProtocolError(f"malformed reply: {exc}")
        else:
            if isinstance(reply, list) and reply and isinstance(reply[0], str):
                return reply
            self._broken = ProtocolError("malformed reply")
        raise self._broken

    def _take_ready(self, first: Any) -> None:
        if first == ["ready"]:
            self._ready = True
            return
        self._broken = ModelGone("the model's code failed")
        if isinstance(first, list) and len(first) == 4 and first[0] == "raise":
            raise SolutionFailed(_rebuild(*first[1:]))
        self._broken = ProtocolError("malformed first reply")
        raise self._broken

    def ready(self) -> None:
        """Wait until the model's code has run; SolutionFailed with what it raised."""
        self._exchange(None, None)

    def _value(self, request: dict[str, Any], timeout: float | None) -> Any:
        self.calls += 1
        reply = self._exchange(request, timeout)
        assert reply is not None
        if reply[0] == "ok" and len(reply) == 3 and isinstance(reply[2], bool):
            try:
                value = _wire.decode(reply[1])
            except (ValueError, RecursionError) as exc:
                self._broken = ProtocolError(f"malformed value: {exc}")
                raise self._broken from None
            self.mutated += reply[2]
            return value
        if reply[0] == "raise" and len(reply) == 4:
            raise _rebuild(*reply[1:])
        if reply[0] == "error" and len(reply) == 2:
            raise _wire.NotPlainData(f"the return value is {str(reply[1])[:200]}")
        self._broken = ProtocolError("malformed reply")
        raise self._broken

    def call(
        self,
        name: str,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        method: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """`name(*args, **kwargs)` in the model's namespace (`name().method(...)` with `method`)."""
        request = {
            "op": "call", "name": name, "method": method,
            "args": _wire.encode(list(args)), "kwargs": _wire.encode(dict(kwargs or {})),
        }  # fmt: skip
        return self._value(request, timeout)

    def kinds(self, names: list[str]) -> dict[str, str]:
        """What each name is in the model's namespace: "class", "callable", "value" or "missing"."""
        kinds = self._value({"op": "kinds", "names": list(names)}, None)
        if not isinstance(kinds, dict) or set(kinds) != set(names):
            raise ProtocolError("malformed kinds")
        return kinds

    def script(self, stdin: str, timeout: float | None = None) -> str:
        """The model's program run as __main__ on `stdin`: its standard output."""
        out = self._value({"op": "script", "stdin": stdin}, timeout)
        if not isinstance(out, str):
            raise ProtocolError("a script's output must be text")
        return out

    def record(self, value: Any) -> None:
        """Keep `value` (plain data) for the harness: the verdict's `records`."""
        self.records.append(_wire.encode(value))

    @staticmethod
    def loads(text: str) -> Any:
        """Plain data from tagged JSON text (e.g. test inputs and expected outputs embedded in the tests)."""
        return _wire.loads(text)


Candidate.CallTimeout = CallTimeout  # type: ignore[attr-defined]  # for tests: `except _fb.CallTimeout`


class Proxy:
    """Stands for a function of the model's code in the tests: calling it calls that function over the channel."""

    def __init__(self, candidate: Candidate, name: str) -> None:
        self._candidate, self.__name__ = candidate, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._candidate.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<the model's {self.__name__}>"


def failed_line(tb: traceback.StackSummary, filename: str, source: str) -> str | None:
    lines = source.splitlines()
    for frame in reversed(tb):
        if frame.filename == filename and frame.lineno and 0 < frame.lineno <= len(lines):
            return lines[frame.lineno - 1].strip()
    return None


def verdict_for(exc: BaseException, stage: str, tests: str) -> dict[str, Any]:
    """The failure verdict for an exception raised while running `stage` ("solution" or "tests")."""
    tb = traceback.extract_tb(exc.__traceback__)
    kind = f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__
    if isinstance(exc, SystemExit):
        return {"status": "failed", "reason": f"SystemExit({exc.code!r}) in {stage} before the tests finished"}
    if isinstance(exc, MemoryError):
        return {"status": "memory", "reason": f"MemoryError in {stage}"}
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return {"status": "sandbox_violation", "reason": f"file-size limit exceeded (output or file) in {stage}"}
    if isinstance(exc, PermissionError):
        return {"status": "sandbox_violation", "reason": f"{kind} (in {stage})"}
    verdict: dict[str, Any] = {"status": "failed", "reason": f"{kind} (in {stage})"}
    if isinstance(exc, ModelGone):
        verdict["ended"] = True  # the harness names the cause from the model's exit status
    if stage == "tests":
        verdict["failed_test"] = failed_line(tb, "<tests>", tests)
    return verdict


def _check(job: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """Run one job. The helpers run and the tests compile while the model's code is still starting."""
    tests = job["tests"]
    env: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "_fb": candidate}
    try:
        exec(compile(job["helpers"], "<helpers>", "exec"), env)
    except BaseException as exc:
        return {"status": "crashed", "reason": f"the dataset's helper code failed: {type(exc).__name__}: {exc}"}
    for name in job["calls"]:
        env[name] = Proxy(candidate, name)
    try:
        code = compile(tests, "<tests>", "exec")
    except BaseException as exc:
        return {"status": "crashed", "reason": f"the tests do not compile: {type(exc).__name__}: {exc}"}
    try:
        exec(code, env)  # its first call also waits for the model's code to have run
        candidate.ready()  # tests that call nothing still need the code to have run without error
    except SolutionFailed as failed:
        return verdict_for(failed.exc, "solution", tests)
    except BaseException as exc:
        return verdict_for(exc, "tests", tests)
    return {"status": "passed", "reason": ""}


def serve_jobs(ctrl: socket.socket) -> None:
    """The judge's loop: its pid first, then for each job (a file with the tests and the judge's end of the
    channel, as descriptors from the harness) the verdict as one framed JSON message, until the harness leaves."""
    _wire.send(ctrl, os.getpid())
    while True:
        _, fds, _, _ = socket.recv_fds(ctrl, 1, 2)
        if len(fds) != 2:
            return
        with os.fdopen(fds[0], "rb") as fh:
            job = json.loads(fh.read())
        with socket.socket(fileno=fds[1]) as chan:
            candidate = Candidate(chan)
            verdict = _check(job, candidate)
        verdict.update(calls=candidate.calls, mutated=candidate.mutated, records=["l", candidate.records])
        _wire.send(ctrl, verdict)
