r"""Multiple-choice scoring (MMLU-Pro, MMLU-redux, GPQA): prompt formats, letter extraction, option shuffling.

Two extraction rules, each a registered scorer:
- "choice_tiger_lab": the reference, as FuseEval's copy of TIGER-Lab's MMLU-Pro script scores (evaluate_from_local.py):
  the first `answer is \(?([A-J])\)?`, else `.*[aA]nswer:\s*([A-J])` (first line that has it, last on that line),
  else the last standalone letter A-J; nothing found counts as that script's fixed guess (see `reference_guess`).
- "choice": fusebench's more lenient rule (`extract_choice`), reported beside the reference as `*_lenient`.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence
from typing import Any

from fusebench.errors import UsageError
from fusebench.scorers.base import Score, ScoreInput, register

INSTRUCTION = "Think step by step, then finish with 'The answer is (X)'."
# TIGER-Lab's zero-shot CoT prompt as FuseEval runs it (its text follows meta-llama's Llama-3.1 evals)
TIGER_LAB_INTRO = (
    "Please read the following multiple-choice questions and provide the most likely correct answer based on the "
    "options given.\n"
)
TIGER_LAB_STEPS = (
    "- For simple problems:\nDirectly provide the answer with minimal explanation.\n\n- For complex problems:\n"
    "Use this step-by-step format:\n## Step 1: [Concise description]\n[Brief explanation]\n"
    "## Step 2: [Concise description]\n[Brief explanation]\n\nRegardless of the approach, always conclude with:\n"
    "The best answer is [the_answer_letter].\nwhere the [the_answer_letter] is the correct letter choice.\n\n"
    "Answer: Let's think step by step."
)
TIGER_LAB_GUESS_SEED = 12345  # the reference scores an answer it cannot extract as random.seed(12345); randint
LETTERS = string.ascii_uppercase

# Wrappers a model may put between "answer is" / "Answer:" and the letter: markdown, LaTeX, "option".
# Possessive (*+, \s*+) so that long runs of spaces or markdown cannot make the match quadratic.
_DECOR = r"(?:[\s*_$`'\"]|\\boxed\s*\{|\\text(?:bf)?\s*\{|\\mathrm\s*\{|\\\(|\\\[|(?i:option|choice)\b)*+"
# The letter itself: "(c)" or "[c]" in any case, a bare capital, or a bare lower-case letter ending its line.
_LETTER = (
    r"(?:\(\s*([A-Za-z])\s*\)"
    r"|\[\s*([A-Za-z])\s*\]"
    r"|([A-Z])(?![\w’-]|'\w)"
    r"|([a-z])(?=[ \t.)*]*$))"
)
_STATED = re.compile(r"(?i:answer\s+is)\s*+:?" + _DECOR + _LETTER, re.MULTILINE)
_LABELLED = re.compile(
    r"(?i:answer)\s*+(?:\*\*|__)?\s*+[:：]" + _DECOR + _LETTER,
    re.MULTILINE,
)
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_BOXED_CONTENT = re.compile(r"\(?([A-Za-z])(?:[.:)](?:\s.*)?)?")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
_BOLD = re.compile(r"\*\*\s*+\(?([A-Z])\)?\s*+[.:]?\s*+\*\*(?=[ \t]*+[.!]?[ \t]*+$)", re.MULTILINE)
_EDGE = " \t\n.!;:,*\"'`$()[]{}"
# What may precede a quoted option: "is -1" must not match option "1", nor "0.5" option "5".
_BOUNDARY = frozenset(" \t\n([{\"'*:`$")


def _letter_of(match: re.Match[str]) -> str:
    """The letter captured by whichever alternative of a pattern matched, upper-cased."""
    return next(g for g in match.groups() if g).upper()


def _last(pattern: re.Pattern[str], text: str) -> tuple[int, str] | None:
    found = None
    for m in pattern.finditer(text):
        found = (m.start(), _letter_of(m))
    return found


def _last_boxed(text: str) -> tuple[int, str] | None:
    found = None
    for m in _BOXED.finditer(text):
        content = _TEXT_WRAPPER.sub(r"\1", m.group(1)).strip(" \t$*")
        inner = _BOXED_CONTENT.fullmatch(content)
        if inner:
            found = (m.start(), _letter_of(inner))
    return found


def _last_bold_or_boxed(text: str) -> tuple[int, str] | None:
    hits = [h for h in (_last_boxed(text), _last(_BOLD, text)) if h is not None]
    return max(hits) if hits else None


def _exact(text: str) -> str:
    """Light normalization: markdown bold, runs of whitespace and a final full stop do not matter."""
    return " ".join(text.replace("**", "").split()).rstrip(".!")


def _loose(text: str) -> str:
    """Loose normalization: also case, LaTeX text wrappers, quotes and brackets at the edges."""
    return _exact(_TEXT_WRAPPER.sub(r"\1", text)).lower().strip(_EDGE)


def _quoted_option(text: str, options: Sequence[str]) -> int | None:
    """Index of the one option whose text the output ends with (the longest wins over its own suffixes).

    Exact matches are tried first, so "Bb Bb" and "bb bb" or "6'" and "6" stay distinct where they can.
    """
    for norm in (_exact, _loose):
        tail = norm(text[-2000:])
        matches = []
        for i, option in enumerate(options):
            opt = norm(option)
            start = len(tail) - len(opt)
            if opt and tail.endswith(opt) and (start == 0 or tail[start - 1] in _BOUNDARY):
                matches.append((i, opt))
        if matches:
            longest = [i for i, opt in matches if not any(len(o) > len(opt) and o.endswith(opt) for _, o in matches)]
            return longest[0] if len(longest) == 1 else None
    return None


def _standalone_pattern(valid: str) -> re.Pattern[str]:
    cls = f"[{valid}]"
    return re.compile(
        rf"\(({cls})\)"  # (C)
        rf"|(?<![\w.'’-])({cls})[.)](?=\s|$)"  # C.  C)
        rf"|^[^\w\n]*({cls})[^\w\n]*$"  # a line that is just the letter
        rf"|\*\*({cls})\*\*"  # **C**
        rf"|(?i:option|choice)\s+({cls})\b",  # option C
        re.MULTILINE,
    )


def extract_choice(text: str, options: Sequence[str]) -> str | None:
    """The option letter a model's output commits to, or None when it states none within range.

    Priority: "the answer is (X)", then bold/boxed letters, then "Answer: X", then the output ending
    with one option's text, then the last standalone letter such as "(C)", "C." or a bare-letter line.
    In each stage the last occurrence wins; a stated letter beyond the options counts as no answer.
    """
    n = len(options)
    if n == 0 or n > len(LETTERS):
        return None
    valid = LETTERS[:n]
    for stage in (lambda t: _last(_STATED, t), _last_bold_or_boxed, lambda t: _last(_LABELLED, t)):
        hit = stage(text)
        if hit is not None:
            return hit[1] if hit[1] in valid else None
    quoted = _quoted_option(text, options)
    if quoted is not None:
        return valid[quoted]
    hit = _last(_standalone_pattern(valid), text)
    return hit[1] if hit else None


def format_choices(question: str, options: Sequence[str], style: str = "fusebench") -> str:
    """The user message: the question, options lettered "A. ...", and the answer-format instruction.

    style "fusebench": fusebench's own short instruction; "tiger_lab_zero_shot": TIGER-Lab's zero-shot CoT prompt
    as FuseEval runs it ("Question:\n...\nOptions:\nA. ...", its step format, "Answer: Let's think step by step.").
    """
    if len(options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options, got {len(options)}")
    lines = [f"{LETTERS[i]}. {option}" for i, option in enumerate(options)]
    if style == "tiger_lab_zero_shot":
        listed = "".join(f"{line}\n" for line in lines)
        return f"{TIGER_LAB_INTRO}Question:\n{question}\nOptions:\n{listed}{TIGER_LAB_STEPS}"
    if style != "fusebench":
        raise ValueError(f"unknown choices format {style!r}")
    return f"{question.strip()}\n\n" + "\n".join(lines) + f"\n\n{INSTRUCTION}"


_REF_STATED = re.compile(r"answer is \(?([A-J])\)?")
_REF_LABELLED = re.compile(r".*[aA]nswer:\s*([A-J])")
_REF_LAST_LETTER = re.compile(r"\b[A-J]\b(?!.*\b[A-J]\b)", re.DOTALL)


def extract_choice_reference(text: str) -> str | None:
    """TIGER-Lab's extraction chain (a letter A-J whatever the number of options), or None."""
    for pattern in (_REF_STATED, _REF_LABELLED):
        match = pattern.search(text)
        if match:
            return match.group(1)
    match = _REF_LAST_LETTER.search(text)
    return match.group(0) if match else None


