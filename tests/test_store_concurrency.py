"""The store under load: processes writing one SQLite store at once lose no rows.

Fast tests fork writer processes that start together on a barrier; the slow test runs two real
`fusebench eval` processes of the bundled model against the same store.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from fusebench.cli_common import _check_writable
from fusebench.store import RunSettings, RunSummary, Store, create_schema, now
from tests.conftest import REPO, cli_env

CTX = mp.get_context("fork")  # children inherit the imported modules: starting 4 writers costs milliseconds


def _run_row(run_id: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "config_hash": run_id,
        "model": "m",
        "model_fingerprint": {},
        "backend": "hf",
        "suite": None,
        "benchmarks": ["b"],
        "environment": {},
        "tags": {},
    }


def _gen(key: str, output: str) -> dict[str, Any]:
    return {"key": key, "benchmark": "b", "sample_id": key, "sample_index": 0, "prompt": [], "output": output}


def _writer(url: str, barrier: Any, worker: int, n: int, errors: Any) -> None:
    """Open the (new) store when every writer is ready, then commit n small batches as an eval does."""
    try:
        barrier.wait()
        store = Store(url)
        run_id = f"run-{worker}"
        store.create_run(_run_row(run_id), RunSettings())
        for i in range(n):
            keys = [f"w{worker}-{i}-{j}" for j in range(3)] + [f"shared-{i}"]  # shared keys: concurrent upserts
            store.put_generations([_gen(k, f"out {worker}") for k in keys])
            assert set(store.get_generations(keys)) == set(keys)
            store.put_scores(
                [
                    {"run_id": run_id, "benchmark": "b", "sample_id": k, "sample_index": 0, "generation_key": k,
                     "score": 1.0}
                    for k in keys
                ]
            )  # fmt: skip
        store.finish_run(run_id, "complete", RunSummary())
    except BaseException as exc:  # reported to the parent: a child's traceback alone would not fail the test
        errors.put(f"writer {worker}: {type(exc).__name__}: {exc}")
        raise


def _hammer(db: Path, workers: int, n: int) -> list[str]:
    barrier, errors = CTX.Barrier(workers), CTX.Queue()
    procs = [CTX.Process(target=_writer, args=(f"sqlite:///{db}", barrier, w, n, errors)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found + [f"exit code {p.exitcode}" for p in procs if p.exitcode != 0]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("round_", range(3))
def test_writers_opening_a_new_store_together_lose_no_rows(tmp_path: Path, round_: int) -> None:
    workers, n = 4, 40
    db = tmp_path / "fusebench.db"
    assert _hammer(db, workers, n) == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from generations").fetchone()[0] == workers * n * 3 + n
        assert conn.execute("select count(*) from scores").fetchone()[0] == workers * n * 4
        done = conn.execute("select id, status from runs order by id").fetchall()
    assert done == [(f"run-{w}", "complete") for w in range(workers)]


def test_schema_creation_retries_only_on_a_concurrent_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    import fusebench.store as store_mod

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    calls: list[int] = []
    real = store_mod.metadata.create_all

    def flaky(bind: Any) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("CREATE TABLE runs", {}, sqlite3.OperationalError("table runs already exists"))
        real(bind)

    monkeypatch.setattr(store_mod.metadata, "create_all", flaky)
    create_schema(engine)
    assert len(calls) == 3
    calls.clear()

    def broken(bind: Any) -> None:
        calls.append(1)
        raise OperationalError("CREATE TABLE runs", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(store_mod.metadata, "create_all", broken)
    with pytest.raises(OperationalError, match="disk I/O"):
        create_schema(engine)
    assert len(calls) == 1
    assert now().tzinfo is None


def test_writability_checks_of_evals_starting_together_do_not_collide(tmp_path: Path) -> None:
    """Every writing command probes its output folder before opening the store; two evals started at once probed
    the same file name, and one removed the other's probe (seen in CI: 'not writable: No such file or directory')."""
    errors: list[BaseException] = []

    def probe_repeatedly() -> None:
        for _ in range(200):
            try:
                _check_writable(tmp_path)
            except Exception as exc:  # the failure is the observation
                errors.append(exc)

    threads = [threading.Thread(target=probe_repeatedly) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(tmp_path.iterdir()) == []  # no probe left behind


def _eval(out: Path, max_new_tokens: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fusebench.cli", "eval", "--benchmarks", "gsm8k", "--limit", "2",
         "--max-new-tokens", str(max_new_tokens), "--output-dir", str(out), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=REPO,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_real_evals_at_once_on_one_store_lose_no_rows(tmp_path: Path) -> None:
    """Both evals generate (different max_new_tokens: no shared cache keys) and write the same new SQLite file."""
    procs = [_eval(tmp_path, 24), _eval(tmp_path, 32)]
    outs = [p.communicate(timeout=540) for p in procs]
    for p, (stdout, stderr) in zip(procs, outs, strict=True):
        assert p.returncode == 0, stderr[-2000:]
        assert re.search(r"2 generated, 0 from cache", stdout), stdout
    run_ids = sorted(re.search(r"^run (\S+):", o[0], re.M).group(1) for o in outs)  # type: ignore[union-attr]
    store = Store(f"sqlite:///{tmp_path / 'fusebench.db'}")
    runs = {r["id"]: r for r in store.list_runs()}
    assert sorted(runs) == run_ids and all(r["status"] == "complete" for r in runs.values())
    budgets = set()
    for run_id in run_ids:
        scores = store.get_scores(run_id, "gsm8k")
        gens = store.get_generations(s["generation_key"] for s in scores)
        assert len(scores) == 2 and len(gens) == 2
        assert all(g["completion_tokens"] and g["output"] for g in gens.values())
        (result,) = store.get_benchmark_results(run_id)
        assert result["n"] == 2
        budgets.add(result["generation"]["max_new_tokens"])
    assert budgets == {24, 32}
    with sqlite3.connect(tmp_path / "fusebench.db") as conn:
        assert conn.execute("select count(*) from generations").fetchone()[0] == 4


def test_wal_switch_retries_only_while_the_file_is_locked() -> None:
    # a scripted cursor: the real race is what the writers test above hammers; this pins the retry rule
    from fusebench.store import _switch_to_wal

    class Cursor:
        def __init__(self, failures: list[str]) -> None:
            self.failures, self.calls = failures, 0

        def execute(self, sql: str) -> None:
            assert sql == "PRAGMA journal_mode=WAL"
            self.calls += 1
            if self.failures:
                raise sqlite3.OperationalError(self.failures.pop(0))

    locked = Cursor(["database is locked", "database is locked"])
    _switch_to_wal(locked)
    assert locked.calls == 3
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        _switch_to_wal(Cursor(["disk I/O error"]))
