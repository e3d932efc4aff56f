"""Subcommands that read stored runs: runs (its table), compare, diff, history, gate, tag, report."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusebench.cli_common import add_store_args, open_store, tag, whole_number
from fusebench.errors import UsageError

if TYPE_CHECKING:
    from fusebench.store import Store

_FORMATS = ("terminal", "markdown", "csv", "latex", "json")


def _benchmarks(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names:
        raise UsageError("--benchmarks names no benchmark")
    return names


def _duration(run: dict[str, Any]) -> str:
    """Start to finish (a resumed run counts from its first start); blank while it has not finished."""
    start, end = run.get("started_at"), run.get("finished_at")
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        return ""
    seconds = max(0, round((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _scores(results: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """(plain-mean average as the run's table computes it, each benchmark's score) of a run's stored results."""
    from fusebench.report.table import average
    from fusebench.spec import averaged

    results = [r for r in results if r["score"] is not None]
    counted = averaged(r["benchmark"] for r in results)
    avg = average([r["score"] for r in results if r["benchmark"] in counted])
    each = " ".join(f"{r['benchmark']}:{r['score']:.1f}" for r in sorted(results, key=lambda r: r["benchmark"]))
    return ("" if avg is None else f"{avg:.2f}"), each


def runs_table(store: Store) -> str:
    """`fusebench runs`: one row per stored run, oldest first, with its tags, duration and scores."""
    from tabulate import tabulate

    rows = []
    for r in store.list_runs():
        avg, each = _scores(store.get_benchmark_results(r["id"]))
        tags = " ".join(f"{k}={v}" for k, v in sorted((r.get("tags") or {}).items()))
        started = r["started_at"].strftime("%Y-%m-%d %H:%M") if isinstance(r["started_at"], dt.datetime) else ""
        what = r["suite"] or ",".join(r["benchmarks"])
        rows.append([r["id"], r["model"], r["backend"], what, r["status"], tags, started, _duration(r), avg, each])
    headers = ["run", "model", "backend", "suite", "status", "tags", "started", "duration", "average", "scores"]
    widths = [None, 32, None, 24, None, 24, None, None, None, 48]
    return tabulate(rows, headers=headers, maxcolwidths=widths, disable_numparse=True)


def cmd_compare(args: argparse.Namespace) -> int:
    from fusebench.compare import check_judges, compare
    from fusebench.report.compare_table import render_comparison

    comparison = compare(open_store(args), args.runs, _benchmarks(args.benchmarks))
    check_judges(comparison, args.allow_judge_mismatch)
    if comparison.judge_mismatches:
        print(f"fusebench: WARNING: different judges on {', '.join(comparison.judge_mismatches)}", file=sys.stderr)
    print(render_comparison(comparison, args.format))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from fusebench.compare import diff_runs
    from fusebench.report.compare_table import render_diff

    diff = diff_runs(open_store(args), args.run_a, args.run_b, args.benchmark)
    print(render_diff(diff, args.format, max_chars=args.max_chars))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from fusebench.history import history
    from fusebench.report.compare_table import render_history

    hist = history(open_store(args), args.family, _benchmarks(args.benchmarks), args.run or ())
    print(render_history(hist, args.format))
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from fusebench.history import gate
    from fusebench.report.compare_table import render_gate

    result = gate(open_store(args), args.candidate, args.baseline, args.max_drop, _benchmarks(args.benchmarks))
    print(render_gate(result, args.format))
    return 0 if result.passed else 1


def cmd_tag(args: argparse.Namespace) -> int:
    from fusebench.history import set_tags

    tags = set_tags(open_store(args), args.run, dict(args.tags), args.remove or ())
    print(", ".join(f"{k}={v}" for k, v in sorted(tags.items())) or "(no tags)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from fusebench.report.html import write_report

    path = write_report(open_store(args), args.runs, args.output, _benchmarks(args.benchmarks))
    print(f"report written to {path}")
    return 0


def add_report_commands(sub: Any) -> None:
    """Add compare, diff, history, gate, tag and report to the CLI's subparsers."""
    p = sub.add_parser("compare", help="compare runs against the first: deltas, paired CIs, tests, MDE")
    p.add_argument("runs", nargs="+", help="run id prefixes or model names (latest complete run); first = base")
    p.add_argument("--benchmarks", help="comma-separated subset")
    p.add_argument("--format", choices=_FORMATS, default="terminal")
    p.add_argument("--allow-judge-mismatch", action="store_true", help="compare judged benchmarks across judges")
    add_store_args(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("diff", help="items of one benchmark that flipped between two runs, outputs side by side")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--benchmark", required=True)
    p.add_argument(
        "--max-chars", type=whole_number(0), default=2000, help="truncate each output (0: full; default %(default)s)"
    )
    p.add_argument("--format", choices=_FORMATS, default="terminal")
    add_store_args(p)
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("history", help="a family's benchmarks across checkpoints (runs tagged family=..., step=...)")
    p.add_argument("family")
    p.add_argument(
        "--run",
        action="append",
        metavar="RUN",
        help="show this run at its step (repeatable); default: per step the run whose settings match the family's",
    )
    p.add_argument("--benchmarks", help="comma-separated subset")
    p.add_argument("--format", choices=_FORMATS, default="terminal")
    add_store_args(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("gate", help="exit 1 when the candidate dropped significantly against the baseline")
    p.add_argument("candidate", help="run id prefix or model name")
    p.add_argument("--baseline", required=True, help="run id prefix or model name")
    p.add_argument("--max-drop", type=float, default=1.0, help="tolerated drop in points (default %(default)s)")
    p.add_argument("--benchmarks", help="comma-separated subset")
    p.add_argument("--format", choices=("terminal", "markdown", "json"), default="terminal")
    add_store_args(p)
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("tag", help="add or remove tags of a stored run (family=..., step=...)")
    p.add_argument("run", help="run id prefix or model name")
    p.add_argument("tags", nargs="*", type=tag, help="key=value")
    p.add_argument("--remove", action="append", metavar="KEY", help="remove a tag (repeatable)")
    add_store_args(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("report", help="one self-contained HTML report of a comparison")
    p.add_argument("runs", nargs="+", help="run id prefixes or model names; first = base")
    p.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    p.add_argument("--benchmarks", help="comma-separated subset")
    add_store_args(p)
    p.set_defaults(func=cmd_report)
