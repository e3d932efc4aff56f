"""Results store: runs, cached generations and per-run scores, through SQLAlchemy (SQLite by default)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from fusebench.errors import UsageError

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("config_hash", String(64), index=True, nullable=False),
    Column("model", Text, nullable=False),
    Column("model_fingerprint", JSON, nullable=False),
    Column("backend", String(32), nullable=False),
    Column("suite", String(64)),
    Column("benchmarks", JSON, nullable=False),
    Column("settings", JSON, nullable=False),  # seed, limit, generation overrides
    Column("environment", JSON, nullable=False),  # package versions, engine details
    Column("tags", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # running | complete | incomplete | interrupted | failed
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("summary", JSON),
)

generations = Table(
    "generations",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("benchmark", String(64), nullable=False, index=True),
    Column("sample_id", String(128), nullable=False),
    Column("sample_index", Integer, nullable=False),
    Column("prompt", JSON, nullable=False),
    Column("output", Text, nullable=False),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("finish_reason", String(16)),
    Column("latency_s", Float),
    Column("meta", JSON),
    Column("created_at", DateTime, nullable=False),
)

scores = Table(
    "scores",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("benchmark", String(64), primary_key=True),
    Column("sample_id", String(128), primary_key=True),
    Column("sample_index", Integer, primary_key=True),
    Column("generation_key", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("extracted", Text),
    Column("target", JSON),
    Column("reason", Text),
)

run_benchmarks = Table(
    "run_benchmarks",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("benchmark", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("category", String(32), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("n", Integer, nullable=False),
    Column("score", Float),
    Column("ci_low", Float),
    Column("ci_high", Float),
    Column("generation", JSON, nullable=False),
    Column("data_source", Text),
    Column("data_checksum", String(64)),
    Column("details", JSON),
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


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

    def create_run(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.insert().values(**row, status="running", started_at=now()))

    def mark_running(self, run_id: str, environment: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status="running", environment=environment))

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any] | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(runs).where(runs.c.id == run_id).values(status=status, finished_at=now(), summary=summary)
            )

    def record_rescore(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        """A rescore's outcome: status and summary (with its own rescored_at); the generation times stay."""
        with self.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status=status, summary=summary))

    def list_runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.started_at)).mappings().all()
        return [dict(r) for r in rows]

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id.startswith(run_id))).mappings().all()
        if len(row) != 1:
            raise UsageError(f"run {run_id!r} " + ("not found" if not row else "is ambiguous"))
        return dict(row[0])

    # generations (the sample-level cache)
    def get_generations(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                for row in conn.execute(select(generations).where(generations.c.key.in_(chunk))).mappings():
                    found[row["key"]] = dict(row)
        return found

    def put_generations(self, rows: Sequence[dict[str, Any]]) -> None:
        self._upsert(generations, [{**r, "created_at": now()} for r in rows])

    # scores and per-benchmark results
    def put_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        self._upsert(scores, rows)

    def get_scores(self, run_id: str, benchmark: str | None = None) -> list[dict[str, Any]]:
        query = select(scores).where(scores.c.run_id == run_id)
        if benchmark:
            query = query.where(scores.c.benchmark == benchmark)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def put_benchmark_result(self, row: dict[str, Any]) -> None:
        self._upsert(run_benchmarks, [row])

    def get_benchmark_results(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(run_benchmarks).where(run_benchmarks.c.run_id == run_id)).mappings()
            return [dict(r) for r in rows]


def to_jsonable(value: Any) -> Any:
    """Values from a dataset row (numpy arrays, etc.) made JSON-safe for storage."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
