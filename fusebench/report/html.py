"""A self-contained HTML report: comparison table, delta and history charts (inline SVG), sample browser.

Nothing is fetched at view time: CSS and JS are inline. Model text is untrusted, so every string that
reaches the page is either `html.escape`d into static markup or shipped as JSON (with <, >, & escaped) and
put into the DOM with `textContent` by the browser script, never with `innerHTML`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusebench.compare import (
    Comparison,
    RunData,
    compare_runs,
    first_samples,
    is_right,
    load_runs,
    natural_key,
)
from fusebench.errors import UsageError
from fusebench.history import History, history, step_key
from fusebench.report.compare_table import comparison_notes, comparison_table
from fusebench.store import Store, scale_of_result

MAX_ITEMS_PER_BENCHMARK = 500
MAX_TEXT_CHARS = 20000
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
_FAILURE_REASONS = ("extraction_failed", "no answer found")


def write_report(store: Store, refs: Sequence[str], output: Path, benchmarks: Sequence[str] | None = None) -> Path:
    """Compare the runs named by `refs` and write the HTML report to `output`."""
    loaded = load_runs(store, refs, benchmarks)
    page = render_report(store, loaded)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from exc
    return output


def render_report(store: Store, loaded: Sequence[RunData]) -> str:
    """The whole page as one string."""
    comparison = compare_runs(loaded)
    hist = _family_history(store, loaded)
    sections = [
        "<h2>Comparison</h2>",
        _table_html(comparison),
        "<ul class=notes>"
        + "".join(f"<li>{html.escape(n.strip())}</li>" for n in comparison_notes(comparison))
        + "</ul>",
    ]
    if len(loaded) > 1:
        sections += ["<h2>Deltas against the base, with 95% CIs</h2>", delta_chart_svg(comparison)]
    if hist is not None:
        sections += [f"<h2>History of family {html.escape(hist.family)}</h2>", history_chart_svg(hist)]
        if hist.flags or hist.notes:
            lines = [*hist.notes, *(f"settings differ: {f}" for f in hist.flags)]
            sections.append("<ul class=notes>" + "".join(f"<li>{html.escape(n)}</li>" for n in lines) + "</ul>")
    data = sample_data(store, loaded)
    sections += ["<h2>Samples</h2>", _BROWSER_HTML, _json_script("samples", data)]
    title = "fusebench: " + " vs ".join(r.info.label for r in loaded)
    return _PAGE.format(title=html.escape(title), css=_CSS, body="\n".join(sections), js=_JS)


def _table_html(c: Comparison) -> str:
    headers, rows = comparison_table(c)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            cls = ' class="sig"' if cell.endswith("*") else ""
            cells.append(f"<td{cls}>{html.escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class=cmp><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _family_history(store: Store, loaded: Sequence[RunData]) -> History | None:
    families = {r.info.tags.get("family") for r in loaded}
    if len(families) != 1 or None in families or not all("step" in r.info.tags for r in loaded):
        return None
    family = next(iter(families))
    assert family is not None
    per_step = {r.info.tags["step"]: r.info.id for r in reversed(loaded)}  # one per step: the first compared
    return history(store, family, named=list(per_step.values()))  # the chart shows the compared runs


def _svg_text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{html.escape(text)}</text>'


def delta_chart_svg(c: Comparison) -> str:
    """Per benchmark and compared run: the delta (normalised points) as a dot with its 95% CI as a bar."""
    entries = []  # (benchmark, run, estimate, low, high, why no CI); low = high = estimate when there is none
    for row in c.rows:
        for i, d in enumerate(row.deltas):
            if d is not None:
                f = row.normaliser
                est, why = f * d.delta.estimate, d.delta.unavailable
                lo, hi = (est, est) if why else (f * d.delta.low, f * d.delta.high)
                entries.append((row.benchmark, i, est, lo, hi, why))
    if not entries:
        return "<p>No benchmark has items shared with the base.</p>"
    span = max(1.0, *(max(abs(lo), abs(hi)) for *_, lo, hi, _ in entries)) * 1.1
    left, width, step = 180, 520, 22
    height = 40 + step * len(entries)

    def x(v: float) -> float:
        return left + width * (v + span) / (2 * span)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class=chart width="{left + width + 40}" height="{height + 45}" '
        'role="img" aria-label="deltas with confidence intervals">',
        f'<line x1="{x(0):.1f}" y1="10" x2="{x(0):.1f}" y2="{height}" stroke="#888" stroke-dasharray="4 3"/>',
    ]
    for k, (bench, i, est, lo, hi, why) in enumerate(entries):
        y = 25 + step * k
        color = _COLORS[i % len(_COLORS)]
        label = f"{bench} ({c.runs[i + 1].label})" if len(c.runs) > 2 else bench
        ci = f"CI n/a ({why})" if why else f"[{lo:+.2f}, {hi:+.2f}]"
        parts.append(_svg_text(left - 8, y + 4, label, "end"))
        if why:  # no bar: an open dot and the reason beside it
            parts.append(_svg_text(x(est) + 8, y + 4, ci, "start", 'class="axis"'))
        else:
            parts.append(
                f'<line x1="{x(lo):.1f}" y1="{y}" x2="{x(hi):.1f}" y2="{y}" stroke="{color}" stroke-width="2"/>'
            )
        fill = "white" if why else color
        parts.append(
            f'<circle cx="{x(est):.1f}" cy="{y}" r="4" fill="{fill}" stroke="{color}"><title>'
            f"{html.escape(f'{bench}: {est:+.2f} {ci}')}</title></circle>"
        )
    for v in (-span / 1.1, 0.0, span / 1.1):
        parts.append(_svg_text(x(v), height + 18, f"{v:+.1f}", "middle"))
    parts.append(_svg_text(left + width / 2, height + 36, "Δ points (normalised to 0-100)", "middle", 'class="axis"'))
    parts.append("</svg>")
    return "".join(parts)


def history_chart_svg(h: History) -> str:
    """One line per benchmark across a family's steps (normalised points)."""
    numeric = [step_key(s)[0] for s in h.steps]
    xs = numeric if all(v != float("inf") for v in numeric) else list(range(len(h.steps)))
    series = [(b, [None if v is None else v * h.scales[b].to_percent for v in vals]) for _, b, vals in h.rows]
    values = [v for _, vals in series for v in vals if v is not None]
    if not values:
        return "<p>No scores to plot.</p>"
    lo, hi = min(values), max(values)
    lo, hi = (lo - 1, hi + 1) if hi - lo < 1e-9 else (lo, hi)
    x0, x1 = min(xs), max(xs)
    left, width, top, height = 60, 560, 15, 260

    def px(v: float) -> float:
        return left + (width * (v - x0) / (x1 - x0) if x1 > x0 else width / 2)

    def py(v: float) -> float:
        return top + height * (hi - v) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class=chart width="{left + width + 180}" '
        f'height="{top + height + 45}" role="img" aria-label="scores across checkpoints">',
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#888"/>',
    ]
    for xv, step in zip(xs, h.steps, strict=True):
        parts.append(_svg_text(px(xv), top + height + 16, step, "middle"))
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(_svg_text(left - 6, py(v) + 4, f"{v:.1f}", "end"))
    for k, (bench, vals) in enumerate(series):
        color = _COLORS[k % len(_COLORS)]
        pts = [(px(xv), py(v)) for xv, v in zip(xs, vals, strict=True) if v is not None]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>' for a, b in pts]
        parts.append(_svg_text(left + width + 12, top + 14 + 16 * k, bench, "start", f'style="fill:{color}"'))
    parts.append(_svg_text(left + width / 2, top + height + 36, "step", "middle", 'class="axis"'))
    parts.append("</svg>")
    return "".join(parts)


