"""Run untrusted programs in isolated, resource-limited processes, in parallel across cores.

Each worker slot has a fork server (`_runner.py`, a warm interpreter) that forks the processes of each program.
The model's process starts its own session, inherits only its own descriptors, runs in fresh network and mount
namespaces (read-only file tree except its scratch directory) with rlimits on address space, CPU, file size,
processes and open files, as the slot's own unprivileged uid (uids are claimed across processes, so RLIMIT_NPROC
counts one program's processes only), with no_new_privs (a setuid binary such as `su` gains nothing) and a seccomp
filter that refuses Unix sockets (a host socket file is reachable by path from any namespace; see `_seccomp.py`
for why a filter rather than private /tmp and /run mounts). The environment is empty but for PYTHONHASHSEED=0.
After the program, its process group is killed, the fork server (the subreaper of all its descendants, in any
session) kills and reaps everything left in its subtree, any leftover is also looked for by real uid in
/proc/PID/status (a setuid process's /proc/PID belongs to root), and the scratch directory is deleted. The fork
server never reads a program's code or tests: they reach the forked processes on their own files, so no process
inherits another program's tests in its memory.

Split mode (`Program.calls`), used by every code scorer: the verdict is decided by the slot's judge, a separate
process that never runs untrusted code (the fork server's first child, forked before any program ran, as the
server's uid, not dumpable). For each job the harness hands it the tests on a file and one end of a fresh socket
pair, the model's process gets only the other end; the judge calls the model's functions over it, gets back plain
data in tagged JSON that it parses itself (`_wire.py`; never pickle), evaluates the assertions and reports the
verdict on its own socket. Frames, gc, trace hooks, module globals, inherited descriptors and exotic `__eq__` of
the model's process cannot reach it. A judge stuck past the wall-clock limit (tests looping on a returned value)
is killed with its fork server, and the slot starts afresh.
In-process mode (no `calls`): the tests run after the code in the model's process; a "passed" verdict counts only
with a random per-run nonce that sits unread in an inherited pipe until the tests return, and exit status 0. Not
defended in this mode: code written against the harness (reading the nonce, rewriting the runner, objects whose
`__eq__` is always true); the code scorers use it only for tasks whose canonical solution cannot run split, and
label those scores "in-process".

Where the OS refuses a step (not root, no CAP_SYS_ADMIN), the sandbox degrades and logs once what it lost:
- not root: no uid change; RLIMIT_NPROC then counts all processes of the harness's user, and the judge shares the
  model's uid (it stays not dumpable, so the model's process cannot ptrace it or read its memory);
- no namespaces: the network is reachable and files outside the scratch directory that the uid may write
  (e.g. /tmp) are writable; as root without a uid change any file is: the "limits-only" mode, for trusted code;
- no seccomp (an unknown architecture): host Unix sockets are reachable (`Isolation.no_unix_sockets` is False).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Literal

from fusebench.sandbox import _wire as wire
from fusebench.sandbox.limits import Limits

log = logging.getLogger(__name__)

Status = Literal["passed", "failed", "timeout", "memory", "crashed", "sandbox_violation"]
STATUSES: frozenset[str] = frozenset(Status.__args__)  # type: ignore[attr-defined]
RUNNER = str(Path(__file__).with_name("_runner.py"))
BASE_UID = 61000  # slots run as uids BASE_UID, BASE_UID + 1, ... (each claimed by one Sandbox, see _claim_uids)
_UID_LOCKS = Path(tempfile.gettempdir())
_RESULT_CAP = 1 << 20
_JUDGE_GRACE_S = 2.0  # after a time-out, how long the judge may take to report once the model's process is gone
_SERVER_TIMEOUT_S = 60.0  # for fork-server replies that do not wait on the program
# The whole environment of a program. A fixed hash seed makes set/dict order of strings reproducible, so
# outputs compare equal to a reference computed in another process (as EvalPlus's MBPP+ needs).
SANDBOX_ENV = {"PYTHONHASHSEED": "0"}
_PROBE = "import colorsys, socket\n"  # imports after the uid drop must still work


@dataclass(frozen=True)
class Program:
    """`code` is untrusted; `tests` is trusted harness code.

    Split mode (`calls` given): the tests run in the judge, a separate process in which no untrusted code runs,
    after `helpers` (trusted code such as a prompt's helper functions); each name in `calls` is bound there to a
    proxy that calls that name of the model's code over a channel, with plain data both ways; the object `_fb`
    (`_judge.Candidate`) offers `call`, `kinds`, `script`, `record` and `loads`. With `script`, the code is only
    compiled up front and `_fb.script(stdin)` runs it as `__main__`.
    In-process mode (`calls` None): the tests run after the code, in its namespace and process."""

    code: str
    tests: str = ""
    calls: tuple[str, ...] | None = None
    helpers: str = ""
    script: bool = False

    @property
    def split(self) -> bool:
        return self.calls is not None


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str = ""
    failed_test: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    mode: Literal["split", "in-process"] = "in-process"
    records: str = ""  # split mode: what the tests passed to `_fb.record`, as tagged JSON text (`_wire.loads`)
    calls: int = 0  # split mode: calls into the model's code
    mutated: int = 0  # split mode: calls after which the model's code had changed its arguments (not sent back)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Isolation:
    """What the sandbox achieved on this machine (found by running a probe program once)."""

    mode: Literal["full", "no-uid-drop", "limits-only"]
    uid_drop: bool
    netns: bool
    readonly_root: bool
    no_unix_sockets: bool = False  # no_new_privs and the seccomp filter (`_seccomp`)

    @property
    def complete(self) -> bool:
        return self.uid_drop and self.netns and self.readonly_root and self.no_unix_sockets


@dataclass
class _Run:
    outcome: Outcome
    isolation: dict[str, Any] = field(default_factory=dict)


class Sandbox:
    """A pool of `workers` slots; `run` blocks until a slot is free, so any number of threads may call it."""

    def __init__(self, workers: int | None = None, base_uid: int = BASE_UID) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.uids, self._uid_locks = _claim_uids(base_uid, self.workers)
        self._slots: queue.Queue[int] = queue.Queue()
        for uid in self.uids:
            self._slots.put(uid)
        self._probe_lock = threading.Lock()
        self._isolation: Isolation | None = None
        self._servers: dict[int, _ForkServer] = {}
        self._recent: deque[bool] = deque(maxlen=100)
        self._last_warning = 0.0

    def close(self) -> None:
        """Stop the fork servers and release the uid claims."""
        for server in getattr(self, "_servers", {}).values():
            server.close()
        for fd in getattr(self, "_uid_locks", []):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._uid_locks = []

    def __del__(self) -> None:
        self.close()

    @property
    def isolation(self) -> Isolation:
        with self._probe_lock:
            if self._isolation is None:
                self._isolation = self._probe()
            return self._isolation

    def run(self, program: Program, limits: Limits | None = None) -> Outcome:
        """Run one program; never raises for anything the program does."""
        iso = self.isolation
        slot = self._slots.get()
        try:
            server = self._servers.get(slot)
            if server is None or not server.alive():
                if server is not None:
                    server.close()
                server = self._servers[slot] = _ForkServer(isolate=iso.mode != "limits-only")
            uid = slot if iso.uid_drop else 0
            outcome = _execute(server, program, limits or Limits(), uid).outcome
        except Exception as exc:  # a harness-side failure is this sample's crash, not the batch's
            if slot in self._servers:
                self._servers.pop(slot).close()  # its protocol state is unknown: start afresh next time
            outcome = Outcome("crashed", f"harness error: {type(exc).__name__}: {exc}")
        finally:
            self._slots.put(slot)
        self._note(outcome)
        return outcome

    def run_many(
        self, programs: Sequence[Program], limits: Limits | Sequence[Limits] | None = None, workers: int | None = None
    ) -> list[Outcome]:
        """Run programs in parallel over at most `workers` of the pool's slots; outcomes in input order."""
        per = list(limits) if isinstance(limits, Sequence) else [limits or Limits()] * len(programs)
        with ThreadPoolExecutor(min(workers or self.workers, self.workers)) as pool:
            return list(pool.map(self.run, programs, per))

    def _probe(self) -> Isolation:
        modes: list[tuple[Literal["full", "no-uid-drop", "limits-only"], int, bool]] = [
            ("full", self.uids[0], True),
            ("no-uid-drop", 0, True),
            ("limits-only", 0, False),
        ]
        for mode, uid, isolate in modes:
            server = _ForkServer(isolate)
            try:
                run = _execute(server, Program(_PROBE), Limits(wall_s=30), uid)
            except (OSError, EOFError) as exc:  # e.g. the server could not isolate itself and exited
                log.info("sandbox mode %s unavailable: %s", mode, exc)
                continue
            finally:
                server.close()
            if run.outcome.passed:
                iso = run.isolation
                found = Isolation(
                    mode, iso.get("uid", 0) != 0, bool(iso.get("netns")), bool(iso.get("readonly_root")),
                    bool(iso.get("seccomp")),
                )  # fmt: skip
                if not found.complete:
                    log.warning("sandbox isolation is incomplete on this machine: %s", found)
                return found
            log.info("sandbox mode %s unavailable: %s %s", mode, run.outcome.reason, run.outcome.stderr[-500:])
        raise RuntimeError(f"the sandbox cannot run even a trivial program: {run.outcome}")

    def _note(self, outcome: Outcome) -> None:
        self._recent.append(outcome.status == "timeout")
        rate = sum(self._recent) / len(self._recent)
        if len(self._recent) >= 20 and rate > 0.25 and time.monotonic() - self._last_warning > 60:
            self._last_warning = time.monotonic()
            log.warning(
                "%.0f%% of the last %d sandboxed programs timed out (load average %.1f on %d cores): "
                "the machine may be overloaded; use fewer workers or longer time limits",
                100 * rate, len(self._recent), os.getloadavg()[0], os.cpu_count() or 1,
            )  # fmt: skip


def _claim_uids(base: int, n: int) -> tuple[list[int], list[int]]:
    """`n` uids from `base` up that no other Sandbox (in any process) holds: each is claimed by an exclusive
    flock on a lock file kept open for the Sandbox's lifetime, so no two sandboxes kill each other's programs."""
    uids: list[int] = []
    fds: list[int] = []
    uid = base
    while len(uids) < n:
        fd = os.open(_UID_LOCKS / f"fusebench-sandbox-uid-{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
        else:
            uids.append(uid)
            fds.append(fd)
        uid += 1
    return uids, fds


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox (one slot per core), shared by all scorers so cores are not oversubscribed."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
        return _default


def run_program(program: Program, limits: Limits | None = None) -> Outcome:
    """Run one program in the default sandbox."""
    return default_sandbox().run(program, limits)


def run_many(
    programs: Sequence[Program], limits: Limits | Sequence[Limits] | None = None, workers: int | None = None
) -> list[Outcome]:
    """Run programs in parallel in the default sandbox."""
    return default_sandbox().run_many(programs, limits, workers)


# --- one execution ------------------------------------------------------------------------------------


class _ForkServer:
    """`_runner.py`'s fork server, one per slot (used by one thread at a time): a warm interpreter that forks
    each program instead of starting a new one, and the slot's judge, its first child (split jobs)."""

    def __init__(self, isolate: bool) -> None:
        self.slot_dir = tempfile.mkdtemp(prefix="fusebench-slot-")  # holds the scratch directory of its programs
        os.chmod(self.slot_dir, 0o755)
        weakref.finalize(self, shutil.rmtree, self.slot_dir, ignore_errors=True)  # also at interpreter exit
        self.sock, theirs = socket.socketpair()
        self.judge, judge_theirs = socket.socketpair()
        self._judge_pid = 0
        self.broken = False
        try:
            self.proc = subprocess.Popen(
                # not -I: it would ignore PYTHONHASHSEED
                [sys.executable, "-S", "-s", "-P", RUNNER, str(judge_theirs.fileno()),
                 *([self.slot_dir] if isolate else [])],
                stdin=theirs.fileno(), stdout=subprocess.DEVNULL, env=SANDBOX_ENV, start_new_session=True,
                pass_fds=(judge_theirs.fileno(),),
            )  # fmt: skip
        finally:
            theirs.close()
            judge_theirs.close()

    def alive(self) -> bool:
        return not self.broken and self.proc.poll() is None

    def judge_pid(self) -> int:
        if not self._judge_pid:
            self.judge.settimeout(_SERVER_TIMEOUT_S)
            pid = wire.recv(self.judge)
            if not isinstance(pid, int):
                raise EOFError("the judge did not start")
            self._judge_pid = pid
        return self._judge_pid

    def recv(self, n: int, timeout: float | None = _SERVER_TIMEOUT_S) -> bytes:
        self.sock.settimeout(timeout)
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the sandbox fork server exited")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()
        self.judge.close()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()


def _execute(server: _ForkServer, program: Program, limits: Limits, uid: int) -> _Run:
    scratch = os.path.join(server.slot_dir, "scratch")
    _fresh_scratch(scratch, uid)
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            if program.split:
                return _spawn_split(server, program, limits, uid, scratch, out, err)
            return _spawn(server, program, limits, uid, scratch, out, err)
    finally:
        _empty(scratch)


def _fresh_scratch(path: str, uid: int) -> None:
    """The slot's scratch directory, empty, owned by `uid`, mode 700. It is kept between programs (emptied after
    each, once all its processes are gone): removing a directory costs milliseconds on some file systems."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    os.chmod(path, 0o700)  # whatever the last program set
    if uid:
        os.chown(path, uid, uid)


def _empty(path: str) -> None:
    """Delete what a program left in its scratch directory (usually nothing)."""
    try:
        with os.scandir(path) as entries:
            names = [e.path for e in entries]
    except FileNotFoundError:
        return
    for name in names:
        if os.path.isdir(name) and not os.path.islink(name):
            shutil.rmtree(name, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
    if os.listdir(path):  # something resisted: start the next program in a new directory
        shutil.rmtree(path, ignore_errors=True)


def _request(program: Program, limits: Limits, uid: int, scratch: str) -> bytes:
    """The fork server's request: neither code nor tests (they go to the forked processes on their own files)."""
    request = {"scratch": scratch, "uid": uid, "limits": limits.for_runner()}
    if program.split:
        request.update(mode="split", script=program.script)
    return json.dumps(request).encode()


def _body(program: Program) -> IO[bytes]:
    """A file with the code (and, in-process, the tests), read by the program's process after the fork."""
    body = tempfile.TemporaryFile()  # noqa: SIM115  (the caller closes it)
    content = {"code": program.code} if program.split else {"code": program.code, "tests": program.tests}
    body.write(json.dumps(content).encode())
    body.seek(0)
    return body


def _send(server: _ForkServer, body: bytes, fds: list[int]) -> int:
    """Send a request to the fork server; the pid of the program's process."""
    socket.send_fds(server.sock, [struct.pack("q", len(body))], fds)
    server.sock.sendall(body)
    (pid,) = struct.unpack("q", server.recv(8))
    return pid


def _finish(server: _ForkServer, pid: int, uid: int) -> int:
    """Kill the program's process group; the server reaps everything left. The program's exit code."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    server.sock.sendall(b"r")
    rc, leftovers = struct.unpack("qq", server.recv(16))
    if leftovers and uid:
        log.debug("%d processes outlived their program's process group (uid %d)", leftovers, uid)
        _kill_uid(uid)
    return int(rc)


def _run_on(server: _ForkServer, body: bytes, fds: list[int], limits: Limits, uid: int) -> tuple[int, bool]:
    """In-process: run the program until it ends (or the wall-clock limit). Returns (exit code, timed out)."""
    start = time.monotonic()
    pid = _send(server, body, fds)
    remaining = limits.wall_s - (time.monotonic() - start)
    timed_out = not select.select([server.sock], [], [], max(remaining, 0))[0]
    if timed_out:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    server.recv(8)  # the exit code, also reported by _finish
    return _finish(server, pid, uid), timed_out


def _spawn(
    server: _ForkServer,
    program: Program,
    limits: Limits,
    uid: int,
    scratch: str,
    out: IO[bytes],
    err: IO[bytes],
) -> _Run:
    nonce = secrets.token_hex(16)
    nonce_r, nonce_w = os.pipe()
    os.write(nonce_w, nonce.encode())
    os.close(nonce_w)
    res_r, res_w = os.pipe()
    start = time.monotonic()
    try:
        with _body(program) as body:
            fds = [out.fileno(), err.fileno(), nonce_r, res_w, body.fileno()]
            rc, timed_out = _run_on(server, _request(program, limits, uid, scratch), fds, limits, uid)
    finally:
        os.close(nonce_r)
        os.close(res_w)
    duration = time.monotonic() - start
    verdict = _read_verdict(res_r)
    stdout, stderr = _read_capped(out, limits.output_cap), _read_capped(err, limits.output_cap)
    outcome = _classify(rc, timed_out, verdict, nonce, limits, stderr)
    outcome = Outcome(outcome.status, outcome.reason, outcome.failed_test, stdout, stderr, duration)
    return _Run(outcome, verdict.get("isolation", {}) if verdict else {})


def _spawn_split(
    server: _ForkServer,
    program: Program,
    limits: Limits,
    uid: int,
    scratch: str,
    out: IO[bytes],
    err: IO[bytes],
) -> _Run:
    """Split: the judge gets the job and one end of a fresh channel, the model's process the other end."""
    job = {"tests": program.tests, "helpers": program.helpers, "calls": list(program.calls or ())}
    judge_pid = server.judge_pid()
    start = time.monotonic()
    mine, theirs = socket.socketpair()
    with tempfile.TemporaryFile() as job_file, _body(program) as body, mine, theirs:
        job_file.write(json.dumps(job).encode())
        job_file.seek(0)
        socket.send_fds(server.judge, [b"j"], [job_file.fileno(), mine.fileno()])
        mine.close()
        fds = [out.fileno(), err.fileno(), body.fileno(), theirs.fileno()]
        pid = _send(server, _request(program, limits, uid, scratch), fds)
        theirs.close()
        verdict, timed_out = _await_verdict(server, pid, judge_pid, limits.wall_s - (time.monotonic() - start))
        model_rc = _finish(server, pid, uid)
    duration = time.monotonic() - start
    stdout, stderr = _read_capped(out, limits.output_cap), _read_capped(err, limits.output_cap)
    outcome = _classify_split(model_rc, timed_out, verdict, limits, stderr)
    extra: dict[str, Any] = {}
    if verdict is not None:
        extra = {"calls": int(verdict.get("calls", 0)), "mutated": int(verdict.get("mutated", 0))}
        if outcome.passed:
            extra["records"] = json.dumps(verdict.get("records", ["l", []]))
    return _Run(replace(outcome, stdout=stdout, stderr=stderr, duration_s=duration, mode="split", **extra))


def _await_verdict(
    server: _ForkServer, pid: int, judge_pid: int, remaining: float
) -> tuple[dict[str, Any] | None, bool]:
    """The judge's verdict, and whether the wall-clock limit passed first. On a time-out the model's group is
    killed, so a judge waiting on it reports at once; a judge that does not is killed and its server retired."""
    timed_out = not select.select([server.judge], [], [], max(remaining, 0))[0]
    if timed_out:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        if not select.select([server.judge], [], [], _JUDGE_GRACE_S)[0]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(judge_pid, signal.SIGKILL)
            server.broken = True
            return None, True
    try:
        server.judge.settimeout(_SERVER_TIMEOUT_S)
        verdict = wire.recv(server.judge)
    except (OSError, EOFError, ValueError):
        server.broken = True
        return None, timed_out
    ok = isinstance(verdict, dict) and verdict.get("status") in STATUSES
    return (verdict if ok else None), timed_out


def _parse_verdict(data: bytes) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError):
        verdict = json.loads(data)
        if isinstance(verdict, dict) and verdict.get("status") in STATUSES:
            return verdict
    return None


def _real_uids(pid: str) -> set[int]:
    """Real, effective and saved uid of a process, from /proc/PID/status (the owner of /proc/PID is root for a
    setuid process, whatever its real uid)."""
    with open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"Uid:"):
                return {int(u) for u in line.split()[1:4]}
    return set()


