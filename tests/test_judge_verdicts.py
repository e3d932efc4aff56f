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


def test_rating_backup_pattern_and_failure() -> None:
    assert parse_rating("I give it [8] overall").value == 8.0
    assert parse_rating("I give it [8] overall").method == "backup_regex"
    assert parse_rating("Rating: [[3]] but also [9]").value == 3.0  # [[x]] first, as FastChat
    assert parse_rating("seven out of ten").value is None


def fastchat_single_rating(judgment: str) -> float:
    """FastChat's run_judge_single, written from its definition: re.search of [[rating]], else of [rating], then
    ast.literal_eval of the captured number; -1 when neither matches. A literal it refuses raises, as there."""
    import ast
    import re

    match = re.search(r"\[\[(\d+\.?\d*)\]\]", judgment) or re.search(r"\[(\d+\.?\d*)\]", judgment)
    return float(ast.literal_eval(match.groups()[0])) if match else -1.0


def judgments(seed: int, n: int) -> list[str]:
    """Judge answers as small and large judges write them: in and out of range, quoted code, stray brackets."""
    import random

    rng = random.Random(seed)
    pieces = [
        lambda: f"Rating: [[{rng.randint(1, 10)}]]",
        lambda: f"Rating: [[{rng.randint(1, 9)}.{rng.randint(0, 9)}]]",
        lambda: f"[[{rng.choice([0, 11, 100, 2024])}]]",
        lambda: f"```python\nx = a[{rng.randint(0, 3)}]\n```",
        lambda: f"I rate it [{rng.randint(1, 10)}].",
        lambda: f"[[{rng.randint(1, 9)}.]]",
        lambda: "no score here [x] [[y]]",
        lambda: f"see [ref {rng.randint(1, 5)}] and [[rating: {rng.randint(1, 10)}]]",
    ]
    return ["\n".join(rng.choice(pieces)() for _ in range(rng.randint(1, 3))) for _ in range(n)]


def test_ratings_are_read_exactly_as_fastchat_reads_them() -> None:
    texts = judgments(seed=0, n=400)
    suspect = 0
    for text in texts:
        expected = fastchat_single_rating(text)
        verdict = parse_rating(text)
        if expected == -1:
            assert verdict.value is None, text
        else:
            assert verdict.value == expected, text
            assert verdict.extra.get("suspect", False) == (not 1 <= expected <= 10)
            suspect += not 1 <= expected <= 10
    assert suspect > 20  # the generated set has ratings outside 1-10 ([0] out of quoted code, [[2024]], ...)


def test_out_of_range_ratings_count_and_a_refused_literal_fails() -> None:
    zero = parse_rating("```\nrow = grid[0]\n```")  # FastChat's fallback reads [0] out of quoted code
    assert zero.value == 0.0 and zero.extra == {"suspect": True} and zero.method == "backup_regex"
    assert parse_rating("Rating: [[11]]").value == 11.0
    with pytest.raises(SyntaxError):
        fastchat_single_rating("Rating: [[07]]")  # FastChat's run stops here; fusebench counts a failure
    refused = parse_rating("Rating: [[07]]")
    assert refused.value is None and "unreadable" in refused.method


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
