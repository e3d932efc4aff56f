"""A store written by the code before the store API (tests/fixtures/store_v1, commit a16d83b) opens with the current
code: it is migrated once (scales filled, judgments moved to their own table with their keys), and `runs`, `show`,
`compare`, `gate`, `history` and `rescore` give the numbers that code gave (expected.json, recorded there)."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import re
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from fusebench.evaluate import rescore_run
from fusebench.scale import PROPORTION, RATING_10, Scale
from fusebench.store import RunSettings, RunSummary, Store
from fusebench.store.migrate import migrate, schema_version
from fusebench.store.tables import SCHEMA_VERSION
from tests.conftest import cli_env, run_cli

FIXTURE = Path(__file__).parent / "fixtures" / "store_v1"
sys.path.insert(0, str(FIXTURE))
from observe import observe, roles  # noqa: E402  (the fixture's own module: the recording used it too)

CTX = mp.get_context("fork")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A fresh copy of the fixture store (opening migrates it in place)."""
    copy = tmp_path / "fusebench.db"
    shutil.copy(FIXTURE / "fusebench.db", copy)
    return copy


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: a store's whole content."""
    names = [n for (n,) in _rows(db, "select name from sqlite_master where type = 'table'")]
    return {n: sorted(_rows(db, f"select * from {n}"), key=repr) for n in names}


