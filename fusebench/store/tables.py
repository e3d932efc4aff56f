"""The store's tables. Only `fusebench.store` reads or writes them; everything else calls `Store` methods."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table, Text

SCHEMA_VERSION = 2
"""1: the implicit schema before versioning (judgments in `generations`, no scale); 2: `run_benchmarks.scale`, the
`judgments` table, `store_meta`. `fusebench.store.migrate` takes a store from 1 to 2."""

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
    Column("settings", JSON, nullable=False),  # records.RunSettings
    Column("environment", JSON, nullable=False),  # package versions, engine details
    Column("tags", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # running | complete | incomplete | interrupted | failed
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("summary", JSON),  # records.RunSummary
)


def _model_call_columns() -> list[Column[Any]]:
    """What a stored model answer carries, generations and judgments alike: the prompt, the output and how it came
    (fresh Column objects for each table)."""
    return [
        Column("prompt", JSON, nullable=False),
        Column("output", Text, nullable=False),
        Column("prompt_tokens", Integer),
        Column("completion_tokens", Integer),
        Column("finish_reason", String(16)),
        Column("latency_s", Float),
        Column("meta", JSON),
        Column("created_at", DateTime, nullable=False),
    ]


generations = Table(
    "generations",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("benchmark", String(64), nullable=False, index=True),
    Column("sample_id", String(128), nullable=False),
    Column("sample_index", Integer, nullable=False),
    *_model_call_columns(),
)

judgments = Table(
    "judgments",
    metadata,
    Column("key", String(64), primary_key=True),  # the judge cache key (judging.stage): unchanged by the move
    Column("benchmark", String(64), nullable=False, index=True),  # the judged benchmark
    Column("sample_id", String(128), nullable=False),
    Column("slot", Integer, nullable=False),  # which judgment of the item (a turn, a game order)
    Column("attempt", Integer, nullable=False),  # 0, or 1 for the retry of an unparsable verdict
    *_model_call_columns(),
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

score_cache = Table(
    "score_cache",
    metadata,
    Column("key", String(64), primary_key=True),  # keys.score_key: the scorer's code, the answer and its target
    Column("score", Float, nullable=False),
    Column("extracted", Text),
    Column("reason", Text),
    Column("created_at", DateTime, nullable=False),
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
    Column("scale", JSON),  # fusebench.scale.Scale.to_dict(); filled for old rows by the migration
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
