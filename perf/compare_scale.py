"""Time `compare` and `gate` end to end on two synthetic runs of 14 benchmarks x 10,000 items.

The runs are written into a temporary SQLite store through the Store API; the timed calls include
loading every score from the store, the paired bootstrap CIs, the tests, Holm and the MDEs. Twelve
benchmarks are 0/1 (McNemar), two have 4 samples per item (permutation test on item means).

Prints one line per figure and finishes with `ratio: X`, where X = 3.0 s (the target for comparing two
such runs) / the measured `compare` time: above 1 means faster than the target.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from fusebench.compare import compare
from fusebench.history import gate
from fusebench.scale import PROPORTION
from fusebench.store import RunSettings, RunSummary, Store

N_BENCHMARKS = 14
N_ITEMS = 10_000
MULTI_SAMPLE = {"bench12": 4, "bench13": 4}
TARGET_S = 3.0
GREEDY = {"max_new_tokens": 2048, "temperature": 0.0, "top_p": 1.0, "n": 1, "stop": [], "seed": 0}


def build_run(store: Store, run_id: str, accuracy: float, rng: np.random.Generator) -> None:
    """One synthetic complete run: scores, (empty) generations and per-benchmark results."""
    names = [f"bench{i:02d}" for i in range(N_BENCHMARKS)]
    store.create_run(
        {
            "id": run_id,
            "config_hash": run_id,
            "model": f"synthetic/{run_id}",
            "model_fingerprint": {"model": run_id},
            "backend": "hf",
            "suite": None,
            "benchmarks": names,
            "environment": {},
            "tags": {"family": "synthetic"},
        },
        RunSettings(),
    )
    for k, name in enumerate(names):
        samples = MULTI_SAMPLE.get(name, 1)
        values = (rng.random((N_ITEMS, samples)) < accuracy).astype(float)
        rows = [
            {
                "run_id": run_id,
                "benchmark": name,
                "sample_id": f"item-{i}",
                "sample_index": j,
                "generation_key": f"{run_id}/{name}/{i}/{j}",
                "score": float(values[i, j]),
                "extracted": None,
                "target": None,
                "reason": None,
            }
            for i in range(N_ITEMS)
            for j in range(samples)
        ]
        store.put_scores(rows)
        store.put_benchmark_result(
            {
                "run_id": run_id,
                "benchmark": name,
                "version": 1,
                "category": ("instruction_following", "general", "math", "code")[k % 4],
                "metric": "accuracy",
                "n": N_ITEMS,
                "score": 100 * float(values.mean()),
                "ci_low": None,
                "ci_high": None,
                "generation": GREEDY,
                "data_source": "synthetic",
                "data_checksum": "synthetic",
                "details": {},
            },
            PROPORTION,
        )
    store.finish_run(run_id, "complete", RunSummary())


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'perf.db'}")
        start = time.perf_counter()
        build_run(store, "base", 0.60, rng)
        build_run(store, "cand", 0.59, rng)
        print(f"build store (2 runs x {N_BENCHMARKS} x {N_ITEMS:,} items): {time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        comparison = compare(store, ["base", "cand"])
        compare_s = time.perf_counter() - start
        print(f"compare (load + deltas + CIs + tests + Holm + MDE): {compare_s:.2f} s, {len(comparison.rows)} rows")
        start = time.perf_counter()
        result = gate(store, "cand", "base", max_drop=1.0)
        print(f"gate: {time.perf_counter() - start:.2f} s, passed={result.passed}")
        print(f"target compare time: {TARGET_S:.1f} s")
        print(f"ratio: {TARGET_S / compare_s:.2f}")


if __name__ == "__main__":
    main()
