"""fusebench's own math answer scoring, the second number beside the reference's (GSM8K, MATH, MATH-500, AMC23 are
headlined by Qwen2.5-Math's grader, fusebench.scorers.qwen_math; `<id>_mathverify` scores the same answers with
this): take the model's final answer (the last \\boxed{}), normalise it lightly and compare it with the gold answer
using math-verify.

Equivalence rules, beyond what math-verify decides symbolically:
- a percent sign is dropped: "50\\%" equals "50" (and not 0.5); degrees likewise: "90^\\circ" equals "90";
- a unit after a value is dropped: "5 dollars", "12\\text{ cm}", "864 \\mbox{ inches}^2", "\\$5";
- thousands separators are ignored in plain numbers: "1,000" and "1{,}000" equal "1000";
- a comma-separated list is an unordered set of solutions ("1,2" equals "2,1"), while a parenthesised tuple
  is ordered ("(1,2)" differs from "(2,1)"), as in MATH; interval endpoints must match exactly;
- answers made only of words are compared as text, ignoring case and \\text{}: "\\text{East}" equals "east".

Every comparison is bounded in time (math-verify runs sympy, which can hang): in the main thread by a
SIGALRM timer, in other threads by a worker process that is killed when it runs over. A check that runs over scores
0 (as the references' pools do) with the reason "timeout: ...", which the score cache does not reuse.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import re
import signal
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from multiprocessing.pool import Pool
from typing import Any, TypeVar

from fusebench.scorers.base import Score, ScoreInput, register

TIME_LIMIT_S = 3.0  # per is_equivalent call
MAX_ANSWER_CHARS = 1000  # longer answers are only compared as normalised strings
_WORKER_START_S = 60.0  # extra allowance for the first off-main-thread call (spawning imports sympy)

T = TypeVar("T")


class _DropTimeoutDisabledNotice(logging.Filter):
    """math-verify warns once that its own timeouts are off; here they are replaced by _with_alarm / _in_worker."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledNotice())

# --- extraction -------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_PHRASE_RE = re.compile(r"(?:final answer is|the answer is|answer\s*:)[\s:*]*(?P<rest>[^\n]*)", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")
_NUMBER_RE = re.compile(r"(?:(?<![\w)])-)?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+/\d+|\d+(?:\.\d+)?|\.\d+)(?![\d/])")


def _braced(text: str, start: int) -> str | None:
    """Content of the brace group opening at text[start] == '{', or None if it never closes."""
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped brace (\{ or \}) does not open or close a group
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None


def _box_content(text: str, end: int) -> str | None:
    """The argument of a \\boxed / \\fbox command ending at `end`: a brace group, or one token after a space."""
    rest = text[end:]
    stripped = rest.lstrip()
    if stripped.startswith("{"):
        content = _braced(text, end + len(rest) - len(stripped))
    elif stripped is not rest:
        token = re.match(r"[^\s$]+", stripped)
        content = token.group(0).rstrip(".,;") if token else None
    else:
        return None
    return content.strip() if content and content.strip() else None


def last_boxed(text: str) -> str | None:
    """Content of the last complete, non-empty \\boxed{...} (or \\fbox{...}, \\boxed X) in text."""
    for match in reversed(list(_BOX_RE.finditer(text))):
        content = _box_content(text, match.end())
        if content is not None:
            return content
    return None


def _clean_phrase(rest: str) -> str:
    """'$\\frac{1}{2}$.' -> '\\frac{1}{2}': cut at the end of the sentence, drop markdown and math delimiters."""
    cut = _SENTENCE_END_RE.search(rest)
    if cut:
        rest = rest[: cut.start()]
    rest = rest.strip().strip("*").strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if rest.startswith(left) and rest.endswith(right) and len(rest) >= len(left) + len(right):
            rest = rest[len(left) : len(rest) - len(right)].strip()
    return rest.rstrip(".").strip()


