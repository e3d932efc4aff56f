"""ACME's scorer and row preparer. fusebench finds them through this package's entry points (pyproject.toml) and
imports this module only when a spec names one of them."""

from __future__ import annotations

import re
from typing import Any

from fusebench.scorers.base import Score, ScoreInput, register

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@register("acme_last_number")
def last_number(inp: ScoreInput) -> Score:
    """1 when the last number in the answer equals the target, else 0; no number at all is an extraction failure."""
    numbers = NUMBER.findall(inp.output.replace(",", ""))
    if not numbers:
        return Score(0.0, None, "no answer found")
    return Score(float(float(numbers[-1]) == float(inp.target)), numbers[-1])


def prepare_sums(rows: list[dict[str, Any]], spec: Any) -> list[dict[str, Any]]:
    """Each row's question from the spec's `data.options.template` (fields of the row), its answer a + b."""
    template = str(spec.data.options["template"])
    return [{**row, "question": template.format(**row), "answer": str(row["a"] + row["b"])} for row in rows]
