"""Tests for fusebench.scorers.livebench: LiveBench-schema fixtures, scored by hand with LiveBench's rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusebench.errors import UsageError
from fusebench.scorers.base import ScoreInput, get_scorer
from fusebench.scorers.livebench import TASK_CATEGORY, livebench_category_average, score_livebench, score_task

FIXTURES = Path(__file__).parent / "fixtures" / "livebench"


def _rows(name: str) -> list[dict]:
    with open(FIXTURES / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


QUESTIONS = {q["question_id"]: q for q in _rows("question.jsonl")}
ANSWERS = _rows("answers.jsonl")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("row", ANSWERS, ids=[f"{r['question_id']}-{r['note']}" for r in ANSWERS])
def test_fixture_answers_score_as_livebench_does(row):
    question = QUESTIONS[row["question_id"]]
    score = score_livebench(ScoreInput(output=row["answer"], target=question["ground_truth"], item=question))
    assert score.value == pytest.approx(row["expected"], abs=1e-9)
    expected_reason = {1: "correct", 0: "wrong"}.get(row["expected"], "partial")
    if row["expected"] == 0 and score.extracted in (None, ""):
        expected_reason = "no answer found"
    assert score.reason == expected_reason


@pytest.mark.parametrize("task", ["AMPS_Hard", "olympiad", "typos", "web_of_lies_v2"])
def test_an_empty_answer_counts_as_no_answer(task: str) -> None:
    question = next(q for q in QUESTIONS.values() if q["task"] == task)
    score = score_livebench(ScoreInput(output="", target=question["ground_truth"], item=question))
    assert (score.value, score.reason) == (0, "no answer found")


def test_fixtures_cover_every_task_with_right_and_wrong_answers():
    assert {q["task"] for q in QUESTIONS.values()} == set(TASK_CATEGORY)
    for q in QUESTIONS.values():
        assert TASK_CATEGORY[q["task"]] == q["category"]
    for task in TASK_CATEGORY:
        expected = {r["expected"] for r in ANSWERS if QUESTIONS[r["question_id"]]["task"] == task}
        assert 1 in expected and min(expected) < 1, task


def test_registered_and_refuses_what_it_does_not_cover():
    assert get_scorer("livebench") is score_livebench
    with pytest.raises(UsageError, match="not ground-truth scored"):
        score_task("story_generation", "x", "x")
    with pytest.raises(UsageError, match="no 'task'"):
        score_livebench(ScoreInput(output="x", target="x", item={}))
    with pytest.raises(UsageError, match="letter A-E"):
        score_task("math_comp", "18", "18", "question", "amc_12a_2024")
    with pytest.raises(UsageError, match="formats"):
        score_task("tablereformat", "a,b\n1,2", "a,b\n1,2", "Convert this table.")


@given(st.text(max_size=200))
def test_text_answers_never_crash_and_stay_in_range(answer):
    for question in QUESTIONS.values():
        if question["task"] == "AMPS_Hard":
            continue  # symbolic comparison is slow per call; its inputs are covered by the fixtures
        value, _ = score_task(
            question["task"], question["ground_truth"], answer, question["turns"][0], question.get("subtask", "")
        )
        assert 0 <= value <= 1


def test_category_average_by_hand():
    scores = [
        ("math", "AMPS_Hard", 1.0),
        ("math", "AMPS_Hard", 0.0),
        ("math", "olympiad", 0.4),
        ("language", "typos", 1.0),
        ("language", "typos", 1.0),
        ("language", "typos", 0.0),
        ("language", "connections", 0.5),
    ]
    result = livebench_category_average(scores)
    assert result["tasks"] == pytest.approx({"AMPS_Hard": 50.0, "olympiad": 40.0, "typos": 200 / 3, "connections": 50})
    # category = mean of task means (not of questions); overall = mean of category means
    assert result["categories"] == pytest.approx({"math": 45.0, "language": (200 / 3 + 50) / 2})
    assert result["overall"] == pytest.approx((45.0 + (200 / 3 + 50) / 2) / 2)
    assert livebench_category_average([])["overall"] is None


tasks = st.sampled_from(sorted(TASK_CATEGORY))


@given(st.lists(st.tuples(tasks, st.floats(0, 1)), min_size=1, max_size=60))
def test_overall_is_the_mean_of_category_means(rows):
    result = livebench_category_average([(TASK_CATEGORY[t], t, v) for t, v in rows])
    by_category: dict[str, list[float]] = {}
    for task in {t for t, _ in rows}:
        by_category.setdefault(TASK_CATEGORY[task], []).append(100 * np.mean([v for t, v in rows if t == task]))
    expected = np.mean([np.mean(v) for v in by_category.values()])
    assert result["overall"] == pytest.approx(expected)
    assert 0 <= result["overall"] <= 100
