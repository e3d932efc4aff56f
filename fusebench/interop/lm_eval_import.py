"""Import lm-eval results (`results_*.json` + `samples_<task>_*.jsonl`) into the store as a fusebench run.

Each task+metric(+filter) becomes a benchmark `lm-eval:<task>:<metric>[,<filter>]`, so imported rows never
collide with native benchmarks. Proportions (acc, exact_match, ...: in [0, 1], higher is better) are stored
in points (x100) like native scores, with lm-eval's stderr as a normal 95% CI; their per-sample values go to
the scores table, so `compare`, `diff` and `gate` pair items as for native runs. Other metrics (perplexity,
bleu, ...) are stored as reported, without per-sample scores. The run id is a hash of the results content:
importing the same file again updates the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

from fusebench.cli_common import add_store_args, open_store, tag
from fusebench.compare import natural_key
from fusebench.environment import environment
from fusebench.errors import UsageError
from fusebench.keys import stable_hash
from fusebench.scale import Scale
from fusebench.stats import mean_ci
from fusebench.store import RunSettings, RunSummary, Store, to_jsonable

PREFIX = "lm-eval:"
BACKEND = "lm-eval"
CATEGORY = "lm-eval"
RAW_METRICS = frozenset({"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte"})
_NOT_METRICS = frozenset({"name", "alias", "sample_len", "sample_count", "samples"})
_Z95 = NormalDist().inv_cdf(0.975)
_DATE = r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?"
_MAX_ID = 64  # width of the store's benchmark column


@dataclass(frozen=True)
class ImportOutcome:
    """What an import stored: the run id, whether it was new, its benchmark rows and per-sample score count."""

    run_id: str
    created: bool
    results: list[dict[str, Any]]
    n_scores: int


@dataclass(frozen=True)
class _Metric:
    task: str
    metric: str
    filter: str
    value: float
    stderr: float | None
    higher_is_better: bool | None = None

    @property
    def benchmark(self) -> str:
        name = f"{PREFIX}{self.task}:{self.metric}" + ("" if self.filter == "none" else f",{self.filter}")
        if len(name) <= _MAX_ID:
            return name
        return f"{name[: _MAX_ID - 13]}~{hashlib.sha256(name.encode()).hexdigest()[:12]}"

    @property
    def is_proportion(self) -> bool:
        return self.metric not in RAW_METRICS and self.higher_is_better is not False and 0.0 <= self.value <= 1.0


def read_results(path: Path) -> dict[str, Any]:
    """The parsed lm-eval results JSON; UsageError when missing, unreadable or not lm-eval's format."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"lm-eval results file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}".splitlines()[0]) from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    _check_results(data, str(path))
    return data


def _check_results(data: Any, where: str) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict) or not data["results"]:
        raise UsageError(f"{where} is not an lm-eval results file (no non-empty 'results' object)")
    bad = [t for t, v in data["results"].items() if not isinstance(v, dict)]
    if bad:
        raise UsageError(f"{where}: results of task {bad[0]!r} are not an object")


def task_names(results: dict[str, Any]) -> list[str]:
    """Every task (and group) named in a results dict."""
    return sorted(set(results["results"]) | set(results.get("groups") or {}) | set(results.get("configs") or {}))


def find_sample_files(results_path: Path, tasks: Collection[str], samples: Sequence[Path] = ()) -> dict[str, Path]:
    """task -> its samples JSONL: the given files, the files in given folders, or those beside the results file.

    In folders, a file `samples_<task>_<date>.jsonl` belongs to a task of the results; when the results file
    name carries lm-eval's date stamp, only samples with the same stamp are taken.
    """
    stamp = re.search(f"({_DATE})\\.json$", Path(results_path).name)
    date = stamp.group(1) if stamp else None
    explicit = [Path(p) for p in samples if not Path(p).is_dir()]
    folders = [Path(p) for p in samples if Path(p).is_dir()] or ([] if samples else [Path(results_path).parent])
    found: dict[str, Path] = {}
    for path in explicit:
        if not path.is_file():
            raise UsageError(f"samples file {path} not found")
        task = _task_of(path.name, tasks, None)
        if task is None:
            if len(tasks) != 1:
                raise UsageError(
                    f"cannot tell which task {path.name} belongs to (expected samples_<task>_<date>.jsonl)"
                )
            task = next(iter(tasks))
        if task in found:
            raise UsageError(f"two samples files for task {task}: {found[task]} and {path}")
        found[task] = path
    for folder in folders:
        candidates: dict[str, list[Path]] = {}
        for path in sorted(folder.glob("samples_*.jsonl")):
            task = _task_of(path.name, tasks, date)
            if task is not None and task not in found:
                candidates.setdefault(task, []).append(path)
        for task, paths in candidates.items():
            if len(paths) > 1:
                names = ", ".join(p.name for p in paths)
                raise UsageError(
                    f"several samples files for task {task} in {folder} ({names}); name one with --samples"
                )
            found[task] = paths[0]
    return found


