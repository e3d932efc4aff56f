"""Statistics for result tables, `compare` and `gate`: CIs, paired tests, Holm, MDE.

All inputs are per-item scores. Paired functions take two aligned sequences (item i of
`a` and item i of `b` are the same question) and report `b - a`. Resampling is seeded,
so equal inputs give equal outputs. Bad inputs (empty, misaligned, out of range) raise
`ValueError`; callers that take them from the user turn that into a `UsageError`.

Speed: bootstrap and sign-flip resampling are vectorised. When the data take few distinct
values (0/1 scores, partial credit), resampling n items is done exactly in distribution by
drawing how many times each distinct value is picked (multinomial for the bootstrap,
binomial sign counts for the permutation test), which costs O(draws x levels) instead of
O(draws x n). Otherwise a chunked (draws, n) index or sign matrix is used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

T_INTERVAL_MIN_N = 30
"""From this many non-binary values on, `mean_ci` uses a Student-t interval, not a bootstrap."""

_LEVELS_RATIO = 16  # resample by value counts when n >= _LEVELS_RATIO * distinct values
_CHUNK_ELEMS = 1 << 17  # elements of a (draws, n) block in the generic path; cache-sized


NO_VARIATION = "no variation"
N_TOO_SMALL = "n too small"


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval. When the data cannot give one, `unavailable` says why
    (NO_VARIATION, N_TOO_SMALL) and low/high are NaN, so that no caller prints a zero-width interval by mistake."""

    estimate: float
    low: float
    high: float
    unavailable: str = ""

    @classmethod
    def without_ci(cls, estimate: float, reason: str) -> Interval:
        return cls(estimate, math.nan, math.nan, reason)

    @property
    def estimable(self) -> bool:
        return not self.unavailable

    def scaled(self, factor: float) -> Interval:
        return Interval(factor * self.estimate, factor * self.low, factor * self.high, self.unavailable)


Z_975 = 1.959963984540054  # scipy.special.ndtri(0.975), to the last bit (tests/test_stats.py checks it)


