"""lm-eval interop: importing its results/samples files, the lm-eval engine, and export to MLflow/W&B.

The fixtures in tests/fixtures/lm_eval/ are real lm-eval 0.4.13 output (its `dummy` model on two local
tasks; see make_fixtures.py). Engine tests run lm-eval for real: its dummy model (fast) and the bundled model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusebench.compare import compare, diff_runs
from fusebench.errors import UsageError
from fusebench.evaluate import rescore_run
from fusebench.history import gate
from fusebench.interop import export as export_mod
from fusebench.interop import lm_eval_import as imp
from fusebench.interop.lm_eval_engine import LmEvalRequest, evaluate, run_lm_eval_engine, task_specs
from fusebench.stats import mean_ci
from fusebench.store import Store
from tests.conftest import REPO, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "lm_eval"
Z95 = 1.959963984540054


def results_file(run: str) -> Path:
    return next((FIXTURES / run).glob("results_*.json"))


def samples_of(run: str, task: str) -> list[dict[str, Any]]:
    path = next((FIXTURES / run).glob(f"samples_{task}_*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'fusebench.db'}")


def counts(store: Store) -> dict[str, int]:
    path = store.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        tables = ("runs", "generations", "scores", "run_benchmarks")
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


def test_import_stores_every_metric_with_stderr_ci_and_per_sample_scores(store: Store) -> None:
    raw = json.loads(results_file("seed1").read_text())
    outcome = imp.import_files(store, results_file("seed1"), tags={"family": "f"})
    run = store.get_run(outcome.run_id)
    assert outcome.created and run["status"] == "complete" and run["backend"] == "lm-eval"
    assert run["model"] == raw["model_name"] and run["tags"] == {"family": "f"}
    results = {r["benchmark"]: r for r in store.get_benchmark_results(run["id"])}
    expected_ids = {
        "lm-eval:gsm8k_local:exact_match,strict": ("gsm8k_local", "exact_match", "strict"),
        "lm-eval:gsm8k_local:exact_match": ("gsm8k_local", "exact_match", "none"),
        "lm-eval:mmlu_pro_mc:acc": ("mmlu_pro_mc", "acc", "none"),
        "lm-eval:mmlu_pro_mc:acc_norm": ("mmlu_pro_mc", "acc_norm", "none"),
    }
    assert set(results) == set(expected_ids) == set(run["benchmarks"])
    for bench, (task, metric, filt) in expected_ids.items():
        value, stderr = raw["results"][task][f"{metric},{filt}"], raw["results"][task][f"{metric}_stderr,{filt}"]
        row = results[bench]
        assert row["score"] == pytest.approx(100 * value)
        assert row["ci_low"] == pytest.approx(100 * max(0.0, value - Z95 * stderr))
        assert row["ci_high"] == pytest.approx(100 * min(1.0, value + Z95 * stderr))
        assert row["n"] == 12 and row["category"] == "lm-eval" and row["metric"] == metric
        assert row["data_checksum"] == raw["task_hashes"][task]
        lines = [s for s in samples_of("seed1", task) if s["filter"] == filt]
        scores = {s["sample_id"]: s for s in store.get_scores(run["id"], bench)}
        assert {sid: s["score"] for sid, s in scores.items()} == {str(s["doc_id"]): s[metric] for s in lines}
        assert sum(s["score"] for s in scores.values()) / 12 == pytest.approx(value)
    assert results["lm-eval:gsm8k_local:exact_match"]["generation"]["max_gen_toks"] == 16
    # every score points at a stored generation carrying lm-eval's raw response
    scores = store.get_scores(run["id"])
    gens = store.get_generations(s["generation_key"] for s in scores)
    assert len(scores) == 48 and len(gens) == 24
    first = next(s for s in samples_of("seed1", "gsm8k_local") if s["doc_id"] == 0)
    gsm = next(g for g in gens.values() if g["benchmark"] == "lm-eval:gsm8k_local" and g["sample_id"] == "0")
    assert gsm["output"] == first["resps"][0][0] and gsm["prompt"] == first["arguments"]["gen_args_0"]["arg_0"]


def test_raw_and_lower_is_better_metrics_are_stored_as_reported_without_items(store: Store) -> None:
    results = {
        "results": {
            "t": {"alias": "t", "word_perplexity,none": 31.5, "brier_score,none": 0.25, "acc,none": 0.5,
                  "acc_stderr,none": "N/A"}
        },
        "higher_is_better": {"t": {"word_perplexity": False, "brier_score": False, "acc": True}},
    }  # fmt: skip
    lines = [
        {"doc_id": d, "filter": "none", "acc": float(d == 0), "brier_score": 0.25, "word_perplexity": 31.5}
        for d in range(2)
    ]
    outcome = imp.import_lm_eval(store, results, {"t": lines})
    rows = {r["benchmark"]: r for r in outcome.results}
    assert rows["lm-eval:t:word_perplexity"]["score"] == 31.5 and rows["lm-eval:t:brier_score"]["score"] == 0.25
    assert rows["lm-eval:t:brier_score"]["details"]["units"] == "raw"
    assert rows["lm-eval:t:word_perplexity"]["ci_low"] is None  # no stderr and no per-item values to use
    # no stderr ("N/A", e.g. bootstrap_iters=0): the CI comes from the per-sample values instead
    interval = mean_ci([1.0, 0.0])
    assert rows["lm-eval:t:acc"]["score"] == 50.0 and rows["lm-eval:t:acc"]["n"] == 2
    assert (rows["lm-eval:t:acc"]["ci_low"], rows["lm-eval:t:acc"]["ci_high"]) == pytest.approx(
        (100 * interval.low, 100 * interval.high)
    )
    assert {s["benchmark"] for s in store.get_scores(outcome.run_id)} == {"lm-eval:t:acc"}


def test_multiple_choice_sample_shows_the_chosen_option(store: Store) -> None:
    outcome = imp.import_files(store, results_file("seed1"))
    line = samples_of("seed1", "mmlu_pro_mc")[3]
    logliks = [float(f[0]) for f in line["filtered_resps"]]
    best = logliks.index(max(logliks))
    score = next(s for s in store.get_scores(outcome.run_id, "lm-eval:mmlu_pro_mc:acc") if s["sample_id"] == "3")
    assert score["extracted"] == str(best)
    assert score["score"] == float(best == line["doc"]["answer_index"])
    gen = store.get_generations([score["generation_key"]])[score["generation_key"]]
    assert gen["output"] == line["arguments"][f"gen_args_{best}"]["arg_1"]


def test_import_twice_is_idempotent_and_adding_samples_later_fills_the_same_run(store: Store, tmp_path: Path) -> None:
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(results_file("seed1"), lone)
    first = imp.import_files(store, lone / results_file("seed1").name, tags={"a": "1"})
    assert first.n_scores == 0 and counts(store)["scores"] == 0
    second = imp.import_files(store, results_file("seed1"), tags={"b": "2"})
    third = imp.import_files(store, results_file("seed1"))
    assert first.run_id == second.run_id == third.run_id and not second.created and not third.created
    assert counts(store) == {"runs": 1, "generations": 24, "scores": 48, "run_benchmarks": 4}
    assert store.get_run(first.run_id)["tags"] == {"a": "1", "b": "2"}
    other = imp.import_files(store, results_file("seed2"))
    assert other.run_id != first.run_id and counts(store)["runs"] == 2


def test_rescoring_an_imported_run_is_a_usage_error_that_changes_nothing(store: Store) -> None:
    run_id = imp.import_files(store, results_file("seed1")).run_id
    before = counts(store)
    with pytest.raises(UsageError, match="imported from lm-eval"):
        rescore_run(store, run_id)
    assert counts(store) == before and store.get_run(run_id)["status"] == "complete"


def test_compare_diff_and_gate_pair_the_items_of_two_imported_runs(store: Store) -> None:
    a = imp.import_files(store, results_file("seed1"), model="dummy-a").run_id
    b = imp.import_files(store, results_file("seed2"), model="dummy-b").run_id
    bench = "lm-eval:mmlu_pro_mc:acc"
    acc_a = {str(s["doc_id"]): s["acc"] for s in samples_of("seed1", "mmlu_pro_mc")}
    acc_b = {str(s["doc_id"]): s["acc"] for s in samples_of("seed2", "mmlu_pro_mc")}
    comparison = compare(store, [a, b])
    row = next(r for r in comparison.rows if r.benchmark == bench)
    delta = row.deltas[0]
    assert delta is not None and delta.n_shared == 12 and delta.test == "mcnemar"
    assert delta.delta.estimate == pytest.approx(100 * sum(acc_b[k] - acc_a[k] for k in acc_a) / 12)
    assert comparison.flags == ()  # same tasks, params, items: like for like
    diff = diff_runs(store, a, b, bench)
    assert {p.sample_id for p in diff.regressions} == {k for k in acc_a if acc_a[k] == 1 and acc_b[k] == 0}
    assert {p.sample_id for p in diff.improvements} == {k for k in acc_a if acc_a[k] == 0 and acc_b[k] == 1}
    # 12 items with one net flip cannot show a significant drop: the gate passes
    assert gate(store, b, a).passed
    assert gate(store, "dummy-b", "dummy-a", benchmarks=[bench]).passed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not an lm-eval results file"),
        ('{"results": {}}', "not an lm-eval results file"),
        ('{"results": {"t": 3}}', "not an object"),
        ('{"results": {"t": {"alias": "t", "acc,none": "N/A"}}}', "no numeric metric"),
        (b"\xff\xfe\x00", "cannot read"),
    ],
)
def test_bad_results_file_is_a_usage_error(store: Store, tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "results_x.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UsageError, match=message):
        imp.import_files(store, path)
    assert counts(store)["runs"] == 0


def test_missing_file_corrupt_samples_and_foreign_samples_are_usage_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        imp.import_files(store, tmp_path / "nope.json")
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "seed1", run)
    samples = next(run.glob("samples_mmlu_pro_mc_*.jsonl"))
    good = samples.read_text()
    samples.write_text(good + "{truncated\n")
    with pytest.raises(UsageError, match=r"\.jsonl:13 is not valid JSON"):
        imp.import_files(store, next(run.glob("results_*.json")))
    samples.write_text("".join(good.splitlines(keepends=True)[:-1]))  # one sample short: lm-eval's hash differs
    with pytest.raises(UsageError, match="does not belong to these results"):
        imp.import_files(store, next(run.glob("results_*.json")))
    assert counts(store)["runs"] == 0


def test_samples_of_another_run_with_other_scores_are_not_paired(store: Store) -> None:
    # same docs and prompts (lm-eval's hashes match) but another seed's answers: they do not add up to the score
    foreign = next((FIXTURES / "seed2").glob("samples_mmlu_pro_mc_*.jsonl"))
    outcome = imp.import_files(store, results_file("seed1"), [foreign])
    acc = next(r for r in outcome.results if r["benchmark"] == "lm-eval:mmlu_pro_mc:acc")
    assert "do not average" in acc["details"]["samples_note"]
    assert store.get_scores(outcome.run_id, "lm-eval:mmlu_pro_mc:acc") == []


def test_sample_discovery_beside_results_given_files_and_folders(tmp_path: Path) -> None:
    tasks = ["gsm8k_local", "mmlu_pro_mc"]
    found = imp.find_sample_files(results_file("seed1"), tasks)
    assert set(found) == set(tasks) and all(p.parent == FIXTURES / "seed1" for p in found.values())
    # files stamped with another date beside the results are someone else's
    mixed = tmp_path / "mixed"
    shutil.copytree(FIXTURES / "seed1", mixed)
    for path in (FIXTURES / "seed2").glob("samples_*"):
        shutil.copy(path, mixed)
    assert imp.find_sample_files(next(mixed.glob("results_*.json")), tasks) == {
        t: mixed / p.name for t, p in found.items()
    }
    with pytest.raises(UsageError, match="several samples files for task"):
        imp.find_sample_files(tmp_path / "results.json", tasks, [mixed])
    one = next((FIXTURES / "seed2").glob("samples_mmlu_pro_mc_*"))
    assert imp.find_sample_files(tmp_path / "results.json", tasks, [one]) == {"mmlu_pro_mc": one}
    renamed = tmp_path / "my_samples.jsonl"
    shutil.copy(one, renamed)
    assert imp.find_sample_files(tmp_path / "r.json", ["only"], [renamed]) == {"only": renamed}
    with pytest.raises(UsageError, match="cannot tell which task"):
        imp.find_sample_files(tmp_path / "r.json", tasks, [renamed])


def test_a_folder_names_its_single_results_file(store: Store) -> None:
    assert imp.import_files(store, FIXTURES / "seed2").run_id == imp.import_files(store, results_file("seed2")).run_id
    with pytest.raises(UsageError, match="2 results files"):
        imp.import_files(store, FIXTURES)


def test_task_names_with_shared_prefixes_pick_the_longest_match() -> None:
    name = "samples_arc_easy_2026-01-02T03-04-05.123456.jsonl"
    assert imp._task_of(name, ["arc", "arc_easy"], None) == "arc_easy"
    assert imp._task_of(name, ["arc"], None) is None
    assert imp._task_of(name, ["arc_easy"], "2026-01-02T03-04-05.999999") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
metric_keys = st.sampled_from(["acc,none", "acc_stderr,none", "alias", "em", "perplexity,none", "f1,x", "sample_len"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    doc=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"results": st.dictionaries(st.text(min_size=1, max_size=8), st.dictionaries(metric_keys, json_values))}
        ),
    )
)
def test_any_json_either_imports_or_is_a_usage_error(tmp_path_factory: pytest.TempPathFactory, doc: Any) -> None:
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "results.json"
    path.write_text(json.dumps(doc))
    store = Store(f"sqlite:///{folder / 'db.sqlite'}")
    try:
        outcome = imp.import_files(store, path)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    rows = store.get_benchmark_results(outcome.run_id)
    assert rows and all(r["benchmark"].startswith("lm-eval:") and len(r["benchmark"]) <= 64 for r in rows)


sample_lines = st.lists(
    st.fixed_dictionaries(
        {"doc_id": st.integers(0, 3), "filter": st.sampled_from(["none", "x"])},
        optional={"resps": json_values, "filtered_resps": json_values, "arguments": json_values, "acc": json_values,
                  "target": json_values},
    ),
    max_size=6,
)  # fmt: skip


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=sample_lines)
def test_any_sample_lines_either_import_or_are_a_usage_error(
    tmp_path_factory: pytest.TempPathFactory, lines: list[dict[str, Any]]
) -> None:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'db.sqlite'}")
    results = {"results": {"t": {"acc,none": 0.5, "acc_stderr,none": 0.1}}}
    try:
        outcome = imp.import_lm_eval(store, results, {"t": lines})
    except UsageError as exc:
        assert "duplicate" in str(exc) or "twice" in str(exc)
        return
    for score in store.get_scores(outcome.run_id):
        assert 0.0 <= score["score"] <= 1.0 and score["generation_key"] in store.get_generations(
            [score["generation_key"]]
        )


@given(
    task=st.text(min_size=1, max_size=80),
    metric=st.text(min_size=1, max_size=40),
    filt=st.text(min_size=1, max_size=40),
)
def test_benchmark_ids_fit_the_store_and_stay_distinct(task: str, metric: str, filt: str) -> None:
    a = imp._Metric(task, metric, filt, 0.5, None).benchmark
    b = imp._Metric(task + "x", metric, filt, 0.5, None).benchmark
    assert len(a) <= 64 and a.startswith("lm-eval:") and a != b


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    from fusebench.interop import register

    register(sub)
    return parser


def test_import_command_through_its_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        ["import", "lm-eval", str(results_file("seed1")), "--model", "org/checkpoint-400", "--tag", "family=x",
         "--output-dir", str(tmp_path)]
    )  # fmt: skip
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "lm-eval:mmlu_pro_mc:acc" in out and "48 per-sample scores" in out
    store = Store(f"sqlite:///{tmp_path / 'fusebench.db'}")
    (run,) = store.list_runs()
    assert run["model"] == "org/checkpoint-400" and run["tags"] == {"step": "400", "family": "x"}
    assert (tmp_path / "runs" / run["id"] / "samples" / "lm-eval:mmlu_pro_mc:acc.jsonl").is_file()


@pytest.mark.timeout(120)
def test_cli_import_and_bad_file(tmp_path: Path) -> None:
    """Through `python -m fusebench.cli` (needs the `import` command wired into cli.py)."""
    db = str(tmp_path / "s.db")
    ok = run_cli("import", "lm-eval", str(results_file("seed1")), "--store", db)
    assert ok.returncode == 0, ok.stderr
    again = run_cli("import", "lm-eval", str(results_file("seed1")), "--store", db)
    assert again.returncode == 0 and "already imported" in again.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    failed = run_cli("import", "lm-eval", str(bad), "--store", db)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and "not valid JSON" in failed.stderr


# --- engine -------------------------------------------------------------------------------------------

MC_TASK = """\
task: mmlu_pro_mc_local
dataset_path: parquet
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{options}}}}"
doc_to_target: "{{{{answer_index}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""

