"""Hostile programs: each is contained, scored as not passed with a reason, and the harness survives.

In-process, every program is followed by tests that would pass (`assert True`), so only containment can fail it;
split, by a function the tests call and find wrong. Needs full isolation (root with namespaces and seccomp, as
here and in CI); elsewhere the tests skip and say why. The scorers' own hostile corpus: test_hostile_corpus.py.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fusebench.sandbox import Limits, Program, Sandbox, runner

TIGHT = Limits(wall_s=3.0, memory_mb=512, nproc=16, fsize_mb=4, output_cap=4096)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    sb = Sandbox(workers=2)
    if not sb.isolation.complete:
        pytest.skip(f"sandbox isolation incomplete on this machine: {sb.isolation}")
    return sb


def _uid_processes(sb: Sandbox) -> list[str]:
    """Live processes whose real, effective or saved uid is one of the sandbox's (from /proc/PID/status: the
    owner of /proc/PID is root for a setuid process)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
        zombie = re.search(r"^State:\s+Z", status, re.M)
        if uids and not zombie and {int(u) for u in uids.groups()} & set(sb.uids):
            found.append(f"{pid}: {status.splitlines()[0]}")
    return found


def _program(code: str, split: bool) -> Program:
    if split:
        return Program(code + "\ndef f():\n    return 0\n", "assert f() == 1\n", calls=("f",))
    return Program(code, "assert True\n")


def _run(sb: Sandbox, code: str, limits: Limits = TIGHT, split: bool = False) -> tuple[str, str]:
    outcome = sb.run(_program(code, split), limits)
    assert outcome.status != "passed", outcome
    assert outcome.reason
    assert outcome.duration_s < limits.wall_s + 2
    assert _uid_processes(sb) == []  # nothing outlives its sample
    return outcome.status, outcome.reason


FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
MEMORY_BOMB = "x = []\nwhile True:\n    x.append(bytearray(10**7))\n"
INFINITE_LOOP = "while True:\n    pass\n"
BUSY_THREADS = """
import threading
def spin():
    while True:
        pass
for _ in range(8):
    threading.Thread(target=spin).start()
spin()
"""
HUGE_OUTPUT = "while True:\n    print('x' * 10000)\n"
KILL_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
SYS_EXIT = "import sys\nsys.exit(0)\n"
OS_EXIT = "import os\nos._exit(0)\n"
RAISE_SYSTEM_EXIT = "raise SystemExit(0)\n"
PATCH_BUILTINS = (
    "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\nbuiltins.all = lambda x: True\n"
)
KILL_SELF = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
FORK_AND_REPORT = "import os\nif os.fork():\n    os._exit(0)\n"  # the parent exits 0; a copy goes on to the tests


@pytest.mark.timeout(60)
@pytest.mark.parametrize("split", [False, True], ids=["in-process", "split"])
@pytest.mark.parametrize(
    ("code", "statuses"),
    [
        (FORK_BOMB, {"timeout", "failed"}),
        (MEMORY_BOMB, {"memory"}),
        (INFINITE_LOOP, {"timeout"}),
        (BUSY_THREADS, {"timeout"}),
        (HUGE_OUTPUT, {"sandbox_violation"}),
        (KILL_PARENT, {"sandbox_violation"}),
        (SYS_EXIT, {"failed"}),
        (OS_EXIT, {"failed"}),
        (RAISE_SYSTEM_EXIT, {"failed"}),
        (PATCH_BUILTINS, {"sandbox_violation"}),
        (KILL_SELF, {"crashed"}),
        (FORK_AND_REPORT, {"failed"}),
    ],
    ids=[
        "fork_bomb", "memory_bomb", "infinite_loop", "busy_threads", "huge_output", "kill_parent",
        "sys_exit", "os_exit", "system_exit", "patch_builtins", "kill_self", "fork_and_report",
    ],
)  # fmt: skip
def test_hostile_program_is_contained(sandbox: Sandbox, code: str, statuses: set[str], split: bool) -> None:
    if split and code in (PATCH_BUILTINS, FORK_AND_REPORT):
        statuses = {"failed"}  # split, harmless: the judge's builtins are its own, a forked copy only answers calls
    # filling 512 MB page by page takes seconds on a loaded machine: the memory bomb gets the wall time to reach it
    limits = replace(TIGHT, wall_s=15.0) if code == MEMORY_BOMB else TIGHT
    status, reason = _run(sandbox, code, limits, split=split)
    assert status in statuses, reason


