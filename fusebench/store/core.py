"""The Store: every read and write of runs, cached generations, judgments and scores, through SQLAlchemy (SQLite by
default). Opening a store creates missing tables and migrates an older one (`fusebench.store.migrate`)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from fusebench.errors import UsageError
from fusebench.scale import Scale
from fusebench.store.migrate import legacy_scale, migrate
from fusebench.store.records import RunSettings, RunSummary
from fusebench.store.tables import (
    generations,
    judgments,
    metadata,
    now,
    run_benchmarks,
    runs,
    score_cache,
    scores,
)

WAL_SWITCH_SECONDS = 30.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    _switch_to_wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _switch_to_wal(cur: Any) -> None:
    """`PRAGMA journal_mode=WAL`, retried while another process holds the new file: the switch needs an
    exclusive lock and SQLite can answer "database is locked" at once, without its busy handler (seen with
    four processes opening a new store together)."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    attempt = 0
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            attempt += 1
            time.sleep(min(0.01 * attempt, 0.2))


SCHEMA_ATTEMPTS = 10


def create_schema(engine: Engine) -> None:
    """Create the missing tables. Another process creating them at the same moment is not an error.

    `create_all` checks, then creates, table by table: two evals opening a new store together both try to
    create a table and the slower one fails with "already exists". Every retry finds at least one more
    table in place, so a few attempts always finish.
    """
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            metadata.create_all(engine)
            return
        except DBAPIError as exc:
            text = str(exc.orig).lower()
            if attempt == SCHEMA_ATTEMPTS - 1 or not ("already exists" in text or "duplicate key" in text):
                raise
            time.sleep(0.02 * (attempt + 1))


def store_url(value: str | None, output_dir: Path) -> str:
    """A --store value (URL or file path) or the default SQLite file in the output directory."""
    if value and "://" in value:
        return value
    path = Path(value) if value else output_dir / "fusebench.db"
    return f"sqlite:///{path}"