GEN_TASK = """\
task: gsm8k_fusebench_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer.split('####')[-1].strip()}}}}"
generation_kwargs:
  until: ["<|im_end|>"]
  max_gen_toks: 12
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def test_task_specs_split_files_from_names(tmp_path: Path) -> None:
    task = tmp_path / "t.yaml"
    task.write_text("task: t\n")
    specs, folders, names = task_specs([str(task), "hellaswag"])
    assert specs == [str(task.resolve()), "hellaswag"] and folders == [str(tmp_path.resolve())]
    assert names == ["hellaswag"]
    with pytest.raises(UsageError, match="not found"):
        task_specs([str(tmp_path / "missing.yaml")])
    with pytest.raises(UsageError, match="names no lm-eval task"):
        task_specs([])


def test_engine_without_lm_eval_installed_is_a_usage_error(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lm_eval", None)
    with pytest.raises(UsageError, match="needs the lm-eval package"):
        evaluate(LmEvalRequest(lm="dummy", model_args={}, tasks=["t"], model_name="d"), store)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_engine_with_lm_eval_dummy_model_stores_a_run(store: Store, tmp_path: Path) -> None:
    task = tmp_path / "mc.yaml"
    task.write_text(MC_TASK.format(data=REPO / "benchmarks/data/mmlu_pro/validation-00000-of-00001.parquet"))
    request = LmEvalRequest(lm="dummy", model_args={}, tasks=[str(task)], model_name="dummy", limit=6, tags={"k": "v"})
    outcome = evaluate(request, store)
    run = store.get_run(outcome.run_id)
    assert run["backend"] == "lm-eval" and run["model"] == "dummy" and run["tags"] == {"k": "v"}
    (row,) = store.get_benchmark_results(run["id"])
    scores = store.get_scores(run["id"], "lm-eval:mmlu_pro_mc_local:acc")
    assert row["n"] == 6 and len(scores) == 6
    assert row["score"] == pytest.approx(100 * sum(s["score"] for s in scores) / 6)
    with pytest.raises(UsageError, match="unknown lm-eval task"):
        evaluate(LmEvalRequest(lm="dummy", model_args={}, tasks=["no_such_task_xyz"], model_name="d"), store)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_engine_runs_the_bundled_model_through_lm_eval_hf(store: Store, tmp_path: Path) -> None:
    from fusebench.models import resolve_model

    task = tmp_path / "gsm8k.yaml"
    task.write_text(GEN_TASK.format(data=REPO / "benchmarks/data/gsm8k/test.jsonl"))
    run_id = run_lm_eval_engine(None, [str(task)], 2, store, {"family": "lm"}, 2)
    run = store.get_run(run_id)
    assert run["model"] == resolve_model(None).name and run["backend"] == "lm-eval"
    assert run["model_fingerprint"]["weights"] == resolve_model(None).fingerprint
    (row,) = store.get_benchmark_results(run_id)
    assert row["benchmark"] == "lm-eval:gsm8k_fusebench_local:exact_match" and row["n"] == 2
    scores = store.get_scores(run_id)
    gens = store.get_generations(s["generation_key"] for s in scores)
    assert len(scores) == 2 and all(g["output"].strip() for g in gens.values())
    assert all("<|im_start|>" in g["prompt"] for g in gens.values())  # the chat template was applied


# --- export -------------------------------------------------------------------------------------------


def test_export_without_the_package_is_one_line_usage_error(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = imp.import_files(store, results_file("seed1")).run_id
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: import raises ImportError
    with pytest.raises(UsageError, match=r"needs the mlflow package: pip install mlflow"):
        export_mod.export_to(store, run_id, "mlflow", tmp_path)
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(UsageError, match=r"needs the wandb package"):
        export_mod.export_to(store, run_id, "wandb", tmp_path)
    with pytest.raises(UsageError, match="unknown export target"):
        export_mod.export_to(store, run_id, "neptune", tmp_path)


def test_export_when_mlflow_lacks_a_module_is_one_line_usage_error(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow", reason="mlflow (or mlflow-skinny) is not installed")
    run_id = imp.import_files(store, results_file("seed1")).run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # its SQL store needs alembic
    monkeypatch.setitem(sys.modules, "alembic", None)  # as where mlflow-skinny comes without it
    with pytest.raises(UsageError, match=r"mlflow needs the module 'alembic': pip install alembic"):
        export_mod.export_to(store, run_id, "mlflow", tmp_path / "out")


@pytest.mark.timeout(120)
def test_export_to_a_real_mlflow_file_store(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow", reason="mlflow (or mlflow-skinny) is not installed")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run_id = imp.import_files(store, results_file("seed1"), tags={"family": "f"}).run_id
    where = export_mod.export_to(store, run_id, "mlflow", tmp_path / "out", project="fb-test")
    (logged,) = mlflow.search_runs(experiment_names=["fb-test"], output_format="list")
    assert logged.info.run_id in where
    metrics, params = logged.data.metrics, logged.data.params
    acc = next(r for r in store.get_benchmark_results(run_id) if r["benchmark"] == "lm-eval:mmlu_pro_mc:acc")
    assert metrics["lm-eval:mmlu_pro_mc:acc/score"] == pytest.approx(acc["score"])
    assert metrics["lm-eval:gsm8k_local:exact_match_strict/n"] == 12
    assert params["fusebench_run_id"] == run_id and params["backend"] == "lm-eval"
    assert logged.data.tags["fusebench.family"] == "f"
    (artifact,) = mlflow.artifacts.list_artifacts(run_id=logged.info.run_id)
    assert artifact.path == "results.json"
    local = mlflow.artifacts.download_artifacts(run_id=logged.info.run_id, artifact_path="results.json")
    assert json.loads(Path(local).read_text())["run"]["id"] == run_id