def _task_of(filename: str, tasks: Collection[str], date: str | None) -> str | None:
    date_re = re.escape(date) if date else _DATE
    # the longest matching name wins: task "a_b" over task "a" for samples_a_b_<date>.jsonl
    for task in sorted(tasks, key=len, reverse=True):
        if re.fullmatch(f"samples_{re.escape(task)}_{date_re}\\.jsonl", filename):
            return task
    return None


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The lines of one lm-eval samples JSONL file; UsageError on a corrupt line."""
    lines = []
    try:
        with Path(path).open(encoding="utf-8") as fh:
            for lineno, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    line = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{path}:{lineno} is not valid JSON ({exc.msg})") from None
                if not isinstance(line, dict) or "doc_id" not in line:
                    raise UsageError(f"{path}:{lineno} is not an lm-eval sample (no doc_id)")
                lines.append(line)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}".splitlines()[0]) from None
    return lines


def check_task_hash(results: dict[str, Any], task: str, lines: Sequence[dict[str, Any]], where: str) -> None:
    """UsageError when lm-eval's recorded hash of a task's samples does not match these lines."""
    expected = (results.get("task_hashes") or {}).get(task)
    if not expected:
        return
    try:
        joined = "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in lines)
    except (KeyError, TypeError):
        raise UsageError(f"{where}: samples lack lm-eval's doc/prompt/target hashes") from None
    if hashlib.sha256(joined.encode("utf-8")).hexdigest() != expected:
        raise UsageError(f"{where} does not belong to these results (task hash of {task} differs)")


def parse_metrics(results: dict[str, Any]) -> list[_Metric]:
    """One entry per task x metric x filter with a numeric value, from `results` and `groups`."""
    sections = {**(results.get("groups") or {}), **results["results"]}
    better = results.get("higher_is_better") or {}
    out = []
    for task in sorted(sections):
        values = sections[task]
        task_better = better.get(task) if isinstance(better, dict) else None
        if not isinstance(task_better, dict):
            task_better = {}
        for key, value in values.items():
            metric, _, filt = key.partition(",")
            if metric in _NOT_METRICS or metric.endswith("_stderr") or not _is_number(value):
                continue
            filt = filt or "none"
            stderr = values.get(f"{metric}_stderr,{filt}" if "," in key else f"{metric}_stderr")
            hib = task_better.get(metric)
            out.append(
                _Metric(
                    task,
                    metric,
                    filt,
                    float(value),
                    float(stderr) if _is_number(stderr) else None,
                    hib if isinstance(hib, bool) else None,
                )
            )
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def model_name(results: dict[str, Any]) -> str:
    """The evaluated model as lm-eval recorded it: model_name, else `pretrained` of model_args, else the model type."""
    if results.get("model_name"):
        return str(results["model_name"])
    config = results.get("config") or {}
    args = config.get("model_args")
    if isinstance(args, str):
        args = dict(part.partition("=")[::2] for part in args.split(",") if "=" in part)
    if isinstance(args, dict) and args.get("pretrained"):
        return str(args["pretrained"])
    return str(config.get("model") or "unknown")


def content_hash(results: dict[str, Any]) -> str:
    """Hash of the results content (samples excluded): the same file always gives the same run id."""
    return stable_hash({k: v for k, v in results.items() if k != "samples"})


def import_lm_eval(
    store: Store,
    results: dict[str, Any],
    samples: dict[str, list[dict[str, Any]]] | None = None,
    *,
    model: str | None = None,
    tags: dict[str, str] | None = None,
    source: str | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> ImportOutcome:
    """Store lm-eval results (and per-sample lines by task) as a complete fusebench run."""
    _check_results(results, source or "lm-eval results")
    samples = samples or {}
    digest = content_hash(results)
    run_id = f"lm-eval-{digest[:16]}"
    name = model or model_name(results)
    config = results.get("config") or {}
    fp = {
        "model": name,
        "source": BACKEND,
        **{k: config.get(k) for k in ("model", "model_args", "model_sha", "model_revision", "model_dtype")},
        "chat_template_sha": results.get("chat_template_sha"),
        "system_instruction_sha": results.get("system_instruction_sha"),
        **(fingerprint or {}),
    }
    fp["model"] = name
    metrics = parse_metrics(results)
    if not metrics:
        raise UsageError(f"{source or 'lm-eval results'}: no numeric metric in 'results'")
    generations = _generations(samples, fp)
    rows, score_rows = [], []
    for m in metrics:
        row, item_scores = _benchmark_rows(run_id, m, results, samples.get(m.task, []), generations)
        rows.append(row)
        score_rows += item_scores
    tags = {**_step_tag(name), **(tags or {})}
    created = _upsert_run(store, run_id, digest, name, fp, results, rows, tags, source)
    store.put_generations(list({g["key"]: g for g in generations.values()}.values()))
    store.put_scores(score_rows)
    stored = [store.put_benchmark_result(row, _scale(m)) for row, m in zip(rows, metrics, strict=True)]
    store.finish_run(run_id, "complete", RunSummary(results=to_jsonable(stored)))
    return ImportOutcome(run_id, created, stored, len(score_rows))


def _scale(m: _Metric) -> Scale:
    """A proportion is stored x100 like a native accuracy (PROPORTION); another metric as lm-eval reports it."""
    points = 100.0 if m.is_proportion else 1.0
    return Scale(points_per_unit=points, full=100.0, higher_is_better=m.higher_is_better is not False)


def _step_tag(name: str) -> dict[str, str]:
    last = Path(name).name
    step = last.removeprefix("checkpoint-")
    return {"step": step} if last.startswith("checkpoint-") and step.isdigit() else {}


def _generations(samples: dict[str, list[dict[str, Any]]], fp: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(task, doc_id) -> one generations row (shared by the task's filters): prompt, raw output, lm-eval hashes."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for task, lines in samples.items():
        for line in lines:
            doc = str(line["doc_id"])
            if (task, doc) not in out:
                out[(task, doc)] = _generation(task, doc, line, fp)
    return out


def _generation(task: str, doc: str, line: dict[str, Any], fp: dict[str, Any]) -> dict[str, Any]:
    args = line.get("arguments")
    args = args if isinstance(args, dict) else {}
    # gen_args_0, gen_args_1, ...: one request per choice for multiple choice (numeric order: 10 after 9)
    requests = [v if isinstance(v, dict) else {} for _, v in sorted(args.items(), key=lambda kv: natural_key(kv[0]))]
    resps = line.get("resps")
    choice = chosen_index(line.get("filtered_resps"))
    if choice is not None and choice < len(requests):
        output = str(requests[choice].get("arg_1", ""))  # the continuation with the best log-likelihood
    elif isinstance(resps, list) and resps and isinstance(resps[0], list) and resps[0] and isinstance(resps[0][0], str):
        output = resps[0][0]  # the first generated text of the first request
    else:
        output = json.dumps(resps)
    meta = {k: line.get(k) for k in ("doc_hash", "prompt_hash", "target_hash")}
    return {
        "key": stable_hash({"source": BACKEND, "model": fp, "task": task, "doc": doc, "args": args, "resps": resps}),
        "benchmark": f"{PREFIX}{task}"[:_MAX_ID],
        "sample_id": doc,
        "sample_index": 0,
        "prompt": to_jsonable(requests[0].get("arg_0", "") if requests else ""),
        "output": output,
        "prompt_tokens": None,
        "completion_tokens": None,
        "finish_reason": None,
        "latency_s": None,
        "meta": to_jsonable({**meta, "source": BACKEND, "task": task, "arguments": args, "resps": resps}),
    }


def _benchmark_rows(
    run_id: str,
    m: _Metric,
    results: dict[str, Any],
    lines: Sequence[dict[str, Any]],
    generations: dict[tuple[str, str], dict[str, Any]],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run_benchmarks row of one metric and its per-sample scores rows (proportions only)."""
    scale = 100.0 if m.is_proportion else 1.0
    per_doc: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line.get("filter", "none") == m.filter and _is_number(line.get(m.metric)):
            doc = str(line["doc_id"])
            if doc in per_doc:
                raise UsageError(f"samples of {m.task} list doc_id {doc} twice for filter {m.filter}")
            per_doc[doc] = line
    values = [float(line[m.metric]) for line in per_doc.values()]
    details: dict[str, Any] = {
        "source": BACKEND,
        "task": m.task,
        "filter": m.filter,
        "units": "points" if scale > 1 else "raw",
    }
    usable = bool(values) and m.is_proportion and all(0.0 <= v <= 1.0 for v in values)
    if usable and abs(sum(values) / len(values) - m.value) > 1e-6:
        details["samples_note"] = "per-sample values do not average to the reported score; not stored"
        usable = False
    if m.stderr is not None:
        low, high = m.value - _Z95 * m.stderr, m.value + _Z95 * m.stderr
        if m.is_proportion:
            low, high = max(low, 0.0), min(high, 1.0)
        ci: tuple[float | None, float | None] = (scale * low, scale * high)
    elif usable:
        interval = mean_ci(values)
        ci = (scale * interval.low, scale * interval.high)
    else:
        ci = (None, None)
    config = (results.get("configs") or {}).get(m.task) or {}
    version = (results.get("versions") or {}).get(m.task)
    n_samples = (results.get("n-samples") or {}).get(m.task) or {}
    counted = [n_samples.get("effective"), results["results"].get(m.task, {}).get("sample_len")]
    n = next((int(c) for c in counted if _is_number(c) and c > 0), len(per_doc))
    details.update(lm_eval_version=version, higher_is_better=m.higher_is_better)
    row = {
        "run_id": run_id,
        "benchmark": m.benchmark,
        "version": _int_version(version),
        "category": CATEGORY,
        "metric": m.metric[:32],
        "n": n,
        "score": scale * m.value,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "generation": to_jsonable(
            {
                "output_type": config.get("output_type"),
                "num_fewshot": (results.get("n-shot") or {}).get(m.task, config.get("num_fewshot")),
                **(config.get("generation_kwargs") or {}),
                **_gen_overrides(results),
            }
        ),
        "data_source": _data_source(config),
        "data_checksum": (results.get("task_hashes") or {}).get(m.task) or None,
        "details": to_jsonable(details),
    }
    scores = [
        {
            "run_id": run_id,
            "benchmark": m.benchmark,
            "sample_id": doc,
            "sample_index": 0,
            "generation_key": generations[(m.task, doc)]["key"],
            "score": float(line[m.metric]),
            "extracted": _extracted(line.get("filtered_resps")),
            "target": to_jsonable(line.get("target")),
            "reason": None,
        }
        for doc, line in per_doc.items()
        if usable
    ]
    return row, scores