def normal_quantile(q: float) -> float:
    """The standard normal's q-quantile (scipy's ndtri); the 95% intervals' 0.975 without importing scipy, which
    takes longer than the rest of a fully cached eval."""
    if q == 0.975:
        return Z_975
    from scipy.special import ndtri

    return float(ndtri(q))


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of k successes in n: scipy's binomtest(k, n).proportion_ci(method="wilson"), the same
    formula in the same order (so the same floats), without importing scipy.stats (a cached eval's slowest import)."""
    p = k / n
    z = normal_quantile(0.5 + 0.5 * confidence)
    denom = 2 * (n + z**2)
    center = (2 * n * p + z**2) / denom
    delta = z / denom * math.sqrt(4 * n * p * (1 - p) + z**2)
    return (0.0 if k == 0 else center - delta), (1.0 if k == n else center + delta)


def mean_ci(values: Sequence[float], confidence: float = 0.95, *, seed: int = 0) -> Interval:
    """Mean of per-item scores with a confidence interval.

    0/1 data: Wilson score interval. Other data: Student-t interval when
    n >= `T_INTERVAL_MIN_N` (the mean is close to normal there), else a percentile
    bootstrap with 2000 resamples. Constant non-binary data give a zero-width interval.
    """
    x = _as_array(values, "values")
    _check_confidence(confidence)
    if _is_binary(x):
        k = int(x.sum())
        low, high = wilson_interval(k, x.size, confidence)
        return Interval(k / x.size, low, high)
    estimate = float(x.mean())
    if np.all(x == x[0]):
        return Interval(estimate, estimate, estimate)
    if x.size >= T_INTERVAL_MIN_N:
        from scipy import stats

        sem = float(x.std(ddof=1)) / math.sqrt(x.size)
        half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * sem
        return Interval(estimate, estimate - half, estimate + half)
    means = bootstrap_means(x, 2000, np.random.default_rng(seed))
    return _percentile_interval(estimate, means, confidence)


def paired_delta_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of `b - a` over aligned items, with a CI that keeps the pairing.

    0/1 data on both sides: Agresti-Min interval for a difference of paired proportions; it is defined at any n, also
    when the two runs never disagree (n=3: about +-39 points, not +-0). Other data: Student-t interval of the
    differences, unavailable below 2 items (N_TOO_SMALL) or when every difference is the same (NO_VARIATION). Both
    cover 95% +- 2% at n=30 and n=200 in simulation (tests/test_stats.py); the percentile bootstrap used before
    covered 92% at n=30.
    """
    d = _paired_diff(a, b)
    _check_confidence(confidence)
    estimate = float(d.mean())
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if _is_binary(xa) and _is_binary(xb):
        low, high = paired_proportions_ci([np.sum(d < 0)], [np.sum(d > 0)], [d.size], confidence)
        return Interval(estimate, float(low[0]), float(high[0]))
    if d.size < 2:
        return Interval.without_ci(estimate, N_TOO_SMALL)
    if np.all(d == d[0]):
        return Interval.without_ci(estimate, NO_VARIATION)
    low, high = paired_t_ci(d[None, :], confidence)
    return Interval(estimate, float(low[0]), float(high[0]))


def paired_proportions_ci(
    a_only: ArrayLike, b_only: ArrayLike, n: ArrayLike, confidence: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Agresti-Min (2005) interval for p_b - p_a from paired 0/1 outcomes (arrays, one entry per comparison): items
    right only in a, right only in b, all items. Half an item is added to each cell of the 2x2 table, then the Wald
    interval of the difference of the discordant shares is taken."""
    n_adj = np.asarray(n, dtype=np.float64) + 2.0
    p_b = (np.asarray(b_only, dtype=np.float64) + 0.5) / n_adj
    p_a = (np.asarray(a_only, dtype=np.float64) + 0.5) / n_adj
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    half = z * np.sqrt((p_a + p_b - (p_b - p_a) ** 2) / n_adj)
    return np.maximum(-1.0, p_b - p_a - half), np.minimum(1.0, p_b - p_a + half)


def paired_t_ci(d: NDArray[np.float64], confidence: float = 0.95) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Student-t intervals of the mean of each row of paired differences `d` (rows x items, items >= 2)."""
    n = d.shape[1]
    mean = d.mean(axis=1)
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * d.std(axis=1, ddof=1) / math.sqrt(n)
    return mean - half, mean + half


def bootstrap_means(x: NDArray[np.float64], n_boot: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Means of `n_boot` bootstrap resamples (size n, with replacement) of `x`."""
    n = x.size
    levels, counts = np.unique(x, return_counts=True)
    if n >= _LEVELS_RATIO * levels.size:
        picks = rng.multinomial(n, counts / n, size=n_boot)
        return np.asarray(picks @ levels / n, dtype=np.float64)
    out = np.empty(n_boot)
    rows = max(1, _CHUNK_ELEMS // n)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        out[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def grouped_mean_ci(
    values: Sequence[float],
    groups: Sequence[tuple[str, str]],
    confidence: float = 0.95,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> Interval:
    """Mean over categories of the mean over their tasks of item values (LiveBench's headline), with a percentile
    bootstrap over items. `groups[i]` = (category, task) of item i. Resamples that lose a task or a category
    average over the ones they kept."""
    x = _as_array(values, "values")
    _check_confidence(confidence)
    pairs = sorted(set(groups))
    task_index = np.array([pairs.index(g) for g in groups])
    categories = sorted({c for c, _ in pairs})
    task_category = np.array([categories.index(c) for c, _ in pairs])
    onehot = np.eye(len(pairs))[task_index]  # items x tasks

    def headline(weights: NDArray[np.float64]) -> NDArray[np.float64]:  # weights: resamples x items
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a resample without some task: nanmean skips it
            task_means = (weights @ (onehot * x[:, None])) / (weights @ onehot)
            per_category = np.stack(
                [np.nanmean(task_means[:, task_category == c], axis=1) for c in range(len(categories))], axis=1
            )
        return np.asarray(np.nanmean(per_category, axis=1), dtype=np.float64)

    estimate = float(headline(np.ones((1, x.size)))[0])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, x.size, size=(n_boot, x.size))
    weights = np.stack([np.bincount(row, minlength=x.size) for row in draws]).astype(np.float64)
    return _percentile_interval(estimate, headline(weights), confidence)


def paired_permutation_test(a: Sequence[float], b: Sequence[float], *, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value for mean(b - a) == 0.

    Each resample flips the sign of every item's difference at random; the p-value is
    (1 + #{|resampled sum| >= |observed sum|}) / (1 + n_perm), so it is never 0.
    Identical samples give exactly 1.0.
    """
    d = _paired_diff(a, b)
    if n_perm < 1:
        raise ValueError(f"n_perm must be positive, got {n_perm}")
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    observed = abs(float(d.sum()))
    flipped = np.abs(signflip_sums(d, n_perm, np.random.default_rng(seed)))
    tol = 1e-9 * float(np.abs(d).sum())  # ties in discrete data must count as ties
    hits = int(np.count_nonzero(flipped >= observed - tol))
    return min(1.0, (1 + hits) / (1 + n_perm))


def signflip_sums(d: NDArray[np.float64], n_perm: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Sums of `d` under `n_perm` random sign flips (each sign +/-1 with probability 1/2)."""
    mags, counts = np.unique(np.abs(d), return_counts=True)
    if d.size >= _LEVELS_RATIO * mags.size:
        positives = rng.binomial(counts, 0.5, size=(n_perm, mags.size))
        return np.asarray((2 * positives - counts) @ mags, dtype=np.float64)
    absd = np.abs(d)
    total = float(absd.sum())
    out = np.empty(n_perm)
    n_bytes = -(-d.size // 8)
    rows = max(1, _CHUNK_ELEMS // d.size)
    for start in range(0, n_perm, rows):
        stop = min(n_perm, start + rows)
        random_bytes = rng.integers(0, 256, size=(stop - start, n_bytes), dtype=np.uint8)
        positive = np.unpackbits(random_bytes, axis=1, count=d.size)  # 8 fair coins a byte
        out[start:stop] = 2 * (positive @ absd) - total
    return out


def paired_test(a: Sequence[float], b: Sequence[float]) -> tuple[str, float]:
    """Pick a paired test: McNemar when both sides are 0/1, else sign-flip permutation.

    Returns (test name, two-sided p-value); the names are "mcnemar" and "permutation".
    """
    d = _paired_diff(a, b)
    if _is_binary(_as_array(a, "a")) and _is_binary(_as_array(b, "b")):
        return "mcnemar", _mcnemar_p(d)
    return "permutation", paired_permutation_test(a, b)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in input order (monotone in rank, capped at 1)."""
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("holm needs a flat sequence of p-values in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(v) for v in adjusted]


def min_detectable_difference(
    n: int,
    p: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    paired_discordance: float | None = None,
) -> float:
    """Smallest true change in a proportion that a two-sided test at `alpha` detects with `power`.

    With z = z_{1-alpha/2} + z_{power} (normal approximation), in proportion units
    (0.025 is 2.5 points):
      - unpaired, two runs of n items at accuracy p:  z * sqrt(2 p (1 - p) / n)
      - paired (McNemar) with discordance rate d = P(the two runs disagree on an item):
        z * sqrt(d / n)   (`p` is then unused; the (p01 - p10)^2 term is dropped).
    E.g. n=40 (AMC23), p=0.5 unpaired: 2.80 * sqrt(0.5 / 40) = 0.31, i.e. 31 points.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must be in (0, 1)")
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    if paired_discordance is not None:
        if not 0 < paired_discordance <= 1:
            raise ValueError(f"paired_discordance must be in (0, 1], got {paired_discordance}")
        return z * math.sqrt(paired_discordance / n)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    return z * math.sqrt(2 * p * (1 - p) / n)


def _as_array(values: ArrayLike, name: str) -> NDArray[np.float64]:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty flat sequence of numbers")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _paired_diff(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    xa, xb = _as_array(a, "a"), _as_array(b, "b")
    if xa.size != xb.size:
        raise ValueError(f"paired samples differ in length: {xa.size} vs {xb.size}")
    return xb - xa


def _is_binary(x: NDArray[np.float64]) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _percentile_interval(estimate: float, means: NDArray[np.float64], confidence: float) -> Interval:
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(estimate, float(low), float(high))


def _mcnemar_p(d: NDArray[np.float64]) -> float:
    wins = int((d > 0).sum())
    discordant = wins + int((d < 0).sum())
    if discordant == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(wins, discordant, 0.5).pvalue)
