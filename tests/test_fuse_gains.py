"""The gains table's statistics on stored runs with a known effect (fast: no model).

Runs are written through the Store API as `fusebench eval` writes them (tests/test_compare_support.add_run), with
per-item 0/1 scores simulated from a seeded generator: a real +10-point effect on 400 items must come out
significant after Holm correction, a null effect must not.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_compare_support import add_run

from fusebench.history import history
from fusebench.stats import NO_VARIATION, holm
from fusebench.store import Store
from fusebench_train.gains import EvalTarget, format_gains, gains
from fusebench_train.pipeline import _tags

pytest_plugins = ["test_compare_support"]  # the store fixture

N = 400


def _paired(rng: np.random.Generator, base: np.ndarray, gain: float) -> np.ndarray:
    """A second system on the same items, exactly `gain` (a proportion) better: it turns 20% of base's wrong items
    plus gain x N more right and as many right items wrong as the 20%, at random positions (realistic discordance)."""
    other = base.copy()
    wrong, right = np.flatnonzero(base == 0), np.flatnonzero(base == 1)
    churn = round(0.2 * wrong.size)
    other[rng.choice(wrong, churn + round(gain * N), replace=False)] = 1
    other[rng.choice(right, churn, replace=False)] = 0
    return other


@pytest.fixture
def runs(store: Store) -> dict[str, str]:
    """base, sft (+10 on mbpp_plus), fused (+10 on mbpp_plus and humaneval, null on gsm8k), two sources."""
    rng = np.random.default_rng(7)
    base = {b: (rng.random(N) < 0.4).astype(float) for b in ("mbpp_plus", "humaneval", "gsm8k")}
    sft = {"mbpp_plus": _paired(rng, base["mbpp_plus"], 0.10), "humaneval": base["humaneval"], "gsm8k": base["gsm8k"]}
    fused = {
        "mbpp_plus": _paired(rng, base["mbpp_plus"], 0.10),
        "humaneval": _paired(rng, base["humaneval"], 0.10),
        "gsm8k": _paired(rng, base["gsm8k"], 0.0),
    }
    strong = {b: _paired(rng, v, 0.25) for b, v in base.items()}
    weak = {b: _paired(rng, v, -0.05) for b, v in base.items()}
    for run_id, scores in (("base", base), ("sft", sft), ("fused", fused), ("strong", strong), ("weak", weak)):
        add_run(store, run_id, run_id, {b: v.tolist() for b, v in scores.items()})
    return {"base": "base", "sft": "sft", "fused": "fused", "source:strong": "strong", "source:weak": "weak"}


def test_real_effect_is_significant_after_holm_and_null_is_not(store: Store, runs: dict[str, str]) -> None:
    table = gains(store, runs, ["mbpp_plus", "humaneval", "gsm8k"])
    rows = {r["benchmark"]: r for r in table["rows"]}
    for bench in ("mbpp_plus", "humaneval"):
        d = rows[bench]["delta"]["fused"]
        assert d["estimate"] == pytest.approx(10.0) and 0 < d["low"] < d["estimate"] < d["high"]
        assert d["test"] == "mcnemar" and d["n"] == N
        assert d["p_holm"] < 0.05 and d["significant"]
    null = rows["gsm8k"]["delta"]["fused"]
    assert null["estimate"] == 0 and null["low"] < 0 < null["high"] and not null["significant"]
    fused = [rows[b]["delta"]["fused"] for b in ("mbpp_plus", "humaneval", "gsm8k")]
    assert [d["p_holm"] for d in fused] == pytest.approx(holm([d["p"] for d in fused]))  # across benchmarks
    assert all(d["p_holm"] >= d["p"] for d in fused)
    # SFT moved only mbpp_plus: its other benchmarks are identical to base
    same = rows["humaneval"]["delta"]["sft"]
    assert same["estimate"] == 0 and same["low"] < 0 < same["high"] and not same["significant"]
    assert rows["mbpp_plus"]["delta"]["sft"]["significant"]


def test_dpo_split_and_best_source(store: Store, runs: dict[str, str]) -> None:
    table = gains(store, runs, ["mbpp_plus", "humaneval", "gsm8k"])
    rows = {r["benchmark"]: r for r in table["rows"]}
    # DPO over SFT: humaneval gained only in the fused model
    assert rows["humaneval"]["dpo_over_sft"]["estimate"] == pytest.approx(
        rows["humaneval"]["delta"]["fused"]["estimate"]
    )
    assert rows["humaneval"]["dpo_over_sft"]["significant"]
    # the strong source (+25) is the best everywhere and beats the fused model significantly
    for r in rows.values():
        assert r["best_source"] == "source:strong" and r["fused_beats_best_source"] is False
        vs = r["fused_vs_best_source"]
        assert vs["estimate"] < 0 and vs["significant"] and vs["p_holm"] >= vs["p"]
    text = format_gains(table)
    assert "Δ fused vs sft (DPO)" in text and "(source:strong)" in text
    assert "p=" in text and " *" in text
    assert "fused vs base after Holm correction: significant gain on mbpp_plus, humaneval" in text
    assert "average (Δ mean)" in text


def test_a_source_that_is_the_target_may_share_the_base_run(store: Store) -> None:
    add_run(store, "b", "m", {"gsm8k": [0.0, 1.0, 0.0, 1.0]})
    add_run(store, "s", "s", {"gsm8k": [1.0, 1.0, 0.0, 1.0]})
    add_run(store, "f", "f", {"gsm8k": [1.0, 1.0, 1.0, 1.0]})
    table = gains(store, {"base": "b", "sft": "s", "fused": "f", "source:self": "b"}, ["gsm8k"])
    row = table["rows"][0]
    assert row["delta"]["source:self"]["estimate"] == 0 and row["fused_beats_best_source"] is True
    assert table["average_delta"] == {"sft": 25.0, "fused": 50.0, "source:self": 0.0}


def test_history_shows_base_sft_fused_in_order_and_sources_apart(store: Store) -> None:
    targets = [
        EvalTarget("base", "m", 0),
        EvalTarget("sft", "w/sft/final", 54),
        EvalTarget("fused", "w/dpo/final", 54 + 36),
        EvalTarget("source:qwen", "q", 0),
    ]
    scores = {"base": [0.0, 0.0], "sft": [1.0, 0.0], "fused": [1.0, 1.0], "source:qwen": [1.0, 1.0]}
    for t in targets:
        add_run(store, t.stage, t.model, {"gsm8k": scores[t.stage]}, tags=_tags("fam", t))
    h = history(store, "fam")
    assert h.steps == ("0", "54", "90") and h.run_ids == ("base", "sft", "fused")
    assert h.rows[0][2] == (0.0, 50.0, 100.0)


def test_a_source_on_fewer_items_is_compared_on_the_shared_items(store: Store) -> None:
    add_run(store, "b", "m", {"gsm8k": [0.0, 0.0, 0.0, 0.0]})
    add_run(store, "f", "f", {"gsm8k": [1.0, 1.0, 0.0, 0.0]})  # 50 on all four items
    add_run(store, "q", "q", {"gsm8k": [0.0, 1.0]})  # eval.source_limit 2: 50 on the first two
    table = gains(store, {"base": "b", "fused": "f", "source:q": "q"}, ["gsm8k"])
    row = table["rows"][0]
    assert row["scores"] == {"base": 0.0, "fused": 50.0, "source:q": 50.0}
    assert row["fused_vs_best_source"]["n"] == 2 and row["fused_vs_best_source"]["estimate"] == 50.0
    assert row["fused_beats_best_source"] is True  # 100 vs 50 on the shared items


def test_a_delta_without_a_ci_says_why(store: Store) -> None:
    """Two samples per item (scores 0, 0.5, 1) and identical runs: no variation, so no interval is invented."""
    items = [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]
    add_run(store, "b", "m", {"gsm8k": items})
    add_run(store, "f", "f", {"gsm8k": items})
    table = gains(store, {"base": "b", "fused": "f"}, ["gsm8k"])
    d = table["rows"][0]["delta"]["fused"]
    assert (d["estimate"], d["low"], d["high"], d["ci_unavailable"]) == (0.0, None, None, NO_VARIATION)
    assert f"+0.0 [n/a: {NO_VARIATION}] p=1" in format_gains(table)
