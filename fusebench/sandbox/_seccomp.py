"""A seccomp filter for the model's process: no new Unix sockets (so no host socket file can be reached).

Denied with EACCES: socket(AF_UNIX, ...), socketpair() of any type but SOCK_STREAM (a datagram pair could
sendto() a host socket path), io_uring_setup (io_uring creates sockets without the socket syscall), and every
syscall of another ABI (i386, x32: their socket numbers differ). The network namespace already has no interface,
so other address families reach nothing. Chosen over private tmpfs mounts of /tmp, /run, ...: a socket file may
live anywhere on the host (a home or work directory too), and connect() ignores read-only mounts; a filter on
socket creation covers them all. Standard library only (loaded by `_runner`).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000 | errno.EACCES
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_AND = 0x54  # BPF_ALU | BPF_AND | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
AF_UNIX = 1
SOCK_STREAM = 1
# machine -> (audit arch, socket, socketpair, io_uring_setup, lowest syscall number of a foreign ABI or None)
_ARCHES = {
    "x86_64": (0xC000003E, 41, 53, 425, 0x40000000),
    "aarch64": (0xC00000B7, 198, 199, 425, None),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def program(machine: str) -> bytes:
    """The BPF program for `machine` (KeyError if unsupported)."""
    arch, sock, pair, uring, foreign = _ARCHES[machine]
    deny, allow = _insn(_RET, 0, 0, _RET_ERRNO), _insn(_RET, 0, 0, _RET_ALLOW)
    head = [_insn(_LD_ABS, 0, 0, 4), _insn(_JEQ, 1, 0, arch), deny, _insn(_LD_ABS, 0, 0, 0)]
    if foreign is not None:
        head += [_insn(_JGE, 0, 1, foreign), deny]
    body = [
        _insn(_JEQ, 0, 4, sock),  # socket: deny AF_UNIX
        _insn(_LD_ABS, 0, 0, 16),  # args[0], low 32 bits (little endian)
        _insn(_JEQ, 0, 1, AF_UNIX),
        deny,
        allow,
        _insn(_JEQ, 0, 5, pair),  # socketpair: only SOCK_STREAM (flags masked off)
        _insn(_LD_ABS, 0, 0, 24),  # args[1]
        _insn(_AND, 0, 0, 0xF),
        _insn(_JEQ, 1, 0, SOCK_STREAM),
        deny,
        allow,
        _insn(_JEQ, 0, 1, uring),
        deny,
        allow,
    ]
    return b"".join(head + body)


_PROGRAM = program(platform.machine()) if platform.machine() in _ARCHES else None  # built once, in the fork server


class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install(libc: ctypes.CDLL) -> bool:
    """Set no_new_privs (no setuid gain through exec) and install the filter; False if the filter is refused."""
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    if _PROGRAM is None:
        return False
    prog = _Fprog(len(_PROGRAM) // 8, _PROGRAM)
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0