def extract_answer(text: str) -> str | None:
    """The final answer in a model output: the last \\boxed{}, else an "answer is X" / "Answer: X" phrase,
    else the last number (thousands separators removed); None when there is none."""
    if not isinstance(text, str):
        return None
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    for match in reversed(list(_PHRASE_RE.finditer(text))):
        answer = _clean_phrase(match.group("rest"))
        if answer:
            return answer
    numbers = _NUMBER_RE.findall(text.replace("\u2212", "-"))
    return numbers[-1].replace(",", "") if numbers else None


def gold_from_solution(solution: str) -> str:
    """The gold answer of a MATH reference solution: its last \\boxed{} (else the extracted answer, else all)."""
    return extract_answer(solution) or solution.strip()


# --- normalisation ----------------------------------------------------------------------------------------

_REPLACEMENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"(?<!\\)\\[\[\]()]", " "),  # \( \) \[ \] math delimiters
        (r"\\?\$", " "),  # $...$ delimiters and dollar signs
        (r"\\(?:left|right)(?:\.|(?![A-Za-z]))", ""),
        (r"\\[dt]frac(?![A-Za-z])", r"\\frac"),
        (r"(?<!\\)\\[!,;: ]|\\q?quad(?![A-Za-z])|~", " "),
        (r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![A-Za-z])|\\degree(?![A-Za-z])|°", ""),
        (r"\\?%", ""),
        (r"\{,\}", ","),
        (r"\\displaystyle(?![A-Za-z])", ""),
    )
)
_UNIT_RE = re.compile(
    r"^(?P<value>.*?[\d}).])\s*"
    r"(?:\\(?:text|mbox|mathrm|textrm)\{\s*[A-Za-z][A-Za-z\s.]*\}|\s[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})*\.?)"
    r"(?:\^\{?\d\}?)?$"
)
_WRAPPED_TEXT_RE = re.compile(r"^\\(?:text|textbf|textrm|mbox|mathrm|mathbf)\{(?P<inner>[^{}]*)\}$")
_THOUSANDS_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_CHOICE_RE = re.compile(r"^\((?P<letter>[A-Za-z])\)$")
_TEXT_ANSWER_RE = re.compile(r"[A-Za-z][A-Za-z\s'\-]*")
_SIMPLE_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?|-?\d+/\d+|-?\\frac\{\d+\}\{\d+\}")


def normalize(answer: str) -> str:
    """Light, semantics-preserving clean-up of an answer string (see the module docstring for the rules)."""
    s = answer.strip()
    for pattern, repl in _REPLACEMENTS:
        s = pattern.sub(repl, s)
    s = " ".join(s.split()).rstrip(".").strip()
    unit = _UNIT_RE.match(s)
    if unit:
        s = unit.group("value").strip()
    wrapped = _WRAPPED_TEXT_RE.match(s)
    if wrapped:
        s = wrapped.group("inner").strip()
    if _THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    choice = _CHOICE_RE.match(s)
    return choice.group("letter") if choice else s


def _simple_number(s: str) -> Fraction | None:
    if not _SIMPLE_NUMBER_RE.fullmatch(s):
        return None
    if s.lstrip("-").startswith("\\frac"):
        num, den = re.findall(r"\d+", s)
        s = f"{'-' if s.startswith('-') else ''}{num}/{den}"
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


# --- comparison -------------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _parsed(answer: str) -> tuple[Any, ...]:
    """math-verify's parse of a bare answer (cached: gold answers repeat across samples)."""
    from math_verify import parse  # on first use: a fully cached eval imports no sympy

    return tuple(parse(f"${answer}$", parsing_timeout=None))  # type: ignore[arg-type]


