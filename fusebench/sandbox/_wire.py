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
from typing import Any

MAX_MESSAGE = 64 << 20  # bytes of one framed message
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


def encode(value: Any, depth: int = 0) -> list[Any]:
    """`value` as a tagged JSON tree; subclasses of plain types are reduced to their plain base type."""
    if depth > 200:
        raise NotPlainData("nested more than 200 levels")
    if value is None:
        return ["n"]
    kind = _base_of(value)
    if kind is None:
        raise NotPlainData(f"not plain data: {type(value).__name__}")
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
    if kind is bytes:
        return ["y", base64.b64encode(bytes(value)).decode()]
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
    if depth > 200 or not isinstance(tree, list) or not tree or not isinstance(tree[0], str):
        raise ValueError("malformed value")
    tag, rest = tree[0], tree[1:]
    if tag == "n" and not rest:
        return None
    if len(rest) == 1:
        (payload,) = rest
        if tag == "b" and isinstance(payload, bool):
            return payload
        if tag == "i" and isinstance(payload, str):
            return int(payload, 16)
        if tag == "f" and isinstance(payload, str):
            return float.fromhex(payload)
        if tag == "s" and isinstance(payload, str):
            return payload
        if tag == "y" and isinstance(payload, str):
            return base64.b64decode(payload, validate=True)
        if tag in _BUILD and isinstance(payload, list):
            items = [decode(v, depth + 1) for v in payload]
            return _BUILD[tag](_hashable(v) for v in items) if tag in "SF" else _BUILD[tag](items)
        if tag == "d" and isinstance(payload, list):
            out = {}
            for pair in payload:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ValueError("malformed dict item")
                out[_hashable(decode(pair[0], depth + 1))] = decode(pair[1], depth + 1)
            return out
    if tag == "c" and len(rest) == 2 and all(isinstance(p, str) for p in rest):
        return complex(float.fromhex(rest[0]), float.fromhex(rest[1]))
    raise ValueError(f"malformed value with tag {tag!r}")


def dumps(value: Any) -> str:
    return json.dumps(encode(value), separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Strict parse: tagged JSON only (no NaN/Infinity literals: floats travel as hex text)."""
    return decode(json.loads(text, parse_constant=_no_constant))


def _no_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not allowed")


def send(sock: socket.socket, message: Any) -> None:
    """One framed message (a JSON document whose values are tagged trees)."""
    body = json.dumps(message, separators=(",", ":")).encode()
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
