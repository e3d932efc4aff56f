"""Bring an older store to the current schema (tables.SCHEMA_VERSION), once, when a process opens it.

Every step is idempotent and safe while another process runs it too, so no lock is needed: a column added twice
fails as "duplicate" and is taken as done, rows are filled only where empty, and judgments are copied with the keys
they had (the judge cache stays valid) before the copies leave `generations`, in one transaction. The version is
recorded last, in `store_meta`; a store at the current version skips all of it.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, func, insert, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from fusebench.scale import PROPORTION, RATING_10, Scale
from fusebench.store.tables import SCHEMA_VERSION, generations, judgments, run_benchmarks, store_meta

LEGACY_RATED = ("mt_bench", "alignbench")
"""The benchmarks that stores of version 1 held on the 1-10 scale (compare.py's RATING_BENCHMARKS then). The only
place benchmark names decide a scale: every row written since stores its own."""

JUDGE_PREFIX = "judge:"  # version 1 stored a judgment in `generations` under "judge:<benchmark>"
SLOTS = 10  # ... with sample_index = SLOTS * slot + attempt


def legacy_scale(benchmark: str) -> Scale:
    """The scale a version-1 store meant for a benchmark's rows."""
    return RATING_10 if benchmark in LEGACY_RATED else PROPORTION


def schema_version(engine: Engine) -> int:
    """The store's recorded version; 1 for a store older than versioning (or one being created right now)."""
    with engine.connect() as conn:
        value = conn.execute(select(store_meta.c.value).where(store_meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 1


ATTEMPTS = 20


def migrate(engine: Engine) -> bool:
    """Migrate to SCHEMA_VERSION if the store is older; True when this call did (or redid) the steps.

    A step that loses a race with another process migrating the same store (SQLite's "locked" on a stale snapshot,
    a key the other inserted first) is retried from the version check: the steps are idempotent."""
    for attempt in range(ATTEMPTS):
        if schema_version(engine) >= SCHEMA_VERSION:
            return False
        try:
            _add_scale_column(engine)
            _fill_scales(engine)
            _move_judgments(engine)
            _record_version(engine)
            return True
        except DBAPIError as exc:
            text_ = str(exc.orig).lower()
            raced = any(w in text_ for w in ("locked", "unique", "duplicate"))
            if attempt == ATTEMPTS - 1 or not raced:
                raise
            time.sleep(0.05 * (attempt + 1))
    return False


def _add_scale_column(engine: Engine) -> None:
    if "scale" in {c["name"] for c in inspect(engine).get_columns("run_benchmarks")}:
        return
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE run_benchmarks ADD COLUMN scale JSON"))
    except DBAPIError as exc:  # another process added it meanwhile
        if "duplicate" not in str(exc.orig).lower() and "already exists" not in str(exc.orig).lower():
            raise


def _fill_scales(engine: Engine) -> None:
    empty = run_benchmarks.c.scale.is_(None)
    rated = run_benchmarks.c.benchmark.in_(LEGACY_RATED)
    with engine.begin() as conn:
        conn.execute(update(run_benchmarks).where(empty, rated).values(scale=RATING_10.to_dict()))
        conn.execute(update(run_benchmarks).where(empty, ~rated).values(scale=PROPORTION.to_dict()))


def _move_judgments(engine: Engine) -> None:
    """Judge rows of `generations` into `judgments` (slot and attempt from sample_index), same keys; then out."""
    old = generations.c
    judged = old.benchmark.startswith(JUDGE_PREFIX)
    copied = select(judgments.c.key)
    source = select(
        old.key,
        func.substr(old.benchmark, len(JUDGE_PREFIX) + 1),
        old.sample_id,
        old.sample_index // SLOTS,
        old.sample_index % SLOTS,
        old.prompt,
        old.output,
        old.prompt_tokens,
        old.completion_tokens,
        old.finish_reason,
        old.latency_s,
        old.meta,
        old.created_at,
    ).where(judged, old.key.not_in(copied))
    columns: list[Any] = [
        "key", "benchmark", "sample_id", "slot", "attempt", "prompt", "output", "prompt_tokens",
        "completion_tokens", "finish_reason", "latency_s", "meta", "created_at",
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(judgments).from_select(columns, source))
        conn.execute(generations.delete().where(judged, old.key.in_(copied)))


def _record_version(engine: Engine) -> None:
    with engine.begin() as conn:
        done = conn.execute(select(store_meta.c.value).where(store_meta.c.key == "schema_version")).scalar()
        if done is None:
            conn.execute(insert(store_meta).values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif int(done) < SCHEMA_VERSION:
            conn.execute(
                update(store_meta).where(store_meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
            )