def _equivalent(pred: str, gold: str) -> bool:
    p, g = normalize(pred), normalize(gold)
    if not p or not g:
        return False
    if p == g:
        return True
    if _TEXT_ANSWER_RE.fullmatch(p) or _TEXT_ANSWER_RE.fullmatch(g):
        return p.casefold() == g.casefold()
    np_, ng = _simple_number(p), _simple_number(g)
    if np_ is not None and ng is not None:
        if np_ == ng:
            return True
        if "." not in p + g:  # exact values: no rounding to allow for
            return False
    if len(p) > MAX_ANSWER_CHARS or len(g) > MAX_ANSWER_CHARS:
        return False  # not an answer worth handing to sympy
    from math_verify import verify

    return bool(verify(list(_parsed(g)), list(_parsed(p)), timeout_seconds=None))


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so that libraries' `except Exception` cannot swallow it."""


def _raise_timeout(signum: int, frame: object) -> None:
    raise _Timeout


def _with_alarm(fn: Callable[[str, str], T], *args: str) -> T:
    """fn(*args) in the main thread under a SIGALRM timer; an outer timer is paused and re-armed after."""
    start = time.monotonic()
    old_handler = signal.signal(signal.SIGALRM, _raise_timeout)
    outer_delay, _ = signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if outer_delay:
            signal.setitimer(signal.ITIMER_REAL, max(outer_delay - (time.monotonic() - start), 1e-3))


_pool: Pool | None = None
_pool_lock = threading.Lock()


def _in_worker(fn: Callable[[str, str], bool], pred: str, gold: str) -> bool | None:
    """bounded_verdict(fn, ...) in a worker process (whose main thread can use the alarm); the worker dies if it
    hangs."""
    global _pool
    with _pool_lock:
        fresh = _pool is None
        if _pool is None:
            _pool = multiprocessing.get_context("spawn").Pool(1)
            atexit.register(_pool.terminate)
        pool = _pool
    try:
        limit = TIME_LIMIT_S + 2 + (_WORKER_START_S if fresh else 0)
        verdict: bool | None = pool.apply_async(bounded_verdict, (fn, pred, gold)).get(limit)
        return verdict
    except multiprocessing.TimeoutError:
        with _pool_lock:
            if _pool is pool:
                _pool = None
        pool.terminate()
        return None


def bounded_verdict(fn: Callable[[str, str], bool], pred: str, gold: str) -> bool | None:
    """fn(pred, gold) (a module-level function) bounded by TIME_LIMIT_S; None when it ran over the limit (a verdict
    that depends on the machine's load). Never raises: malformed input or an error gives False."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False
    try:
        if threading.current_thread() is threading.main_thread():
            return _with_alarm(fn, pred, gold)
        return _in_worker(fn, pred, gold)
    except _Timeout:
        return None
    except Exception:
        return False


def bounded(fn: Callable[[str, str], bool], pred: str, gold: str) -> bool:
    """bounded_verdict, with running over the limit as False."""
    return bounded_verdict(fn, pred, gold) is True


def verdict_score(verdict: bool | None, extracted: str) -> Score:
    """The score of a checked answer; a check that ran out of time scores 0 (as the references do) but says so,
    so that the score cache does not reuse it (Score.reusable)."""
    if verdict is None:
        return Score(0.0, extracted, f"timeout: the answer check ran over {TIME_LIMIT_S:g} s")
    return Score(1.0 if verdict else 0.0, extracted, "correct" if verdict else "wrong")


def is_equivalent(pred: str, gold: str) -> bool:
    """Whether a predicted answer equals the gold answer (math-verify plus the rules in the module docstring),
    bounded in time (see bounded)."""
    return bounded(_equivalent, pred, gold)


@register("math")
def score_math(inp: ScoreInput) -> Score:
    """1.0 when the final answer in the output equals the gold answer (inp.target), else 0.0."""
    extracted = extract_answer(inp.output)
    if extracted is None:
        return Score(0.0, None, "no answer found")
    if inp.target is None:
        return Score(0.0, extracted, "wrong")
    return verdict_score(bounded_verdict(_equivalent, extracted, str(inp.target)), extracted)
