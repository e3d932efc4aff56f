"""Qwen2.5-Math's answer checking, the grader FuseEval's Math-Eval runs for GSM8K, MATH and AMC23, reimplemented from
the rules of QwenLM/Qwen2.5-Math @ a45202bd evaluation/parser.py (`extract_answer`, `strip_string`) and grader.py
(`math_equal`, `symbolic_equal`); FuseEval's copies are identical. The answer is cleaned twice (extract_answer ends with
strip_string and run_execute applies it again), the gold answer likewise, and each comparison gets 3 s (then False).

Its rules, in the order the reference applies them, quirks included (they decide its numbers):
- extraction: "final answer is $X$. I hope" (Minerva), else the text after the last "boxed" (a brace group, unclosed:
  the rest of the text; no brace: up to the next "$"), else the rest after the last "he answer is" / "final answer
  is", else the last number (commas dropped);
- cleaning: a trailing \\text{...} is cut as a unit, then whole words from a list of units (ft, cm, hour, "a", "t",
  "c", "s", ... and their plurals) wherever they stand alone, even inside an expression; "\\%", "$", "^\\circ", "and",
  spaces are removed; number words become numbers ("five" -> 5); "x=" is dropped, "k = 5" -> "5";
- comparison: equal text (ignoring case); both numbers: equal within a relative 1e-4, the gold also counting as
  gold/100 and gold*100 (so 0.5 equals 50); brackets and braces ignored; tuples and intervals compared part by part;
  matrices cell by cell; equations as lhs - rhs up to sign; otherwise sympy: equal, simplify(a - b) == 0, or equal
  numerically (relative 1e-4).

Where this differs: the reference parses LaTeX with sympy 1.12's parse_latex (ANTLR 4.11), which cannot be installed
beside math-verify's ANTLR 4.13; here math-verify's own latex2sympy2_extended (a fork of the latex2sympy2 the reference
tries third) parses it, made to read as sympy's grammar does where they are known to part (a digit before \\frac
multiplies; a list goes to parse_expr, as a tuple). parse_expr sees only plain arithmetic: the reference evaluates
any answer text as Python. strip_string's steps that change nothing (a bracket strip guarded by isalnum(), discarded
quote replacements) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from math import isclose
from typing import Any

from fusebench.scorers.base import Score, ScoreInput, register
from fusebench.scorers.math import bounded_verdict, verdict_score

# --- cleaning (parser.py strip_string) --------------------------------------------------------------------

# The reference's unit words (mainly from MathQA), in its order and used as regular expressions, as it uses them.
_UNITS = (  # noqa: SIM905 - one string keeps the long list readable
    "east|degree|mph|kmph|ft|m sqaure| m east|sq m|deg|mile|q .|monkey|prime|ratio|profit of rs|rd|o|gm|p . m|lb|tile|"
    "per|dm|lt|gain|ab|way|west|a .|b .|c .|d .|e .|f .|g .|h .|t|a|h|no change|men|soldier|pie|bc|excess|st|inches|"
    "noon|percent|by|gal|kmh|c|acre|rise|a . m|th|π r 2|sq|mark|l|toy|coin|sq . m|gallon|° f|profit|minw|yr|women|"
    "feet|am|pm|hr|cu cm|square|v â € ™|are|rupee|rounds|cubic|cc|mtr|s|ohm|number|kmph|day|hour|minute|min|second|"
    "man|woman|sec|cube|mt|sq inch|mp|∏ cm ³|hectare|more|sec|unit|cu . m|cm 2|rs .|rs|kg|g|month|km|m|cm|mm|apple|"
    "liter|loss|yard|pure|year|increase|decrease|d|less|Surface|litre|pi sq m|s .|metre|meter|inch"
).split("|")
_UNIT_RES = [re.compile(r"(^|\W)" + u + r"($|\W)") for u in _UNITS + [u + "s" for u in _UNITS]]

_TRAILING_TEXT_RE = re.compile(r"\\text{.*?}$")
_TEXT_RE = re.compile(r"\\text\{(.*?)\}")
_MBOX_RE = re.compile(r"\\mbox{.*?}")
_VARIABLE_PREFIXES = ("x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to")


def _word_number(text: str) -> str:
    """'five' -> '5', 'two apples' -> '2' (word2number, as the reference); anything else unchanged."""
    from word2number import w2n  # imported on first use, like sympy: a fully cached eval scores nothing

    try:
        return str(w2n.word_to_num(text))
    except Exception:
        return text


def _fix_fracs(s: str) -> str:
    r"""\frac12 -> \frac{1}{2}, \frac1{72} -> \frac{1}{72}; a \frac followed by fewer than two characters: unchanged."""
    head, *parts = s.split("\\frac")
    out = head
    for part in parts:
        out += "\\frac"
        if part.startswith("{"):
            out += part
        elif len(part) < 2:
            return s
        elif part[1] != "{":
            out += "{" + part[0] + "}{" + part[1] + "}" + part[2:]
        else:
            out += "{" + part[0] + "}" + part[1:]
    return out


def _fix_slash(s: str) -> str:
    """'3/4' -> '\\frac{3}{4}' when both sides are integers written plainly (or contain sqrt)."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    a, b = parts
    try:
        a2 = a if "sqrt" in a else str(int(a))
        b2 = b if "sqrt" in b else str(int(b))
    except ValueError:
        return s
    return "\\frac{" + a2 + "}{" + b2 + "}" if f"{a2}/{b2}" == s else s


