"""The score cache: an answer already scored by the same scorer code is not scored again (a fully cached eval then
imports no scorer library), `rescore` and `--no-cache` score everything, and time-limit verdicts are never reused."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import fusebench.scoring
from fusebench.backends import BackendOptions, make_backend
from fusebench.backends.base import GenParams
from fusebench.data import Item
from fusebench.evaluate import EvalConfig, ScoreCache, rescore_run, run_eval
from fusebench.judging.stage import JudgeOptions
from fusebench.keys import score_key
from fusebench.plan import Request
from fusebench.scorers.base import FunctionScorer, Score, ScoreInput, lookup
from fusebench.scorers.fingerprint import scorer_code
from fusebench.spec import get_benchmark
from fusebench.store import Store

N_ITEMS = 8


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'fusebench.db'}")


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The real GSM8K scorer, counting the answers it is handed (the cache keys still see the real scorer's code)."""
    calls: list[str] = []
    real = fusebench.scoring.scorer_of

    def counting(spec: Any) -> Any:
        scorer = real(spec)
        assert isinstance(scorer, FunctionScorer)

        def score(inp: ScoreInput) -> Score:
            calls.append(inp.output)
            return scorer.score(inp)

        return dataclasses.replace(scorer, score=score)

    monkeypatch.setattr(fusebench.scoring, "scorer_of", counting)
    yield calls


def _scores(store: Store, run_id: str) -> list[tuple[Any, ...]]:
    rows = store.get_scores(run_id, "gsm8k")
    return sorted((r["sample_id"], r["score"], r["extracted"], r["reason"]) for r in rows)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_cached_rerun_scores_nothing_and_rescore_and_no_cache_score_everything(
    store: Store, scored: list[str]
) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    backend = make_backend("hf", None, BackendOptions(batch_size=4))
    config = EvalConfig(
        benchmarks=["gsm8k"], limit=N_ITEMS, generation={"max_new_tokens": 96}, progress=False, judge=JudgeOptions()
    )
    first = run_eval(config, store, lambda: backend)
    assert len(scored) == N_ITEMS
    second = run_eval(config, store, lambda: backend)
    assert len(scored) == N_ITEMS  # every answer's score read back
    assert _scores(store, second.run_id) == _scores(store, first.run_id)
    assert [r["score"] for r in second.results] == [r["score"] for r in first.results]

    rescore_run(store, second.run_id)  # rescore recomputes: that is what it is for
    assert len(scored) == 2 * N_ITEMS
    assert _scores(store, second.run_id) == _scores(store, first.run_id)

    uncached = run_eval(dataclasses.replace(config, no_cache=True), store, lambda: backend)
    assert len(scored) == 3 * N_ITEMS
    assert _scores(store, uncached.run_id) == _scores(store, first.run_id)


def _requests(n: int) -> list[Request]:
    return [
        Request(
            benchmark="mbpp",
            item=Item(id=str(i), input=f"task {i}", target=[f"assert f{i}() == {i}"], row={"text": f"task {i}"}),
            sample_index=0,
            conversation=[],
            key=f"gen{i}",
            params=GenParams(),
        )
        for i in range(n)
    ]


def test_time_limit_verdicts_are_never_reused(store: Store) -> None:
    spec = get_benchmark("mbpp")
    reqs = _requests(3)
    cache = ScoreCache.open(store, spec, reqs, reuse=True)
    assert cache.known == {}
    verdicts = [
        Score(1.0, "def f(): ...", "passed"),
        Score(0.0, "def g(): ...", "timeout: wall-clock limit of 10s exceeded"),
        Score(0.0, "def h(): ...", "failed: AssertionError"),
    ]
    cache.remember(verdicts)
    again = ScoreCache.open(store, spec, reqs, reuse=True)
    assert again.known == {0: verdicts[0], 2: verdicts[2]}
    assert ScoreCache.open(store, spec, reqs, reuse=False).known == {}


def test_a_score_key_changes_with_everything_the_score_depends_on() -> None:
    base: dict[str, Any] = {
        "scorer": "math",
        "scorer_code": "fusebench:abc",
        "benchmark": "gsm8k",
        "benchmark_version": 1,
        "answer": "completion",
        "generation_key": "g1",
        "item": {"row": {"question": "1+1?"}, "target": "2"},
    }
    key = score_key(**base)
    assert score_key(**base) == key
    changes = {
        "scorer": "math_qwen25",
        "scorer_code": "fusebench:abd",
        "benchmark": "math500",
        "benchmark_version": 2,
        "answer": "evalplus_sanitized",
        "generation_key": "g2",
        "item": {"row": {"question": "1+1?"}, "target": "3"},
    }
    for field_name, value in changes.items():
        assert score_key(**{**base, field_name: value}) != key, field_name


def test_scorer_code_hashes_the_source_the_scorer_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builtin = scorer_code(lookup("math"))
    assert builtin is not None and builtin.startswith("fusebench:")
    assert scorer_code(lookup("humaneval")) == builtin  # one hash over fusebench's scorers and sandbox sources
    for version in ("1", "2"):
        module = tmp_path / f"thirdparty_scorer_v{version}.py"
        module.write_text(f"def score(inp):\n    return {version}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import thirdparty_scorer_v1  # type: ignore[import-not-found]
    import thirdparty_scorer_v2  # type: ignore[import-not-found]

    one = scorer_code(FunctionScorer(thirdparty_scorer_v1.score))
    two = scorer_code(FunctionScorer(thirdparty_scorer_v2.score))
    assert one and two and one != two and one.startswith("thirdparty_scorer_v1:")
