"""The score and eval stages of the fusion pipeline on real parts: the sandboxed MBPP scorer on the bundled code
prompts, and the eval stage on the bundled model (reduced: 2 items per benchmark, 16 new tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusebench.errors import UsageError
from fusebench.history import history
from fusebench_train.config import load_config
from fusebench_train.pipeline import Pipeline
from fusebench_train.prompts import load_prompts
from fusebench_train.sampling import score
from tests.conftest import REPO

SMALL = REPO / "examples" / "fuse-small.yaml"
TINY = REPO / "examples" / "fuse-tiny.yaml"  # only the bundled model: no source weights to install


@pytest.mark.timeout(300)
def test_score_checks_code_in_parallel_and_keeps_row_order() -> None:
    cfg = load_config(SMALL)
    prompts = load_prompts(cfg)
    code = [p for p in prompts if p.domain == "code"][:12]
    math = [p for p in prompts if p.domain == "math"][:4]
    rows = []
    for k, p in enumerate(code):  # gold code for even prompts, a wrong function for odd ones
        body = p.item["code"] if k % 2 == 0 else "def nothing():\n    return None"
        rows.append({"prompt_id": p.id, "domain": "code", "source": "s", "index": 0, "text": f"```python\n{body}\n```",
                     "n_tokens": 10, "finish_reason": "stop"})  # fmt: skip
    for k, p in enumerate(math):
        answer = p.target if k < 2 else "-1"
        rows.append({"prompt_id": p.id, "domain": "math", "source": "s", "index": 1, "text": f"\\boxed{{{answer}}}",
                     "n_tokens": 3, "finish_reason": "stop"})  # fmt: skip
    scored = score(cfg, prompts, rows, progress=False)
    assert [(s.prompt_id, s.index) for s in scored] == [(r["prompt_id"], r["index"]) for r in rows]
    assert [s.correct for s in scored] == [k % 2 == 0 for k in range(12)] + [True, True, False, False]


PREFILL = "Below is a Python script with a self-contained function that solves the problem:\n```python\n"


@pytest.mark.timeout(300)
def test_a_prefilled_prompt_set_is_sampled_after_its_prefill_and_scored_and_trained_with_it(tmp_path: Path) -> None:
    """The real bundled model at batch 4 with 2 samples per prompt: the backend gets the prefill as an open
    assistant turn; the journal stores prefill + completion; the training prompt ends at the user turn; the scorer
    finds the code in prefill + a closed block."""
    import yaml

    from fusebench.backends import BackendOptions, make_backend
    from fusebench_train.sampling import sample

    raw = yaml.safe_load(TINY.read_text())
    raw["work_dir"] = str(tmp_path / "w")
    raw["prompts"] = [{"path": str(REPO / "benchmarks" / "data" / "fuse" / "mbpp_fuse_train.jsonl"), "domain": "code",
                       "id_field": "task_id", "prompt_template": '"""\n{text}\n{test_list[0]}\n"""', "prefill": PREFILL,
                       "target_field": "test_list", "limit": 4}]  # fmt: skip
    raw["sample"] = {**raw["sample"], "samples_per_prompt": {"code": 2}, "max_new_tokens": 12, "batch_size": 4}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    cfg = load_config(config)
    prompts = load_prompts(cfg)
    sent: list[list[dict[str, str]]] = []

    def make(source):  # type: ignore[no-untyped-def]
        backend = make_backend("hf", None, BackendOptions(batch_size=4))
        generate = backend.generate

        def recording(convs, params):  # type: ignore[no-untyped-def]
            sent.extend(convs)
            return generate(convs, params)

        backend.generate = recording  # type: ignore[method-assign]
        return backend

    rows = sample(cfg, prompts, tmp_path / "journal.jsonl", make, progress=False)
    assert len(rows) == 4 * 2 * len(cfg.sources)
    assert all(c[-1] == {"role": "assistant", "content": PREFILL} and c[-2]["role"] == "user" for c in sent)
    assert all(r["text"].startswith(PREFILL) and len(r["text"]) > len(PREFILL) for r in rows)
    assert all(p.messages[-1]["role"] == "user" for p in prompts)  # the training prompt: without the prefill
    gold = {p.id: p.item["code"].replace("\r\n", "\n") for p in prompts}
    graded = score(cfg, prompts, [{**r, "text": PREFILL + gold[r["prompt_id"]] + "\n```"} for r in rows], False)
    assert all(s.correct for s in graded)  # prefill + a closed block: the scorer finds the code


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_eval_stage_tags_runs_writes_gains_report_and_history(tmp_path: Path) -> None:
    """Stand-ins for the trained models: the SFT and DPO folders hold only train_state.json and every stage is
    evaluated with the bundled model (training is covered by test_train_e2e); the eval stage itself is real."""
    import yaml

    raw = yaml.safe_load(SMALL.read_text())
    raw["work_dir"] = str(tmp_path / "w")
    raw["eval"] = {"benchmarks": ["gsm8k", "humaneval"], "limit": 2, "max_new_tokens": 16, "batch_size": 2,
                   "evaluate_sources": True, "family": "fam"}  # fmt: skip
    raw["sources"] = [{"name": "self", "model": "smollm2-135m-instruct"}]
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(raw))
    cfg = load_config(config)
    from fusebench.backends import BackendOptions, make_backend

    pipeline = Pipeline(
        cfg,
        make_eval_backend=lambda model: make_backend("hf", None, BackendOptions(batch_size=2)),
        log=lambda msg: None,
    )
    for stage, steps in (("sft", 18), ("dpo", 7)):
        final = pipeline.artifact(stage)
        final.mkdir(parents=True)
        (final / "train_state.json").write_text(json.dumps({"global_step": steps}))
    info = pipeline._stage_eval()
    runs = info["runs"]
    assert list(runs) == ["base", "sft", "fused", "source:self"]
    eval_dir = tmp_path / "w" / "eval"
    table = json.loads((eval_dir / "gains.json").read_text())
    assert [r["benchmark"] for r in table["rows"]] == ["gsm8k", "humaneval"]
    row = table["rows"][0]
    assert {"sft", "fused", "source:self"} <= set(row["delta"]) and "dpo_over_sft" in row
    assert row["best_source"] == "source:self" and "p_holm" in row["fused_vs_best_source"]
    text = (eval_dir / "gains.md").read_text()
    assert "Holm" in text and text == (eval_dir / "runs" / runs["fused"] / "gains.md").read_text()
    assert (eval_dir / "report.html").stat().st_size > 1000
    assert all((eval_dir / "runs" / r / "results.json").is_file() for r in runs.values())
    h = history(pipeline.store(), "fam")
    assert h.steps == ("0", "18", "25") and h.run_ids == (runs["base"], runs["sft"], runs["fused"])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_validate_compares_on_the_validation_prompts_and_reuses_answers(tmp_path: Path) -> None:
    """As above, the SFT and fused stand-ins are the bundled model; generation and scoring are real."""
    import yaml

    from fusebench.backends import BackendOptions, make_backend

    raw = yaml.safe_load(SMALL.read_text())
    raw["work_dir"] = str(tmp_path / "w")
    raw["validation"] = [{**v, "limit": 3} for v in raw["validation"]]
    raw["eval"] = {**raw["eval"], "max_new_tokens": 16, "batch_size": 3}
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(raw))
    built: list[str] = []

    def make(model: str):  # type: ignore[no-untyped-def]
        built.append(model)
        return make_backend("hf", None, BackendOptions(batch_size=3))

    pipeline = Pipeline(load_config(config), make_eval_backend=make, log=lambda msg: None)
    with pytest.raises(UsageError, match="validate needs the sft stage"):
        pipeline.validate()
    for stage in ("sft", "dpo"):
        pipeline.artifact(stage).mkdir(parents=True)
        (pipeline.artifact(stage) / "train_state.json").write_text(json.dumps({"global_step": 1}))
        pipeline.manifest.finish(stage, "inputs", pipeline.artifact(stage))
    table = pipeline.validate()
    assert [(r["domain"], r["n"]) for r in table["rows"]] == [("math", 3), ("code", 3)]
    assert built == [raw["target"], str(pipeline.artifact("sft")), str(pipeline.artifact("dpo"))]
    for r in table["rows"]:
        assert set(r["scores"]) == {"base", "sft", "fused"}
        assert r["delta"]["fused"]["estimate"] == 0.0 and r["delta"]["fused"]["p_holm"] == 1.0  # same weights
    journals = sorted(p.name for p in (tmp_path / "w" / "validation").glob("*.jsonl"))
    assert len(journals) == 3
    assert all(len((tmp_path / "w" / "validation" / j).read_text().splitlines()) == 6 for j in journals)
    assert pipeline.validate() == table and len(built) == 3  # answers come from the journals
    raw["validation"] = [{**v, "system": "Be brief."} for v in raw["validation"]]  # changed prompts: asked again
    config.write_text(yaml.safe_dump(raw))
    pipeline = Pipeline(load_config(config), make_eval_backend=make, log=lambda msg: None)
    assert pipeline.validate()["rows"][0]["n"] == 3 and len(built) == 6
    assert len(list((tmp_path / "w" / "validation").glob("*.jsonl"))) == 6


@pytest.mark.timeout(300)
def test_sampling_in_the_vllm_venv_gets_the_config_and_reports_its_failure(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The `.venv-vllm` here is this interpreter (no vLLM installed): the child process rebuilds the config from JSON,
    loads the prompts, and stops with one line when the vLLM backend cannot start; the stage fails with exit 2."""
    import sys

    from fusebench_train.sampling import sample_in_venv

    venv = tmp_path / ".venv-vllm"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    cfg = load_config(TINY, work_dir=str(tmp_path / "w"))
    with pytest.raises(UsageError, match=r"sampling with vLLM in .*\.venv-vllm failed \(exit 2\)"):
        sample_in_venv(cfg, venv, tmp_path / "journal.jsonl")
    err = capfd.readouterr().err.strip().splitlines()
    assert err == ["error: the vllm backend needs vLLM: bash scripts/install-vllm.sh (its own venv, .venv-vllm)"]


