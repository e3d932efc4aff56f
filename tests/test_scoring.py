"""Aggregation of stored outputs: per-item means over samples, CI, extraction failures, breakdown."""

from __future__ import annotations

import pytest

from fusebench.data import load_items
from fusebench.report.table import breakdown_table, results_table
from fusebench.scoring import score_benchmark
from fusebench.spec import get_benchmark


def test_math_outputs_score_and_average_over_samples() -> None:
    spec = get_benchmark("gsm8k")
    items = load_items(spec, limit=3).items  # gold answers 18, 3, 70000
    # item 0: two samples, one right; item 1: right; item 2: no answer at all
    outputs = ["so \\boxed{18}", "\\boxed{17}", "The answer is 3.", "I cannot say."]
    result = score_benchmark(spec, [items[0], items[0], items[1], items[2]], outputs)
    assert [s.value for s in result.scores] == [1.0, 0.0, 1.0, 0.0]
    assert result.n_items == 3
    assert result.interval.estimate == pytest.approx(100 * (0.5 + 1 + 0) / 3)
    assert result.interval.low <= result.interval.estimate <= result.interval.high
    assert result.details["extraction_failures"] == 1


def test_choice_breakdown_by_category_and_tables() -> None:
    spec = get_benchmark("mmlu_pro")
    items = load_items(spec, limit=4).items
    outputs = [f"The answer is ({item.target})." for item in items[:3]] + ["no idea"]
    result = score_benchmark(spec, items, outputs)
    groups = result.details["breakdown"]
    assert sum(g["n"] for g in groups.values()) == 4
    category_of_last = str(items[3].row["category"])
    assert groups[category_of_last]["score"] < 100
    row = {"benchmark": "mmlu_pro", "category": "general", "metric": "accuracy", "n": 4, "score": 75.0,
           "ci_low": 30.0, "ci_high": 95.0, "details": result.details}  # fmt: skip
    table = results_table([row])
    line = next(ln for ln in table.splitlines() if "mmlu_pro" in ln)
    assert "75" in line.split() and "25%" in line.split()
    assert category_of_last in breakdown_table([row])


def test_a_second_scoring_of_counted_answers_stays_out_of_the_average() -> None:
    def row(bench: str, score: float) -> dict[str, object]:
        return {"benchmark": bench, "category": "code", "metric": "pass@1", "n": 4, "score": score,
                "ci_low": None, "ci_high": None, "details": {}}  # fmt: skip

    def mean_shown(table: str) -> float:
        return float(table.split("average (plain mean)")[1].split()[0])

    both = results_table([row("mbpp", 50.0), row("mbpp_plus", 40.0), row("humaneval", 30.0)])
    assert mean_shown(both) == 40.0 and "not in the average: mbpp_plus" in both  # FuseChat-3.0 averages MBPP once
    alone = results_table([row("mbpp_plus", 40.0), row("humaneval", 30.0)])  # without mbpp it is the MBPP number
    assert mean_shown(alone) == 35.0 and "not in the average" not in alone