def _int_version(version: Any) -> int:
    try:
        return int(float(version))
    except (TypeError, ValueError):
        return 0


def _gen_overrides(results: dict[str, Any]) -> dict[str, Any]:
    gen = (results.get("config") or {}).get("gen_kwargs")
    return {"gen_kwargs_override": gen} if gen else {}


def _data_source(config: dict[str, Any]) -> str | None:
    path = config.get("dataset_path")
    if not path:
        return None
    name = config.get("dataset_name")
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    return f"{path}" + (f"/{name}" if name else "") + (f" {json.dumps(files)}" if files else "")


def chosen_index(filtered: Any) -> int | None:
    """For a multiple-choice sample (filtered_resps = [[loglik, is_greedy], ...]), the index of the best choice."""
    if not isinstance(filtered, list) or not filtered or not all(isinstance(f, list) and f for f in filtered):
        return None
    try:
        logliks = [float(f[0]) for f in filtered]
    except (TypeError, ValueError):
        return None
    return max(range(len(logliks)), key=logliks.__getitem__)


def _extracted(filtered: Any) -> str | None:
    if filtered is None:
        return None
    choice = chosen_index(filtered)
    if choice is not None:
        return str(choice)
    first = filtered[0] if isinstance(filtered, list) and filtered else filtered
    return first if isinstance(first, str) else json.dumps(filtered)