@pytest.mark.timeout(300)
def test_eval_in_the_vllm_venv_stores_a_tagged_run_and_reports_it_back(tmp_path: Path) -> None:
    """The `.venv-vllm` here is this interpreter and the child builds the HF backend (no vLLM here): a real eval of
    the bundled model in the child, stored in the parent's store; a bad input is the child's one line and exit 2."""
    import sys

    from fusebench.backends import BackendOptions
    from fusebench.evaluate import EvalConfig
    from fusebench.store import Store
    from fusebench_train.venv_eval import eval_in_venv

    venv = tmp_path / ".venv-vllm"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    config = EvalConfig(
        benchmarks=["gsm8k", "mbpp_plus"],
        limit=3,
        generation={"max_new_tokens": 24},
        tags={"stage": "base"},
        progress=False,
    )
    got = eval_in_venv(venv, config, url, BackendOptions(batch_size=3))
    assert sorted(r["benchmark"] for r in got.results) == ["gsm8k", "mbpp_plus"]
    assert all(r["n"] == 3 for r in got.results)
    store = Store(url)
    assert store.get_run(got.run_id)["tags"] == {"stage": "base"}
    assert len(store.get_scores(got.run_id, "gsm8k")) == 3
    with pytest.raises(UsageError, match=r"evaluating None with vLLM in .*\.venv-vllm failed \(exit 2\)"):
        eval_in_venv(venv, EvalConfig(benchmarks=["no_such_benchmark"], progress=False), url, BackendOptions())


