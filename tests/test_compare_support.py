"""Builders of stored runs with hand-chosen scores, shared by the compare / gate / report tests.

Runs are written through the Store API exactly as `fusebench eval` writes them, without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from fusebench.cli import main
from fusebench.scale import PROPORTION, RATING_10, Scale
from fusebench.store import RunSettings, RunSummary, Store

CATEGORY = {
    "gsm8k": "math",
    "amc23": "math",
    "math500": "math",
    "mt_bench": "instruction_following",
    "mmlu_redux": "general",
    "humaneval": "code",
    "mbpp": "code",
    "mbpp_plus": "code",
}
GREEDY = {"max_new_tokens": 2048, "temperature": 0.0, "top_p": 1.0, "n": 1, "stop": [], "seed": 0}

ItemScores = Sequence[float] | Sequence[Sequence[float]]


def add_run(
    store: Store,
    run_id: str,
    model: str,
    benches: Mapping[str, ItemScores],
    *,
    tags: dict[str, str] | None = None,
    generation: dict[str, Any] | None = None,
    version: int = 1,
    status: str = "complete",
    details: dict[str, Any] | None = None,
    item_ids: Mapping[str, Sequence[str]] | None = None,
    outputs: Callable[[str, str, int], str] | None = None,
    scales: Mapping[str, Scale] | None = None,
) -> None:
    """Store one run: per benchmark, one score per item (or a list per item for several samples), on the scale given
    (default: mt_bench's 1-10 rating, else a proportion)."""
    store.create_run(
        {
            "id": run_id,
            "config_hash": run_id,
            "model": model,
            "model_fingerprint": {"model": model},
            "backend": "hf",
            "suite": None,
            "benchmarks": list(benches),
            "environment": {},
            "tags": tags or {},
        },
        RunSettings(seed=0),
    )
    for bench, values in benches.items():
        ids = list(item_ids[bench]) if item_ids and bench in item_ids else [f"{bench}-{i}" for i in range(len(values))]
        score_rows, gen_rows, means = [], [], []
        for sid, value in zip(ids, values, strict=True):
            samples = list(value) if isinstance(value, Sequence) else [value]
            means.append(sum(samples) / len(samples))
            for j, s in enumerate(samples):
                key = f"{run_id}/{bench}/{sid}/{j}"
                text = outputs(run_id, sid, j) if outputs else f"{model} answers {sid} sample {j}"
                gen_rows.append(
                    {
                        "key": key,
                        "benchmark": bench,
                        "sample_id": sid,
                        "sample_index": j,
                        "prompt": [{"role": "user", "content": f"question {sid}"}],
                        "output": text,
                    }
                )
                score_rows.append(
                    {
                        "run_id": run_id,
                        "benchmark": bench,
                        "sample_id": sid,
                        "sample_index": j,
                        "generation_key": key,
                        "score": float(s),
                        "extracted": f"x{s:g}",
                        "target": f"t-{sid}",
                        "reason": None,
                    }
                )
        store.put_generations(gen_rows)
        store.put_scores(score_rows)
        scale = (scales or {}).get(bench, RATING_10 if bench == "mt_bench" else PROPORTION)
        score = scale.points_per_unit * sum(means) / len(means)
        store.put_benchmark_result(
            {
                "run_id": run_id,
                "benchmark": bench,
                "version": version,
                "category": CATEGORY.get(bench, "general"),
                "metric": "rating" if scale == RATING_10 else "accuracy",
                "n": len(ids),
                "score": score,
                "ci_low": score,
                "ci_high": score,
                "generation": generation or GREEDY,
                "data_source": "local",
                "data_checksum": f"sum-{len(ids)}",
                "details": details or {},
            },
            scale,
        )
    store.finish_run(run_id, status, RunSummary())


def binary(n: int, right: set[int] | range) -> list[float]:
    """n 0/1 item scores, 1 at the given indices."""
    return [1.0 if i in right else 0.0 for i in range(n)]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'fusebench.db'}")


@pytest.fixture
def cli(store: Store, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """`fusebench ARGS --store DB` in process -> (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([*args, "--store", store.url.removeprefix("sqlite:///")])
        except SystemExit as exc:  # argparse rejects bad flags this way
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    yield run


def test_add_run_round_trips_scores(store: Store) -> None:
    add_run(store, "r1", "m", {"gsm8k": [[1, 0], [1, 1]]})
    rows = store.get_scores("r1", "gsm8k")
    assert len(rows) == 4
    assert store.get_benchmark_results("r1")[0]["score"] == pytest.approx(75.0)
