"""Reference-identical judge scores through the whole eval: MT-Bench ratings outside 1-10 kept and flagged as
"suspect" in the results table, and AlpacaEval outputs equal to the baseline's scored 50.0 (alpaca_eval's own figure
for the baseline) instead of crashing. The judge is scripted (a fake: no judge API is reachable here); parsing,
aggregation and the table are the real ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_judge_stage import Scripted, _eval, _result

from fusebench.evaluate import EvalConfig, run_eval
from fusebench.judging.stage import JudgeOptions
from fusebench.report.table import results_table
from fusebench.spec import benchmarks_dir
from fusebench.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.mark.timeout(60)
def test_mt_bench_out_of_range_ratings_count_and_show_as_suspect(store: Store) -> None:
    def answer(conv: list[dict[str, str]]) -> str:  # turn 2 quotes code: FastChat's fallback reads its [0]
        return "```python\nfirst = rows[0]\n```" if "Conversation with User" in conv[-1]["content"] else "[[8]]"

    outcome, judge = _eval(store, Scripted("judge", answer), "mt_bench", limit=3)
    row = _result(outcome, "mt_bench")
    assert len(judge.sent) == 6  # a read rating is final: no retry for an out-of-range one
    assert row["score"] == pytest.approx((3 * 8 + 3 * 0) / 6)  # FastChat's mean, zeros included
    metrics = row["details"]["metrics"]
    assert (metrics["suspect_ratings"], metrics["judge_failures"], metrics["n_rated"]) == (3, 0, 6)
    assert row["details"]["breakdown"]["turn 2"] == {"n": 3, "score": 0.0}
    assert "4.00 (3 suspect)" in results_table(outcome.results)


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_alpaca_eval_outputs_equal_to_the_baseline_score_50(store: Store) -> None:
    refs = json.loads((benchmarks_dir() / "data/alpaca_eval2/gpt4_turbo_reference_outputs.json").read_text())
    by_instruction = {r["instruction"]: r["output"] for r in refs}
    copycat = Scripted("copycat", lambda conv: by_instruction[conv[-1]["content"]])
    judge = Scripted("judge", lambda conv: "M")
    config = EvalConfig(benchmarks=["alpaca_eval2"], limit=12, progress=False, judge=JudgeOptions())
    outcome = run_eval(config, store, lambda: copycat, make_judge=lambda model: judge)
    row = _result(outcome, "alpaca_eval2")
    assert judge.sent == [] and outcome.status == "complete"
    assert row["score"] == 50.0 and row["details"]["metrics"]["win_rate"] == 50.0
    line = next(ln for ln in results_table(outcome.results).splitlines() if ln.lstrip().startswith("instruction"))
    assert re.search(r"alpaca_eval2\s+\S+\s+12\s+50(\.0+)?\s", line), line