def _upsert_run(
    store: Store,
    run_id: str,
    digest: str,
    name: str,
    fp: dict[str, Any],
    results: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    tags: dict[str, str],
    source: str | None,
) -> bool:
    """Create the run, or refresh the existing one (same content) with the new name, tags and rows."""
    config = results.get("config") or {}
    values = {
        "config_hash": digest,
        "model": name,
        "model_fingerprint": to_jsonable(fp),
        "backend": BACKEND,
        "suite": None,
        "benchmarks": [r["benchmark"] for r in rows],
        "environment": to_jsonable(
            {
                **environment(),  # of the importing process; lm-eval's own versions follow
                "lm_eval": results.get("lm_eval_version"),
                "transformers": results.get("transformers_version"),
                "git_hash": results.get("git_hash"),
            }
        ),
    }
    extra = {
        "imported_from": source,
        "lm_eval_config": config,
        "n-shot": results.get("n-shot"),
        "date": results.get("date"),
    }
    settings = RunSettings(  # no per_benchmark: an imported run cannot be re-planned or rescored
        seed=config.get("random_seed"), limit=config.get("limit"), source=BACKEND, extra=to_jsonable(extra)
    )
    existing = store.find_run(run_id)
    if existing is None:
        store.create_run({"id": run_id, **values, "tags": tags}, settings)
        return True
    store.refresh_run(run_id, {**values, "tags": {**(existing["tags"] or {}), **tags}}, settings)
    return False


