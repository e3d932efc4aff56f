"""LiveBench-0831 ground-truth scoring, following the rules of LiveBench/LiveBench@e84e548
(`livebench/process_results/...`, the scoring of the 2024-08-31 release), reimplemented here.

One scorer, "livebench", dispatches on the item's `task` (and `subtask` for math_comp). The item is a LiveBench
question row (question_id, category, task, subtask, turns, ground_truth, ...); the target is its ground_truth.
Scores are in [0, 1]; LiveBench reports them x100 (see `livebench_category_average`).

Deliberate differences from the reference:
- AMPS_Hard compares the normalised boxed answer with fusebench's time-bounded math-verify check instead of sympy's
  ANTLR LaTeX parser (which needs antlr4 4.11 exactly); both test symbolic equality of the two expressions.
- The last \\boxed{} is found with fusebench.scorers.math.last_boxed (dollar signs dropped, as LiveBench does).
Not covered: instruction_following (IFEval checks need langdetect / immutabledict, not installed) and coding
(LiveCodeBench-style tests: use the livecodebench scorer).
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from io import StringIO
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

from fusebench.errors import UsageError
from fusebench.scorers.base import Rows, Score, ScoreInput, register
from fusebench.scorers.math import is_equivalent, last_boxed
from fusebench.stats import Interval, grouped_mean_ci

TASK_CATEGORY = {
    "AMPS_Hard": "math",
    "math_comp": "math",
    "olympiad": "math",
    "web_of_lies_v2": "reasoning",
    "zebra_puzzle": "reasoning",
    "spatial": "reasoning",
    "cta": "data_analysis",
    "tablejoin": "data_analysis",
    "tablereformat": "data_analysis",
    "connections": "language",
    "plot_unscrambling": "language",
    "typos": "language",
}

Result = tuple[float, str | None]  # (score, what was extracted from the answer)


def _boxed(text: str) -> str | None:
    box = last_boxed(text)
    return box.replace("$", "").strip() if box is not None else None


def _bold(text: str, pattern: str = r"\*\*(.*?)\*\*") -> list[str]:
    return re.findall(pattern, text)


# --- math -----------------------------------------------------------------------------------------------------

_AMC_OPTION = re.compile(r"\\textbf{\(([A-E])\)\s?}(.*?)(?:\\qquad|\$)")


def _amc_option_value(question: str, letter: str) -> str:
    """The text of answer option `letter` in an AMC question ("FAILURE" when it cannot be found)."""
    options = {m[0]: m[1].strip() for m in _AMC_OPTION.findall(question)}
    return (options.get(letter) or "FAILURE").strip().strip("$").strip("~")


def math_comp(ground_truth: str, answer: str, question: str, subtask: str) -> Result:
    """AIME: the answer appears in the last 20 characters. AMC: the letter repeated (at least 4 times), a boxed letter,
    or the option's value near the end of the answer."""
    if subtask.split("_")[0] == "aime":
        return float(ground_truth in answer[-20:]), answer[-20:]
    if not (len(ground_truth) == 1 and "A" <= ground_truth <= "E"):
        raise UsageError(f"livebench math_comp: ground truth must be a letter A-E, got {ground_truth!r}")
    boxed = _boxed(answer)
    if ground_truth * 4 in answer or boxed == ground_truth:
        return 1.0, boxed or ground_truth * 4
    value = _amc_option_value(question, ground_truth)
    return float(value in answer[-(20 + len(value)) :]), boxed


def _answer_numbers(answer: str) -> list[int]:
    """The comma-separated integers after the last "Answer", stopping after a number with trailing junk."""
    numbers = []
    for i, part in enumerate(p.strip() for p in answer.split("Answer")[-1].split(",")):
        match = re.search(r"\d+", part)
        digits = match.group(0) if match else ""
        if digits:
            numbers.append(int(digits))
        if i > 0 and len(part) - len(digits) > 0:
            break
    return numbers


def olympiad(ground_truth: str, answer: str) -> Result:
    """Proof rearrangement: 1 - Levenshtein distance between the answered and true expression orders / longer length."""
    truth = [int(n) for n in ground_truth.split(",")]
    given = _answer_numbers(answer)
    score = 1 - Levenshtein.distance(given, truth) / max(len(given), len(truth))
    return score, ",".join(map(str, given))


