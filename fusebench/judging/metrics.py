"""Scoring formulas of the judged benchmarks, as their reference implementations define them.

- Arena-Hard v0.1: lmarena/arena-hard-auto@3071ef95 `show_result.py` + `utils_math.py` (Bradley-Terry fit on battles,
  win rate against gpt-4-0314, bootstrap CI).
- MT-Bench: lm-sys/FastChat `fastchat/llm_judge/show_result.py`, single-answer mode.
- AlpacaEval 2.0: the `alpaca_eval` package's own `get_winrate` / `get_length_controlled_winrate`, run offline on the
  bundled `df_gamed.csv`.
- AlignBench: THUDM/AlignBench `show_result.py`.

All functions are pure: judge failures come in as None and are counted. They are left out of every mean and fit,
except AlpacaEval's length-controlled fit, which keeps them as rows without a preference as alpaca_eval does (they
shape the length standardisation and the mean of the predictions, not the training rows).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from fusebench.errors import UsageError

# --- Arena-Hard ---------------------------------------------------------------------------------------------

PAIRWISE_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
BASELINE = "gpt-4-0314"
MODEL = "model"
STRONG_WEIGHT = 3  # arena-hard-auto's --weight: a strong verdict counts as this many battles
_SWAPPED = {"A>>B": "B>>A", "A>B": "B>A", "A=B": "A=B", "B>A": "A>B", "B>>A": "A>>B"}
_SCALE, _BASE, _INIT = 400.0, 10.0, 1000.0  # Elo scale of compute_mle_elo
_ELO_CLIP = 1e5  # |Elo - 1000| beyond this is a win rate of 0 or 100 to float precision


@dataclass(frozen=True)
class PairwiseGame:
    """One Arena-Hard question judged in both orders (None = the judge gave no usable verdict)."""

    question_id: str
    verdict_model_second: str | None  # game 1: A = baseline, B = model
    verdict_model_first: str | None  # game 2: A = model, B = baseline


def _check_label(label: str | None) -> None:
    if label is not None and label not in _SWAPPED:
        raise ValueError(f"unknown pairwise verdict {label!r}; expected one of {PAIRWISE_LABELS} or None")


def _model_view(label: str, model_is_b: bool) -> str:
    """A verdict rewritten so that A is the baseline and B the model."""
    return label if model_is_b else _SWAPPED[label]


def _winner(view: str) -> str:
    """Who wins a verdict given with A = baseline, B = model: model_a, model_b or tie (strength ignored)."""
    return "tie" if view == "A=B" else ("model_a" if view.startswith("A") else "model_b")


def battles_from_games(games: Sequence[PairwiseGame], weight: int = STRONG_WEIGHT) -> pd.DataFrame:
    """arena-hard-auto's battles: one row per battle (model_a = baseline, model_b = model, winner in
    model_a / model_b / tie); a strong verdict gives `weight` identical rows, a failure none."""
    rows = []
    for game in games:
        for label, model_is_b in ((game.verdict_model_second, True), (game.verdict_model_first, False)):
            _check_label(label)
            if label is None:
                continue
            view = _model_view(label, model_is_b)
            row = {"question_id": game.question_id, "model_a": BASELINE, "model_b": MODEL, "winner": _winner(view)}
            rows += [row] * (weight if view in ("A>>B", "B>>A") else 1)
    return pd.DataFrame(rows, columns=["question_id", "model_a", "model_b", "winner"])


def _model_elo(battles: pd.DataFrame) -> float:
    """The model's Elo with the baseline anchored at 1000: compute_mle_elo's logistic regression (battles duplicated,
    a tie = one win for each side). All battles on one side put the MLE at infinity: +-inf."""
    doubled = pd.concat([battles, battles], ignore_index=True)
    n = len(doubled)
    x = np.zeros((n, 2))
    x[:, 0] = math.log(_BASE)  # column 0: baseline (always model_a)
    x[:, 1] = -math.log(_BASE)  # column 1: model (always model_b)
    y = (doubled["winner"] == "model_a").to_numpy(dtype=float)
    y[: n // 2][(doubled["winner"] == "tie").to_numpy()[: n // 2]] = 1.0
    if y.min() == y.max():
        return math.inf if y[0] == 0 else -math.inf
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8)
    lr.fit(x, y)
    coef = lr.coef_[0]
    return float(_SCALE * (coef[1] - coef[0]) + _INIT)


def _win_rate(elo: float) -> float:
    """Predicted win rate (%) of a model at `elo` against the baseline at 1000 (predict_win_rate)."""
    if math.isinf(elo):
        return 100.0 if elo > 0 else 0.0
    return 100.0 / (1.0 + _BASE ** ((_INIT - elo) / _SCALE))


ARENA_HARD_SEED = 42  # utils_math.py's np.random.seed(42), the state its bootstrap's battles.sample() draws from


def arena_hard_score(
    games: Sequence[PairwiseGame], bootstrap_rounds: int = 100, seed: int = ARENA_HARD_SEED
) -> dict[str, Any]:
    """Arena-Hard v0.1 score: the model's Bradley-Terry win rate (%) against gpt-4-0314, with a bootstrap 95% CI
    (battles resampled with replacement each round from a RandomState seeded as arena-hard-auto seeds numpy, so that
    its published CIs are reproduced). score / ci_* are None when no game has a verdict.
    n_games counts the games with a verdict (two per question at most); wins / ties / losses split them from the
    model's side; position_consistency is the share of questions with both
    verdicts whose winner (model, baseline or tie; strength ignored) is the same in both orders."""
    battles = battles_from_games(games)
    verdicts = [(g.verdict_model_second, g.verdict_model_first) for g in games]
    views = [_model_view(v, is_b) for pair in verdicts for v, is_b in zip(pair, (True, False), strict=True) if v]
    both = [(_winner(a), _winner(_SWAPPED[b])) for a, b in verdicts if a is not None and b is not None]
    out: dict[str, Any] = {
        "score": None,
        "ci_low": None,
        "ci_high": None,
        "n_games": len(views),
        "judge_failures": sum(v is None for pair in verdicts for v in pair),
        "position_consistency": sum(a == b for a, b in both) / len(both) if both else None,
        "wins": sum(_winner(v) == "model_b" for v in views),
        "ties": sum(_winner(v) == "tie" for v in views),
        "losses": sum(_winner(v) == "model_a" for v in views),
    }
    if battles.empty:
        return out
    rng = np.random.RandomState(seed)
    boot = [_model_elo(battles.sample(frac=1.0, replace=True, random_state=rng)) for _ in range(bootstrap_rounds)]
    out["score"] = _win_rate(_model_elo(battles))
    if boot:
        # a one-sided resample has an infinite Elo: clip it so that the percentile interpolation stays finite
        low, high = np.percentile(np.clip(boot, -_ELO_CLIP, _ELO_CLIP), [2.5, 97.5])
        out["ci_low"], out["ci_high"] = _win_rate(float(low)), _win_rate(float(high))
    return out


# --- MT-Bench -----------------------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def mt_bench_score(ratings: Sequence[tuple[str, int, float | None]]) -> dict[str, Any]:
    """MT-Bench single-answer grading as FastChat's show_result reports it: the mean rating over all rated turns, and
    per turn. A rating of None (or FastChat's failure mark -1) is a judge failure; any other number counts, as in
    FastChat, and one outside 1-10 is also counted as suspect (a judge that wrote "[[0]]" or "[2024]")."""
    rated: dict[int, list[float]] = {1: [], 2: []}
    failures = suspect = 0
    for question_id, turn, rating in ratings:
        if turn not in rated:
            raise ValueError(f"MT-Bench question {question_id}: turn must be 1 or 2, got {turn!r}")
        if rating is None or rating == -1:
            failures += 1
        else:
            rated[turn].append(float(rating))
            suspect += not 1 <= rating <= 10
    return {
        "score": _mean(rated[1] + rated[2]),
        "turn1": _mean(rated[1]),
        "turn2": _mean(rated[2]),
        "n_rated": len(rated[1]) + len(rated[2]),
        "judge_failures": failures,
        "suspect_ratings": suspect,
    }


# --- AlpacaEval 2.0 -----------------------------------------------------------------------------------------

ALPACA_BASELINE = "gpt4_1106_preview"
ALPACA_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


@dataclass(frozen=True)
class AlpacaAnnotation:
    """One AlpacaEval comparison; preference in [1, 2] (2 = the model's output preferred), None = judge failure."""

    instruction: str
    output: str
    reference_output: str
    preference: float | None


def alpaca_data_dir() -> Path:
    """The bundled AlpacaEval 2.0 files (reference outputs, df_gamed.csv, annotator prompt and config)."""
    from fusebench_benchmarks import location

    return location() / "data" / "alpaca_eval2"


@cache
def _reference_rows() -> tuple[dict[str, str], ...]:
    """The 805 gpt4_turbo reference records, in AlpacaEval's order (the order df_gamed.csv's `index` refers to)."""
    with open(alpaca_data_dir() / "gpt4_turbo_reference_outputs.json", encoding="utf-8") as f:
        return tuple(json.load(f))


@cache
def _instruction_positions() -> dict[str, int]:
    return {row["instruction"]: i for i, row in enumerate(_reference_rows())}


def _glm_module() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # alpaca_eval imports the deprecated pkg_resources
        from alpaca_eval.metrics import glm_winrate
    return glm_winrate


def _local_hub_file(**kwargs: Any) -> str:
    """Stands in for hf_hub_download inside alpaca_eval: serves the bundled df_gamed.csv, refuses anything else."""
    if kwargs.get("repo_id") != "tatsu-lab/alpaca_eval" or kwargs.get("filename") != "df_gamed.csv":
        raise UsageError(f"alpaca_eval asked for a hub file that fusebench does not bundle: {kwargs.get('filename')}")
    return str(alpaca_data_dir() / "df_gamed.csv")


def alpaca_annotations_frame(annotations: Sequence[AlpacaAnnotation], generator: str = MODEL) -> pd.DataFrame:
    """The annotations as alpaca_eval's metrics expect them: output_1 = baseline, output_2 = model, a judge failure's
    preference NaN, and the row index = the instruction's position in AlpacaEval's order (glm_winrate reads
    instruction_difficulty by it)."""
    positions = _instruction_positions()
    unknown = [a.instruction for a in annotations if a.instruction not in positions]
    if unknown:
        raise UsageError(f"{len(unknown)} instruction(s) are not in AlpacaEval 2.0, e.g. {unknown[0][:60]!r}")
    return pd.DataFrame(
        {
            "instruction": [a.instruction for a in annotations],
            "output_1": [a.reference_output for a in annotations],
            "output_2": [a.output for a in annotations],
            "generator_1": ALPACA_BASELINE,
            "generator_2": generator,
            "annotator": ALPACA_ANNOTATOR,
            "preference": [math.nan if a.preference is None else float(a.preference) for a in annotations],
        },
        index=[positions[a.instruction] for a in annotations],
    )


def length_controlled_winrate(frame: pd.DataFrame) -> dict[str, Any]:
    """alpaca_eval's get_length_controlled_winrate on `frame`, offline (df_gamed.csv from the bundle), writing no
    weights file."""
    glm = _glm_module()
    with mock.patch.object(glm, "hf_hub_download", _local_hub_file), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # sklearn deprecations inside alpaca_eval
        return dict(
            glm.get_length_controlled_winrate(frame, save_weights_dir=None, is_add_glm_preference_inplace=False)
        )


def alpaca_eval_score(annotations: Sequence[AlpacaAnnotation]) -> dict[str, Any]:
    """AlpacaEval 2.0: length-controlled and raw win rates (%) against gpt4_turbo, computed by alpaca_eval itself.

    As in alpaca_eval, a failed judgment stays in the length-controlled fit as a row without a preference (it counts in
    the length standardisation and in the mean of the predicted preferences, not among the training rows) and is left
    out of the raw win rate. Outputs that all equal the baseline's are scored as alpaca_eval scores the baseline
    itself: 50.0. avg_length is alpaca_eval's (mean characters of all model outputs)."""
    for a in annotations:
        if a.preference is not None and not 1 <= a.preference <= 2:
            raise ValueError(f"AlpacaEval preference must be in [1, 2], got {a.preference}")
    judged = sum(a.preference is not None for a in annotations)
    out: dict[str, Any] = {
        "lc_win_rate": None,
        "win_rate": None,
        "standard_error": None,
        "n": judged,
        "judge_failures": len(annotations) - judged,
        "avg_length": int(np.mean([len(a.output) for a in annotations])) if annotations else None,
    }
    is_baseline = all(a.output == a.reference_output for a in annotations)
    frame = alpaca_annotations_frame(annotations, ALPACA_BASELINE if is_baseline else MODEL)
    if not judged:
        return out
    if not is_baseline and (len(annotations) < 2 or all(len(a.output) == len(a.reference_output) for a in annotations)):
        # alpaca_eval standardises the length differences by their standard deviation: 0/0 here
        out["note"] = "no length differences to standardise: alpaca_eval's length-controlled fit is undefined"
        return out
    metrics = length_controlled_winrate(frame)
    out["lc_win_rate"] = float(metrics["length_controlled_winrate"])
    out["win_rate"] = float(metrics["win_rate"])
    se = float(metrics["standard_error"])
    out["standard_error"] = None if math.isnan(se) else se
    return out


def alpaca_eval_export(model_name: str, rows: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """(instruction, output) pairs as alpaca_eval's model_outputs.json records, so that `alpaca_eval --model_outputs`
    can be run on them; `dataset` is filled in for AlpacaEval's own instructions."""
    datasets = {row["instruction"]: row["dataset"] for row in _reference_rows()}
    records = []
    for instruction, output in rows:
        record = {"instruction": instruction, "output": output, "generator": model_name}
        if instruction in datasets:
            record["dataset"] = datasets[instruction]
        records.append(record)
    return records


# --- AlignBench ---------------------------------------------------------------------------------------------

ALIGNBENCH_GROUPS: dict[str, tuple[str, ...]] = {
    "reasoning": ("数学计算", "逻辑推理"),  # 中文推理
    "language": ("基本任务", "中文理解", "综合问答", "文本写作", "角色扮演", "专业能力"),  # 中文语言
}


def alignbench_score(ratings: Sequence[tuple[str, str, float | None]]) -> dict[str, Any]:
    """AlignBench as its show_result aggregates: the mean rating per category; reasoning = mean of the two reasoning
    categories' means, language = mean of the six language categories' means, score = (reasoning + language) / 2.
    Categories without any rating are left out of those means (a partial run); None ratings are judge failures."""
    known = {c for cats in ALIGNBENCH_GROUPS.values() for c in cats}
    per: dict[str, list[float]] = {}
    failures = 0
    for question_id, category, rating in ratings:
        if category not in known:
            raise ValueError(f"AlignBench question {question_id}: unknown category {category!r}")
        if rating is None:
            failures += 1
        else:
            per.setdefault(category, []).append(float(rating))
    per_category = {cat: float(np.mean(v)) for cat, v in sorted(per.items())}
    groups = {
        name: _mean([per_category[c] for c in cats if c in per_category]) for name, cats in ALIGNBENCH_GROUPS.items()
    }
    present = [v for v in groups.values() if v is not None]
    return {
        "score": _mean(present),
        "per_category": per_category,
        **groups,
        "n_rated": sum(len(v) for v in per.values()),
        "judge_failures": failures,
    }
