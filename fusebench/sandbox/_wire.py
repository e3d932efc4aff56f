"""Plain data on the channel between the model's process and the judge: tagged JSON, never pickle.

A value is a JSON array `[tag, payload]`: "n" None, "b" bool, "i" int (hex text, any size), "f" float
(`float.hex`, so nan and +-inf survive exactly), "c" complex (two float hex texts), "s" str, "y" bytes (base64),
"l" list, "t" tuple, "d" dict (list of [key, value] pairs), "S" set, "F" frozenset. `decode` builds only these
exact builtin types and rejects anything else, so no object of the model's process (or its `__eq__`) can reach the
judge. Messages are framed by an 8-byte length and capped. This file imports only the standard library: the
sandbox's fork server loads it before any site-packages are visible.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
from typing import Any

MAX_MESSAGE = 64 << 20  # bytes of one framed message
MAX_ITEMS = MAX_MESSAGE // 8  # container items in one value (each takes at least 8 bytes of JSON)
_budget = threading.local()  # .left: container items left for the value being encoded (per thread)
_CONTAINERS: dict[type, str] = {list: "l", tuple: "t", set: "S", frozenset: "F"}
_BUILD = {"l": list, "t": tuple, "S": set, "F": frozenset}


class NotPlainData(TypeError):
    """A value that is not plain data (numbers, str, bytes, bool, None and containers of those)."""


class ChannelClosed(EOFError):
    """The other end of the channel is gone."""


def _base_of(value: Any) -> type | None:
    """The plain builtin type `value` is an instance of (subclasses such as namedtuple or Counter included)."""
    for kind in (bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset):
        if isinstance(value, kind):
            return kind
    return None


def _scalar(kind: type, value: Any) -> list[Any]:
    if kind is bool:
        return ["b", bool(value)]
    if kind is int:
        return ["i", format(int.__index__(value), "x")]
    if kind is float:
        return ["f", float.hex(float.__float__(value))]
    if kind is complex:
        c = complex(value)
        return ["c", float.hex(c.real), float.hex(c.imag)]
    if kind is str:
        return ["s", str.__str__(value)]
    return ["y", base64.b64encode(bytes(value)).decode()]


def encode(value: Any, depth: int = 0) -> list[Any]:
    """`value` as a tagged JSON tree; subclasses of plain types are reduced to their plain base type. NotPlainData
    for anything else, and for values that could not fit in one message (checked as it goes, so a huge value
    fails fast instead of being encoded first)."""
    if depth == 0:
        _budget.left = MAX_ITEMS
    kind = type(value)
    if kind is str:  # the common exact types first
        if len(value) > MAX_MESSAGE:
            raise NotPlainData("too large for the channel")
        return ["s", value]
    if kind is int:
        return ["i", format(value, "x")]
    if kind is float:
        return ["f", value.hex()]
    if value is None:
        return ["n"]
    if depth > 200:
        raise NotPlainData("nested more than 200 levels")
    if kind not in _CONTAINERS and kind is not dict:
        kind = _base_of(value)  # type: ignore[assignment]
        if kind is None:
            raise NotPlainData(f"not plain data: {type(value).__name__}")
        if kind not in _CONTAINERS and kind is not dict:
            return _scalar(kind, value)
    _budget.left -= len(value)
    if _budget.left < 0:
        raise NotPlainData("too large for the channel")
    if kind is dict:
        return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]]
    items: Any = kind.__iter__(value)  # type: ignore[attr-defined]  # the base type's own iteration
    return [_CONTAINERS[kind], [encode(v, depth + 1) for v in items]]


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        raise ValueError("unhashable set element or dict key") from None
    return value


def decode(tree: Any, depth: int = 0) -> Any:
    """The value a tagged JSON tree stands for; ValueError on anything malformed."""
    if type(tree) is not list or not tree or depth > 200:
        raise ValueError("malformed value")
    tag, size = tree[0], len(tree)
    if size == 2:
        payload = tree[1]
        kind = type(payload)
        if kind is str:
            if tag == "s":
                return payload
            if tag == "i":
                return int(payload, 16)
            if tag == "f":
                return float.fromhex(payload)
            if tag == "y":
                return base64.b64decode(payload, validate=True)
        elif kind is list:
            if tag in _BUILD:
                items = [decode(v, depth + 1) for v in payload]
                return _BUILD[tag](_hashable(v) for v in items) if tag in "SF" else _BUILD[tag](items)
            if tag == "d":
                out = {}
                for pair in payload:
                    if type(pair) is not list or len(pair) != 2:
                        raise ValueError("malformed dict item")
                    out[_hashable(decode(pair[0], depth + 1))] = decode(pair[1], depth + 1)
                return out
        elif kind is bool and tag == "b":
            return payload
    elif size == 1 and tag == "n":
        return None
    elif size == 3 and tag == "c" and type(tree[1]) is str and type(tree[2]) is str:
        return complex(float.fromhex(tree[1]), float.fromhex(tree[2]))
    raise ValueError(f"malformed value with tag {str(tag)[:20]!r}")


def dumps(value: Any) -> str:
    return json.dumps(encode(value))


def loads(text: str | bytes) -> Any:
    """Strict parse: tagged JSON only (no NaN/Infinity literals: floats travel as hex text)."""
    return decode(json.loads(text, parse_constant=_no_constant))


def _no_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not allowed")


def send(sock: socket.socket, message: Any) -> None:
    """One framed message (a JSON document whose values are tagged trees)."""
    body = json.dumps(message).encode()  # default arguments: json's cached C encoder
    sock.sendall(struct.pack("<Q", len(body)) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, size = [], 0
    while size < n:
        chunk = sock.recv(min(n - size, 1 << 20))
        if not chunk:
            raise ChannelClosed("the channel closed")
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def recv(sock: socket.socket) -> Any:
    """One framed message; ValueError if it is too large or not JSON."""
    (size,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes over the {MAX_MESSAGE} byte cap")
    return json.loads(_recv_exact(sock, size), parse_constant=_no_constant)
