"""Tests for fusebench.judging.metrics: each formula against an independent computation of its reference definition."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from fusebench.errors import UsageError
from fusebench.judging.metrics import (
    PAIRWISE_LABELS,
    AlpacaAnnotation,
    PairwiseGame,
    alignbench_score,
    alpaca_data_dir,
    alpaca_eval_export,
    alpaca_eval_score,
    arena_hard_score,
    battles_from_games,
    mt_bench_score,
)

labels = st.sampled_from(PAIRWISE_LABELS)
maybe_labels = st.one_of(st.none(), labels)

# --- Arena-Hard ---------------------------------------------------------------------------------------------

# Battles by hand, from the model's side: label of game 1 (A = baseline) -> (model wins, baseline wins, ties).
GAME1 = {"A>>B": (0, 3, 0), "A>B": (0, 1, 0), "A=B": (0, 0, 1), "B>A": (1, 0, 0), "B>>A": (3, 0, 0)}
GAME2 = {"A>>B": (3, 0, 0), "A>B": (1, 0, 0), "A=B": (0, 0, 1), "B>A": (0, 1, 0), "B>>A": (0, 3, 0)}


def hand_counts(games: list[PairwiseGame]) -> tuple[int, int, int]:
    wins = losses = ties = 0
    for g in games:
        for label, table in ((g.verdict_model_second, GAME1), (g.verdict_model_first, GAME2)):
            if label is not None:
                w, lo, t = table[label]
                wins, losses, ties = wins + w, losses + lo, ties + t
    return wins, losses, ties


def bt_win_rate_scipy(wins: int, losses: int, ties: int) -> float:
    """Bradley-Terry on Elo scale, maximised with scipy: a tie is half a win and half a loss (compute_mle_elo)."""

    def neg_loglik(d: float) -> float:
        p = 1 / (1 + 10 ** (-d / 400))
        return -((wins + ties / 2) * math.log(p) + (losses + ties / 2) * math.log(1 - p))

    d = minimize_scalar(neg_loglik, bounds=(-2000, 2000), method="bounded", options={"xatol": 1e-9}).x
    return 100 / (1 + 10 ** (-d / 400))


def mirrored(games: list[PairwiseGame]) -> list[PairwiseGame]:
    """The same judgments with model and baseline exchanged: game 1 of one is game 2 of the other."""
    return [PairwiseGame(g.question_id, g.verdict_model_first, g.verdict_model_second) for g in games]


def test_battles_follow_show_result_weights():
    battles = battles_from_games([PairwiseGame("q1", "B>>A", "A=B"), PairwiseGame("q2", "A>B", None)])
    assert battles["winner"].tolist() == ["model_b"] * 3 + ["tie", "model_a"]
    assert set(battles["model_a"]) == {"gpt-4-0314"}
    assert battles["question_id"].tolist() == ["q1"] * 4 + ["q2"]


def test_unknown_label_is_refused():
    with pytest.raises(ValueError, match="unknown pairwise verdict"):
        battles_from_games([PairwiseGame("q", "A>>>B", None)])


@pytest.mark.timeout(60)
def test_arena_score_matches_scipy_bradley_terry():
    rng = random.Random(1)
    games = [PairwiseGame(str(i), rng.choice(PAIRWISE_LABELS), rng.choice(PAIRWISE_LABELS)) for i in range(200)]
    wins, losses, ties = hand_counts(games)
    result = arena_hard_score(games, bootstrap_rounds=0)
    assert result["score"] == pytest.approx(bt_win_rate_scipy(wins, losses, ties), abs=1e-3)
    # with two players the MLE is the plain weighted win share, ties counting half
    assert result["score"] == pytest.approx(100 * (wins + ties / 2) / (wins + losses + ties), abs=1e-3)


def test_arena_extremes_and_symmetry():
    all_wins = arena_hard_score([PairwiseGame(str(i), "B>>A", "A>>B") for i in range(20)], bootstrap_rounds=20)
    assert all_wins["score"] > 99.9 and all_wins["ci_low"] > 99.9  # an infinite Elo stays a finite CI
    assert arena_hard_score([PairwiseGame(str(i), "A>B", "B>A") for i in range(20)], bootstrap_rounds=0)["score"] < 0.1
    near = [PairwiseGame(str(i), "B>A", "A>B") for i in range(30)] + [PairwiseGame("t", "A=B", "A=B")]
    assert 95 < arena_hard_score(near, bootstrap_rounds=0)["score"] < 100
    symmetric = [PairwiseGame("1", "A>B", "A>B"), PairwiseGame("2", "B>>A", "B>>A"), PairwiseGame("3", "A=B", "A=B")]
    assert arena_hard_score(symmetric, bootstrap_rounds=0)["score"] == pytest.approx(50, abs=1e-3)


def test_arena_failures_are_excluded_and_counted():
    base = [PairwiseGame("1", "B>A", "A=B"), PairwiseGame("2", "A>B", "B>>A"), PairwiseGame("3", "A=B", "B>A")]
    failed = [PairwiseGame("4", None, None), PairwiseGame("5", None, "A>>B")]
    with_failures = arena_hard_score(base + failed, bootstrap_rounds=0)
    by_hand = hand_counts(base + failed)
    assert with_failures["judge_failures"] == 3
    assert with_failures["n_games"] == 7
    assert with_failures["score"] == pytest.approx(bt_win_rate_scipy(*by_hand), abs=1e-3)
    # a failure is neither a loss nor a tie: game 5's missing first verdict differs from either
    for stand_in in ("A>B", "A=B"):
        filled = arena_hard_score([*base, PairwiseGame("5", stand_in, "A>>B")], bootstrap_rounds=0)
        assert abs(filled["score"] - with_failures["score"]) > 0.3
    nothing = arena_hard_score([PairwiseGame("1", None, None)])
    assert nothing["score"] is None and nothing["ci_low"] is None and nothing["judge_failures"] == 2


def test_arena_counts_and_position_consistency_by_hand():
    games = [
        PairwiseGame("1", "B>A", "A>>B"),  # model wins in both orders: consistent
        PairwiseGame("2", "A>B", "A>B"),  # baseline wins first, model wins second: inconsistent
        PairwiseGame("3", "A=B", "A=B"),  # tie both: consistent
        PairwiseGame("4", "B>>A", None),  # one verdict: not counted for consistency
    ]
    result = arena_hard_score(games, bootstrap_rounds=0)
    assert result["position_consistency"] == pytest.approx(2 / 3)
    assert (result["wins"], result["ties"], result["losses"]) == (4, 2, 1)


@pytest.mark.timeout(60)
def test_arena_bootstrap_ci_is_seeded_and_brackets_the_score():
    rng = random.Random(7)
    games = [PairwiseGame(str(i), rng.choice(PAIRWISE_LABELS), rng.choice(PAIRWISE_LABELS)) for i in range(100)]
    a = arena_hard_score(games, bootstrap_rounds=50, seed=3)
    assert a == arena_hard_score(games, bootstrap_rounds=50, seed=3)
    assert a["ci_low"] < a["score"] < a["ci_high"]
    assert a["ci_high"] - a["ci_low"] < 40
    assert arena_hard_score(games, bootstrap_rounds=50, seed=4)["ci_low"] != a["ci_low"]


def reference_mle_elo(battles: pd.DataFrame) -> pd.Series:
    """arena-hard-auto v0.1 utils_math.compute_mle_elo, from its definition: battles doubled, a tie = one win each,
    unpenalised logistic regression on +-log(10) columns, Elo = 400 * coef + 1000, gpt-4-0314 anchored at 1000."""
    from sklearn.linear_model import LogisticRegression

    models = pd.Series(range(2), index=["gpt-4-0314", "model"])
    df = pd.concat([battles, battles], ignore_index=True)
    x = np.zeros((len(df), 2))
    x[np.arange(len(df)), models[df["model_a"]].to_numpy()] = math.log(10)
    x[np.arange(len(df)), models[df["model_b"]].to_numpy()] = -math.log(10)
    y = (df["winner"] == "model_a").to_numpy(dtype=float)
    ties = (df["winner"] == "tie").to_numpy(copy=True)
    ties[len(ties) // 2 :] = False
    y[ties] = 1.0
    lr = LogisticRegression(fit_intercept=False, penalty=None, tol=1e-8).fit(x, y)
    elo = 400 * lr.coef_[0] + 1000
    return pd.Series(elo + 1000 - elo[0], index=models.index)


def reference_win_rate(elo_model: float) -> float:
    """show_result's get_win_rate_column: predicted win rate (%) of the model against the baseline at 1000."""
    return 100 / (1 + 10 ** ((1000 - elo_model) / 400))


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")  # penalty=None, as the reference writes it
def test_arena_bootstrap_is_seeded_as_arena_hard_auto_seeds_it():
    """show_result.py: utils_math's np.random.seed(42) at import, then battles.sample(frac=1.0, replace=True) from the
    global numpy state for each of 100 rounds; the CI = the 2.5/97.5 percentiles of the bootstrap Elos as win rates."""
    rng = random.Random(11)
    games = [
        PairwiseGame(str(i), rng.choice([*PAIRWISE_LABELS, None]), rng.choice([*PAIRWISE_LABELS, None]))
        for i in range(150)
    ]
    battles = battles_from_games(games)
    np.random.seed(42)
    boot = [reference_mle_elo(battles.sample(frac=1.0, replace=True))["model"] for _ in range(100)]
    low, high = np.percentile(boot, [2.5, 97.5])
    ours = arena_hard_score(games)  # the defaults: 100 rounds, the reference's seed
    assert ours["score"] == pytest.approx(reference_win_rate(reference_mle_elo(battles)["model"]), abs=1e-4)
    assert ours["ci_low"] == pytest.approx(reference_win_rate(low), abs=1e-4)
    assert ours["ci_high"] == pytest.approx(reference_win_rate(high), abs=1e-4)
    # another seed draws other resamples: the seed is what makes a published CI reproducible
    other = arena_hard_score(games, seed=0)
    assert (other["ci_low"], other["ci_high"]) != pytest.approx((ours["ci_low"], ours["ci_high"]), abs=1e-3)