def _is_zombie(pid: str) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].startswith("Z")


def _kill_uid(uid: int) -> None:
    """SIGKILL every live process whose real (or effective or saved) uid is `uid`, wherever it is, until none is
    left; their zombies are reaped by the fork server, their subreaper."""
    for _ in range(400):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if uid not in _real_uids(name) or _is_zombie(name):
                    continue
                found = True
                os.kill(int(name), signal.SIGKILL)
        if not found:
            return
        time.sleep(0.005)
    log.error("could not kill all processes of sandbox uid %d", uid)


def _read_verdict(fd: int) -> dict[str, Any] | None:
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    try:
        while size < _RESULT_CAP:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    for line in reversed(b"".join(chunks).splitlines()):
        verdict = _parse_verdict(line)
        if verdict is not None:
            return verdict
    return None


def _read_capped(f: IO[bytes], cap: int) -> str:
    f.seek(0)
    return f.read(cap).decode("utf-8", errors="replace")


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def _classify(
    rc: int, timed_out: bool, verdict: dict[str, Any] | None, nonce: str, limits: Limits, stderr: str
) -> Outcome:
    if timed_out:
        return Outcome("timeout", f"wall-clock limit of {limits.wall_s:g}s exceeded")
    if rc == -signal.SIGXCPU:
        return Outcome("timeout", "CPU-time limit exceeded")
    if rc == -signal.SIGXFSZ:
        return Outcome("sandbox_violation", f"file-size limit of {limits.fsize_mb} MiB exceeded (output or file)")
    if verdict is None:
        if "MemoryError" in stderr[-2000:]:
            return Outcome("memory", "MemoryError")
        if rc < 0:
            return Outcome("crashed", f"killed by {_signal_name(rc)} before the tests finished")
        return Outcome("failed", f"exited with code {rc} before the tests finished")
    status = verdict["status"]
    if status == "passed":
        if rc == 0 and secrets.compare_digest(str(verdict.get("nonce", "")), nonce):
            return Outcome("passed")
        return Outcome("sandbox_violation", "a 'passed' verdict without this run's nonce")
    return Outcome(status, str(verdict.get("reason", "")), verdict.get("failed_test"))