@pytest.mark.timeout(300)
def test_a_changed_sample_stage_keeps_the_responses_whose_source_prompt_and_settings_did_not_change(
    tmp_path: Path,
) -> None:
    """Changing one source's settings changes the sample stage's inputs. The stage used to delete its journal then,
    so every source was sampled again (seen: 83 minutes of fuse-small sampling lost to a change in how prompt sets
    are hashed). Now each response carries the key of what produced it (source, conversation, sampling settings)
    and only responses whose key changed are sampled again: here the real bundled model, 2 sources x 3 prompts x
    2 samples at batch 3."""
    from fusebench.backends import BackendOptions, make_backend
    from fusebench_train.config import parse_config
    from tests.conftest import minimal_fuse_config

    lines = [json.dumps({"question": f"{a}+{a}?", "answer": f"#### {2 * a}"}) for a in (1, 2, 3)]
    raw = minimal_fuse_config(tmp_path)
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    raw["sources"] = [{"name": "a", "model": "smollm2-135m-instruct", "temperature": 0.7},
                      {"name": "b", "model": "smollm2-135m-instruct", "temperature": 0.9}]  # fmt: skip
    raw["sample"] = {"samples_per_prompt": {"math": 2}, "max_new_tokens": 8, "batch_size": 3, "backend": "hf"}
    sent: dict[str, int] = {}

    def make(source):  # type: ignore[no-untyped-def]
        backend = make_backend("hf", None, BackendOptions(batch_size=3))
        generate = backend.generate

        def counting(convs, params):  # type: ignore[no-untyped-def]
            sent[source.name] = sent.get(source.name, 0) + len(convs)
            return generate(convs, params)

        backend.generate = counting  # type: ignore[method-assign]
        return backend

    def run(config: dict) -> list[dict]:  # type: ignore[type-arg]
        Pipeline(parse_config(config), make_source_backend=make, log=lambda msg: None).run(until="sample")
        journal = tmp_path / "w" / "sample" / "journal.jsonl"
        return sorted(
            (json.loads(x) for x in journal.read_text().splitlines()),
            key=lambda r: (r["source"], r["prompt_id"], r["index"]),
        )

    first = run(raw)
    assert len(first) == 2 * 3 * 2 and sent == {"a": 3, "b": 3}
    sent.clear()
    raw["sources"][1]["temperature"] = 0.5
    second = run(raw)
    assert sent == {"b": 3}  # source a: nothing sampled again
    assert [r for r in second if r["source"] == "a"] == [r for r in first if r["source"] == "a"]
    assert len([r for r in second if r["source"] == "b"]) == 3 * 2
    sent.clear()
    run(raw)  # unchanged: the stage is up to date
    assert sent == {}
