"""The math scorer: answer extraction, equivalence rules, time bounds, and a sanity pass over MATH-500."""

from __future__ import annotations

import json
import signal
import threading
import time
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusebench.scorers.base import ScoreInput, get_scorer
from fusebench.scorers.math import TIME_LIMIT_S, extract_answer, gold_from_solution, is_equivalent, score_math
from tests.conftest import SHARED_DATA

MATH500 = SHARED_DATA / "math500" / "test.jsonl"

# (pred, gold, expected)
EQUIVALENCE_CASES = [
    # fractions and decimals
    (r"\frac{1}{2}", "0.5", True),
    (r"\dfrac{1}{2}", "1/2", True),
    (r"\tfrac12", r"\frac{1}{2}", True),
    ("0.5", "1/2", True),
    (r"\frac{2}{4}", r"\frac{1}{2}", True),
    (r"\frac{1}{3}", "0.333333", True),
    (r"\frac{1}{3}", "0.33", False),
    (r"\frac{1}{2}", r"\frac{1}{3}", False),
    ("-\\frac{3}{4}", "-0.75", True),
    (r"\frac{-3}{4}", r"-\frac{3}{4}", True),
    ("3/4", "-3/4", False),
    ("18.00", "18", True),
    ("18.5", "18", False),
    # LaTeX wrappers
    (r"$\frac{1}{2}$", r"\frac12", True),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\pi/2)", True),
    (r"\text{5}", "5", True),
    (r"\mathrm{5}", "5", True),
    (r"\displaystyle \frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", True),
    (r"\sqrt{2}/2", r"\frac{\sqrt2}{2}", True),
    (r"5\sqrt{2}", r"\sqrt{50}", True),
    (r"2\sqrt{3}", r"3\sqrt{2}", False),
    (r"\pi", "3.14", False),
    (r"\infty", r"\infty", True),
    # units and currency
    ("5 dollars", "5", True),
    (r"12\text{ cm}", "12", True),
    (r"864 \mbox{ inches}^2", "864", True),
    (r"15\mbox{ cm}^2", "15", True),
    (r"5.4 \text{ cents}", "5.4", True),
    ("$5", "5", True),
    (r"\$18.50", "18.5", True),
    ("6 dollars", "5", False),
    (r"\frac{270}7\text{ degrees}", r"\frac{270}{7}", True),
    # percentages: the sign is dropped, so 50% is 50 (not 0.5)
    (r"50\%", "50", True),
    ("50%", "50", True),
    (r"12.5\%", "12.5", True),
    (r"50\%", "0.5", False),
    ("40%", "50", False),
    # thousands separators
    ("1,000", "1000", True),
    ("1{,}000", "1000", True),
    ("1,234,567", "1234567", True),
    ("-2,500.5", "-2500.5", True),
    ("1,000", "100", False),
    # intervals
    ("(1,2]", "(1,2]", True),
    ("(1,2]", "[1,2)", False),
    (r"[1,2)\cup(3,4]", r"[1,2) \cup (3,4]", True),
    (r"(-\infty, 0)", r"(-\infty,0)", True),
    (r"(-\infty, 0]", r"(-\infty,0)", False),
    # symbolic
    ("x^2+2x+1", "(x+1)^2", True),
    ("(x+1)^2", "x^2+1", False),
    ("2x+3", "3+2x", True),
    (r"\frac{x}{2}", "0.5x", True),
    ("x=5", "5", True),
    ("y=2x+3", "y=3+2x", True),
    # sets, tuples, matrices (MATH rules: lists unordered, tuples ordered)
    ("1,2,3", "3,2,1", True),
    ("1,2", "1,2,3", False),
    (r"\{1,2\}", r"\{2,1\}", True),
    ("(1,2)", "(1,2)", True),
    ("(1,2)", "(2,1)", False),
    ("(1, -2, 3)", "(1,-2,3)", True),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}", True),
    (r"\begin{pmatrix} 1/5 \\ -18/5 \end{pmatrix}", r"\begin{pmatrix} 0.2 \\ -3.6 \end{pmatrix}", True),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix} 2 \\ 1 \end{pmatrix}", False),
    # negative numbers
    ("-3", "3", False),
    ("-3", "-3", True),
    ("-0", "0", True),
    ("−7", "-7", True),
    # degrees
    (r"90^\circ", "90", True),
    (r"90^{\circ}", "90", True),
    ("90°", "90", True),
    (r"45^\circ", "90", False),
    # text answers
    (r"\text{Evelyn}", "Evelyn", True),
    (r"\text{east}", "East", True),
    ("Evlyne", r"\text{Evelyn}", False),
    (r"\text{(C)}", "C", True),
    ("(C)", r"\text{(C)}", True),
    ("B", r"\text{(C)}", False),
    (r"\text{even}", r"\text{odd}", False),
    # garbage and empties
    ("", "5", False),
    ("5", "", False),
    ("}}{{", "5", False),
    (r"\frac{", r"\frac{1}{2}", False),
    ("hello world", "5", False),
]