def reference_guess(n_options: int) -> str:
    """The letter the reference counts when it extracts nothing: random.seed(12345) then randint(0, n - 1), the
    same for every question with n options (G for 10 options, D for 4)."""
    return LETTERS[random.Random(TIGER_LAB_GUESS_SEED).randint(0, n_options - 1)]


def shuffle_options(options: list[str], correct_index: int, seed: int, item_id: str) -> tuple[list[str], int]:
    """Shuffle options deterministically per (seed, item_id); returns the new list and the correct option's index."""
    if not 0 <= correct_index < len(options):
        raise ValueError(f"correct_index {correct_index} out of range for {len(options)} options")
    order = list(range(len(options)))
    random.Random(f"{seed}:{item_id}").shuffle(order)  # str seeds hash via sha512: stable across processes
    return [options[i] for i in order], order.index(correct_index)


def _gold_letter(target: Any) -> str:
    if isinstance(target, int) and not isinstance(target, bool):
        return LETTERS[target]
    return str(target).strip().strip("()").upper()


def _options(inp: ScoreInput) -> list[str]:
    options = inp.item.get("options")
    if options is None:
        raise UsageError("choice scorer: the item has no 'options' field")
    return [str(o) for o in options]


@register("choice_tiger_lab")
def score_choice_tiger_lab(inp: ScoreInput) -> Score:
    """The reference rule: 1 if the extracted letter is the gold one; with nothing extracted, the reference's fixed
    guess decides the value (reason "extraction_failed", extracted None), as in its reported accuracy."""
    options = _options(inp)
    gold = _gold_letter(inp.target)
    extracted = extract_choice_reference(inp.output)
    if extracted is None:
        return Score(float(reference_guess(len(options)) == gold), None, "extraction_failed")
    correct = extracted == gold
    return Score(1.0 if correct else 0.0, extracted, "correct" if correct else "wrong")


@register("choice")
def score_choice(inp: ScoreInput) -> Score:
    """1 if the extracted letter equals the gold letter; reason "correct", "wrong" or "extraction_failed"."""
    extracted = extract_choice(inp.output, _options(inp))
    if extracted is None:
        return Score(0.0, None, "extraction_failed")
    correct = extracted == _gold_letter(inp.target)
    return Score(1.0 if correct else 0.0, extracted, "correct" if correct else "wrong")