def _close(expected: Any, got: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 relative (a different summation order may move the last bit)."""
    if isinstance(expected, float) and isinstance(got, (float, int)):
        assert math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {got} != {expected}"
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and expected.keys() == got.keys(), f"{where}: keys {got} != {expected}"
        for k in expected:
            _close(expected[k], got[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(expected) == len(got), f"{where}: {got} != {expected}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            _close(e, g, f"{where}[{i}]")
    else:
        assert expected == got, f"{where}: {got!r} != {expected!r}"


def test_the_fixture_is_a_version_1_store() -> None:
    """What the migration starts from: no version, judge rows in generations, no scale column."""
    original = FIXTURE / "fusebench.db"
    names = {n for (n,) in _rows(original, "select name from sqlite_master where type = 'table'")}
    assert names == {"runs", "generations", "scores", "run_benchmarks"}
    assert "scale" not in {c[1] for c in _rows(original, "pragma table_info(run_benchmarks)")}
    (judge_rows,) = _rows(original, "select count(*) from generations where benchmark like 'judge:%'")[0]
    assert judge_rows >= 4


def test_compare_gate_history_and_rescore_give_the_recorded_numbers(db: Path) -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())
    got = observe(db)
    _close(expected, got)
    # the rated pair: 6 normalised points lost, so the gate fails at --max-drop 3 and passes at 7 (x10 applied)
    assert got["gate"]["rated200-rated100-3"] and not got["gate"]["rated200-rated100-7"]
    assert got["compare"]["rated100-rated200"]["rows"]["mt_bench"]["normaliser"] == 10.0


def test_rescore_finds_the_answers_two_benchmarks_share(db: Path) -> None:
    """mmlu_pro_lenient scores mmlu_pro's answers (cache_as): rescore counted the shared generations twice and refused
    ("missing 8 generations"). Rescored, each run's results are the ones its eval stored."""
    store = Store(f"sqlite:///{db}")
    ids = roles(store)
    for role in ("step100", "step200"):
        stored = {r["benchmark"]: (r["score"], r["n"]) for r in store.get_benchmark_results(ids[role])}
        assert {"mmlu_pro", "mmlu_pro_lenient"} <= stored.keys()
        assert {r["benchmark"]: (r["score"], r["n"]) for r in rescore_run(store, ids[role])} == stored


def test_typed_records_read_and_write_the_stored_json_unchanged() -> None:
    """Settings feed the config hash (the resume key): parsed and written back they are the same JSON."""
    runs = _rows(FIXTURE / "fusebench.db", "select id, settings, summary from runs")
    assert len(runs) == 6
    for run_id, settings, summary in runs:
        raw = json.loads(settings)
        assert RunSettings.from_json(raw).to_json() == raw, run_id
        parsed = RunSummary.from_json(json.loads(summary))
        assert parsed.version == 1 and parsed.results
        assert RunSummary.from_json(parsed.to_json()) == parsed
    judged = next(json.loads(s) for _, s, _ in runs if "judge_options" in json.loads(s))
    assert RunSettings.from_json(judged).judges()["mt_bench"]["prompt_version"]


def test_migration_fills_scales_and_moves_judgments_with_their_keys(db: Path) -> None:
    before = _rows(
        db, "select key, benchmark, sample_id, sample_index, output from generations where benchmark like 'judge:%'"
    )
    n_generations = _rows(db, "select count(*) from generations")[0][0]
    store = Store(f"sqlite:///{db}")
    assert schema_version(store.engine) == SCHEMA_VERSION
    scales = {
        (r, b): Scale.from_dict(json.loads(s))
        for r, b, s in _rows(db, "select run_id, benchmark, scale from run_benchmarks")
    }
    assert scales and all(s == (RATING_10 if b == "mt_bench" else PROPORTION) for (_, b), s in scales.items())
    moved = _rows(db, "select key, 'judge:' || benchmark, sample_id, 10 * slot + attempt, output from judgments")
    assert sorted(moved) == sorted(before)
    assert _rows(db, "select count(*) from generations")[0][0] == n_generations - len(before)
    judged = store.get_judgments(k for k, *_ in before)
    assert len(judged) == len(before)
    assert all(j["meta"]["slot"] == j["slot"] and j["meta"]["attempt"] == j["attempt"] for j in judged.values())
    assert all(type(j["slot"]) is int and type(j["attempt"]) is int for j in judged.values())  # not 21 / 10 = 2.1


def test_migration_is_idempotent(db: Path) -> None:
    store = Store(f"sqlite:///{db}")
    once = _tables(db)
    assert not migrate(store.engine)  # at the current version: nothing to do
    Store(f"sqlite:///{db}")
    assert _tables(db) == once
    with sqlite3.connect(db) as conn:  # forget the version: every step runs again and changes nothing
        conn.execute("delete from store_meta")
    assert migrate(store.engine)
    assert _tables(db) == once


def _open_and_read(db: Path, barrier: Any, errors: Any) -> None:
    try:
        barrier.wait()
        store = Store(f"sqlite:///{db}")
        for run in store.list_runs():
            assert all(r["scale"] for r in store.get_benchmark_results(run["id"]))
    except BaseException as exc:
        errors.put(f"{type(exc).__name__}: {exc}")
        raise


@pytest.mark.parametrize("round_", range(3))
def test_processes_opening_an_old_store_together_migrate_it_once(db: Path, round_: int) -> None:
    original = _tables(FIXTURE / "fusebench.db")
    barrier, errors = CTX.Barrier(4), CTX.Queue()
    procs = [CTX.Process(target=_open_and_read, args=(db, barrier, errors)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert errors.empty(), errors.get()
    assert all(p.exitcode == 0 for p in procs)
    tables = _tables(db)
    assert tables["store_meta"] == [("schema_version", str(SCHEMA_VERSION))]
    judge_rows = [r for r in original["generations"] if r[1].startswith("judge:")]
    assert len(tables["judgments"]) == len(judge_rows)
    assert len(tables["generations"]) == len(original["generations"]) - len(judge_rows)


def test_cli_reads_the_old_store(db: Path) -> None:
    store = ["--store", str(db)]
    runs = run_cli("runs", *store)
    assert runs.returncode == 0, runs.stderr
    ids = re.findall(r"^(\d{8}-\S+|lm-eval-\S+)\s", runs.stdout, re.M)
    rated = sorted(i for i in ids if "rated" in i)
    assert len(ids) == 6 and len(rated) == 2, runs.stdout
    for run_id in ids:
        shown = run_cli("show", run_id, *store)
        assert shown.returncode == 0, shown.stderr
    compared = run_cli("compare", *rated, "--format", "json", *store)
    assert compared.returncode == 0, compared.stderr
    assert "mt_bench" in compared.stdout
    failed = run_cli("gate", rated[1], "--baseline", rated[0], "--max-drop", "3", *store)
    passed = run_cli("gate", rated[1], "--baseline", rated[0], "--max-drop", "7", *store)
    assert failed.returncode == 1 and "mt_bench" in failed.stdout, failed.stdout + failed.stderr
    assert passed.returncode == 0, passed.stdout + passed.stderr
    for family in ("fixture", "rated"):
        shown = run_cli("history", family, *store)
        assert shown.returncode == 0, shown.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_judged_run_of_an_old_store_reruns_with_zero_judge_calls(db: Path) -> None:
    """The fixture's MT-Bench run again, same settings: answers and judgments all come from the migrated store."""
    judgments = _rows(db, "select count(*) from generations where benchmark like 'judge:%'")[0][0]
    done = run_cli(
        "eval", "--benchmarks", "mt_bench", "--limit", "2", "--max-new-tokens", "24", "--judge",
        "smollm2-135m-instruct", "--judge-backend", "hf", "--judge-max-tokens", "24", "--no-progress",
        "--store", str(db), "--output-dir", str(db.parent), env=cli_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"0 generated, 4 from cache", done.stdout), done.stdout
    assert not re.search(r"^judged \d+ answers", done.stdout, re.M), done.stdout  # the line of judge calls made
    assert "judge failures 4 of 4 judgments" in done.stdout  # the stored verdicts were read
    assert _rows(db, "select count(*) from judgments")[0][0] == judgments
    hashes = _rows(db, "select config_hash from runs where benchmarks = '[\"mt_bench\"]' and id not like '%rated%'")
    assert len(hashes) == 2 and hashes[0] == hashes[1]  # the same settings JSON as the old code wrote