def _normalize_final_answer(answer: str) -> str:
    """The Minerva normalisation LiveBench applies (Lewkowycz et al. 2022, appendix D), as far as LiveBench uses it."""
    s = answer.split("=")[-1]
    s = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", s)
    for command in ("text", "textbf", "overline"):
        s = re.sub(rf"(\\{command}\{{)(.*?)(\}})", "\\2", s)
    s = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", s)
    s = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", s)
    s = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", s)
    s = s.replace("$", "")
    return s.replace(",", "") if s.replace(",", "").isdigit() else s


def amps_hard(ground_truth: str | list[str], answer: str) -> Result:
    """The last boxed expression (an integration constant +C dropped) symbolically equal to the ground truth."""
    truth = ground_truth[-1] if isinstance(ground_truth, list) else ground_truth
    boxed = _boxed(answer.replace("+C", "").replace("+ C", ""))
    if boxed is None:
        return 0.0, None
    parsed = _normalize_final_answer(boxed)
    return float(is_equivalent(parsed, truth)), parsed


# --- reasoning ------------------------------------------------------------------------------------------------

_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
                 "twenty"]  # fmt: skip
_WORD_TO_NUMBER = {w: str(i) for i, w in enumerate(_NUMBER_WORDS)}
_SHAPES = ("tetrahedra", "tetrahedron", "triangle", "square")  # may come with a qualifier ("two tetrahedra")


def web_of_lies(ground_truth: str, answer: str) -> Result:
    """The last bold text equals the answer (e.g. "**yes, no, yes**"), or holds three yes/no words including it."""
    bold = _bold(answer)
    if not bold:
        return 0.0, None
    last, truth = bold[-1].lower(), ground_truth.lower()
    ok = last == truth or (last.count("yes") + last.count("no") == 3 and truth in last)
    return float(ok), bold[-1]


def zebra_puzzle(ground_truth: str, answer: str) -> Result:
    """The last ***word*** in bold italics (else the last word) equals the answer; digits 1-9 may stand for words."""
    bold = _bold(answer, r"\*\*\*(\w+)\*\*\*")
    words = bold or re.findall(r"\b\w+\b", answer)
    last = words[-1] if words else ""
    truth = ground_truth.lower()
    spelled = _NUMBER_WORDS[int(last)] if last in set("123456789") else None
    ok = last.lower() == truth or spelled == truth or last.lower() + " movies" == truth
    return float(ok), last


def spatial(ground_truth: str, answer: str) -> Result:
    """One of the last three bold phrases is the answer (a number may be spelled out; "equilateral triangle" counts
    for "triangle" and alike), or the last boxed answer is exactly it."""
    truth = ground_truth.strip().lower()
    for word in [w.strip().lower() for w in _bold(answer, r"\*\*([^\*]+)\*\*")[-3:]]:
        if word == truth or _WORD_TO_NUMBER.get(word) == truth:
            return 1.0, word
        if truth in _SHAPES and truth in word and len(word) < 2 * len(truth) + 5:
            return 1.0, word
    boxed = _boxed(answer)
    return float(boxed == ground_truth), boxed


# --- data analysis --------------------------------------------------------------------------------------------


def cta(ground_truth: str, answer: str) -> Result:
    """Column type annotation: equal after lower-casing and dropping every non-word character."""

    def clean(s: str) -> str:
        return re.sub(r"[^\w]", "", s.lower().strip())

    return float(clean(ground_truth) == clean(answer)), clean(answer)


def _python_dict(answer: str) -> dict[Any, Any]:
    """The join mapping in the answer: the last ```python (else ```) block, else the whole text, as a dict literal."""
    flat = answer.replace("\n", "")
    blocks = re.findall(r"```python(.*)```", flat) or re.findall(r"```(.*)```", flat) or [answer]
    try:
        mapping = ast.literal_eval(blocks[-1])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return {}
    return mapping if isinstance(mapping, dict) else {}


