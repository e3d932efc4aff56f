"""Tests for fusebench.stats: hand-computed values, independent re-computations, properties."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from fusebench.stats import (
    N_TOO_SMALL,
    NO_VARIATION,
    T_INTERVAL_MIN_N,
    bootstrap_means,
    grouped_mean_ci,
    holm,
    mean_ci,
    min_detectable_difference,
    normal_quantile,
    paired_delta_ci,
    paired_permutation_test,
    paired_test,
    signflip_sums,
)

bits = st.integers(0, 1)
scores = st.floats(-100, 100, allow_nan=False)


def paired(elements: st.SearchStrategy[float], max_size: int = 60):
    """Two aligned lists of the same length."""
    return st.integers(1, max_size).flatmap(
        lambda n: st.tuples(
            st.lists(elements, min_size=n, max_size=n),
            st.lists(elements, min_size=n, max_size=n),
        )
    )


def table(n00: int, n01: int, n10: int, n11: int) -> tuple[list[int], list[int]]:
    """Paired 0/1 outcomes from a 2x2 table; n01 counts a=0, b=1."""
    a = [0] * n00 + [0] * n01 + [1] * n10 + [1] * n11
    b = [0] * n00 + [1] * n01 + [0] * n10 + [1] * n11
    return a, b


# --- mean_ci ---------------------------------------------------------------------------


def test_wilson_7_of_10_matches_hand_computed_value() -> None:
    ci = mean_ci([1] * 7 + [0] * 3)
    z = sps.norm.ppf(0.975)
    centre = (7 + z**2 / 2) / (10 + z**2)
    half = z * math.sqrt(0.7 * 0.3 / 10 + z**2 / 400) / (1 + z**2 / 10)
    assert ci.estimate == 0.7
    assert ci.low == pytest.approx(centre - half, abs=1e-12)
    assert ci.high == pytest.approx(centre + half, abs=1e-12)
    assert (round(ci.low, 4), round(ci.high, 4)) == (0.3968, 0.8922)  # published table value


def test_wilson_all_wrong_has_nonzero_width() -> None:
    ci = mean_ci([0] * 40)
    assert ci.estimate == 0.0 and ci.low == 0.0
    assert 0.08 < ci.high < 0.09  # z^2 / (n + z^2) = 0.0876


def test_large_non_binary_sample_uses_t_interval() -> None:
    x = np.random.default_rng(3).normal(5, 2, size=T_INTERVAL_MIN_N + 10)
    ci = mean_ci(x.tolist(), 0.9)
    low, high = sps.t.interval(0.9, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((x.mean(), low, high))


def test_small_non_binary_sample_bootstrap_is_seeded() -> None:
    x = [0.1, 0.5, 0.5, 0.9, 0.2, 0.7, 1.0, 0.0, 0.3]
    assert mean_ci(x, seed=1) == mean_ci(x, seed=1)
    assert mean_ci(x, seed=1) != mean_ci(x, seed=2)
    ci = mean_ci(x)
    assert ci.estimate == pytest.approx(np.mean(x))
    assert 0.0 <= ci.low < ci.estimate < ci.high <= 1.0


@pytest.mark.parametrize("bad", [[], [float("nan")], [[1, 0]]])
def test_mean_ci_rejects_bad_input(bad: list) -> None:
    with pytest.raises(ValueError):
        mean_ci(bad)


@settings(deadline=None)
@given(st.lists(scores, min_size=1, max_size=80) | st.lists(bits, min_size=1, max_size=80))
def test_mean_ci_contains_estimate(values: list[float]) -> None:
    ci = mean_ci(values)
    assert ci.low <= ci.estimate <= ci.high


# --- paired delta CIs -----------------------------------------------------------------------


def test_paired_binary_ci_is_agresti_min_by_hand() -> None:
    a, b = table(50, 5, 15, 30)  # 15 right only in a, 5 right only in b, n = 100
    ci = paired_delta_ci(a, b)
    p_a, p_b = 15.5 / 102, 5.5 / 102  # half an item added to each cell
    half = sps.norm.ppf(0.975) * math.sqrt((p_a + p_b - (p_b - p_a) ** 2) / 102)
    assert ci.estimate == pytest.approx(-0.1)
    assert (ci.low, ci.high) == pytest.approx((p_b - p_a - half, p_b - p_a + half), abs=1e-12)
    assert ci.low < -0.1 < ci.high < 0 and ci.estimable


def test_paired_non_binary_ci_is_the_t_interval_of_the_differences() -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(6, 2, size=40)
    b = a + rng.normal(0.3, 1, size=40)
    ci = paired_delta_ci(a.tolist(), b.tolist())
    d = b - a
    low, high = sps.t.interval(0.95, d.size - 1, loc=d.mean(), scale=sps.sem(d))
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((d.mean(), low, high), abs=1e-12)


def test_small_n_says_what_it_cannot_estimate() -> None:
    # n=3, both runs wrong everywhere: not [+0.00, +0.00]; the interval is as wide as three items allow
    ci = paired_delta_ci([0, 0, 0], [0, 0, 0])
    assert ci.estimate == 0 and ci.estimable and ci.high == pytest.approx(-ci.low) and ci.high > 0.35
    flat = paired_delta_ci([7.0, 8.0, 9.0], [8.0, 9.0, 10.0])  # ratings that all moved by exactly one
    assert flat.estimate == 1.0 and flat.unavailable == NO_VARIATION and math.isnan(flat.low) and math.isnan(flat.high)
    single = paired_delta_ci([7.5], [9.0])
    assert single.estimate == 1.5 and single.unavailable == N_TOO_SMALL and not single.estimable


def simulated_pairs(n: int, sims: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """0/1 outcomes of two checkpoints on the same n items: accuracy 0.55 and 0.62, correlated through item
    difficulty (the second run keeps the first's difficulty draw on 60% of items)."""
    u = rng.random((sims, n))
    kept = np.where(rng.random((sims, n)) < 0.6, u, rng.random((sims, n)))
    return (u < 0.55).astype(float), (kept < 0.62).astype(float), 0.62 - 0.55


@pytest.mark.timeout(20)
@pytest.mark.parametrize("n", [30, 200])
def test_paired_intervals_cover_95_percent_by_simulation(n: int) -> None:
    """2,000 simulated paired runs per data type: the true delta is inside 95% +- 2% of the intervals. Vectorised
    through the same functions paired_delta_ci uses; a sample of rows checks that it gives the same intervals."""
    from fusebench.stats import paired_proportions_ci, paired_t_ci

    rng = np.random.default_rng(n)
    a, b, true = simulated_pairs(n, 2000, rng)
    low, high = paired_proportions_ci((a > b).sum(axis=1), (b > a).sum(axis=1), np.full(2000, n))
    assert 0.93 <= np.mean((low <= true) & (true <= high)) <= 0.97
    # ratings (MT-Bench-like, 1-10): item difficulty shared, skewed noise, true delta 0.4
    level = rng.normal(6, 2, size=(2000, n))
    ra = np.clip(np.round(level + rng.normal(0, 1, size=(2000, n))), 1, 10)
    rb = np.clip(np.round(level + 0.4 + rng.gamma(2.0, 0.5, size=(2000, n)) - 1.0), 1, 10)
    true_r = float(np.mean(rb - ra))  # the clipping and rounding shift it a little: measured on the same draws
    t_low, t_high = paired_t_ci(rb - ra)
    assert 0.93 <= np.mean((t_low <= true_r) & (true_r <= t_high)) <= 0.97
    for i in range(0, 2000, 100):
        binary, rating = paired_delta_ci(a[i], b[i]), paired_delta_ci(ra[i], rb[i])
        assert (binary.low, binary.high) == pytest.approx((low[i], high[i]), abs=1e-12)
        assert (rating.low, rating.high) == pytest.approx((t_low[i], t_high[i]), abs=1e-12)


@pytest.mark.parametrize("x", [np.array([0.0, 1.0, 1.0, -1.0] * 50), np.linspace(-1, 2, 50)])
def test_bootstrap_means_have_the_resampling_moments(x: np.ndarray) -> None:
    means = bootstrap_means(x, 20000, np.random.default_rng(0))
    assert means.shape == (20000,)
    assert means.mean() == pytest.approx(x.mean(), abs=0.01)
    assert means.var() == pytest.approx(x.var() / x.size, rel=0.05)  # var of a resample mean


def test_paired_functions_reject_misaligned_samples() -> None:
    for fn in (paired_delta_ci, paired_permutation_test, paired_test):
        with pytest.raises(ValueError, match="length"):
            fn([1, 0, 1], [1, 0])


@settings(deadline=None)
@given(paired(scores) | paired(bits))
def test_paired_ci_is_ordered_and_contains_estimate_or_says_why_not(ab: tuple[list[float], list[float]]) -> None:
    ci = paired_delta_ci(*ab)
    if ci.estimable:
        assert ci.low <= ci.estimate <= ci.high
    else:
        d = np.subtract(ab[1], ab[0])
        assert ci.unavailable == (N_TOO_SMALL if d.size < 2 else NO_VARIATION) and np.all(d == d[0])


@settings(deadline=None)
@given(st.lists(scores, min_size=1, max_size=60) | st.lists(bits, min_size=1, max_size=60))
def test_identical_samples_give_zero_delta_and_p_one(values: list[float]) -> None:
    ci = paired_delta_ci(values, values)
    assert ci.estimate == 0.0
    if all(v in (0, 1) for v in values):  # 0/1: the interval of a difference never seen, symmetric around 0
        assert ci.high == pytest.approx(-ci.low) and 0 < ci.high <= 1
    else:
        assert not ci.estimable
    assert paired_permutation_test(values, values) == 1.0
    assert paired_test(values, values)[1] == 1.0


# --- paired tests ----------------------------------------------------------------------


def mcnemar(a: list[int], b: list[int]) -> float:
    """paired_test's p-value on 0/1 outcomes, which must be McNemar's."""
    name, p = paired_test(a, b)
    assert name == "mcnemar"
    return p


def test_mcnemar_small_table_matches_binomial_test() -> None:
    a, b = table(20, 2, 8, 30)
    p = mcnemar(a, b)
    assert p == pytest.approx(sps.binomtest(2, 10, 0.5).pvalue, abs=1e-12)
    assert p == pytest.approx(112 / 1024, abs=1e-12)  # 2 * (1 + 10 + 45) / 2^10
    assert mcnemar(b, a) == p


def test_mcnemar_without_discordant_pairs_is_one() -> None:
    assert mcnemar(*table(3, 0, 0, 4)) == 1.0


def exact_signflip_p(d: np.ndarray) -> float:
    """Two-sided p over all 2^n sign assignments."""
    observed = abs(d.sum())
    sums = [abs(np.dot(signs, d)) for signs in itertools.product([-1, 1], repeat=d.size)]
    return float(np.mean(np.array(sums) >= observed - 1e-9))


def test_permutation_p_matches_full_enumeration_continuous() -> None:
    a = np.zeros(12)
    b = np.array([0.3, 1.2, -0.4, 0.8, 0.9, -0.1, 0.5, 1.1, 0.2, -0.7, 0.6, 0.4])
    exact = exact_signflip_p(b - a)
    p = paired_permutation_test(a.tolist(), b.tolist(), n_perm=40000)
    assert p == pytest.approx(exact, abs=0.006)  # 3 Monte Carlo standard errors
    scipy_p = sps.permutation_test((b - a,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
    assert exact == pytest.approx(scipy_p)


def test_permutation_p_matches_exact_distribution_discrete() -> None:
    # 20 differences of +-0.5 and 12 of +-1 (plus zeros): the binomial-count path.
    d = np.array([0.5] * 14 + [-0.5] * 6 + [1.0] * 8 + [-1.0] * 4 + [0.0] * 30)
    observed = abs(d.sum())
    # Sum under flips = 0.5 * (2 H1 - 20) + 1 * (2 H2 - 12), H1 ~ Bin(20), H2 ~ Bin(12).
    exact = sum(
        sps.binom.pmf(h1, 20, 0.5) * sps.binom.pmf(h2, 12, 0.5)
        for h1 in range(21)
        for h2 in range(13)
        if abs(0.5 * (2 * h1 - 20) + (2 * h2 - 12)) >= observed - 1e-9
    )
    p = paired_permutation_test(np.zeros(d.size).tolist(), d.tolist(), n_perm=40000)
    assert p == pytest.approx(exact, abs=0.006)


def test_signflip_on_binary_differences_agrees_with_mcnemar() -> None:
    a, b = table(200, 12, 25, 150)
    assert paired_permutation_test(a, b, n_perm=40000) == pytest.approx(mcnemar(a, b), abs=0.006)


@pytest.mark.parametrize("d", [np.array([1.0, -2.0, 3.0] * 20), np.linspace(0.1, 1, 40)])
def test_signflip_sums_are_symmetric_with_the_right_variance(d: np.ndarray) -> None:
    sums = signflip_sums(d, 50000, np.random.default_rng(1))
    assert abs(sums.mean()) < 4 * math.sqrt((d**2).sum() / 50000)
    assert sums.var() == pytest.approx((d**2).sum(), rel=0.03)


def test_paired_test_picks_the_test_by_data_type() -> None:
    a, b = table(10, 1, 9, 10)
    assert paired_test(a, b) == ("mcnemar", pytest.approx(sps.binomtest(1, 10, 0.5).pvalue, abs=1e-12))
    x, y = [0.0, 0.5, 1.0, 0.5], [0.5, 1.0, 1.0, 1.0]
    assert paired_test(x, y) == ("permutation", paired_permutation_test(x, y))


def test_clear_difference_is_significant() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=300)
    assert paired_permutation_test(a.tolist(), (a + 0.5).tolist()) < 0.001
    assert paired_test(*table(100, 2, 30, 100))[1] < 1e-5


# --- Holm ---------------------------------------------------------------------------------


def test_holm_textbook_example() -> None:
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> max so far 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_handles_empty() -> None:
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([]) == []
    with pytest.raises(ValueError):
        holm([0.1, 1.5])


@given(st.lists(st.floats(0, 1), max_size=30))
def test_holm_properties(pvalues: list[float]) -> None:
    adjusted = holm(pvalues)
    assert len(adjusted) == len(pvalues)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(pvalues, adjusted, strict=True))
    ranked = [adjusted[i] for i in np.argsort(pvalues, kind="stable")]
    assert ranked == sorted(ranked)


# --- MDE ----------------------------------------------------------------------------------


def test_mde_formulas() -> None:
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert min_detectable_difference(500, 0.7) == pytest.approx(z * math.sqrt(2 * 0.21 / 500))
    paired_mde = min_detectable_difference(500, 0.7, paired_discordance=0.1)
    assert paired_mde == pytest.approx(z * math.sqrt(0.1 / 500))
    assert min_detectable_difference(2000, 0.7) < min_detectable_difference(500, 0.7)


def test_amc23_two_and_a_half_points_is_far_below_the_mde() -> None:
    n = 40
    for p in (0.2, 0.5, 0.8):
        assert min_detectable_difference(n, p) > 4 * 0.025  # unpaired: 0.18 to 0.31
    # Even a paired comparison where the runs disagree on only 10% of problems:
    assert min_detectable_difference(n, 0.5, paired_discordance=0.1) > 5 * 0.025  # 0.14
    # A 2.5-point move on 40 problems is one problem flipping: McNemar p = 1.
    assert mcnemar(*table(20, 1, 0, 19)) == 1.0


def test_paired_mde_gives_about_the_stated_power_by_simulation() -> None:
    n, discordance = 400, 0.2
    delta = min_detectable_difference(n, 0.5, paired_discordance=discordance)
    rng = np.random.default_rng(0)
    discordant = rng.binomial(n, discordance, size=4000)
    wins = rng.binomial(discordant, (discordance + delta) / (2 * discordance))
    tail = np.minimum(sps.binom.cdf(wins, discordant, 0.5), sps.binom.sf(wins - 1, discordant, 0.5))
    power = np.mean(np.minimum(1, 2 * tail) < 0.05)
    assert power == pytest.approx(0.8, abs=0.05)


def test_mde_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        min_detectable_difference(0, 0.5)
    with pytest.raises(ValueError):
        min_detectable_difference(40, 0.5, paired_discordance=0.0)


# --- speed --------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_fourteen_benchmarks_of_ten_thousand_items_compare_quickly() -> None:
    """Not a performance claim: guards against losing the vectorisation."""
    rng = np.random.default_rng(0)
    runs = [
        ((rng.random(10_000) < 0.6).astype(float).tolist(), (rng.random(10_000) < 0.62).astype(float).tolist())
        for _ in range(14)
    ]
    start = time.perf_counter()
    pvalues = []
    for a, b in runs:
        mean_ci(a), mean_ci(b)
        paired_delta_ci(a, b)
        pvalues.append(paired_test(a, b)[1])
    holm(pvalues)
    assert time.perf_counter() - start < 3.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["math", "reasoning"]), st.sampled_from(["t1", "t2", "t3"]), st.floats(0, 1)),
        min_size=2,
        max_size=40,
    )
)
def test_grouped_mean_matches_livebench_category_average(rows: list[tuple[str, str, float]]) -> None:
    from fusebench.scorers.livebench import livebench_category_average

    # LiveBench's tasks belong to one category each: qualify the task names by their category
    rows = [(c, f"{c}/{t}", v) for c, t, v in rows]
    ci = grouped_mean_ci([v for _, _, v in rows], [(c, t) for c, t, _ in rows], n_boot=200)
    assert 100 * ci.estimate == pytest.approx(livebench_category_average(rows)["overall"], abs=1e-9)
    assert ci.low - 1e-9 <= ci.estimate <= ci.high + 1e-9


def test_grouped_mean_weights_categories_not_items() -> None:
    values = [1.0] * 9 + [0.0]  # 9 items of one category all right, 1 item of another wrong
    groups = [("a", "a1")] * 9 + [("b", "b1")]
    assert grouped_mean_ci(values, groups).estimate == pytest.approx(0.5)
    assert mean_ci(values).estimate == pytest.approx(0.9)


@given(st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995]))
def test_normal_quantile_is_scipys_to_the_last_bit(q: float) -> None:
    # 0.975 (every 95% interval) is a stored constant, so a cached eval imports no scipy; it must be scipy's float
    from scipy.special import ndtri

    assert normal_quantile(q) == float(ndtri(q))