@pytest.mark.timeout(120)
@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(maybe_labels, maybe_labels), min_size=1, max_size=30))
def test_arena_swapping_model_and_baseline_mirrors_around_50(pairs):
    games = [PairwiseGame(str(i), a, b) for i, (a, b) in enumerate(pairs)]
    one, other = arena_hard_score(games, bootstrap_rounds=0), arena_hard_score(mirrored(games), bootstrap_rounds=0)
    if one["score"] is None:
        assert other["score"] is None
        return
    assert one["score"] + other["score"] == pytest.approx(100, abs=1e-3)
    assert (one["wins"], one["losses"]) == (other["losses"], other["wins"])
    assert one["position_consistency"] == other["position_consistency"]


# --- MT-Bench -----------------------------------------------------------------------------------------------


def test_mt_bench_means_by_hand():
    ratings = [("81", 1, 9.0), ("81", 2, 7.0), ("82", 1, 4.0), ("82", 2, None), ("83", 1, 2.0), ("83", 2, -1)]
    result = mt_bench_score(ratings)
    assert result == {
        "score": 22 / 4, "turn1": 5.0, "turn2": 7.0, "n_rated": 4, "judge_failures": 2, "suspect_ratings": 0
    }  # fmt: skip
    assert mt_bench_score([("1", 1, None)])["score"] is None
    with pytest.raises(ValueError, match="turn"):
        mt_bench_score([("1", 3, 5.0)])


