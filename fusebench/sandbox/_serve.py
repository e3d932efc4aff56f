"""The model's side of a split check, run in the sandboxed process: run the model's code, then answer the judge's
calls over the channel with plain data (`_wire`). Nothing here is trusted: the model's code can rewrite any of it,
and all it can change is the bytes it sends, which the judge parses itself.

Requests: {"op": "call", "name", "method", "args", "kwargs"} calls `name` (or `name().method`) of the model's
namespace; {"op": "kinds", "names"} says what each name is; {"op": "script", "stdin"} runs the code as `__main__`
with that standard input and answers its standard output. Replies: ["ready"], ["ok", value, args_mutated],
["raise", builtin exception name, message, errno], ["error", why the value cannot be sent].
"""

from __future__ import annotations

import builtins
import contextlib
import os
import socket
import sys
import threading
from typing import Any

import _wire  # type: ignore[import-not-found]  # loaded by _runner from this directory


def _raised(exc: BaseException) -> list[Any]:
    base = next(c for c in type(exc).__mro__ if c.__module__ == "builtins")
    err = exc.errno if isinstance(exc, OSError) else None
    message = str(exc)[:2000] if not isinstance(exc, SystemExit) else repr(exc.code)[:200]
    return ["raise", base.__name__, message, err]


def _kind(env: dict[str, Any], name: str) -> str:
    if name not in env:
        return "missing"
    obj = env[name]
    return "class" if isinstance(obj, type) else "callable" if callable(obj) else "value"


def _run_script(code: Any, stdin_text: str) -> str:
    """Run compiled `code` as __main__ with `stdin_text` on fd 0 / sys.stdin; its fd-1 output, as text."""
    with open("stdin.txt", "w", encoding="utf-8") as fh:
        fh.write(stdin_text)
    in_fd = os.open("stdin.txt", os.O_RDONLY)
    out_fd = os.open("stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.stdout.flush()
    saved = (os.dup(0), os.dup(1), sys.stdin, sys.stdout)
    os.dup2(in_fd, 0)
    os.dup2(out_fd, 1)
    os.close(in_fd)
    os.close(out_fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    try:
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
        for thread in threading.enumerate():
            if thread is not threading.current_thread():
                thread.join()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            raise RuntimeError(f"exit status {exc.code!r}") from None
    finally:
        with contextlib.suppress(Exception):  # the program may have closed its stdout
            sys.stdout.flush()
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        os.close(saved[0])
        os.close(saved[1])
        sys.stdin, sys.stdout = saved[2], saved[3]
    with open("stdout.txt", encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _answer(env: dict[str, Any], code: Any, req: dict[str, Any]) -> list[Any]:
    op = req.get("op")
    if op == "kinds":
        return ["ok", _wire.encode({n: _kind(env, n) for n in req["names"]}), False]
    if op == "script":
        return ["ok", _wire.encode(_run_script(code, req["stdin"])), False]
    name = req["name"]
    if name not in env:
        raise NameError(f"name {name!r} is not defined")
    target = env[name]
    if req.get("method"):
        target = getattr(target(), req["method"])
    args, kwargs = _wire.decode(req["args"]), _wire.decode(req["kwargs"])
    out = target(*args, **kwargs)
    try:
        value = _wire.encode(out)
    except (_wire.NotPlainData, RecursionError) as exc:
        return ["error", str(exc) if isinstance(exc, _wire.NotPlainData) else "nested too deeply"]
    mutated = _wire.encode(args) != req["args"] or _wire.encode(kwargs) != req["kwargs"]
    return ["ok", value, mutated]


def _send(chan: socket.socket, reply: list[Any]) -> None:
    """Flush what the code printed (the process is killed once the judge is done), then reply."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # the code may have replaced or closed its streams
            stream.flush()
    _wire.send(chan, reply)


def serve(source: str, chan: socket.socket, script: bool) -> None:
    """Run the model's code (or only compile it, for a script), report ready, then answer calls until EOF."""
    env: dict[str, Any] = {"__name__": "__solution__", "__builtins__": builtins}
    code = None
    try:
        code = compile(source, "<solution>", "exec")
        if not script:
            exec(code, env)
    except BaseException as exc:
        _send(chan, _raised(exc))
        return
    _send(chan, ["ready"])
    while True:
        try:
            req = _wire.recv(chan)
        except _wire.ChannelClosed:
            return
        try:
            reply = _answer(env, code, req)
        except BaseException as exc:
            reply = _raised(exc)
        _send(chan, reply)
