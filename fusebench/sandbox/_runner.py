"""In-sandbox side: a fork server (`python -S -s -P _runner.py`, root where possible) started by
fusebench.sandbox.runner for each worker slot. For each JSON request (plus its descriptors) on its socket it forks
the program's process:

1. (once, in the server) new network namespace (no interface is up, so even 127.0.0.1 is unreachable) and new
   mount namespace; in it the whole tree is made read-only, directories that hide the interpreter from other
   users (e.g. /root) are covered by a tmpfs holding only the interpreter's prefix, and the slot directory,
   which holds only the running program's scratch directory, is bound read-write;
2. the model's process: its own session and only its own descriptors; resource limits (address space, CPU time,
   file size, processes, open files, no core dumps); the request's unprivileged uid/gid (RLIMIT_NPROC only binds
   non-root users); no_new_privs (a setuid binary such as `su` gains nothing) and a seccomp filter without Unix
   sockets (`_seccomp`);
3. split mode: the model's process runs the code and answers calls (`_serve`) on its end of a channel; the
   slot's judge (`_judge`), the server's first child, forked before any program ran, as the server's uid and not
   dumpable, runs the tests against it and reports the verdict to the harness on its own socket;
   in-process mode: the model's process runs the code, checks that `builtins` was not patched, runs the tests, and
   only after they return reads the per-run nonce from its pipe and writes it with the verdict to the result pipe;
4. after the verdict, the harness kills the program's process group, the server kills and reaps everything left
   in its subtree (it is their subreaper) and says how much that was.

Each step that the OS refuses is recorded in the verdict's "isolation" field; the harness decides what to do.
This file imports only the standard library: it runs before any site-packages are visible (its sibling modules
are loaded by path, since `-P` keeps this directory off sys.path).
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import fcntl
import gc
import importlib.util
import json
import os
import resource
import signal
import socket
import stat
import struct
import sys
import time
from types import ModuleType
from typing import Any


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_wire = _load("_wire")
_seccomp = _load("_seccomp")
_judge = _load("_judge")
_serve = _load("_serve")

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 1
SYS_MOUNT_SETATTR = 442  # same number on x86_64 and arm64 (syscalls added after 5.0 share numbers)
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
JUDGE_MEMORY_MB = 8192
# imported once in the fork server (most programs need some of them), not again by every program
PRELOAD = ("typing", "re", "math", "collections", "itertools", "functools", "heapq", "string", "base64", "json")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (src, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _readonly_tree() -> None:
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    rc = _libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(AT_FDCWD), b"/", ctypes.c_uint(AT_RECURSIVE),
        ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
    )  # fmt: skip
    _check(rc, "mount_setattr /")


def _hidden_ancestor(path: str) -> str | None:
    """The highest ancestor of `path` that other users cannot traverse, or None."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        anc = "/" + "/".join(parts[:i])
        if not os.stat(anc).st_mode & stat.S_IXOTH:
            return anc
    return None


def _expose(path: str) -> None:
    """Cover the ancestor that hides `path` with an empty tmpfs and bind `path` back into it."""
    hidden = _hidden_ancestor(path)
    if hidden is None:
        return
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
    _mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64k")
    os.makedirs(path, mode=0o755)
    _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
    os.close(fd)


def _isolate(writable: str, iso: dict) -> None:
    """Namespaces and mounts, shared by all programs of this fork server: everything read-only but `writable`
    (the slot's directory, which holds only the running program's scratch directory). Each refused step is
    recorded as False in `iso`."""
    iso["netns"] = _libc.unshare(CLONE_NEWNET) == 0
    iso["mountns"] = _libc.unshare(CLONE_NEWNS) == 0
    iso["readonly_root"] = False
    if not iso["mountns"]:
        return
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _expose(os.path.realpath(sys.base_prefix))
    try:
        _readonly_tree()
    except OSError:
        return
    _mount(writable, writable, None, MS_BIND)
    _mount(None, writable, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)  # a bind inherits "ro"
    iso["readonly_root"] = True


def _limit(res: int, value: int) -> None:
    resource.setrlimit(res, (value, value))