def strip_string(s: str) -> str:
    """The reference's answer clean-up (strip_string with units removed), step by step in its order."""
    s = str(s).strip().replace("\n", "").rstrip(".").replace("\\!", "")
    s = re.sub(r"\\begin\{array\}\{.*?\}", r"\\begin{pmatrix}", s)
    s = re.sub(r"\\end\{array\}", r"\\end{pmatrix}", s).replace("bmatrix", "pmatrix")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\neq", "\\ne").replace("\\leq", "\\le").replace("\\geq", "\\ge")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\{", "{").replace("\\}", "}")
    cut = _TRAILING_TEXT_RE.sub("", s).strip()
    if cut and cut != s:
        s = cut
    for _ in range(2):
        for unit in _UNIT_RES:
            cut = unit.sub(r"\1\2", s)
            if cut:
                s = cut
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "").replace("$", "").replace("\\(", "").replace("\\)", "")
    s = _TEXT_RE.sub(r"\1", _word_number(s))
    for prefix in _VARIABLE_PREFIXES:
        s = s.replace(prefix, "")
    s = s.replace("\\emptyset", "{}").replace("(-\\infty,\\infty)", "\\mathbb{R}")
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    s = s.replace("infinity", "\\infty")
    if "\\infty" not in s:
        s = s.replace("inf", "\\infty")
    s = s.replace("+\\inity", "\\infty").replace("and", "").replace("\\mathbf", "")
    s = _MBOX_RE.sub("", s)
    if "j" in s and "i" not in s:
        s = s.replace("j", "i")
    s = re.sub(r"(\d+)\.0*([^\d])", r"\1\2", s)
    s = re.sub(r"(\d+)\.0*$", r"\1", s)
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        s = sides[1]
    s = re.sub(r"\\sqrt(\w+)", r"\\sqrt{\1}", s).replace(" ", "")
    return _fix_slash(_fix_fracs(s))


# --- extraction (parser.py extract_answer, for gsm8k / math / amc23) --------------------------------------

_LAST_NUMBER_RE = re.compile(r"-?\d*\.?\d+")


def _after_boxed(text: str) -> str:
    """What follows the last 'boxed': its brace group (unclosed: everything after it), or the text up to a '$'."""
    rest = text.split("boxed")[-1]
    if not rest.startswith("{"):
        return rest.split("$")[0].strip()
    depth, out = 1, []
    for ch in rest[1:]:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == 0:
            break
        out.append(ch)
    return "".join(out)


def extract_answer(text: str) -> str:
    """The reference's answer for a model output, cleaned as run_execute leaves it (strip_string twice)."""
    text = text.replace("\u043a\u0438", "")
    if "final answer is $" in text and "$. I hope" in text:
        pred = text.split("final answer is $", 1)[1].split("$. I hope", 1)[0].strip()
    elif "boxed" in text:
        if not text.split("boxed")[-1]:
            return ""
        pred = _after_boxed(text)
    elif "he answer is" in text:
        pred = text.split("he answer is")[-1].strip()
    elif "final answer is" in text:
        pred = text.split("final answer is")[-1].strip()
    elif "答案是" in text:
        pred = text.split("答案是")[1].strip().split("\n\n")[0].strip()
    else:
        numbers = _LAST_NUMBER_RE.findall(text.replace(",", ""))
        pred = numbers[-1] if numbers else ""
    pred = re.sub(r"\n\s*", "", pred)
    pred = pred[1:] if pred.startswith(":") else pred
    pred = pred[:-1] if pred.endswith(".") else pred
    pred = pred[:-1] if pred.endswith("/") else pred
    return strip_string(strip_string(pred))


