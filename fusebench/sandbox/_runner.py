"""In-sandbox side: a fork server (`python -S -s -P _runner.py`, root where possible) started by
fusebench.sandbox.runner for each worker slot. For each JSON request (plus the output, nonce and result fds) on
its socket it forks one process, which runs the untrusted code and the trusted tests:

1. (once, in the server) new network namespace (no interface is up, so even 127.0.0.1 is unreachable) and new
   mount namespace; in it the whole tree is made read-only, directories that hide the interpreter from other
   users (e.g. /root) are covered by a tmpfs holding only the interpreter's prefix, and the slot directory,
   which holds only the running program's scratch directory, is bound read-write;
2. (in the program's process from here on) its own session; resource limits (address space, CPU time,
   file size, processes, open files, no core dumps);
3. drop to the request's unprivileged uid/gid (RLIMIT_NPROC only binds non-root users);
4. exec the untrusted code, check that `builtins` was not patched, exec the tests;
5. only after the tests return: read the per-run nonce from its pipe and write it with the verdict to the
   result pipe, then `os._exit(0)`.

Each step that the OS refuses is recorded in the verdict's "isolation" field; the harness decides what to do.
This file imports only the standard library: it runs before any site-packages are visible.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import errno
import json
import os
import resource
import socket
import stat
import struct
import sys
import traceback

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
PR_SET_CHILD_SUBREAPER = 36
# imported once in the fork server (most programs need some of them), not again by every program
PRELOAD = ("typing", "re", "math", "collections", "itertools", "functools", "heapq", "string")

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


def _failed_line(tb: traceback.StackSummary, filename: str, source: str) -> str | None:
    lines = source.splitlines()
    for frame in reversed(tb):
        if frame.filename == filename and frame.lineno and 0 < frame.lineno <= len(lines):
            return lines[frame.lineno - 1].strip()
    return None


def _verdict_for(exc: BaseException, stage: str, tests: str) -> dict:
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
    verdict: dict[str, str | None] = {"status": "failed", "reason": f"{kind} (in {stage})"}
    if stage == "tests":
        verdict["failed_test"] = _failed_line(tb, "<tests>", tests)
    return verdict


def _patched_builtins(snapshot: dict) -> list[str]:
    now = vars(builtins)
    names = set(snapshot) | set(now)
    return sorted(n for n in names if n not in now or n not in snapshot or now[n] is not snapshot[n])


def _run(req: dict, pid: int) -> dict:
    """Run the code, then the tests. Returns the verdict (without nonce) for failures."""
    snapshot = dict(vars(builtins))
    env: dict = {"__name__": "__solution__", "__builtins__": builtins}
    try:
        exec(compile(req["code"], "<solution>", "exec"), env)
    except BaseException as exc:
        return _verdict_for(exc, "solution", req["tests"])
    if os.getpid() != pid:
        os._exit(1)  # a forked copy of the program never reports
    patched = _patched_builtins(snapshot)
    if patched:
        return {"status": "sandbox_violation", "reason": "solution patched builtins: " + ", ".join(patched[:5])}
    env["__builtins__"] = builtins
    try:
        exec(compile(req["tests"], "<tests>", "exec"), env)
    except BaseException as exc:
        return _verdict_for(exc, "tests", req["tests"])
    return {"status": "passed", "reason": ""}


def _serve(req: dict, iso: dict) -> None:
    """In the forked program process: limit, drop privileges, run the request, report, and exit."""
    iso = dict(iso)
    os.chdir(req["scratch"])
    _apply_limits(req["limits"])
    _drop_privileges(req["uid"], iso)
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


def _fork_program(sock: socket.socket, devnull: int, iso: dict) -> None:
    """One request: fork the program's process, report its pid, then its exit code, then reap leftovers."""
    head, fds, _, _ = socket.recv_fds(sock, 8, 4)
    if not head:
        raise EOFError
    (size,) = struct.unpack("q", head + _recv_exact(sock, 8 - len(head)))
    req = json.loads(_recv_exact(sock, size))
    out, err, req["nonce_fd"], req["result_fd"] = fds
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.dup2(devnull, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for fd in {out, err, devnull, sock.fileno()} - {0, 1, 2}:  # the socket may be fd 0: dup2 replaced it
                os.close(fd)
            _serve(req, iso)
        finally:
            os._exit(70)
    for fd in fds:
        os.close(fd)
    sock.sendall(struct.pack("q", pid))
    _, status = os.waitpid(pid, 0)
    sock.sendall(struct.pack("q", os.waitstatus_to_exitcode(status)))
    _recv_exact(sock, 1)  # the harness has killed what the program left behind: reap those (our orphans)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    sock.sendall(b"i")


def fork_server(writable: str | None) -> None:
    """Fork server on the socket at fd 0: forking this warm interpreter is much cheaper than starting one.
    With `writable` (the slot directory), it first isolates itself (the namespaces are then set up once, not per
    program). It is the subreaper of its programs, so their orphans' zombies are reaped here."""
    iso: dict = {"netns": False, "mountns": False, "readonly_root": False}
    if writable:
        _isolate(writable, iso)
    for name in PRELOAD:
        __import__(name)
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sock = socket.socket(fileno=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    with contextlib.suppress(EOFError, ConnectionError):
        while True:
            _fork_program(sock, devnull, iso)


if __name__ == "__main__":
    fork_server(sys.argv[1] if len(sys.argv) > 1 else None)
