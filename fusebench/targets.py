"""Target transforms: turn a dataset's raw reference field into the gold answer a scorer compares with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _identity(raw: Any) -> Any:
    return raw


def _gsm8k_final(raw: Any) -> str:
    """GSM8K solutions end with '#### 72'; the gold answer is what follows, without separators."""
    return str(raw).rsplit("####", 1)[-1].strip().replace(",", "")


def _number(raw: Any) -> str:
    """27.0 -> '27'; other values as text."""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def _boxed_solution(raw: Any) -> str:
    """The last \\boxed{} of a reference solution (MATH)."""
    from fusebench.scorers.math import gold_from_solution

    return gold_from_solution(str(raw))


TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "identity": _identity,
    "gsm8k_final": _gsm8k_final,
    "number": _number,
    "boxed_solution": _boxed_solution,
}
