"""Render comparisons, histories, diffs and gate results: terminal, markdown, csv, latex, json."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tabulate import tabulate

from fusebench.compare import Comparison, Diff, ItemPair, PairedResult, RunInfo
from fusebench.history import GateResult, History
from fusebench.spec import averaged

FORMATS = ("terminal", "markdown", "csv", "latex", "json")
_TABLEFMT = {"terminal": "simple", "markdown": "github", "latex": "latex_booktabs"}
MISSING = "missing"
JUDGE_MISMATCH = "[!judge differs]"


def _num(value: float | None, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def _signed(value: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f}"


def _ci(d: PairedResult) -> str:
    if not d.delta.estimable:
        return f"n/a ({d.delta.unavailable})"
    return f"[{_signed(d.delta.low)}, {_signed(d.delta.high)}]"


def _mde(d: PairedResult) -> str:
    return f"n/a ({d.mde_unavailable})" if d.mde is None else f"{d.mde:.1f}"


def _or_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def comparison_table(c: Comparison) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of a comparison: scores per run, then delta columns per non-base run."""
    headers = ["category", "benchmark", "n", *[r.label for r in c.runs]]
    for run in c.runs[1:]:
        # one compared run: "Δ" (the legend says run - base); several: each delta column names its run
        headers += ["Δ" if len(c.runs) == 2 else f"Δ {run.label}", "95% CI", "p (Holm)", "test", "MDE"]
    rows = []
    previous = None
    for row in c.rows:
        ns = sorted({n for n in row.n if n is not None})
        line = [
            "" if row.category == previous else row.category,
            row.benchmark + (f" {JUDGE_MISMATCH}" if row.benchmark in c.judge_mismatches else ""),
            "/".join(map(str, ns)),
            *[_num(s) for s in row.scores],
        ]
        previous = row.category
        for d in row.deltas:
            if d is None:
                line += [MISSING, "", "", "", ""]
            else:
                star = "*" if d.significant(c.alpha) else ""
                line += [_signed(d.delta.estimate) + star, _ci(d), _p(d.p_holm), d.test, _mde(d)]
        rows.append(line)
    for label, values in (
        ("average (plain mean)", c.averages.plain),
        ("average (normalised)", c.averages.normalised),
    ):
        line = ["", label, "", *[_num(v) for v in values]]
        for v in values[1:]:
            line += ["" if v is None or values[0] is None else _signed(v - values[0]), "", "", "", ""]
        rows.append(line)
    return headers, rows


def normalised_note(c: Comparison) -> str:
    """How the normalised average puts each benchmark on 0-100: the factors other than 1, from the stored scales."""
    factors = [f"{r.benchmark} x{r.normaliser:g}" for r in c.rows if r.normaliser != 1.0]
    return "normalised average: " + (", ".join(factors) if factors else "every benchmark already on 0-100")


def comparison_notes(c: Comparison) -> list[str]:
    """Legend, method notes and the settings flags printed under the table."""
    lines = [f"{r.label}: run {r.id}, model {r.model}" + ("  (base)" if i == 0 else "") for i, r in enumerate(c.runs)]
    lines.append(
        "Δ: run - base, paired mean difference over shared items (per item: mean over samples); 95% CI: "
        f"Agresti-Min (0/1) or paired t; * = Holm-adjusted p < {c.alpha:g} across all deltas of the table; "
        "test: McNemar (0/1) or sign-flip permutation; MDE: smallest change detectable with 80% power at this n; "
        "n/a: the data cannot give "
        "it (no variation: every item scored alike; n too small)"
    )
    k, total = len(c.averages.benchmarks), len(c.rows)
    lines.append(f"averages over the {k} of {total} benchmarks every run has; {normalised_note(c)}")
    if c.judge_mismatches:
        lines.append(
            f"{JUDGE_MISMATCH} WARNING: {', '.join(c.judge_mismatches)} were judged by different judges in these "
            "runs; their scores and deltas are NOT comparable"
        )
    if c.flags:
        lines.append("Settings that differ (treat those deltas with care):")
        lines += [f"  ! {f}" for f in c.flags]
    return lines