def tablejoin(ground_truth: str | dict[Any, Any], answer: str) -> Result:
    """F1 (rounded to 2 places) of the answered column mapping against the true one."""
    truth = ast.literal_eval(ground_truth) if isinstance(ground_truth, str) else ground_truth
    mapping = _python_dict(answer)
    if not mapping:
        return 0.0, None
    tp = sum(1 for k, v in mapping.items() if truth.get(k) and truth[k] == v)
    wrong = sum(1 for k, v in mapping.items() if truth.get(k) and truth[k] != v)
    fp = len(mapping) - tp
    fn = wrong + sum(1 for k in truth if not mapping.get(k))
    return float(np.round(2 * tp / (2 * tp + fp + fn), 2)), repr(mapping)


def _read_table(fmt: str, text: str) -> pd.DataFrame:
    """A table in one of LiveBench's formats (json tries the orientations LiveBench tries, in its order)."""
    if fmt == "json":
        for orient, lines in (("index", False), ("records", False), ("records", True), ("table", False)):
            try:
                return pd.read_json(StringIO(text), orient=orient, lines=lines)
            except Exception:  # pandas raises many types for a mismatched orientation: try the next one
                continue
        return pd.read_json(StringIO(text), orient="values")
    readers: dict[str, Callable[[], pd.DataFrame]] = {
        "jsonl": lambda: pd.read_json(StringIO(text), orient="records", lines=True),
        "html": lambda: pd.concat(pd.read_html(StringIO(text)), axis=0),
        "csv": lambda: pd.read_csv(StringIO(text)),
        "tsv": lambda: pd.read_csv(StringIO(text), sep="\t"),
        "markdown": lambda: pd.read_table(StringIO(text), sep="|", header=0, index_col=1, skipinitialspace=True),
    }
    if fmt not in readers:
        raise ValueError(f"unknown table format {fmt!r}")
    return readers[fmt]()


def _same_table(fmt: str, text: str, truth: pd.DataFrame) -> bool:
    """Same row count, same (case-insensitive) column names, and each column the same multiset of values."""
    try:
        table = _read_table(fmt, text)
        table.columns = [str(c).lower().strip() for c in table.columns]
        if len(table) != len(truth) or sorted(table.columns) != sorted(truth.columns):
            return False
        return all(sorted(table[c].tolist()) == sorted(truth[c].tolist()) for c in table.columns)
    except Exception:  # an unreadable or odd-shaped answer (duplicate columns, unsortable values) is just wrong
        return False


_FORMATS = re.compile(r"Please convert the Input Table from (\w+) format to (\w+) format")
_LEAD_IN = re.compile(r"^\s*(Here|Input)\b.*?\b(format|table)\s*[:)]\s*", re.IGNORECASE)


def tablereformat(ground_truth: str, answer: str, question: str) -> Result:
    """The answer, read in the requested output format (code fences removed, then also a "Here is the table:"
    lead-in), is the same table as the ground truth."""
    formats = _FORMATS.search(question)
    if not formats:
        raise UsageError("livebench tablereformat: the question does not name the input and output formats")
    fmt = formats.group(2).lower()
    try:
        truth = _read_table(fmt, ground_truth)
    except Exception as e:
        raise UsageError(f"livebench tablereformat: the ground-truth {fmt} table cannot be read: {e}") from e
    truth.columns = [str(c).lower().strip() for c in truth.columns]
    cleaned = re.sub(r"^```.*\n", "", answer).replace("```", "").strip()
    for candidate in (cleaned, _LEAD_IN.sub("", cleaned).strip()):
        if _same_table(fmt, candidate, truth):
            return 1.0, candidate
    return 0.0, cleaned


# --- language -------------------------------------------------------------------------------------------------


def _groups_of_four(text: str) -> list[list[str]]:
    words = [w.strip().lower() for w in text.split(",")]
    return [words[i : i + 4] for i in range(0, len(words), 4)]


def connections(ground_truth: str, answer: str) -> Result:
    """Share of the true groups of four found as groups in a bold, comma-separated answer (best bold span)."""
    truth = _groups_of_four(ground_truth)
    scored = [
        (sum(any(all(w in g for w in group) for g in _groups_of_four(text)) for group in truth) / len(truth), text)
        for text in _bold(answer)
    ]
    return max(scored, key=lambda s: s[0]) if scored else (0.0, None)


