"""Verdict parsing as the reference implementations parse judge answers."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusebench.judging.verdicts import (
    PAIRWISE_LABELS,
    parse_alignbench,
    parse_alpaca_eval,
    parse_pairwise,
    parse_rating,
)

no_brackets = st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=200)


@given(label=st.sampled_from(PAIRWISE_LABELS), before=no_brackets, after=no_brackets, times=st.integers(1, 3))
def test_pairwise_label_is_found_anywhere(label: str, before: str, after: str, times: int) -> None:
    verdict = parse_pairwise(before + f"My final verdict is [[{label}]]" * times + after)
    assert verdict.ok and verdict.value == label and verdict.method == "regex"


@given(no_brackets)
def test_pairwise_without_label_fails_and_asks_for_a_retry(text: str) -> None:
    verdict = parse_pairwise(text)
    assert verdict.value is None and verdict.retry


def test_pairwise_conflicting_or_unknown_labels_fail_without_retry() -> None:
    conflicting = parse_pairwise("first [[A>B]] then [[B>A]]")
    assert conflicting.value is None and not conflicting.retry
    unknown = parse_pairwise("[[A]]")
    assert unknown.value is None and not unknown.retry
    assert parse_pairwise("[[]] and [[A=B]]").value == "A=B"


@given(st.integers(1, 10), st.sampled_from(["", ".0", ".5"]), no_brackets)
def test_rating_in_double_brackets(whole: int, frac: str, text: str) -> None:
    if whole == 10 and frac == ".5":
        return
    verdict = parse_rating(f"{text}Rating: [[{whole}{frac}]]")
    assert verdict.value == pytest.approx(float(f"{whole}{frac}")) and verdict.method == "regex"


def test_rating_backup_pattern_range_and_failure() -> None:
    assert parse_rating("I give it [8] overall").value == 8.0
    assert parse_rating("I give it [8] overall").method == "backup_regex"
    assert parse_rating("Rating: [[3]] but also [9]").value == 3.0  # [[x]] first, as FastChat
    assert parse_rating("Rating: [[11]]").value is None  # outside 1-10: a failure, not a score
    assert parse_rating("Rating: [[0]]").value is None
    assert parse_rating("seven out of ten").value is None


def test_alignbench_final_dict_then_bare_overall_score() -> None:
    text = "解释……\n{'事实正确性': 8, '满足用户需求': 6, '综合得分': 7}"
    verdict = parse_alignbench(text)
    assert verdict.value == 7.0 and verdict.method == "dict"
    assert verdict.extra["ratings"] == {"事实正确性": 8, "满足用户需求": 6, "综合得分": 7}
    # the last {...} has no overall score: the bare pattern anywhere, as AlignBench's extract_score
    fallback = parse_alignbench("'综合得分': 4 ... {'事实正确性': 2}")
    assert fallback.value == 4.0 and fallback.method == "regex"
    assert parse_alignbench("没有分数").value is None
    assert parse_alignbench("{'综合得分': 15}").value is None


def _alpaca_eval_reference(p_m_logprob: float | None, p_big_logprob: float | None, switched: bool) -> float:
    """alpaca_eval's own logprob_parser (weighted_alpaca_eval_gpt4_turbo settings), then its switch undo (3 - x)."""
    with warnings.catch_warnings():  # alpaca_eval imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        from alpaca_eval.completion_parsers import logprob_parser

    top = [{"token": t, "logprob": lp} for t, lp in (("m", p_m_logprob), ("M", p_big_logprob)) if lp is not None]
    top.append({"token": "Both", "logprob": -20.0})
    (value,) = logprob_parser(
        {"logprobs": {"content": [{"top_logprobs": top}]}},
        numerator_token="m",
        denominator_tokens=["m", "M"],
        is_binarize=False,
    )
    return 3 - value if switched else value


logprob = st.floats(-30, 0, allow_nan=False)


@settings(deadline=None)  # the first example imports alpaca_eval
@given(lp_m=logprob, lp_big=logprob, switched=st.booleans())
def test_alpaca_eval_logprob_preference_matches_alpaca_eval(lp_m: float, lp_big: float, switched: bool) -> None:
    meta = [{"token": "M", "logprob": lp_big, "top": {"m": lp_m, "M": lp_big, "Both": -20.0}}]
    verdict = parse_alpaca_eval("M", meta, "m" if switched else "M")
    assert verdict.method == "logprobs"
    assert verdict.value == pytest.approx(_alpaca_eval_reference(lp_m, lp_big, switched), abs=1e-9)


def test_alpaca_eval_one_token_missing_from_top_and_token_fallback() -> None:
    only_m = [{"token": "m", "logprob": -0.1, "top": {"m": -0.1, "The": -3.0}}]
    assert parse_alpaca_eval("m", only_m, "M").value == pytest.approx(1.0)
    assert parse_alpaca_eval("m", only_m, "m").value == pytest.approx(2.0)
    assert _alpaca_eval_reference(-0.1, None, False) == pytest.approx(1.0)
    # no logprobs (a server that ignores them): the generated token decides, and the method says so
    assert parse_alpaca_eval(" M\n", None, "M").value == 2.0
    assert parse_alpaca_eval("M", [], "m").value == 1.0
    assert parse_alpaca_eval("M", None, "M").method == "token"
    failed = parse_alpaca_eval("Both are good", None, "M")
    assert failed.value is None and failed.retry
    no_mm = [{"token": "The", "logprob": -0.1, "top": {"The": -0.1}}]
    assert parse_alpaca_eval("The", no_mm, "M").value is None
    assert parse_alpaca_eval("x", [{"top": {"m": 0.0, "M": 0.0}}], "M").value == pytest.approx(1.5)