def comparison_records(c: Comparison) -> list[dict[str, Any]]:
    """One flat record per (benchmark, compared run): raw numbers for csv."""
    records = []
    for row in c.rows:
        for i, run in enumerate(c.runs):
            rec: dict[str, Any] = {
                "category": row.category,
                "benchmark": row.benchmark,
                "metric": row.metric,
                "run": run.id,
                "label": run.label,
                "n": row.n[i],
                "score": row.scores[i],
            }
            d = row.deltas[i - 1] if i else None
            rec.update(
                delta=d and d.delta.estimate,
                ci_low=d and _or_none(d.delta.low),
                ci_high=d and _or_none(d.delta.high),
                ci_unavailable=d and d.delta.unavailable,
                n_shared=d and d.n_shared,
                test=d and d.test,
                p=d and d.p,
                p_holm=d and d.p_holm,
                mde=d and d.mde,
                mde_unavailable=d and d.mde_unavailable,
            )
            records.append(rec)
    return records


def _finite(value: Any) -> Any:
    """NaN (an interval that cannot be estimated) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_finite(value), indent=2, default=lambda o: o.isoformat() if hasattr(o, "isoformat") else str(o))


def render_comparison(c: Comparison, fmt: str = "terminal") -> str:
    """A comparison in one of FORMATS."""
    if fmt == "json":
        return _json(asdict(c))
    if fmt == "csv":
        return _csv(comparison_records(c))
    headers, rows = comparison_table(c)
    table = tabulate(rows, headers=headers, tablefmt=_TABLEFMT[fmt], disable_numparse=True)
    notes = comparison_notes(c)
    if fmt == "latex":
        return _latex(table + "\n" + "\n".join(f"% {n}" for n in notes))
    if fmt == "markdown":
        return table + "\n\n" + "\n".join(f"- {n.strip()}" for n in notes)
    return table + "\n\n" + "\n".join(notes)


def _latex(text: str) -> str:
    """Plain pdflatex rejects a raw "Δ" (tabulate escapes "$" and "\\", so it is put in after rendering)."""
    return text.replace("Δ", r"$\Delta$")


def _csv(records: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    if records:
        writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    return out.getvalue()


def render_history(h: History, fmt: str = "terminal") -> str:
    """A family's benchmarks across steps in one of FORMATS."""
    if fmt == "json":
        return _json(asdict(h))
    headers = ["category", "benchmark", *[f"step {s}" for s in h.steps]]
    if fmt == "csv":
        return _csv([dict(zip(headers, [c, b, *s], strict=True)) for c, b, s in h.rows])
    rows = []
    previous = None
    for category, bench, values in h.rows:
        rows.append(["" if category == previous else category, bench, *[_num(v) for v in values]])
        previous = category
    counted = averaged(bench for _, bench, _ in h.rows)
    shared = [v for _, bench, v in h.rows if all(x is not None for x in v) and bench in counted]
    if shared:
        means = [sum(v[i] for v in shared) / len(shared) for i in range(len(h.steps))]  # type: ignore[misc]
        rows.append(["", "average (plain mean)", *[_num(m) for m in means]])
    table = tabulate(rows, headers=headers, tablefmt=_TABLEFMT[fmt], disable_numparse=True)
    notes = [
        f"family {h.family}; runs: {', '.join(h.run_ids)}; average over the {len(shared)} benchmarks every step has",
        *h.notes,
    ]
    if h.flags:
        notes.append("Settings that differ (treat those steps with care):")
        notes += [f"  ! {f}" for f in h.flags]
    if fmt == "latex":
        return _latex(table + "\n" + "\n".join(f"% {n}" for n in notes))
    if fmt == "markdown":
        return table + "\n\n" + "\n".join(f"- {n.strip()}" for n in notes)
    return table + "\n\n" + "\n".join(notes)


def _wrap(text: str, width: int, max_chars: int) -> str:
    if max_chars and len(text) > max_chars:
        text = text[:max_chars] + f"... [{len(text) - max_chars} more chars]"
    return "\n".join(textwrap.fill(line, width) if line else "" for line in text.splitlines())


