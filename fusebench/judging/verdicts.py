"""Parse judge answers the way the reference implementations do. A verdict whose value is None is a judge failure.

MT-Bench ratings are read exactly as FastChat's run_judge_single reads them: any number its patterns find counts
(MT-Bench's score counts ratings outside 1-10 as "suspect" beside it). AlignBench keeps one deviation from its
post_process, which accepts any number too: a rating outside 1-10 counts as a failure there.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PAIRWISE_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
ARENA_HARD_PATTERN = re.compile(r"\[\[([AB<>=]+)\]\]")
RATING_PATTERN = re.compile(r"\[\[(\d+\.?\d*)\]\]")
RATING_PATTERN_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
ALIGNBENCH_DICT = re.compile(r"{(.*?)}(?![^{]*{)")  # the last {...}
ALIGNBENCH_PAIR = re.compile(r"'(.*?)': (\d+)")
ALIGNBENCH_OVERALL = re.compile(r"'综合得分': (\d+(\.\d{1,2})?)")
ALIGNBENCH_OVERALL_KEY = "综合得分"


@dataclass(frozen=True)
class Verdict:
    """A parsed judgment: a pairwise label, a 1-10 rating or an AlpacaEval preference in [1, 2]; None = failure."""

    value: str | float | None
    method: str  # how it was read: regex, backup_regex, dict, logprobs, token, or why it failed
    retry: bool = True  # for failures: whether another attempt may help (Arena-Hard: only when no label at all)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.value is not None


def parse_pairwise(judgment: str) -> Verdict:
    """Arena-Hard's get_score: exactly one distinct [[label]] in the judgment; none -> try again; several -> fail."""
    matches = {m for m in ARENA_HARD_PATTERN.findall(judgment) if m}
    if not matches:
        return Verdict(None, "no verdict label")
    if len(matches) > 1:
        return Verdict(None, "conflicting verdict labels", retry=False)
    (label,) = matches
    if label not in PAIRWISE_LABELS:
        return Verdict(None, f"unknown verdict label {label!r}", retry=False)
    return Verdict(label, "regex")


def parse_rating(judgment: str) -> Verdict:
    """FastChat's single-answer rating: ast.literal_eval of the first [[x]], else of the first [x]. A number outside
    1-10 is kept (extra["suspect"] marks it); one literal_eval refuses (e.g. "07", where FastChat's own run stops with
    a SyntaxError) is a failure."""
    for pattern, method in ((RATING_PATTERN, "regex"), (RATING_PATTERN_BACKUP, "backup_regex")):
        match = pattern.search(judgment)
        if match:
            try:
                value = float(ast.literal_eval(match.group(1)))
            except (ValueError, SyntaxError):
                return Verdict(None, f"unreadable rating {match.group(1)!r}")
            return Verdict(value, method, extra={"suspect": True} if not 1 <= value <= 10 else {})
    return Verdict(None, "no rating")


def parse_alignbench(judgment: str) -> Verdict:
    """AlignBench's post_process: the last {...} dict's '综合得分', else a bare '综合得分': x anywhere."""
    ratings: dict[str, int] = {}
    match = ALIGNBENCH_DICT.search(judgment)
    if match:
        ratings = {k: int(v) for k, v in ALIGNBENCH_PAIR.findall(match.group(1))}
    if ALIGNBENCH_OVERALL_KEY in ratings:
        score: float | None = float(ratings[ALIGNBENCH_OVERALL_KEY])
        method = "dict"
    else:
        found = ALIGNBENCH_OVERALL.search(judgment)
        score, method = (float(found.group(1)), "regex") if found else (None, "no overall score")
    if score is not None and not 1 <= score <= 10:
        return Verdict(None, "rating outside 1-10", extra={"ratings": ratings})
    return Verdict(score, method, extra={"ratings": ratings})


def parse_alpaca_eval(text: str, logprobs: Sequence[Mapping[str, Any]] | None, model_token: str) -> Verdict:
    """AlpacaEval's m/M choice as a preference in [1, 2] (2 = the model's output preferred).

    With logprobs (Completion.meta["logprobs"]: per token {"token", "logprob", "top": {token: logprob}}), as
    alpaca_eval's logprob_parser computes it from the first token: 1 + P(model token) / (P(m) + P(M)). Without:
    the generated token, 2 if it names the model, 1 if it names the reference.
    """
    other = "m" if model_token == "M" else "M"
    probs = {t: math.exp(lp) for t, lp in _first_token_top(logprobs).items() if t in ("m", "M")}
    if probs:
        p_model = probs.get(model_token, 0.0) / (probs.get(model_token, 0.0) + probs.get(other, 0.0))
        return Verdict(1.0 + p_model, "logprobs")
    token = text.strip()
    if token == model_token:
        return Verdict(2.0, "token")
    if token == other:
        return Verdict(1.0, "token")
    return Verdict(None, "no m/M choice")


def _first_token_top(logprobs: Sequence[Mapping[str, Any]] | None) -> dict[str, float]:
    if not logprobs:
        return {}
    first = logprobs[0]
    top = {str(t): float(lp) for t, lp in (first.get("top") or {}).items()}
    if "token" in first and "logprob" in first:
        top.setdefault(str(first["token"]), float(first["logprob"]))
    return top
