"""The per-run results table: benchmarks grouped by category, score with 95% CI, and the average."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from fusebench.spec import CATEGORIES

HEADERS = ("category", "benchmark", "metric", "n", "score", "95% CI", "no answer")


def average(scores: Sequence[float]) -> float | None:
    """FuseChat-3.0's convention: the plain mean of the raw benchmark numbers."""
    return sum(scores) / len(scores) if scores else None


def results_table(results: Sequence[dict[str, Any]], not_implemented: Sequence[str] = (), fmt: str = "simple") -> str:
    """Render one run's per-benchmark results."""
    order = {c: i for i, c in enumerate(CATEGORIES)}
    rows = []
    for r in sorted(results, key=lambda r: (order.get(r["category"], 99), r["benchmark"])):
        ci = f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        details = r.get("details") or {}
        failures = details.get("extraction_failures", 0)
        failed = f"{100 * failures / details['n_samples']:.0f}%" if details.get("n_samples") else ""
        rows.append([r["category"], r["benchmark"], r["metric"], r["n"], f"{r['score']:.2f}", ci, failed])
    for name in not_implemented:
        rows.append(["", name, "", "", "not implemented", ""])
    avg = average([r["score"] for r in results])
    if avg is not None:
        rows.append(["", "average (plain mean)", "", "", f"{avg:.2f}", ""])
    return tabulate(rows, headers=HEADERS, tablefmt=fmt)


def breakdown_table(results: Sequence[dict[str, Any]], fmt: str = "simple") -> str:
    """Per-group scores (e.g. MMLU-Pro categories) of the benchmarks that have a breakdown."""
    rows = [
        [r["benchmark"], group, v["n"], f"{v['score']:.2f}"]
        for r in results
        for group, v in ((r.get("details") or {}).get("breakdown") or {}).items()
    ]
    return tabulate(rows, headers=("benchmark", "group", "n", "score"), tablefmt=fmt) if rows else ""