def plot_unscrambling(ground_truth: str, answer: str) -> Result:
    """1 - Levenshtein distance between the true sentence order and the order of the closest answered sentences,
    over the number of true sentences (the text after <PLOT_SUMMARY>, if present, is the answer)."""
    match = re.search(r"<PLOT_SUMMARY>(.*)", answer, re.DOTALL)
    summary = match.group(1) if match else answer
    truth = [s.strip() for s in ground_truth.split(".") if s.strip()]
    given = [s.strip() for s in summary.split(".") if s.strip()]
    order = []
    for sentence in truth:
        best = difflib.get_close_matches(sentence, given, n=1, cutoff=0.0)
        if best:
            order.append(given.index(best[0]))
    return 1 - Levenshtein.distance(list(range(len(truth))), order) / len(truth), summary


def typos(ground_truth: str, answer: str) -> Result:
    """The corrected text appears verbatim in the answer's last non-empty line."""
    lines = [line for line in answer.split("\n") if line]
    last = lines[-1] if lines else ""
    return float(ground_truth in last), last


# --- dispatch and aggregation ---------------------------------------------------------------------------------


_SCORERS: dict[str, Callable[[Any, str], Result]] = {
    "AMPS_Hard": amps_hard,
    "olympiad": olympiad,
    "web_of_lies_v2": web_of_lies,
    "zebra_puzzle": zebra_puzzle,
    "spatial": spatial,
    "cta": cta,
    "tablejoin": tablejoin,
    "connections": connections,
    "plot_unscrambling": plot_unscrambling,
    "typos": typos,
}


def score_task(task: str, ground_truth: Any, answer: str, question: str = "", subtask: str = "") -> Result:
    """Score one answer to a LiveBench question of `task` (see TASK_CATEGORY for the tasks covered)."""
    if task in _SCORERS:
        return _SCORERS[task](ground_truth, answer)
    if task == "math_comp":
        return math_comp(ground_truth, answer, question, subtask)
    if task == "tablereformat":
        return tablereformat(ground_truth, answer, question)
    raise UsageError(f"livebench: task {task!r} is not ground-truth scored here (covered: {', '.join(TASK_CATEGORY)})")


def livebench_interval(item_means: Mapping[str, float], rows: Rows) -> Interval:
    """LiveBench's headline: the mean over categories of the mean over their tasks, with a bootstrap CI."""
    groups = [(str(rows[i]["category"]), str(rows[i]["task"])) for i in item_means]
    return grouped_mean_ci(list(item_means.values()), groups)


@register("livebench", aggregate=livebench_interval)
def score_livebench(inp: ScoreInput) -> Score:
    """A LiveBench-0831 answer scored against the question's ground truth (inp.item is the LiveBench question)."""
    task = inp.item.get("task")
    if not task:
        raise UsageError("livebench scorer: the item has no 'task' field")
    turns = inp.item.get("turns") or [""]
    value, extracted = score_task(task, inp.target, inp.output, turns[0], inp.item.get("subtask") or "")
    if value == 0 and extracted in (None, ""):
        return Score(value, extracted, "no answer found")  # counted in the "no answer" column
    reason = "correct" if value == 1 else ("wrong" if value == 0 else "partial")
    return Score(value, extracted, reason)


def livebench_category_average(scores: Sequence[tuple[str, str, float]]) -> dict[str, Any]:
    """LiveBench's table from (category, task, score in [0, 1]) rows, x100: each task's mean, each category's mean
    of its task means, and overall = the mean of the category means."""
    by_task: dict[tuple[str, str], list[float]] = {}
    for category, task, value in scores:
        by_task.setdefault((category, task), []).append(float(value))
    tasks = {task: 100 * float(np.mean(v)) for (_, task), v in sorted(by_task.items())}
    per_category: dict[str, list[float]] = {}
    for category, task in sorted(by_task):
        per_category.setdefault(category, []).append(tasks[task])
    categories = {c: float(np.mean(v)) for c, v in per_category.items()}
    return {
        "tasks": tasks,
        "categories": categories,
        "overall": float(np.mean(list(categories.values()))) if categories else None,
    }
