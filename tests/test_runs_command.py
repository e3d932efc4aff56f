"""`fusebench runs`: each stored run with its tags, duration, average and per-benchmark scores."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

from sqlalchemy import select, update
from test_compare_support import add_run, binary

from fusebench.store import Store, runs

pytest_plugins = ["test_compare_support"]  # the store and cli fixtures


def _took(store: Store, run_id: str, seconds: float) -> None:
    """Move a run's start back so that it took `seconds` (a stored run's real times are the clock's)."""
    with store.engine.begin() as conn:
        finished = conn.execute(select(runs.c.finished_at).where(runs.c.id == run_id)).scalar_one()
        start = finished - dt.timedelta(seconds=seconds)
        conn.execute(update(runs).where(runs.c.id == run_id).values(started_at=start))


def _row(out: str, run_id: str) -> str:
    """A run's row, with the continuation lines of its wrapped cells."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(run_id + " "))
    return " ".join([lines[at], *itertools.takewhile(lambda line: line.startswith(" "), lines[at + 1 :])])


def test_runs_lists_tags_duration_and_scores(store: Store, cli: Any) -> None:
    add_run(store, "base", "org/base", {"gsm8k": binary(40, range(10)), "mbpp": binary(20, range(10)),
                                        "mbpp_plus": binary(20, range(4))},
            tags={"family": "llama-fuse", "step": "400"})  # fmt: skip
    _took(store, "base", 161)
    add_run(store, "long", "org/fused", {"gsm8k": binary(40, range(30)), "amc23": binary(8, range(2))})
    _took(store, "long", 2 * 3600 + 5 * 60 + 9)
    add_run(store, "live", "org/fused", {"gsm8k": binary(4, range(1))}, status="running")
    with store.engine.begin() as conn:  # still generating: not finished yet
        conn.execute(update(runs).where(runs.c.id == "live").values(finished_at=None))

    code, out, err = cli("runs")
    assert (code, err) == (0, "")
    header = out.splitlines()[0].split()
    assert header == ["run", "model", "backend", "suite", "status", "tags", "started", "duration", "average", "scores"]
    base = _row(out, "base")
    assert "family=llama-fuse" in base and "step=400" in base and "2m41s" in base
    # mbpp_plus is a second scoring of mbpp's answers: shown, but out of the average (25 + 50) / 2
    assert " 37.50 " in base and "gsm8k:25.0" in base and "mbpp:50.0" in base and "mbpp_plus:20.0" in base
    long = _row(out, "long")
    assert "2h05m" in long and " 50.00 " in long and "amc23:25.0 gsm8k:75.0" in long
    live = _row(out, "live")
    assert " running " in live and "gsm8k:25.0" in live
    assert not re.search(r"\b\d+(m\d\ds|h\d\dm)\b", live)  # no duration while it runs
    assert out.index("\nlong ") < out.index("\nbase ") < out.index("\nlive ")  # by start, oldest first