@pytest.mark.timeout(30)
def test_processes_are_capped_by_rlimit_nproc_even_for_root(sandbox: Sandbox) -> None:
    code = (
        "import os, time\n"
        "n = 0\n"
        "for _ in range(100):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    outcome = sandbox.run(Program(code, "assert True\n"), Limits(wall_s=3.0, nproc=8))
    assert outcome.passed, outcome
    assert 0 < int(outcome.stdout) < 8  # the runner itself is one of the 8
    assert _uid_processes(sandbox) == []  # the sleeping children were killed with their sample


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A world-writable directory under /tmp: only the sandbox's own walls protect it."""
    path = Path(tempfile.mkdtemp(prefix="fusebench-canary-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


@pytest.mark.timeout(30)
def test_rm_rf_of_a_canary_outside_the_scratch_dir_fails(sandbox: Sandbox, tmp_path: Path, open_dir: Path) -> None:
    for canary in (tmp_path / "canary", open_dir / "canary"):
        canary.mkdir()
        canary.chmod(0o777)
        (canary / "keep.txt").write_text("alive")
        _run(sandbox, f"import shutil\nshutil.rmtree({str(canary)!r})\n")
        sandbox.run(Program(f"import os\nos.system('rm -rf {canary}')\n"), TIGHT)
        assert (canary / "keep.txt").read_text() == "alive"


@pytest.mark.timeout(30)
def test_writing_outside_the_scratch_dir_fails(sandbox: Sandbox, tmp_path: Path, open_dir: Path) -> None:
    targets = [tmp_path / "escape.txt", open_dir / "escape.txt", Path("/tmp/fusebench-escape.txt")]
    for target in targets:
        _run(sandbox, f"open({str(target)!r}, 'w').write('x')\n")
        assert not target.exists()


@pytest.mark.timeout(30)
def test_environment_secrets_are_not_visible(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-canary-12345")
    code = (
        "import os, glob\n"
        "assert 'FAKE_API_KEY' not in os.environ\n"
        "blobs = ''\n"
        "for p in glob.glob('/proc/[0-9]*/environ'):\n"
        "    try:\n"
        "        blobs += open(p, 'rb').read().decode('latin-1')\n"
        "    except OSError:\n"
        "        pass\n"
        "print('LEAK' if 'sk-canary-12345' in blobs else 'clean')\n"
    )
    outcome = sandbox.run(Program(code, "assert True\n"), TIGHT)
    assert outcome.passed, outcome
    assert outcome.stdout.strip() == "clean"
    _run(sandbox, "import os\nassert os.environ['FAKE_API_KEY']\n")


@pytest.mark.timeout(30)
def test_network_is_unreachable_even_on_localhost(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n"
        status, reason = _run(sandbox, code)
        assert "unreachable" in reason.lower() or status == "timeout", reason
        with pytest.raises(TimeoutError):
            listener.accept()


@pytest.mark.timeout(60)
def test_a_hostile_batch_runs_in_parallel_without_harming_good_programs(sandbox: Sandbox) -> None:
    good = Program("def f(x):\n    return 2 * x\n", "assert f(3) == 6\n")
    bad = [FORK_BOMB, MEMORY_BOMB, INFINITE_LOOP, KILL_PARENT, HUGE_OUTPUT]
    programs = [good, *(Program(c, "assert True\n") for c in bad), good]
    start = time.monotonic()
    outcomes = sandbox.run_many(programs, TIGHT)
    assert time.monotonic() - start < 20
    assert [o.passed for o in outcomes] == [True, False, False, False, False, False, True]
    assert _uid_processes(sandbox) == []


SETUID_CHILD = """
import os, subprocess
read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    subprocess.Popen(["su", "root", "-c", "true"], stdin=read_end, pass_fds=(write_end,), start_new_session=True)
    os._exit(0)
import time
time.sleep(0.5)
"""


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("su") is None, reason="no su binary on this machine")
@pytest.mark.parametrize("split", [False, True], ids=["in-process", "split"])
def test_a_setuid_child_in_its_own_session_does_not_outlive_the_run(sandbox: Sandbox, split: bool) -> None:
    outcome = sandbox.run(_program(SETUID_CHILD, split), TIGHT)
    assert outcome.passed != split, outcome  # in-process `assert True` passes; split, f() is wrong
    assert "Password" in outcome.stderr or split  # su did start (and wait on its pipe)
    assert _uid_processes(sandbox) == []


@pytest.mark.timeout(30)
def test_no_new_privileges_and_the_seccomp_filter_are_on(sandbox: Sandbox) -> None:
    code = "print(open('/proc/self/status').read())\n"
    status = sandbox.run(Program(code, "assert True\n"), TIGHT).stdout
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M) and re.search(r"^Seccomp:\s+2$", status, re.M), status
    setuid = "import subprocess\nprint(subprocess.run(['su', '-c', 'id -u'], input=b'', capture_output=True))\n"
    if shutil.which("su"):
        assert "uid=0" not in sandbox.run(Program(setuid, "assert True\n"), TIGHT).stdout


@pytest.mark.timeout(30)
@pytest.mark.parametrize("split", [False, True], ids=["in-process", "split"])
def test_host_unix_sockets_are_unreachable(sandbox: Sandbox, open_dir: Path, split: bool) -> None:
    stream_path, dgram_path = str(open_dir / "host.sock"), str(open_dir / "dgram.sock")
    with socket.socket(socket.AF_UNIX) as listener, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dgram:
        listener.bind(stream_path)
        listener.listen()
        dgram.bind(dgram_path)
        for path in (stream_path, dgram_path):
            os.chmod(path, 0o777)
        listener.settimeout(0.2)
        dgram.settimeout(0.2)
        code = f"import socket\nsocket.socket(socket.AF_UNIX).connect({stream_path!r})\n"
        reason = _run(sandbox, code, split=split)[1]
        assert "Permission denied" in reason, reason
        pair = "import socket\na, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        pair += f"a.sendto(b'x', {dgram_path!r})\n"
        assert "Permission denied" in _run(sandbox, pair, split=split)[1]
        with pytest.raises(TimeoutError):
            listener.accept()
        with pytest.raises(TimeoutError):
            dgram.recv(10)


@pytest.mark.timeout(30)
@pytest.mark.skipif(shutil.which("su") is None or shutil.which("setpriv") is None, reason="needs su and setpriv")
def test_the_uid_sweep_finds_a_setuid_process_by_its_real_uid(sandbox: Sandbox) -> None:
    """Outside any sandbox (no no_new_privs), su run by a sandbox uid has euid 0 and a /proc entry owned by root:
    only its real uid, in /proc/PID/status, gives it away."""
    uid = sandbox.uids[-1]
    read_end, write_end = os.pipe()
    su = subprocess.Popen(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "su", "root", "-c", "true"],
        stdin=read_end, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    os.close(read_end)
    try:
        deadline = time.monotonic() + 5
        while "Name:\tsu\n" not in Path(f"/proc/{su.pid}/status").read_text() and time.monotonic() < deadline:
            time.sleep(0.01)  # until setpriv has dropped to the uid and exec'd su
        assert re.search(rf"^Uid:\t{uid}\t0\t", Path(f"/proc/{su.pid}/status").read_text(), re.M)
        assert os.stat(f"/proc/{su.pid}").st_uid == 0
        runner._kill_uid(uid)
        assert su.wait(timeout=5) == -9
    finally:
        os.close(write_end)
        su.kill()
        su.wait()
