"""The results store and its records: the only module that reads or writes the tables (see `core.Store`)."""

from fusebench.store.core import (
    Store,
    _switch_to_wal,
    create_schema,
    scale_of_result,
    store_url,
    to_jsonable,
)
from fusebench.store.records import BenchmarkSettings, RunSettings, RunSummary
from fusebench.store.tables import metadata, now, runs

__all__ = [
    "BenchmarkSettings",
    "RunSettings",
    "RunSummary",
    "Store",
    "_switch_to_wal",
    "create_schema",
    "metadata",
    "now",
    "runs",
    "scale_of_result",
    "store_url",
    "to_jsonable",
]