def clean_gold(gold: str) -> str:
    """A gold answer as the reference compares it (fusebench's gold is already extracted; cleaned twice)."""
    return strip_string(strip_string(gold))


# --- comparison (grader.py math_equal) --------------------------------------------------------------------


def _number(s: str) -> float | None:
    """float(s) after dropping commas; 'X%' / 'X\\%' as X/100; None when s is no number."""
    s = s.replace(",", "")
    try:
        return float(s)
    except ValueError:
        pass
    if s.endswith("%"):
        s = s[:-1].removesuffix("\\")
        try:
            return float(s) / 100
        except ValueError:
            return None
    return None


def _close(a: float, b: float) -> bool:
    return isclose(b, a, rel_tol=1e-4)


def _choice(pred: str) -> str:
    """The last standalone A-E in pred (upper-cased), else pred itself, trailing '.' and '/' dropped."""
    pred = pred.strip("\n").rstrip(".").rstrip("/").strip(" ").lstrip(":")
    letters = re.findall(r"\b(A|B|C|D|E)\b", pred.upper())
    last = letters[-1] if letters else pred.strip().strip(".")
    return last.rstrip(".").rstrip("/")


def _to_pmatrix(s: str) -> str:
    r"""'{1,2}' -> '\begin{pmatrix}1\2\end{pmatrix}' (the reference's conversion, separators and all)."""
    found = re.findall(r"\{.*,.*\}", s.strip())
    return ", ".join(r"\begin{pmatrix}" + m.strip("{}").replace(",", "\\") + r"\end{pmatrix}" for m in found)


_MATRIX_BEGIN = ("\\begin{pmatrix}", "\\begin{bmatrix}")
_MATRIX_END = ("\\end{pmatrix}", "\\end{bmatrix}")


def _matrix_rows(s: str) -> list[list[str]]:
    inner = s[len(_MATRIX_BEGIN[0]) : -len(_MATRIX_END[0])]
    return [line.strip().split("&") for line in inner.split("\\\\") if line.strip()]


def _matrices_equal(pred: str, gold: str) -> bool:
    pred_rows, gold_rows = _matrix_rows(pred), _matrix_rows(gold)
    if len(pred_rows) != len(gold_rows):
        return False
    for p_row, g_row in zip(pred_rows, gold_rows, strict=True):
        if len(p_row) != len(g_row) or not all(math_equal(p, g) for p, g in zip(p_row, g_row, strict=True)):
            return False
    return True


def _is_matrix(s: str) -> bool:
    return s.startswith(_MATRIX_BEGIN) and s.endswith(_MATRIX_END)


def _strip_brackets(pred: str, gold: str) -> tuple[str, str]:
    if (pred.startswith("[") and pred.endswith("]") and not gold.startswith("(")) or (
        pred.startswith("(") and pred.endswith(")") and not gold.startswith("[")
    ):
        pred, gold = pred.strip("[]()"), gold.strip("[]()")
    drop = str.maketrans("", "", "{}()")
    return pred.translate(drop), gold.translate(drop)


_BRACKETED_RE = re.compile(r"(\(|\[).+(\)|\])")


def math_equal(pred: str, gold: str) -> bool:
    """Whether two cleaned answers are equal by the reference's rules (see the module docstring)."""
    if pred.strip().lower() == gold.strip().lower():
        return True
    if gold in ("A", "B", "C", "D", "E") and _choice(pred) == gold:
        return True
    p_num, g_num = _number(pred), _number(gold)
    if p_num is not None and g_num is not None:
        return any(_close(p_num, g) for g in (g_num / 100, g_num, g_num * 100))
    if not pred:
        return False
    pred, gold = pred.strip(), gold.strip()
    if "pmatrix" in pred and "pmatrix" not in gold:
        gold = _to_pmatrix(gold)
    p_bare, g_bare = _strip_brackets(pred, gold)
    if p_bare.lower() == g_bare.lower():
        return True
    if _BRACKETED_RE.match(pred) and _BRACKETED_RE.match(gold):
        p_parts, g_parts = pred[1:-1].split(","), gold[1:-1].split(",")
        if len(p_parts) == len(g_parts) and all(math_equal(p, g) for p, g in zip(p_parts, g_parts, strict=True)):
            return True
    if _is_matrix(pred) and _is_matrix(gold) and _matrices_equal(pred, gold):
        return True
    if pred.count("=") == 1 and gold.count("=") == 1:
        p_lhs, p_rhs = pred.split("=")
        g_lhs, g_rhs = gold.split("=")
        p_diff, g_diff = f"{p_lhs.strip()} - ({p_rhs.strip()})", f"{g_lhs.strip()} - ({g_rhs.strip()})"
        if symbolic_equal(p_diff, g_diff) or symbolic_equal(f"-({p_diff})", g_diff):
            return True
    elif pred.count("=") == 1 and len(pred.split("=")[0].strip()) <= 2 and "=" not in gold:
        if math_equal(pred.split("=")[1], gold):
            return True
    elif (
        gold.count("=") == 1
        and len(gold.split("=")[0].strip()) <= 2
        and "=" not in pred
        and math_equal(pred, gold.split("=")[1])
    ):
        return True
    return symbolic_equal(pred, gold)