@pytest.mark.timeout(60, method="thread")
@pytest.mark.parametrize(("pred", "gold", "expected"), EQUIVALENCE_CASES)
def test_is_equivalent_table(pred: str, gold: str, expected: bool) -> None:
    assert is_equivalent(pred, gold) is expected


# (model output, expected extraction)
EXTRACTION_CASES = [
    (r"so the answer is \boxed{42}.", "42"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"$\boxed{\left( 3, \frac{\pi}{2} \right)}$", r"\left( 3, \frac{\pi}{2} \right)"),
    (r"first \boxed{1} then \boxed{2}", "2"),
    (r"\boxed{\{1,2\}}", r"\{1,2\}"),
    (r"\boxed{x^{2^{3}}} is it", "x^{2^{3}}"),
    (r"\fbox{7}", "7"),
    (r"$\boxed 5$.", "5"),
    (r"answer \boxed{3} and then truncated \boxed{\frac{1}{", "3"),
    (r"put it in \boxed{} like \boxed{9} ... \boxed{}", "9"),
    (r"\boxed{\text{(C)}}", r"\text{(C)}"),
    ("The answer is 72.", "72"),
    (r"The final answer is $\frac{3}{4}$.", r"\frac{3}{4}"),
    ("**Answer:** 18", "18"),
    ("The answer is: 1,000 dollars. Hope it helps", "1,000 dollars"),
    ("She has 3 apples and eats 1,250 grams", "1250"),
    ("Total: -4.5 degrees", "-4.5"),
    ("so it's 3/4 of the pie", "3/4"),
    ("I computed 12 - 5", "5"),
    ("no digits here at all", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), EXTRACTION_CASES)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_gold_from_solution_takes_last_box() -> None:
    assert gold_from_solution(r"We get $\boxed{2}$ first, so finally $\boxed{\dfrac{14}{3}}.$") == r"\dfrac{14}{3}"
    assert gold_from_solution("It is 12.") == "12"


@given(st.integers())
def test_boxed_integer_is_extracted(n: int) -> None:
    assert extract_answer(f"some reasoning, 7 + 8 = 15, so \\boxed{{{n}}} is it.") == str(n)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.integers(-(10**9), 10**9), st.fractions(max_denominator=1000).map(str)))
def test_is_equivalent_reflexive_on_numbers(x: int | str) -> None:
    assert is_equivalent(str(x), str(x))


@settings(deadline=None)
@given(st.fractions(max_denominator=10**4))
def test_fraction_spellings_are_equivalent(q: Fraction) -> None:
    a, b = q.numerator, q.denominator
    latex = f"-\\frac{{{-a}}}{{{b}}}" if a < 0 else f"\\frac{{{a}}}{{{b}}}"
    assert is_equivalent(latex, f"{a}/{b}")
    assert is_equivalent(f"{a}/{b}", latex)
    if 10**6 % b == 0:  # a terminating decimal
        with localcontext(prec=200):  # exact and in plain notation, unlike float or the default context
            decimal = format(Decimal(a) / Decimal(b), "f")
        assert is_equivalent(decimal, latex)
    assert not is_equivalent(latex, f"{a + 1}/{b}")


@settings(deadline=None)
@given(st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12))
def test_distinct_integers_are_not_equivalent(a: int, b: int) -> None:
    assert is_equivalent(str(a), str(b)) is (a == b)
    assert is_equivalent(f"{a:,}", str(b)) is (a == b)


@pytest.mark.timeout(120, method="thread")
@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60), st.text(alphabet="0123456789+-*/^()[]{},.\\fracsqrtboxedxy$% ", max_size=40))
def test_never_raises_on_arbitrary_text(text: str, latexish: str) -> None:
    assert isinstance(is_equivalent(text, latexish), bool)
    assert isinstance(is_equivalent(latexish, text), bool)
    assert extract_answer(text) is None or isinstance(extract_answer(text), str)
    assert score_math(ScoreInput(output=text, target=latexish)).value in (0.0, 1.0)