def resolve_results_path(path: Path) -> Path:
    """A results file as given; for a folder (lm-eval's --output_path), the one results_*.json inside it."""
    if not path.is_dir():
        return path
    found = sorted(path.rglob("results_*.json"))
    if len(found) != 1:
        what = (
            "no results_*.json" if not found else f"{len(found)} results files ({', '.join(p.name for p in found[:3])})"
        )
        raise UsageError(f"{path} holds {what}; name the results file")
    return found[0]


def import_files(
    store: Store,
    results_path: Path,
    samples: Sequence[Path] = (),
    *,
    model: str | None = None,
    tags: dict[str, str] | None = None,
    fingerprint: dict[str, Any] | None = None,
) -> ImportOutcome:
    """Import a results JSON (or the one results_*.json under a folder) and its samples into the store."""
    results_path = resolve_results_path(Path(results_path))
    results = read_results(results_path)
    files = find_sample_files(results_path, task_names(results), samples)
    by_task = {}
    for task, path in files.items():
        lines = read_samples(path)
        check_task_hash(results, task, lines, str(path))
        by_task[task] = lines
    return import_lm_eval(
        store, results, by_task, model=model, tags=tags, source=str(results_path), fingerprint=fingerprint
    )


def cmd_import_lm_eval(args: argparse.Namespace) -> int:
    """`fusebench import lm-eval RESULTS.json [--samples ...] [--model NAME] [--tag k=v ...]`."""
    from fusebench.report.export import export_run

    store = open_store(args, writable=True)
    outcome = import_files(store, args.results, args.samples or (), model=args.model, tags=dict(args.tag or []))
    export_run(store, outcome.run_id, args.output_dir)
    print(summary(outcome))
    return 0


def summary(outcome: ImportOutcome) -> str:
    """The results table and one line saying what was stored."""
    from fusebench.report.table import results_table

    verb = "imported" if outcome.created else "updated (already imported)"
    return (
        f"{results_table(outcome.results)}\n\nrun {outcome.run_id} {verb}: "
        f"{len(outcome.results)} results, {outcome.n_scores} per-sample scores"
    )


def register(sub: Any) -> None:
    """Add `import lm-eval` to the CLI's subparsers."""
    p = sub.add_parser("import", help="store another tool's results as a fusebench run")
    sources = p.add_subparsers(dest="source", required=True)
    q = sources.add_parser("lm-eval", help="an lm-eval results JSON (and its per-sample logs)")
    q.add_argument("results", type=Path, help="results_*.json written by lm_eval --output_path, or its folder")
    q.add_argument(
        "--samples",
        type=Path,
        nargs="+",
        help="samples_<task>_*.jsonl files or their folder (default: beside RESULTS, same date stamp)",
    )
    q.add_argument("--model", help="model name to store (default: the one lm-eval recorded)")
    q.add_argument("--tag", type=tag, action="append", help="key=value, e.g. family=llama-fuse (repeatable)")
    add_store_args(q)
    q.set_defaults(func=cmd_import_lm_eval)