def test_mt_bench_score_is_fastchats_on_judgments_with_out_of_range_ratings():
    """Judge answers -> FastChat's parse (run_judge_single) -> its show_result mean over scores != -1, against
    fusebench's parse_rating -> mt_bench_score; ratings outside 1-10 are counted as suspect, not dropped."""
    from test_judge_verdicts import fastchat_single_rating, judgments

    from fusebench.judging.verdicts import parse_rating

    texts = judgments(seed=5, n=300)
    rows = [(str(i // 2), 1 + i % 2, text) for i, text in enumerate(texts)]
    fastchat = pd.DataFrame(
        [{"question_id": q, "turn": t, "score": fastchat_single_rating(text)} for q, t, text in rows]
    )
    fastchat = fastchat[fastchat["score"] != -1]
    result = mt_bench_score([(q, t, parse_rating(text).value) for q, t, text in rows])
    assert result["score"] == pytest.approx(fastchat["score"].mean(), abs=1e-12)
    assert result["turn1"] == pytest.approx(fastchat[fastchat["turn"] == 1]["score"].mean(), abs=1e-12)
    assert result["turn2"] == pytest.approx(fastchat[fastchat["turn"] == 2]["score"].mean(), abs=1e-12)
    assert result["n_rated"] == len(fastchat)
    assert result["judge_failures"] == len(rows) - len(fastchat)
    assert result["suspect_ratings"] == int(((fastchat["score"] < 1) | (fastchat["score"] > 10)).sum()) > 10
    in_range = fastchat[(fastchat["score"] >= 1) & (fastchat["score"] <= 10)]["score"].mean()
    assert abs(result["score"] - in_range) > 0.1  # dropping them, as fusebench did, moves the average


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.integers(1, 10)), min_size=1, max_size=40))
def test_mt_bench_score_is_the_mean_of_all_rated_turns(rows):
    result = mt_bench_score([(str(i), turn, float(r)) for i, (turn, r) in enumerate(rows)])
    assert result["score"] == pytest.approx(np.mean([r for _, r in rows]))
    assert 1 <= result["score"] <= 10


