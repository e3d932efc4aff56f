"""`compare` and `diff` on hand-built stored runs, checked against hand-computed numbers."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_compare_support import GREEDY, add_run, binary

from fusebench.compare import compare, diff_runs, resolve_run
from fusebench.errors import UsageError
from fusebench.report.compare_table import render_comparison, render_diff
from fusebench.store import Store

pytest_plugins = ["test_compare_support"]  # the store and cli fixtures

Z80 = 1.959963984540054 + 0.8416212335729143  # z_{0.975} + z_{0.8}


def _binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p at 0.5 (symmetric): 2 * P(X >= max(k, n-k)), capped at 1."""
    tail = sum(math.comb(n, i) for i in range(max(k, n - k), n + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.fixture
def two_runs(store: Store) -> Store:
    # gsm8k, 20 items: base right on 0-9, new right on 0-5 and 10-17 -> 4 lost, 8 gained, delta +4/20.
    add_run(store, "base-1", "org/base", {"gsm8k": binary(20, range(10)), "humaneval": binary(4, {0})})
    add_run(store, "new-1", "org/new", {"gsm8k": binary(20, set(range(6)) | set(range(10, 18)))})
    return store


def test_delta_mcnemar_and_missing_benchmark(two_runs: Store) -> None:
    c = compare(two_runs, ["base-1", "new-1"])
    rows = {r.benchmark: r for r in c.rows}
    g = rows["gsm8k"]
    assert g.scores == (50.0, 70.0)
    d = g.deltas[0]
    assert d is not None and d.n_shared == 20
    assert d.delta.estimate == pytest.approx(20.0)
    assert d.delta.low < 20.0 < d.delta.high
    assert d.test == "mcnemar"
    expected_p = 2 * sum(math.comb(12, i) for i in range(8, 13)) / 2**12  # 8 of 12 discordant
    assert d.p == pytest.approx(expected_p) == pytest.approx(0.3876953125)
    assert d.p_holm == pytest.approx(expected_p)  # the only test in the table
    assert d.mde == pytest.approx(100 * Z80 * math.sqrt(12 / 20 / 20))
    h = rows["humaneval"]  # only the base has it: shown, not dropped
    assert h.scores == (25.0, None) and h.deltas == (None,)
    assert any(f.startswith("humaneval: missing in new") for f in c.flags)
    assert [r.benchmark for r in c.rows] == ["gsm8k", "humaneval"]  # math before code


def test_holm_across_benchmarks(store: Store) -> None:
    # discordant tables: amc23 0 lost/10 gained, gsm8k 0/6, math500 4/8.
    add_run(store, "a", "A", {"amc23": binary(40, set()), "gsm8k": binary(10, set()), "math500": binary(20, range(4))})
    add_run(
        store,
        "b",
        "B",
        {"amc23": binary(40, range(10)), "gsm8k": binary(10, range(6)), "math500": binary(20, range(4, 12))},
    )
    c = compare(store, ["a", "b"])
    got = {r.benchmark: r.deltas[0] for r in c.rows}
    raw = {"amc23": 2 / 2**10, "gsm8k": 2 / 2**6, "math500": _binom_two_sided(8, 12)}
    for bench, p in raw.items():
        assert got[bench].p == pytest.approx(p)  # type: ignore[union-attr]
    # Holm by hand: sorted 0.00195 * 3, then max(that, 0.03125 * 2), then max(that, 0.3877 * 1)
    assert got["amc23"].p_holm == pytest.approx(3 * raw["amc23"])  # type: ignore[union-attr]
    assert got["gsm8k"].p_holm == pytest.approx(2 * raw["gsm8k"])  # type: ignore[union-attr]
    assert got["math500"].p_holm == pytest.approx(raw["math500"])  # type: ignore[union-attr]
    assert got["amc23"].significant() and not got["gsm8k"].significant()  # type: ignore[union-attr]
    # AMC23: 40 items, 10 discordant -> MDE 2.80 * sqrt(0.25 / 40) = 22 points
    assert got["amc23"].mde == pytest.approx(100 * Z80 * math.sqrt(0.25 / 40))  # type: ignore[union-attr]


def test_averages_plain_and_normalised(store: Store) -> None:
    add_run(store, "a", "A", {"gsm8k": binary(10, range(6)), "mt_bench": [8.0, 8.0]})
    add_run(store, "b", "B", {"gsm8k": binary(10, range(7)), "mt_bench": [9.0, 8.0]})
    c = compare(store, ["a", "b"])
    assert c.averages.plain == pytest.approx((34.0, 39.25))  # (60+8)/2, (70+8.5)/2
    assert c.averages.normalised == pytest.approx((70.0, 77.5))  # (60+80)/2, (70+85)/2
    mt = next(r for r in c.rows if r.benchmark == "mt_bench").deltas[0]
    assert mt is not None and mt.test == "permutation" and mt.delta.estimate == pytest.approx(0.5)
    text = render_comparison(c)
    assert "average (plain mean)" in text and "averages over the 2 of 2 benchmarks" in text and "mt_bench x10" in text
    assert "34.00" in text and "77.50" in text


def test_mbpp_plus_beside_mbpp_is_not_averaged(store: Store) -> None:
    for run, solved in (("a", 5), ("b", 6)):
        mbpp, plus = binary(10, range(solved)), binary(10, range(solved - 1))
        add_run(store, run, run.upper(), {"mbpp": mbpp, "mbpp_plus": plus, "gsm8k": binary(10, {0})})
    c = compare(store, ["a", "b"])
    assert set(c.averages.benchmarks) == {"gsm8k", "mbpp"}
    assert c.averages.plain == pytest.approx((30.0, 35.0))  # (50+10)/2, (60+10)/2


def test_mismatch_flags(store: Store) -> None:
    add_run(store, "a", "A", {"gsm8k": binary(10, range(5)), "amc23": binary(4, {0})}, details={"judge": "gpt-4"})
    add_run(
        store,
        "b",
        "B",
        {"gsm8k": binary(8, range(5)), "amc23": binary(4, {1})},
        version=2,
        generation={**GREEDY, "temperature": 0.7, "seed": 3},
        details={"judge": "gpt-4o"},
    )
    flags = compare(store, ["a", "b"]).flags
    text = "\n".join(flags)
    assert "gsm8k: benchmark version 1 vs 2" in text
    assert "temperature 0.0 vs 0.7" in text and "seed 0 vs 3" in text
    assert "[A vs B]" in text  # labelled in the order the values are given
    assert "gsm8k: item sets differ: n 10 vs 8, 8 shared items" in text
    assert "amc23: judge gpt-4 vs gpt-4o" in text
    assert not any("amc23: item sets" in f for f in flags)


def test_per_item_generation_params_are_compared_per_group(store: Store) -> None:
    by = {"category=writing": {**GREEDY, "temperature": 0.7, "seed": 1}, "category=math": {**GREEDY, "seed": 1}}
    add_run(store, "old", "A", {"mt_bench": [8.0, 7.0]}, generation=GREEDY)  # before per-category temperatures
    add_run(store, "new", "A", {"mt_bench": [8.0, 6.0]}, generation={**GREEDY, "seed": 1, "by": by})
    flags = compare(store, ["old", "new"]).flags
    assert any("category=writing: temperature 0.0 vs 0.7" in f for f in flags)
    assert any("seed 0 vs 1" in f for f in flags)  # a group samples: seeds matter
    assert not any("category=math: temperature" in f for f in flags)
    greedy_by = {"category=math": {**GREEDY, "seed": 5}}  # all greedy: seeds do not matter, nor does "by" alone
    add_run(store, "g1", "A", {"mt_bench": [8.0]}, generation={**GREEDY, "by": greedy_by})
    add_run(store, "g2", "A", {"mt_bench": [8.0]}, generation={**GREEDY, "seed": 9, "by": {}})
    assert compare(store, ["g1", "g2"]).flags == ()


def test_no_flags_for_like_for_like(two_runs: Store) -> None:
    c = compare(two_runs, ["base-1", "new-1"], benchmarks=["gsm8k"])
    assert c.flags == ()
    assert [r.benchmark for r in c.rows] == ["gsm8k"]


def test_item_ids_differ_with_same_n(store: Store) -> None:
    add_run(store, "a", "A", {"gsm8k": [1, 0, 1]}, item_ids={"gsm8k": ["q1", "q2", "q3"]})
    add_run(store, "b", "B", {"gsm8k": [1, 1, 0]}, item_ids={"gsm8k": ["q1", "q2", "q4"]})
    c = compare(store, ["a", "b"])
    d = c.rows[0].deltas[0]
    assert d is not None and d.n_shared == 2 and d.delta.estimate == pytest.approx(50.0)
    assert any("item sets differ: n 3 vs 3, 2 shared" in f for f in c.flags)


def test_multi_sample_items_use_item_means(store: Store) -> None:
    add_run(store, "a", "A", {"gsm8k": [[1, 0], [0, 0], [1, 1]]})
    add_run(store, "b", "B", {"gsm8k": [[1, 1], [0, 1], [1, 1]]})
    d = compare(store, ["a", "b"]).rows[0].deltas[0]
    assert d is not None and d.test == "permutation"
    assert d.delta.estimate == pytest.approx(100 * (0.5 + 0.5 + 0) / 3)


def test_three_runs_holm_over_every_delta(store: Store) -> None:
    add_run(store, "a", "A", {"gsm8k": binary(10, set())})
    add_run(store, "b", "B", {"gsm8k": binary(10, range(10))})
    add_run(store, "c", "C", {"gsm8k": binary(10, range(6))})
    row = compare(store, ["a", "b", "c"]).rows[0]
    pb, pc = 2 / 2**10, 2 / 2**6
    assert [d.p_holm for d in row.deltas] == pytest.approx([2 * pb, max(2 * pb, pc)])  # type: ignore[union-attr]


def test_resolve_run_by_prefix_and_model(store: Store) -> None:
    add_run(store, "20240101-aaa", "org/llama", {"gsm8k": [1.0]})
    add_run(store, "20240102-bbb", "org/llama", {"gsm8k": [0.0]})
    add_run(store, "20240103-ccc", "org/llama", {"gsm8k": [0.0]}, status="failed")
    assert resolve_run(store, "20240101")["id"] == "20240101-aaa"
    assert resolve_run(store, "org/llama")["id"] == "20240102-bbb"  # latest complete
    assert resolve_run(store, "llama")["id"] == "20240102-bbb"
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_run(store, "2024")
    with pytest.raises(UsageError, match="no run id starts with"):
        resolve_run(store, "nope")
    with pytest.raises(UsageError, match="named twice"):
        compare(store, ["20240102", "llama"])
    with pytest.raises(UsageError, match="no compared run has"):
        compare(store, ["20240101", "20240102"], benchmarks=["mbpp"])


def test_incomplete_run_is_flagged(store: Store) -> None:
    add_run(store, "a", "A", {"gsm8k": [1.0, 0.0]})
    add_run(store, "b", "B", {"gsm8k": [1.0, 1.0]}, status="failed")
    assert "B: run is failed, not complete" in compare(store, ["a", "b"]).flags


def test_formats(two_runs: Store) -> None:
    c = compare(two_runs, ["base-1", "new-1"])
    md = render_comparison(c, "markdown")
    assert md.splitlines()[1].startswith("|--") and "| gsm8k" in md and "+20.00" in md
    records = list(csv.DictReader(io.StringIO(render_comparison(c, "csv"))))
    new = next(r for r in records if r["run"] == "new-1" and r["benchmark"] == "gsm8k")
    assert float(new["delta"]) == pytest.approx(20.0) and float(new["score"]) == 70.0
    assert new["test"] == "mcnemar"
    latex = render_comparison(c, "latex")
    assert "\\toprule" in latex and "\\bottomrule" in latex
    data = json.loads(render_comparison(c, "json"))
    assert data["rows"][0]["deltas"][0]["delta"]["estimate"] == pytest.approx(20.0)
    assert data["runs"][1]["id"] == "new-1"
    term = render_comparison(c)
    assert "missing" in term and "humaneval: missing in new" in term


def test_latex_is_plain_ascii_with_delta_in_math_mode(two_runs: Store) -> None:
    latex = render_comparison(compare(two_runs, ["base-1", "new-1"]), "latex")
    assert "& $\\Delta$ " in latex and "Δ" not in latex  # plain pdflatex rejects a raw U+0394
    assert "$\\Delta$: run - base" in latex
    assert latex.isascii()


@pytest.fixture
def tiny(store: Store) -> Store:
    """n=3: gsm8k wrong everywhere in both runs; mt_bench rated 8, 8, 8 in both (ratings, no variation)."""
    add_run(store, "t1", "org/one", {"gsm8k": [0.0, 0.0, 0.0], "mt_bench": [8.0, 8.0, 8.0]})
    add_run(store, "t2", "org/two", {"gsm8k": [0.0, 0.0, 0.0], "mt_bench": [8.0, 8.0, 8.0]})
    return store


def test_small_n_without_variation_says_so_in_every_format(tiny: Store) -> None:
    c = compare(tiny, ["t1", "t2"])
    rows = {r.benchmark: r.deltas[0] for r in c.rows}
    g, mt = rows["gsm8k"], rows["mt_bench"]
    assert g is not None and mt is not None
    # 0/1 data: a real interval for a difference never seen in 3 items, no MDE (no variance to base it on)
    assert g.delta.estimable and g.delta.high == pytest.approx(-g.delta.low) and g.delta.high > 30
    assert g.mde is None and g.mde_unavailable == "no variation"
    # ratings that never moved: neither a CI nor an MDE
    assert not mt.delta.estimable and mt.delta.unavailable == "no variation" and mt.mde is None
    for fmt in ("terminal", "markdown", "latex"):
        text = render_comparison(c, fmt)
        assert "[+0.00, +0.00]" not in text, fmt
        assert text.count("n/a (no variation)") == 3, fmt  # gsm8k's MDE, mt_bench's CI and MDE
    records = {r["benchmark"]: r for r in csv.DictReader(io.StringIO(render_comparison(c, "csv"))) if r["delta"]}
    assert records["mt_bench"]["ci_low"] == "" and records["mt_bench"]["ci_unavailable"] == "no variation"
    assert records["gsm8k"]["mde"] == "" and records["gsm8k"]["mde_unavailable"] == "no variation"
    data = json.loads(render_comparison(c, "json"))  # strict JSON: null, never NaN
    mt_json = next(r for r in data["rows"] if r["benchmark"] == "mt_bench")["deltas"][0]
    assert mt_json["delta"]["low"] is None and mt_json["delta"]["unavailable"] == "no variation"
    assert mt_json["mde"] is None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_delta_is_difference_of_accuracies(pairs: list[tuple[bool, bool]]) -> None:
    s = Store("sqlite://")
    add_run(s, "a", "A", {"gsm8k": [float(x) for x, _ in pairs]})
    add_run(s, "b", "B", {"gsm8k": [float(y) for _, y in pairs]})
    d = compare(s, ["a", "b"]).rows[0].deltas[0]
    assert d is not None
    n = len(pairs)
    assert d.delta.estimate == pytest.approx(100 * (sum(y for _, y in pairs) - sum(x for x, _ in pairs)) / n)
    assert d.delta.low <= d.delta.estimate + 1e-9 and d.delta.estimate <= d.delta.high + 1e-9
    assert d.delta.low >= -100 and d.delta.high <= 100
    gained = sum(1 for x, y in pairs if y and not x)
    lost = sum(1 for x, y in pairs if x and not y)
    assert d.p == pytest.approx(_binom_two_sided(gained, gained + lost) if gained + lost else 1.0)


def test_diff_flips_and_outputs(store: Store) -> None:
    def out(run_id: str, sid: str, j: int) -> str:
        return f"<{run_id} says {sid}>\nline two"

    add_run(store, "a", "A", {"gsm8k": [1, 1, 0, 0, 1]}, outputs=out)
    add_run(store, "b", "B", {"gsm8k": [1, 0, 1, 0, 0]}, outputs=out)
    d = diff_runs(store, "a", "b", "gsm8k")
    assert d.counts == {
        "right_to_wrong": 2,
        "wrong_to_right": 1,
        "both_right": 1,
        "both_wrong": 1,
        "only_a": 0,
        "only_b": 0,
    }
    assert [p.sample_id for p in d.regressions] == ["gsm8k-1", "gsm8k-4"]
    assert [p.sample_id for p in d.improvements] == ["gsm8k-2"]
    p = d.regressions[0]
    assert (p.output_a, p.output_b) == ("<a says gsm8k-1>\nline two", "<b says gsm8k-1>\nline two")
    assert (p.score_a, p.score_b, p.target) == (1.0, 0.0, "t-gsm8k-1")
    text = render_diff(d, width=120)
    assert "right->wrong 2, wrong->right 1" in text
    assert text.splitlines()[0].startswith("gsm8k: A = A (a), B = B (b)")
    add_run(store, "c", "A", {"gsm8k": [1, 0, 0, 0, 0]}, outputs=out)  # same model: labels carry the id already
    assert render_diff(diff_runs(store, "a", "c", "gsm8k")).splitlines()[0] == "gsm8k: A = A (a), B = A (c)"
    assert "<a says gsm8k-4>" in text and "<b says gsm8k-2>" in text
    assert "gsm8k-0" not in text  # unchanged items are not listed
    with pytest.raises(UsageError, match="no compared run has"):
        diff_runs(store, "a", "b", "amc23")


def test_cli_compare_and_diff(cli, two_runs: Store) -> None:
    code, out, _ = cli("compare", "base-1", "org/new", "--format", "markdown")
    assert code == 0 and "+20.00" in out
    code, out, _ = cli("diff", "base-1", "new-1", "--benchmark", "gsm8k")
    assert code == 0 and "right->wrong 4, wrong->right 8" in out
    code, _, err = cli("compare", "base-1", "nobody")
    assert code == 2 and err.count("\n") == 1 and "nobody" in err