class Store:
    """All persistent state of fusebench. Writes are small transactions, so a kill loses nothing committed."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            create_schema(self.engine)
            migrate(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise UsageError(f"cannot open store {self.safe_url}: {exc}".splitlines()[0]) from exc

    @property
    def safe_url(self) -> str:
        """The URL with any password masked."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def _upsert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = self.engine.dialect.name
        insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)
        if insert is None:
            raise UsageError(f"store dialect {dialect} is not supported (use SQLite or PostgreSQL)")
        stmt: Any = insert(table)
        keys = [c.name for c in table.primary_key.columns]
        stmt = stmt.on_conflict_do_update(
            index_elements=keys,
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, list(rows))

    # runs
    def find_resumable_run(self, config_hash: str) -> str | None:
        """The newest unfinished run with the same configuration, to resume under the same id."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(runs.c.id)
                .where(runs.c.config_hash == config_hash, runs.c.status != "complete")
                .order_by(runs.c.started_at.desc())
            ).first()
        return row[0] if row else None

    def create_run(self, row: dict[str, Any], settings: RunSettings) -> None:
        """A new run, status "running"; `row` holds its identity (id, config_hash, model, ...), not its settings."""
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(**row, settings=settings.to_json(), status="running", started_at=now()))

    def mark_running(self, run_id: str, environment: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status="running", environment=environment))

    def refresh_run(self, run_id: str, row: dict[str, Any], settings: RunSettings) -> None:
        """Overwrite a run's identity and settings (a re-import of the same content), status back to "running"."""
        with self.engine.begin() as conn:
            conn.execute(
                update(runs).where(runs.c.id == run_id).values(**row, settings=settings.to_json(), status="running")
            )

    def finish_run(self, run_id: str, status: str, summary: RunSummary | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(status=status, finished_at=now(), summary=None if summary is None else summary.to_json())
            )

    def record_rescore(self, run_id: str, status: str, summary: RunSummary) -> None:
        """A rescore's outcome: status and summary (with its own rescored_at); the generation times stay."""
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status=status, summary=summary.to_json()))

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(tags=tags))

    def list_runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.started_at)).mappings().all()
        return [dict(r) for r in rows]

    def find_run(self, run_id: str) -> dict[str, Any] | None:
        """The run with exactly this id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        return None if row is None else dict(row)

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id.startswith(run_id))).mappings().all()
        if len(row) != 1:
            raise UsageError(f"run {run_id!r} " + ("not found" if not row else "is ambiguous"))
        return dict(row[0])

    # generations (the sample-level cache) and judgments (the judge cache)
    def get_generations(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._by_key(generations, keys)

    def put_generations(self, rows: Sequence[dict[str, Any]]) -> None:
        self._upsert(generations, [{**r, "created_at": now()} for r in rows])

    def get_judgments(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Stored judge answers by cache key: rows with the judged benchmark, sample_id, slot and attempt."""
        return self._by_key(judgments, keys)

    def put_judgments(self, rows: Sequence[dict[str, Any]]) -> None:
        self._upsert(judgments, [{**r, "created_at": now()} for r in rows])

    def count_judgments(self, benchmark: str | None = None) -> int:
        query = select(func.count()).select_from(judgments)
        if benchmark is not None:
            query = query.where(judgments.c.benchmark == benchmark)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def _by_key(self, table: Table, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                for row in conn.execute(select(table).where(table.c.key.in_(chunk))).mappings():
                    found[row["key"]] = dict(row)
        return found

    # scores and per-benchmark results
    def put_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        self._upsert(scores, rows)

    def get_cached_scores(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Scores already computed for these score keys (fusebench.keys.score_key), by key."""
        return self._by_key(score_cache, keys)

    def put_cached_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        """Remember scores by score key (rows: key, score, extracted, reason)."""
        self._upsert(score_cache, [{**r, "created_at": now()} for r in rows])

    def get_scores(self, run_id: str, benchmark: str | None = None) -> list[dict[str, Any]]:
        query = select(scores).where(scores.c.run_id == run_id)
        if benchmark:
            query = query.where(scores.c.benchmark == benchmark)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def item_means(self, run_id: str, benchmarks: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """benchmark -> sample_id -> mean score over that item's samples, for one run (averaged in the database)."""
        query = (
            select(scores.c.benchmark, scores.c.sample_id, func.avg(scores.c.score))
            .where(scores.c.run_id == run_id)
            .group_by(scores.c.benchmark, scores.c.sample_id)
        )
        if benchmarks is not None:
            query = query.where(scores.c.benchmark.in_(list(benchmarks)))
        out: dict[str, dict[str, float]] = {}
        with self.engine.connect() as conn:
            # Plain DBAPI tuples: building SQLAlchemy Row objects would double the time for 10^5 items.
            rows = conn.execute(query).cursor.fetchall()
        for bench, sample_id, mean in rows:
            out.setdefault(bench, {})[sample_id] = float(mean)
        return out

    def put_benchmark_result(self, row: dict[str, Any], scale: Scale) -> dict[str, Any]:
        """Store one benchmark's result of a run with the scale its scores are on; returns the row as stored."""
        stored = {**row, "scale": scale.to_dict()}
        self._upsert(run_benchmarks, [stored])
        return stored

    def get_benchmark_results(self, run_id: str) -> list[dict[str, Any]]:
        """A run's result rows; "scale" as stored (a row written by an older process meanwhile: the legacy one)."""
        with self.engine.connect() as conn:
            query = select(run_benchmarks).where(run_benchmarks.c.run_id == run_id)
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            if not row.get("scale"):
                row["scale"] = legacy_scale(row["benchmark"]).to_dict()
        return rows


def scale_of_result(row: dict[str, Any]) -> Scale:
    """The scale of a result row as `get_benchmark_results` returns it."""
    return Scale.from_dict(row["scale"])


def to_jsonable(value: Any) -> Any:
    """Values from a dataset row (numpy arrays, etc.) made JSON-safe for storage."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