def _apply_limits(lim: dict) -> None:
    cpu = int(lim["cpu_s"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    _limit(resource.RLIMIT_AS, lim["memory_mb"] << 20)
    _limit(resource.RLIMIT_FSIZE, lim["fsize_mb"] << 20)
    _limit(resource.RLIMIT_NPROC, lim["nproc"])
    _limit(resource.RLIMIT_NOFILE, lim["nofile"])
    _limit(resource.RLIMIT_CORE, 0)


def _drop_privileges(uid: int, iso: dict) -> None:
    iso["uid"] = os.getuid()
    if os.getuid() != 0 or uid == 0:
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    iso["uid"] = os.getuid()


def _patched_builtins(snapshot: dict) -> list[str]:
    now = vars(builtins)
    names = set(snapshot) | set(now)
    return sorted(n for n in names if n not in now or n not in snapshot or now[n] is not snapshot[n])


def _run(req: dict, pid: int) -> dict:
    """In-process mode: run the code, then the tests, in this process. Returns the verdict (without nonce)."""
    snapshot = dict(vars(builtins))
    env: dict = {"__name__": "__solution__", "__builtins__": builtins}
    try:
        exec(compile(req["code"], "<solution>", "exec"), env)
    except BaseException as exc:
        return _judge.verdict_for(exc, "solution", req["tests"])
    if os.getpid() != pid:
        os._exit(1)  # a forked copy of the program never reports
    patched = _patched_builtins(snapshot)
    if patched:
        return {"status": "sandbox_violation", "reason": "solution patched builtins: " + ", ".join(patched[:5])}
    env["__builtins__"] = builtins
    try:
        exec(compile(req["tests"], "<tests>", "exec"), env)
    except BaseException as exc:
        return _judge.verdict_for(exc, "tests", req["tests"])
    return {"status": "passed", "reason": ""}


def _contain(req: dict, iso: dict) -> None:
    """In the model's process, before any of its code: limits, unprivileged uid, no setuid gain, no Unix sockets."""
    os.chdir(req["scratch"])
    _apply_limits(req["limits"])
    _drop_privileges(req["uid"], iso)
    iso["seccomp"] = _seccomp.install(_libc)


def _serve_in_process(req: dict, iso: dict) -> None:
    """In-process mode, in the forked program process: run the request, report with the nonce, and exit."""
    iso = dict(iso)
    _contain(req, iso)
    pid = os.getpid()
    verdict = _run(req, pid)
    if os.getpid() != pid:
        os._exit(1)
    if verdict["status"] == "passed":
        verdict["nonce"] = os.read(req["nonce_fd"], 256).decode()
    verdict["isolation"] = iso
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # the program may have replaced or closed its streams
            stream.flush()
    os.write(req["result_fd"], (json.dumps(verdict) + "\n").encode())
    os._exit(0 if verdict["status"] == "passed" else 1)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _child(keep: dict[int, int], stdio: tuple[int, int, int]) -> None:
    """In a freshly forked child: its own session, stdio from `stdio`, and of the fork server's descriptors only
    those in `keep` (each moved to the number it maps to, above 2); every other one is closed."""
    os.setsid()
    moved = {fcntl.fcntl(src, fcntl.F_DUPFD, 100): dst for src, dst in keep.items()}
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    for src, dst in moved.items():
        os.dup2(src, dst)
    low = 3
    for fd in sorted(keep.values()):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _fork(run: Any) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            run()
        finally:
            os._exit(70)
    return pid


def _read_body(fd: int) -> dict:
    """The program's code (and, in-process, its tests), read only in the forked child: the fork server never holds
    them, so no process forked later inherits a copy of another program's tests in its memory."""
    with os.fdopen(fd, "rb") as fh:
        return json.loads(fh.read())


def _start_in_process(req: dict, fds: list[int], devnull: int, iso: dict) -> int:
    out, err, nonce_fd, result_fd, body_fd = fds

    def program() -> None:
        _child({nonce_fd: 3, result_fd: 4, body_fd: 5}, (devnull, out, err))
        req.update(_read_body(5), nonce_fd=3, result_fd=4)
        _serve_in_process(req, iso)

    return _fork(program)


def _start_split(req: dict, fds: list[int], devnull: int, iso: dict) -> int:
    """Fork the model's process: it gets only its end of the channel (the judge has the other) and its files."""
    out, err, body_fd, chan_fd = fds

    def model() -> None:
        _child({chan_fd: 3, body_fd: 4}, (devnull, out, err))
        code = _read_body(4)["code"]
        _contain(req, dict(iso))
        _serve.serve(code, socket.socket(fileno=3), bool(req.get("script")))
        os._exit(0)

    return _fork(model)


def _fork_program(sock: socket.socket, devnull: int, iso: dict, judge: int) -> None:
    """One request: fork the program's process and report its pid. In-process, report its exit code when it
    ends; split, the judge decides and the harness says when. Then, once the harness has killed the program's
    group, kill and reap everything left, and report the program's exit code and how many others were left."""
    head, fds, _, _ = socket.recv_fds(sock, 8, 5)
    if not head:
        raise EOFError
    (size,) = struct.unpack("q", head + _recv_exact(sock, 8 - len(head)))
    req = json.loads(_recv_exact(sock, size))
    split = req.get("mode") == "split"
    try:
        pid = _start_split(req, fds, devnull, iso) if split else _start_in_process(req, fds, devnull, iso)
    finally:
        for fd in fds:
            os.close(fd)
    sock.sendall(struct.pack("q", pid))
    if not split:
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        sock.sendall(struct.pack("q", rc))
    _recv_exact(sock, 1)  # the harness has killed the program's process group
    if split:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # the model's process, wherever its group went
        rc = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    sock.sendall(struct.pack("qq", rc, _reap_leftovers(judge)))


def _reap_leftovers(judge: int) -> int:
    """Kill and reap every process still in this server's subtree but the judge: being its subreaper, all of a
    program's descendants (double-forked, setsid, setuid) end up as its children. Returns how many there were."""
    left = 0
    for _ in range(200):
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        children = [c for c in _children() if c != judge]
        if not children:
            return left
        left += len(children)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        time.sleep(0.002)
    return left


def _start_judge(fd: int, devnull: int) -> int:
    """Fork the judge (before any program ran, so it holds nothing of theirs): it serves split jobs on socket
    `fd` for the server's lifetime, as the server's uid, not dumpable (no ptrace, no /proc/PID/mem by others)."""

    def judge() -> None:
        _child({fd: 3}, (devnull, devnull, devnull))
        _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        _limit(resource.RLIMIT_CORE, 0)
        _limit(resource.RLIMIT_AS, JUDGE_MEMORY_MB << 20)  # a judge over it dies; the harness starts a new slot
        _judge.serve_jobs(socket.socket(fileno=3))
        os._exit(0)

    pid = _fork(judge)
    os.close(fd)
    return pid


def _children() -> list[int]:
    me = os.getpid()
    with open(f"/proc/{me}/task/{me}/children") as fh:
        return [int(p) for p in fh.read().split()]


def fork_server(writable: str | None, judge_fd: int) -> None:
    """Fork server on the socket at fd 0: forking this warm interpreter is much cheaper than starting one.
    With `writable` (the slot directory), it first isolates itself (the namespaces are then set up once, not per
    program). It is the subreaper of its programs, so their orphans' zombies are reaped here. Its first child is
    the slot's judge, on the socket at `judge_fd`."""
    iso: dict = {"netns": False, "mountns": False, "readonly_root": False}
    if writable:
        _isolate(writable, iso)
    for name in PRELOAD:
        __import__(name)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sock = socket.socket(fileno=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    judge = _start_judge(judge_fd, devnull)
    with contextlib.suppress(EOFError, ConnectionError):
        while True:
            gc.freeze()  # the children's collections then skip the server's objects: fewer copy-on-write faults
            _fork_program(sock, devnull, iso, judge)


if __name__ == "__main__":
    fork_server(sys.argv[2] if len(sys.argv) > 2 else None, int(sys.argv[1]))