def sample_data(store: Store, loaded: Sequence[RunData], limit: int = MAX_ITEMS_PER_BENCHMARK) -> dict[str, Any]:
    """Per benchmark, items (flipped first, then by id) with each run's score, output and extraction."""
    items_out: list[dict[str, Any]] = []
    truncated: dict[str, int] = {}
    benches = sorted({b for r in loaded for b in r.items})
    for bench in benches:
        ids = sorted({sid for r in loaded for sid in r.items.get(bench, {})})
        scale = scale_of_result(next(r.results[bench] for r in loaded if bench in r.results))
        flipped = {
            sid
            for sid in ids
            if len({is_right(r.items[bench][sid], scale) for r in loaded if sid in r.items.get(bench, {})}) > 1
        }
        chosen = sorted(ids, key=lambda s: (s not in flipped, natural_key(s)))[:limit]
        if len(ids) > limit:
            truncated[bench] = len(ids) - limit
        rows = [first_samples(store, r.info.id, bench, set(chosen)) for r in loaded]
        gens = store.get_generations(s["generation_key"] for per_run in rows for s in per_run.values())
        for sid in chosen:
            runs_: list[dict[str, Any] | None] = []
            prompt, target = None, None
            for run, per_run in zip(loaded, rows, strict=True):
                s = per_run.get(sid)
                if s is None:
                    runs_.append(None)
                    continue
                gen = gens.get(s["generation_key"], {})
                prompt = prompt or gen.get("prompt")
                target = s["target"] if target is None else target
                score = run.items[bench][sid]
                runs_.append(
                    {
                        "score": score,
                        "right": is_right(score, scale),
                        "extracted": s["extracted"],
                        "failed_extraction": s["reason"] in _FAILURE_REASONS,
                        "output": _clip(gen.get("output", "")),
                    }
                )
            items_out.append(
                {
                    "benchmark": bench,
                    "id": sid,
                    "flipped": sid in flipped,
                    "prompt": _clip(_prompt_text(prompt)),
                    "target": _clip(target if isinstance(target, str) else json.dumps(target, ensure_ascii=False)),
                    "runs": runs_,
                }
            )
    return {"runs": [r.info.label for r in loaded], "benchmarks": benches, "items": items_out, "truncated": truncated}


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        return "\n\n".join(f"[{m.get('role', '?')}]\n{m.get('content', '')}" for m in prompt if isinstance(m, dict))
    return "" if prompt is None else str(prompt)


