"""The scorer protocol: a scorer owns per-sample scoring, its corpus aggregation, its scale, its parallelism and its
extraction-failure reasons; score_benchmark only asks it. Plain functions keep registering with @register."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Mapping
from dataclasses import replace
from importlib.metadata import EntryPoint

import pytest

from fusebench import scorers
from fusebench.data import Item
from fusebench.scale import PROPORTION, RATING_10
from fusebench.scorers import base
from fusebench.scorers.base import FAILURE_REASONS, FunctionScorer, Rows, Score, ScoreInput, lookup, register
from fusebench.scorers.choice import score_choice
from fusebench.scoring import scale_of, score_benchmark
from fusebench.spec import get_benchmark
from fusebench.stats import Interval, grouped_mean_ci, mean_ci

TOPICS = ("algebra", "geometry", "probability")


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into its own copy of the registry (and sees no installed scorer plugins)."""
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    monkeypatch.setattr(scorers.NAMES, "plugins", lambda: {})


class Rated:
    """A 1-10 rated scorer (the output's digits are its rating); 'unrated' answers are its extraction failures;
    the corpus estimate is the median item with a +-1 band; both samples of an item run at once (parallel)."""

    scale = RATING_10
    parallel = True
    failure_reasons = frozenset({"unrated"})

    def __init__(self) -> None:
        self.together = threading.Barrier(2, timeout=10)  # broken (an error) unless two samples are scored at once

    def score(self, inp: ScoreInput) -> Score:
        self.together.wait()
        digits = "".join(c for c in inp.output if c.isdigit())
        return Score(float(digits), digits, "rated") if digits else Score(1.0, None, "unrated")

    def aggregate(self, item_means: Mapping[str, float], rows: Rows) -> Interval:
        middle = statistics.median(item_means.values())
        return Interval(middle, middle - 1, middle + 1)


def _items(n: int) -> list[Item]:
    return [Item(f"q{i}", f"question {i}", None, {"topic": TOPICS[i % 3]}) for i in range(n)]


def test_a_registered_object_decides_scale_aggregation_parallelism_and_failures() -> None:
    register("rated")(Rated)
    spec = replace(get_benchmark("gsm8k"), id="rated_bench", scorer="rated", breakdown_field="topic")
    items = _items(30)
    outputs = [text for i in range(30) for text in (f"{1 + i % 10}", "unrated" if i % 7 == 0 else f"{1 + i % 10}")]
    result = score_benchmark(spec, [item for item in items for _ in range(2)], outputs)
    means = {it.id: (1 + i % 10 + (1.0 if i % 7 == 0 else 1 + i % 10)) / 2 for i, it in enumerate(items)}
    middle = statistics.median(means.values())
    assert result.interval == Interval(middle, middle - 1, middle + 1)  # RATING_10: 1 display point per unit
    assert result.details["extraction_failures"] == 5  # items 0, 7, 14, 21, 28: only its own reason counts
    assert result.details["n_samples"] == 60 and result.n_items == 30
    for topic in TOPICS:
        members = [means[it.id] for it in items if it.row["topic"] == topic]
        assert result.details["breakdown"][topic] == {"n": 10, "score": pytest.approx(sum(members) / 10)}
    assert scale_of(spec) == RATING_10


def test_a_plain_function_is_a_default_scorer() -> None:
    @register("shouting")
    def shouting(inp: ScoreInput) -> Score:
        return Score(1.0 if inp.output.isupper() else 0.0, None, "" if inp.output else "no answer found")

    scorer = lookup("shouting")
    assert isinstance(scorer, FunctionScorer) and scorer.score is shouting and base.get_scorer("shouting") is shouting
    assert (scorer.scale, scorer.parallel, scorer.failure_reasons) == (PROPORTION, False, FAILURE_REASONS)
    spec = replace(get_benchmark("gsm8k"), id="shout", scorer="shouting", breakdown_field="topic")
    items = _items(40)
    outputs = ["YES" if i % 4 else ("" if i % 8 == 0 else "no") for i in range(40)]
    result = score_benchmark(spec, items, outputs)
    ci = mean_ci([1.0 if i % 4 else 0.0 for i in range(40)])
    assert result.interval == Interval(100 * ci.estimate, 100 * ci.low, 100 * ci.high)
    assert result.details["extraction_failures"] == 5
    assert result.details["breakdown"]["algebra"]["score"] == pytest.approx(100 * 10 / 14)


def test_livebench_headline_is_its_scorers_aggregation() -> None:
    rows = {
        f"i{k}": {"category": c, "task": t} for k, (c, t) in enumerate([("math", "a"), ("math", "b"), ("x", "c")] * 4)
    }
    means = {item_id: float(k % 2) for k, item_id in enumerate(rows)}
    expected = grouped_mean_ci(list(means.values()), [(r["category"], r["task"]) for r in rows.values()])
    assert lookup("livebench").aggregate(means, rows) == expected
    assert [lookup(n).parallel for n in ("humaneval", "mbpp_plus", "livecodebench", "math", "choice")] == [
        True, True, True, False, False,
    ]  # fmt: skip


def test_an_entry_point_registers_a_function_or_an_object(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        EntryPoint("third_party_choice", "fusebench.scorers.choice:score_choice", scorers.ENTRY_POINT_GROUP),
        EntryPoint("third_party_rated", f"{__name__}:Rated", scorers.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(scorers.NAMES, "plugins", lambda: {ep.name: ep for ep in points})
    assert {"third_party_choice", "third_party_rated"} <= set(base.scorer_names())
    assert base.get_scorer("third_party_choice") is score_choice
    assert lookup("third_party_rated").scale == RATING_10 and lookup("third_party_rated").parallel


def test_an_unknown_scorer_and_a_non_scorer() -> None:
    with pytest.raises(KeyError):
        lookup("no_such_scorer")
    with pytest.raises(TypeError, match="not a scorer"):
        register("broken")(42)