# --- AlignBench ---------------------------------------------------------------------------------------------


def test_alignbench_aggregation_by_hand():
    ratings = [
        ("1", "数学计算", 4.0),
        ("2", "数学计算", 6.0),
        ("3", "逻辑推理", 8.0),
        ("4", "基本任务", 9.0),
        ("5", "中文理解", 7.0),
        ("6", "综合问答", 5.0),
        ("7", "文本写作", 6.0),
        ("8", "角色扮演", 8.0),
        ("9", "专业能力", 7.0),
        ("10", "专业能力", 9.0),
        ("11", "角色扮演", None),
    ]
    result = alignbench_score(ratings)
    assert result["per_category"]["数学计算"] == 5.0 and result["per_category"]["专业能力"] == 8.0
    assert result["reasoning"] == pytest.approx((5 + 8) / 2)  # mean of category means, not of questions
    assert result["language"] == pytest.approx((9 + 7 + 5 + 6 + 8 + 8) / 6)
    assert result["score"] == pytest.approx((6.5 + 43 / 6) / 2)
    assert (result["n_rated"], result["judge_failures"]) == (10, 1)
    with pytest.raises(ValueError, match="unknown category"):
        alignbench_score([("1", "math", 5.0)])


# --- AlpacaEval 2.0 -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> list[dict[str, str]]:
    with open(alpaca_data_dir() / "gpt4_turbo_reference_outputs.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture
def offline_glm(monkeypatch: pytest.MonkeyPatch):
    """alpaca_eval's glm_winrate, its hub download answered by the bundled df_gamed.csv (for direct calls)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from alpaca_eval.metrics import glm_winrate
    monkeypatch.setattr(glm_winrate, "hf_hub_download", lambda **kw: str(alpaca_data_dir() / kw["filename"]))
    return glm_winrate


def synthetic(reference: list[dict[str, str]], n: int, seed: int) -> list[tuple[int, AlpacaAnnotation]]:
    """(position in AlpacaEval, annotation) for n instructions in shuffled order; longer outputs win more often."""
    rng = random.Random(seed)
    positions = rng.sample(range(len(reference)), n)
    rows = []
    for pos in positions:
        ref = reference[pos]
        output = ref["output"][: rng.randint(20, 3000)] + "x" * rng.randint(0, 1500)
        pref = min(2.0, max(1.0, rng.gauss(1.2 + len(output) / 5000, 0.3)))
        rows.append((pos, AlpacaAnnotation(ref["instruction"], output, ref["output"], pref)))
    return rows


def direct_frame(rows: list[tuple[int, AlpacaAnnotation]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "output_1": a.reference_output,
                "output_2": a.output,
                "generator_1": "gpt4_1106_preview",
                "generator_2": "m",
                "annotator": "weighted_alpaca_eval_gpt4_turbo",
                "preference": a.preference,
            }
            for _, a in rows
        ],
        index=[pos for pos, _ in rows],
    )


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")  # sklearn deprecations inside alpaca_eval
def test_alpaca_eval_matches_the_package_with_failures_kept_as_nan_rows(reference, offline_glm):
    rows = synthetic(reference, 160, seed=0)
    failed = [
        (i, AlpacaAnnotation(reference[i]["instruction"], "zz" * i, reference[i]["output"], None)) for i in (3, 5)
    ]
    result = alpaca_eval_score([a for _, a in rows + failed])
    prefs = [a.preference for _, a in rows if a.preference is not None]
    assert result["win_rate"] == pytest.approx(np.mean([(p - 1) * 100 for p in prefs]))
    assert result["standard_error"] == pytest.approx(pd.Series(prefs).sem() * 100)
    assert (result["n"], result["judge_failures"]) == (160, 2)
    assert result["avg_length"] == int(np.mean([len(a.output) for _, a in rows + failed]))
    # alpaca_eval keeps a failed annotation as a row whose preference is NaN: it enters the length standardisation
    # and the mean of the predicted preferences, not the training rows
    direct = offline_glm.get_length_controlled_winrate(direct_frame(rows + failed), save_weights_dir=None)
    assert result["lc_win_rate"] == pytest.approx(direct["length_controlled_winrate"], abs=1e-9)
    dropped = offline_glm.get_length_controlled_winrate(direct_frame(rows), save_weights_dir=None)
    assert abs(dropped["length_controlled_winrate"] - result["lc_win_rate"]) > 1e-3  # what fusebench did before
    # the instruction -> difficulty matching matters: the same frame with the rows' positions shuffled differs
    wrong = direct_frame(
        [(pos, a) for pos, (_, a) in zip(random.Random(1).sample(range(805), 162), rows + failed, strict=True)]
    )
    assert offline_glm.get_length_controlled_winrate(wrong, save_weights_dir=None)[
        "length_controlled_winrate"
    ] != pytest.approx(result["lc_win_rate"], abs=1e-6)


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_alpaca_eval_outputs_equal_to_the_baseline_score_50_as_the_baseline_does(reference, offline_glm):
    """A model whose outputs are the baseline's (ties at 1.5, as alpaca_eval presets identical outputs) gets what
    alpaca_eval reports for the baseline itself; fusebench used to crash in the length fit (0/0 standardisation)."""
    rows = [
        (i, AlpacaAnnotation(r["instruction"], r["output"], r["output"], 1.5)) for i, r in enumerate(reference[:60])
    ]
    result = alpaca_eval_score([a for _, a in rows])
    itself = direct_frame(rows).assign(generator_2="gpt4_1106_preview")  # alpaca_eval on the baseline's own outputs
    direct = offline_glm.get_length_controlled_winrate(itself, save_weights_dir=None)
    assert result["lc_win_rate"] == direct["length_controlled_winrate"] == 50.0
    assert result["win_rate"] == direct["win_rate"] == 50.0
    # one output differing is an ordinary model again: fitted, no longer exactly 50
    changed = [*rows[:-1], (59, AlpacaAnnotation(reference[59]["instruction"], "short", reference[59]["output"], 1.0))]
    assert alpaca_eval_score([a for _, a in changed])["lc_win_rate"] != 50.0
    # no length differences at all but different texts: alpaca_eval's fit is undefined; no score, and it says why
    same_length = [AlpacaAnnotation(r["instruction"], "y" * len(r["output"]), r["output"], 1.2) for r in reference[:5]]
    undefined = alpaca_eval_score(same_length)
    assert undefined["lc_win_rate"] is None and "undefined" in undefined["note"]


def test_alpaca_eval_refuses_unknown_instructions_and_bad_preferences(reference):
    with pytest.raises(UsageError, match="not in AlpacaEval"):
        alpaca_eval_score([AlpacaAnnotation("not an AlpacaEval instruction", "o", "r", 2.0)])
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        alpaca_eval_score([AlpacaAnnotation("x", "o", "r", 0.5)])
    with pytest.raises(UsageError, match="not in AlpacaEval"):  # a failed judgment is a row too: checked alike
        alpaca_eval_score([AlpacaAnnotation("not an AlpacaEval instruction", "o", "r", None)])
    empty = alpaca_eval_score([AlpacaAnnotation(reference[0]["instruction"], "abc", "r", None)])
    assert empty["lc_win_rate"] is None and empty["judge_failures"] == 1 and empty["avg_length"] == 3


def test_alpaca_eval_export_records(reference):
    records = alpaca_eval_export("my-model", [(reference[0]["instruction"], "out"), ("own prompt", "o2")])
    assert records[0] == {
        "instruction": reference[0]["instruction"],
        "output": "out",
        "generator": "my-model",
        "dataset": reference[0]["dataset"],
    }
    assert records[1] == {"instruction": "own prompt", "output": "o2", "generator": "my-model"}
    json.dumps(records)  # what alpaca_eval --model_outputs reads