def _clip(text: str) -> str:
    return (
        text
        if len(text) <= MAX_TEXT_CHARS
        else text[:MAX_TEXT_CHARS] + f"\n... [{len(text) - MAX_TEXT_CHARS} more chars]"
    )


def _json_script(element_id: str, data: Any) -> str:
    """JSON in a non-executed script element; <, >, & are escaped so no text can close the element."""
    blob = json.dumps(data, ensure_ascii=False).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return f'<script type="application/json" id="{element_id}">{blob}</script>'


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{title}</title><style>{css}</style></head>
<body><h1>{title}</h1>
{body}
<script>{js}</script></body></html>
"""

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td:nth-child(-n+2){text-align:left}
td.sig{font-weight:bold;background:#fff3c4}
.notes{color:#555;font-size:12px}
.chart text{font-size:12px;fill:#333}.chart .axis{fill:#666}
#filters{margin:.5em 0;display:flex;gap:1em;flex-wrap:wrap}
#sample-table td{text-align:left;max-width:40em}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:12px;background:#fafafa;padding:4px}
.right{color:#1a7f37}.wrong{color:#c62828}
"""

_BROWSER_HTML = """<div id=filters>
<label>benchmark <select id=f-bench><option value="">all</option></select></label>
<label>show <select id=f-status><option value="all">all items</option><option value="flipped">flipped</option>
<option value="failed">wrong in some run</option></select></label>
<label>search <input id=f-text type=search placeholder="text in prompt, output, target"></label>
<span id=f-count></span></div>
<p id=f-truncated class=notes></p>
<table id=sample-table><thead><tr id=sample-head></tr></thead><tbody id=sample-body></tbody></table>
<button id=f-more hidden>show more</button>"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("samples").textContent);
  var bench = document.getElementById("f-bench"), status = document.getElementById("f-status");
  var text = document.getElementById("f-text"), body = document.getElementById("sample-body");
  var more = document.getElementById("f-more"), count = document.getElementById("f-count");
  var shown = 100;
  function el(tag, content, cls) {
    var e = document.createElement(tag);
    if (content !== undefined && content !== null) e.textContent = String(content);
    if (cls) e.className = cls;
    return e;
  }
  data.benchmarks.forEach(function (b) { bench.appendChild(el("option", b)).value = b; });
  var head = document.getElementById("sample-head");
  ["benchmark", "item", "prompt / target"].concat(data.runs).forEach(function (h) { head.appendChild(el("th", h)); });
  var truncated = Object.keys(data.truncated);
  if (truncated.length) {
    document.getElementById("f-truncated").textContent = "Not included (over the per-benchmark cap): " +
      truncated.map(function (b) { return b + " " + data.truncated[b]; }).join(", ") + " items.";
  }
  function haystack(item) {
    return [item.id, item.prompt, item.target].concat(item.runs.map(function (r) {
      return r ? r.output + " " + r.extracted : "";
    })).join("\n").toLowerCase();
  }
  data.items.forEach(function (item) { item.search = haystack(item); });
  function matches(item) {
    if (bench.value && item.benchmark !== bench.value) return false;
    if (status.value === "flipped" && !item.flipped) return false;
    if (status.value === "failed" && !item.runs.some(function (r) { return r && !r.right; })) return false;
    var q = text.value.trim().toLowerCase();
    return !q || item.search.indexOf(q) >= 0;
  }
  function details(summary, content) {
    var d = el("details"); d.appendChild(el("summary", summary)); d.appendChild(el("pre", content)); return d;
  }
  function row(item) {
    var tr = el("tr");
    tr.dataset.benchmark = item.benchmark;
    tr.appendChild(el("td", item.benchmark));
    tr.appendChild(el("td", item.id + (item.flipped ? " (flipped)" : "")));
    var td = el("td");
    td.appendChild(details("prompt", item.prompt));
    td.appendChild(el("div", "target: " + item.target));
    tr.appendChild(td);
    item.runs.forEach(function (r) {
      var cell = el("td");
      if (!r) { cell.textContent = "missing"; tr.appendChild(cell); return; }
      cell.appendChild(el("div", "score " + r.score + (r.failed_extraction ? " (no answer extracted)" : ""),
                          r.right ? "right" : "wrong"));
      cell.appendChild(el("div", "extracted: " + r.extracted));
      cell.appendChild(details("output", r.output));
      tr.appendChild(cell);
    });
    return tr;
  }
  function render() {
    var hits = data.items.filter(matches);
    body.replaceChildren.apply(body, hits.slice(0, shown).map(row));
    count.textContent = hits.length + " of " + data.items.length + " items";
    more.hidden = hits.length <= shown;
  }
  function fromHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    if (params.has("benchmark")) bench.value = params.get("benchmark");
    if (params.has("show")) status.value = params.get("show");
    if (params.has("q")) text.value = params.get("q");
  }
  [bench, status].forEach(function (e) { e.addEventListener("change", function () { shown = 100; render(); }); });
  text.addEventListener("input", function () { shown = 100; render(); });
  more.addEventListener("click", function () { shown += 100; render(); });
  fromHash();
  render();
  document.documentElement.dataset.ready = "1";
})();
"""