# The reference hands any answer to sympy's parse_expr, which evaluates it as Python; here only plain arithmetic
# (single-letter variables and a few function names, no builtins) is, so model text never runs as code.
_SAFE_PYTHON_RE = re.compile(r"[0-9A-Za-z+\-*/^().,= ]*")
_IDENTIFIER_RE = re.compile(r"[A-Za-z]{2,}")
_MIXED_NUMBER_RE = re.compile(r"(\d)\s*(\\frac)")
_PYTHON_NAMES = frozenset({"sqrt", "sin", "cos", "tan", "log", "ln", "exp", "pi", "oo", "Abs", "abs"})


@cache
def _python_globals() -> dict[str, Any]:
    """sympy's names and no builtins: what parse_expr may see."""
    import sympy

    return {name: getattr(sympy, name) for name in sympy.__all__} | {"__builtins__": {}}


def _has_top_level_comma(s: str) -> bool:
    """Whether s is a list ("1,2"): sympy's LaTeX grammar, which the reference tries first, has no such rule, so the
    reference reads it with parse_expr, as a Python tuple (latex2sympy2_extended would read a set)."""
    depth = 0
    for ch in s:
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            return True
    return False


def _latex(s: str) -> Any:
    """LaTeX as sympy's grammar reads it: "2\\frac{1}{2}" is 2 * 1/2 (latex2sympy2_extended alone: the mixed 5/2)."""
    from latex2sympy2_extended import latex2sympy

    return latex2sympy(_MIXED_NUMBER_RE.sub(r"\1\\cdot\2", s), normalization_config=None)


def _sympy(s: str) -> Any:
    """s as a sympy object: LaTeX first (latex2sympy2_extended), then Python syntax; s itself when neither parses."""
    parsers: list[Callable[[str], Any]] = [] if _has_top_level_comma(s) else [_latex]
    if _SAFE_PYTHON_RE.fullmatch(s) and set(_IDENTIFIER_RE.findall(s)) <= _PYTHON_NAMES:
        from sympy.parsing.sympy_parser import parse_expr

        parsers.append(lambda t: parse_expr(t, global_dict=_python_globals()))
    for parse in parsers:
        for candidate in (s.replace("\\\\", "\\"), s):
            try:
                return parse(candidate)
            except Exception:
                continue
    return s


def symbolic_equal(a_text: str, b_text: str) -> bool:
    """sympy equality as the reference tries it: same object or text, a - b simplifying to 0, equations with equal
    |lhs - rhs|, equal values (relative 1e-4), or matrices equal after rounding to 3 places."""
    from sympy import N, simplify

    a, b = _sympy(a_text), _sympy(b_text)
    checks = (
        lambda: str(a) == str(b) or a == b,
        lambda: a.equals(b) or simplify(a - b) == 0,
        lambda: abs(a.lhs - a.rhs).equals(abs(b.lhs - b.rhs)),
        lambda: _close(float(N(a)), float(N(b))),
        lambda: a.shape == b.shape and a.applyfunc(lambda x: round(x, 3)).equals(b.applyfunc(lambda x: round(x, 3))),
    )
    for check in checks:
        try:
            if check():
                return True
        except Exception:
            continue
    return False


@register("math_qwen25")
def score_math_qwen25(inp: ScoreInput) -> Score:
    """1.0 when Qwen2.5-Math's grader accepts the output's answer for the gold answer (inp.target), else 0.0."""
    extracted = extract_answer(inp.output) if isinstance(inp.output, str) else ""
    if inp.target is None or not extracted:
        return Score(0.0, extracted or None, "no answer found" if not extracted else "wrong")
    return verdict_score(bounded_verdict(math_equal, extracted, clean_gold(str(inp.target))), extracted)