@pytest.mark.timeout(60, method="thread")
def test_hanging_comparison_is_cut_off() -> None:
    start = time.monotonic()
    assert is_equivalent(r"10^{10^{10}}", "5") is False
    assert time.monotonic() - start < TIME_LIMIT_S + 2


@pytest.mark.timeout(60, method="thread")
def test_an_outer_alarm_survives_a_comparison() -> None:
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        assert is_equivalent("x^2+2x+1", "(x+1)^2")
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert 20 < remaining < 30


@pytest.mark.timeout(120, method="thread")
def test_works_off_the_main_thread() -> None:
    results: list[bool] = []
    worker = threading.Thread(
        target=lambda: results.extend([is_equivalent(r"\frac{1}{2}", "0.5"), is_equivalent("3", "4")])
    )
    worker.start()
    worker.join(100)
    assert results == [True, False]


def test_score_math_reasons() -> None:
    assert get_scorer("math") is score_math
    right = score_math(ScoreInput(output=r"... 9 \cdot 8 = \boxed{72}.", target="72"))
    assert (right.value, right.extracted, right.reason) == (1.0, "72", "correct")
    wrong = score_math(ScoreInput(output="so she pays $71.", target=72))
    assert (wrong.value, wrong.extracted, wrong.reason) == (0.0, "71", "wrong")
    none = score_math(ScoreInput(output="I don't know.", target="72"))
    assert (none.value, none.extracted, none.reason) == (0.0, None, "no answer found")


def _math500(n: int | None = None) -> list[dict[str, str]]:
    if not MATH500.exists():
        pytest.skip(f"{MATH500} not present")
    rows = [json.loads(line) for line in MATH500.read_text().splitlines()]
    return rows[:n] if n else rows


@pytest.mark.timeout(120, method="thread")
def test_math500_gold_from_solution_matches_answer() -> None:
    rows = _math500(200)
    agree = sum(is_equivalent(gold_from_solution(r["solution"]), r["answer"]) for r in rows)
    assert agree / len(rows) >= 0.97, f"{agree}/{len(rows)}"


@pytest.mark.timeout(120, method="thread")
def test_math500_reference_solutions_score_correct_and_fast() -> None:
    rows = _math500()
    start = time.monotonic()
    scores = [score_math(ScoreInput(output=r["solution"], target=r["answer"])) for r in rows]
    elapsed = time.monotonic() - start
    assert sum(s.value for s in scores) / len(rows) >= 0.97
    assert all(s.reason in ("correct", "wrong") for s in scores)
    assert elapsed < 30


@pytest.mark.timeout(120, method="thread")
def test_math500_shifted_answers_are_wrong() -> None:
    """Each solution against the next row's answer: scoring must reject (almost) all and stay fast."""
    rows = _math500()
    start = time.monotonic()
    hits = sum(
        score_math(ScoreInput(output=r["solution"], target=rows[(i + 1) % len(rows)]["answer"])).value
        for i, r in enumerate(rows)
    )
    assert hits <= 5  # a few neighbours share an answer (e.g. 3 and 3)
    assert time.monotonic() - start < 60


@pytest.mark.parametrize(
    ("scorer", "checker"),
    [("math", "fusebench.scorers.math._equivalent"), ("math_qwen25", "fusebench.scorers.qwen_math.math_equal")],
)
def test_a_check_that_runs_out_of_time_scores_zero_and_is_not_reused(
    scorer: str, checker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timed-out check scores 0 (as the references' pools do), but says so: its verdict depends on how loaded the
    machine was, so the score cache must not reuse it (Score.reusable), unlike a plain "wrong"."""
    monkeypatch.setattr("fusebench.scorers.math.TIME_LIMIT_S", 0.2)
    monkeypatch.setattr(checker, lambda pred, gold: time.sleep(5) or True)
    started = time.monotonic()
    got = get_scorer(scorer)(ScoreInput(output="So the answer is $\\boxed{2}$.", target="2"))
    assert time.monotonic() - started < 2
    assert got.value == 0.0 and got.reason.startswith("timeout") and not got.reusable
    monkeypatch.setattr(checker, lambda pred, gold: False)
    wrong = get_scorer(scorer)(ScoreInput(output="So the answer is $\\boxed{2}$.", target="2"))
    assert (wrong.value, wrong.reason, wrong.reusable) == (0.0, "wrong", True)