def render_diff(d: Diff, fmt: str = "terminal", max_chars: int = 2000, width: int | None = None) -> str:
    """Flipped items with both outputs side by side (terminal/markdown) or as data (json/csv)."""
    if fmt == "json":
        return _json(asdict(d))
    if fmt == "csv":
        return _csv([{"change": k, **asdict(p)} for k, ps in _flip_groups(d) for p in ps])
    c = d.counts
    lines = [
        f"{d.benchmark}: A = {_named(d.run_a)}, B = {_named(d.run_b)}",
        f"right->wrong {c['right_to_wrong']}, wrong->right {c['wrong_to_right']}, both right {c['both_right']}, "
        f"both wrong {c['both_wrong']}"
        + (f"; only in A {c['only_a']}, only in B {c['only_b']}" if c["only_a"] or c["only_b"] else ""),
    ]
    total = width or shutil.get_terminal_size((160, 40)).columns
    col = max(30, (total - 7) // 2)
    tablefmt = "grid" if fmt == "terminal" else _TABLEFMT[fmt]
    for kind, pairs in _flip_groups(d):
        for p in pairs:
            lines += ["", f"[{kind}] {p.sample_id}  target: {p.target!r}", _pair_table(p, col, max_chars, tablefmt)]
    return "\n".join(lines)


def _flip_groups(d: Diff) -> list[tuple[str, Sequence[ItemPair]]]:
    return [("right->wrong", d.regressions), ("wrong->right", d.improvements)]


def _pair_table(p: ItemPair, col: int, max_chars: int, tablefmt: str) -> str:
    headers = [
        f"A  score {p.score_a:g}  extracted {p.extracted_a!r}",
        f"B  score {p.score_b:g}  extracted {p.extracted_b!r}",
    ]
    if tablefmt != "grid":  # markdown / latex cells cannot hold newlines
        cells = [[p.output_a.replace("\n", " "), p.output_b.replace("\n", " ")]]
        return tabulate(cells, headers=headers, tablefmt=tablefmt, disable_numparse=True)
    cells = [[_wrap(p.output_a, col, max_chars), _wrap(p.output_b, col, max_chars)]]
    return tabulate(cells, headers=[textwrap.fill(h, col) for h in headers], tablefmt="grid", disable_numparse=True)


def render_gate(g: GateResult, fmt: str = "terminal") -> str:
    """The gate verdict, then each offending benchmark with its delta and CI."""
    c = g.comparison
    base, cand = c.runs
    if fmt == "json":
        payload = {
            "passed": g.passed,
            "max_drop": g.max_drop,
            "failures": [{"benchmark": f.benchmark, "reason": f.reason} for f in g.failures],
            "comparison": asdict(c),
        }
        return _json(payload)
    verdict = "PASS" if g.passed else f"FAIL ({len(g.failures)} benchmark(s))"
    head = (
        f"gate {verdict}: candidate {_named(cand)} vs baseline {_named(base)}; "
        f"fails on a drop > {g.max_drop:g} points with Holm-adjusted p < {c.alpha:g}"
    )
    rows = []
    for f in g.failures:
        d = f.row.deltas[0]
        rows.append(
            [f.benchmark, _num(f.row.scores[0]), _num(f.row.scores[1])]
            + ([_signed(d.delta.estimate), _ci(d), _p(d.p_holm)] if d else ["", "", ""])
            + [f.reason]
        )
    parts = [head]
    if rows:
        headers = ["benchmark", "baseline", "candidate", "Δ", "95% CI", "p (Holm)", "reason"]
        parts.append(tabulate(rows, headers=headers, tablefmt=_TABLEFMT.get(fmt, "simple"), disable_numparse=True))
    blind = [
        f"{row.benchmark} ({row.deltas[0].delta.unavailable or row.deltas[0].mde_unavailable})"
        for row in c.rows
        if row.deltas[0] is not None and (not row.deltas[0].delta.estimable or row.deltas[0].mde is None)
    ]
    if blind:
        parts.append(
            "No 95% CI or MDE could be estimated for: " + ", ".join(blind) + "; the gate saw no significant drop "
            "there but cannot say how large a drop it would have missed"
        )
    if c.flags:
        parts.append("\n".join(["Settings that differ:", *[f"  ! {f}" for f in c.flags]]))
    return "\n\n".join(parts)


def _named(run: RunInfo) -> str:
    """A run's label with its id, once (labels of runs of the same model carry it already)."""
    return run.label if run.id in run.label else f"{run.label} ({run.id})"
