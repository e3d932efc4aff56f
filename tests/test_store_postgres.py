"""The store on a real PostgreSQL server, started by the fixture from Debian's postgresql binaries.

Skipped, with the reason, only where no server can start (no binaries, no psycopg, or start failure).
As root, initdb refuses to run: the server then runs as the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fusebench.compare import compare
from fusebench.errors import UsageError
from fusebench.history import gate
from fusebench.interop.lm_eval_import import import_files
from fusebench.scale import PROPORTION, RATING_10, Scale
from fusebench.store import RunSettings, RunSummary, Store
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL cluster in a temporary folder, reachable through a unix socket there only."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (Debian: apt-get install postgresql)")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="fusebench-pg-"))  # not under pytest's 0700 basetemp: postgres must enter
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()
    ctl = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "fusebench", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
            check=True, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        options = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off -c max_connections=50"
        subprocess.run(
            [*ctl, "-o", options, "-l", str(folder / "server.log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log = (folder / "server.log").read_text()[-500:] if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        detail = getattr(exc, "stderr", "") or ""
        pytest.skip(f"PostgreSQL could not start: {exc} {detail.strip()[-300:]} {log.strip()}")
    try:
        yield f"postgresql+psycopg://fusebench@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    yield store
    from fusebench.store import metadata

    metadata.drop_all(store.engine)  # each test starts from an empty database
    store.engine.dispose()


def _run_row(run_id: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "config_hash": "c" * 64,
        "model": "org/model",
        "model_fingerprint": {"model": "org/model", "sha": "abc"},
        "backend": "hf",
        "suite": None,
        "benchmarks": ["gsm8k"],
        "environment": {"python": "3.11"},
        "tags": {"family": "f"},
    }


def _generation(key: str, output: str) -> dict[str, Any]:
    return {
        "key": key,
        "benchmark": "gsm8k",
        "sample_id": f"gsm8k-{key}",
        "sample_index": 0,
        "prompt": [{"role": "user", "content": "2+2 — ünïcode?"}],
        "output": output,
        "prompt_tokens": 5,
        "completion_tokens": 3,
        "finish_reason": "stop",
        "latency_s": 0.25,
        "meta": {"sample": 0},
    }


def test_store_round_trip_with_upserts(pg_store: Store) -> None:
    store = pg_store
    assert store.engine.dialect.name == "postgresql"
    store.create_run(_run_row("r1"), RunSettings(seed=0))
    assert store.find_resumable_run("c" * 64) == "r1"
    store.put_generations([_generation("k1", "first"), _generation("k2", "x")])
    store.put_generations([_generation("k1", "second \\boxed{4}")])  # upsert: replaces, no duplicate
    gens = store.get_generations(["k1", "k2", "missing"])
    assert set(gens) == {"k1", "k2"} and gens["k1"]["output"] == "second \\boxed{4}"
    assert gens["k1"]["prompt"][0]["content"] == "2+2 — ünïcode?"
    score = {"run_id": "r1", "benchmark": "gsm8k", "sample_index": 0, "extracted": "4", "target": "4"}
    store.put_scores([{**score, "sample_id": "gsm8k-k1", "generation_key": "k1", "score": 0.0}])
    store.put_scores(
        [
            {**score, "sample_id": "gsm8k-k1", "generation_key": "k1", "score": 1.0},
            {**score, "sample_id": "gsm8k-k2", "generation_key": "k2", "score": 0.0},
        ]
    )
    assert sorted((s["sample_id"], s["score"]) for s in store.get_scores("r1")) == [
        ("gsm8k-k1", 1.0),
        ("gsm8k-k2", 0.0),
    ]
    result = {
        "run_id": "r1", "benchmark": "gsm8k", "version": 1, "category": "math", "metric": "accuracy", "n": 2,
        "score": 50.0, "ci_low": 9.5, "ci_high": 90.5, "generation": {"max_new_tokens": 8}, "data_source": "x",
        "data_checksum": "d" * 64, "details": {"n_samples": 2},
    }  # fmt: skip
    store.put_benchmark_result(result, PROPORTION)
    store.put_benchmark_result({**result, "score": 55.0}, RATING_10)
    (stored,) = store.get_benchmark_results("r1")
    assert stored["score"] == 55.0 and stored["generation"] == {"max_new_tokens": 8}
    assert Scale.from_dict(stored["scale"]) == RATING_10
    store.finish_run("r1", "complete", RunSummary(results=[stored]))
    run = store.get_run("r")
    assert run["status"] == "complete" and run["finished_at"] >= run["started_at"]
    assert run["tags"] == {"family": "f"} and store.find_resumable_run("c" * 64) is None
    with pytest.raises(UsageError, match="not found"):
        store.get_run("zzz")


def test_concurrent_upserts_of_the_same_keys_lose_nothing(pg_url: str, pg_store: Store) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            store = Store(pg_url)  # its own engine and connections, as another process would have
            for i in range(30):
                store.put_generations([_generation(f"shared-{i}", f"w{worker}"), _generation(f"w{worker}-{i}", "x")])
            store.engine.dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    keys = [f"shared-{i}" for i in range(30)] + [f"w{w}-{i}" for w in range(4) for i in range(30)]
    assert len(pg_store.get_generations(keys)) == 150


def test_stores_opened_together_on_an_empty_database_all_work(pg_url: str) -> None:
    from fusebench.store import metadata

    barrier, errors, stores = threading.Barrier(4), [], []

    def opener() -> None:
        try:
            barrier.wait()
            stores.append(Store(pg_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(stores) == 4
    stores[0].create_run(_run_row("r"), RunSettings(seed=0))
    assert [r["id"] for r in stores[3].list_runs()] == ["r"]
    metadata.drop_all(stores[0].engine)
    for store in stores:
        store.engine.dispose()


def test_lm_eval_import_and_compare_on_postgres(pg_store: Store) -> None:
    first = import_files(pg_store, next((FIXTURES / "seed1").glob("results_*.json")))
    again = import_files(pg_store, next((FIXTURES / "seed1").glob("results_*.json")))
    other = import_files(pg_store, next((FIXTURES / "seed2").glob("results_*.json")))
    assert first.run_id == again.run_id and not again.created and len(pg_store.list_runs()) == 2
    comparison = compare(pg_store, [first.run_id, other.run_id])
    row = next(r for r in comparison.rows if r.benchmark == "lm-eval:mmlu_pro_mc:acc")
    assert row.deltas[0] is not None and row.deltas[0].n_shared == 12
    assert row.scores[0] == pytest.approx(next(r["score"] for r in first.results if r["benchmark"] == row.benchmark))


def test_a_version_1_store_migrates_on_postgres(pg_url: str, pg_store: Store) -> None:
    """The fixture store's rows (tests/fixtures/store_v1, written by the code before the store API) in PostgreSQL
    tables of that version: opening migrates them as on SQLite (scales filled, judgments moved with their keys)."""
    from sqlalchemy import create_engine, select, text

    from fusebench.store import metadata
    from fusebench.store.migrate import schema_version

    metadata.drop_all(pg_store.engine)
    old_tables = [metadata.tables[n] for n in ("runs", "generations", "scores", "run_benchmarks")]
    metadata.create_all(pg_store.engine, tables=old_tables)
    source = create_engine(f"sqlite:///{FIXTURES.parent / 'store_v1' / 'fusebench.db'}")
    with source.connect() as read, pg_store.engine.begin() as write:
        write.execute(text("ALTER TABLE run_benchmarks DROP COLUMN scale"))
        for table in old_tables:
            columns = [c for c in table.columns if c.name != "scale"]
            write.execute(table.insert(), [dict(r) for r in read.execute(select(*columns)).mappings()])
        judge_keys = {k for (k,) in read.execute(text("select key from generations where benchmark like 'judge:%'"))}
    source.dispose()
    store = Store(pg_url)
    assert schema_version(store.engine) == 2 and len(judge_keys) >= 4
    assert set(store.get_judgments(judge_keys)) == judge_keys and not store.get_generations(judge_keys)
    rated = sorted(r["id"] for r in store.list_runs() if (r["tags"] or {}).get("family") == "rated")
    (failure,) = gate(store, rated[1], rated[0], max_drop=3.0).failures  # a 0.6 rating drop: 6 points
    assert failure.benchmark == "mt_bench" and gate(store, rated[1], rated[0], max_drop=7.0).passed
    store.engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_real_eval_into_postgres(pg_url: str, pg_store: Store, tmp_path: Path) -> None:
    args = ["eval", "--benchmarks", "gsm8k", "--limit", "2", "--max-new-tokens", "16", "--no-progress"]
    done = run_cli(*args, "--store", pg_url, "--output-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 generated, 0 from cache" in done.stdout
    cached = run_cli(*args, "--store", pg_url, "--output-dir", str(tmp_path))
    assert cached.returncode == 0 and "0 generated, 2 from cache" in cached.stdout
    runs = pg_store.list_runs()
    assert len(runs) == 2 and all(r["status"] == "complete" for r in runs)
    for run in runs:
        scores = pg_store.get_scores(run["id"], "gsm8k")
        assert len(scores) == 2 and len(pg_store.get_generations(s["generation_key"] for s in scores)) == 2
    shown = run_cli("compare", runs[0]["id"], runs[1]["id"], "--store", pg_url)
    assert shown.returncode == 0 and re.search(r"gsm8k", shown.stdout)
