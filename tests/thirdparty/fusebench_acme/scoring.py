"""ACME's scorers and row preparer. fusebench finds them through this package's entry points (pyproject.toml) and
imports this module only when a spec names one of them. `last_number` is a plain function (fusebench's defaults: a
0-1 score per item shown as 0-100, mean with its CI); `Distance` is a scorer object that owns its scale."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fusebench.scale import Scale
from fusebench.scorers.base import Rows, Score, ScoreInput, mean_interval, register
from fusebench.stats import Interval

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
DISTANCE = Scale(points_per_unit=1.0, full=10.0, higher_is_better=False)  # 0-10 per item, shown as is


@register("acme_last_number")
def last_number(inp: ScoreInput) -> Score:
    """1 when the last number in the answer equals the target, else 0; no number at all is an extraction failure."""
    numbers = NUMBER.findall(inp.output.replace(",", ""))
    if not numbers:
        return Score(0.0, None, "no answer found")
    return Score(float(float(numbers[-1]) == float(inp.target)), numbers[-1])


@dataclass(frozen=True)
class Distance:
    """How far the answer's last number is from the target, capped at 10 (no number: 10): 0-10 per item, shown as
    it is, lower is better, so `compare` and `gate` count a rise as a drop."""

    cap: float = 10.0
    scale: Scale = DISTANCE
    parallel: bool = False
    failure_reasons: frozenset[str] = frozenset({"no answer found"})

    def score(self, inp: ScoreInput) -> Score:
        numbers = NUMBER.findall(inp.output.replace(",", ""))
        if not numbers:
            return Score(self.cap, None, "no answer found")
        return Score(min(abs(float(numbers[-1]) - float(inp.target)), self.cap), numbers[-1])

    def aggregate(self, item_means: Mapping[str, float], rows: Rows) -> Interval:
        return mean_interval(item_means, rows)


def prepare_sums(rows: list[dict[str, Any]], spec: Any) -> list[dict[str, Any]]:
    """Each row's question from the spec's `data.options.template` (fields of the row), its answer a + b."""
    template = str(spec.data.options["template"])
    return [{**row, "question": template.format(**row), "answer": str(row["a"] + row["b"])} for row in rows]