def _classify_split(
    model_rc: int, timed_out: bool, verdict: dict[str, Any] | None, limits: Limits, stderr: str
) -> Outcome:
    """Split mode: only the judge's verdict can pass; the model's exit status only names a failure's cause."""
    if timed_out:
        return Outcome("timeout", f"wall-clock limit of {limits.wall_s:g}s exceeded")
    if verdict is not None and verdict["status"] == "passed":
        return Outcome("passed")
    if model_rc == -signal.SIGXCPU:
        return Outcome("timeout", "CPU-time limit exceeded")
    if model_rc == -signal.SIGXFSZ:
        return Outcome("sandbox_violation", f"file-size limit of {limits.fsize_mb} MiB exceeded (output or file)")
    if verdict is None:
        return Outcome("crashed", "the judge ended without a verdict")
    if verdict.get("ended"):
        if "MemoryError" in stderr[-2000:]:
            return Outcome("memory", "MemoryError")
        if model_rc < 0:
            return Outcome("crashed", f"killed by {_signal_name(model_rc)} before the tests finished")
        return Outcome("failed", f"exited with code {model_rc} before the tests finished")
    status: Status = verdict["status"] if verdict["status"] != "passed" else "crashed"
    failed = verdict.get("failed_test")
    return Outcome(status, str(verdict.get("reason", "")), failed if isinstance(failed, str) else None)
