"""Judge modes as registered objects: the built-ins by name, a third-party mode through the `fusebench.judge_modes`
entry-point group, and the proof of #13: a new 1-10 rated judged benchmark is one YAML and one module
(tests/judged_plugin/), and `gate --max-drop` counts its rating drops on the 0-100 scale with no other edit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from test_judge_stage import Scripted

from fusebench.cli import main
from fusebench.data import Item
from fusebench.errors import UsageError
from fusebench.evaluate import EvalConfig, run_eval
from fusebench.judging import modes
from fusebench.judging.modes.base import JudgeMode
from fusebench.judging.stage import BenchmarkJudgments, JudgeOptions, JudgeUsage, Judgment
from fusebench.scale import PROPORTION, RATING_10
from fusebench.scoring import scale_of, score_judged
from fusebench.spec import INCLUDE_ENV, get_benchmark
from fusebench.store import Store
from tests.conftest import REPO, cli_env, run_cli

PLUGIN = REPO / "tests" / "judged_plugin"  # helpfulness.yaml, its questions and helpfulness_mode.py
ENTRY_POINT = EntryPoint("helpfulness", "helpfulness_mode:Helpfulness", modes.ENTRY_POINT_GROUP)


def _clear_caches() -> None:
    modes.NAMES.refresh()
    modes.get_mode.cache_clear()


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if the package shipping helpfulness_mode were installed (its entry point) and its spec folder included."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.setattr(modes.NAMES, "plugins", lambda: {ENTRY_POINT.name: ENTRY_POINT})
    monkeypatch.setenv(INCLUDE_ENV, str(PLUGIN))
    _clear_caches()
    yield
    _clear_caches()


def test_builtin_modes_own_their_scale_and_logprobs() -> None:
    assert modes.known_names() >= {"pairwise", "single", "alpaca_eval", "alignbench"}
    scales = {name: modes.get_mode(name).scale for name in ("pairwise", "single", "alpaca_eval", "alignbench")}
    assert scales == {"pairwise": PROPORTION, "single": RATING_10, "alpaca_eval": PROPORTION, "alignbench": RATING_10}
    assert [modes.get_mode(n).logprobs for n in ("pairwise", "single", "alpaca_eval")] == [0, 0, 5]
    assert scale_of(get_benchmark("mt_bench")) == RATING_10 and scale_of(get_benchmark("arena_hard")) == PROPORTION
    params = JudgeOptions().params(get_benchmark("alpaca_eval2").judge)  # type: ignore[arg-type]
    assert params.logprobs == 5


def test_unknown_mode_is_a_usage_error_naming_the_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match=r"unknown judge mode 'nope'.*pairwise"):
        modes.get_mode("nope")
    spec = (PLUGIN / "helpfulness.yaml").read_text().replace("id: helpfulness", "id: nope_bench")
    (tmp_path / "nope_bench.yaml").write_text(spec.replace("mode: helpfulness", "mode: nope"))
    (tmp_path / "questions.jsonl").write_text((PLUGIN / "questions.jsonl").read_text())
    monkeypatch.setenv(INCLUDE_ENV, str(tmp_path))
    assert main(["eval", "--benchmarks", "nope_bench", "--limit", "1", "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "judge mode 'nope'" in err and "nope_bench.yaml" in err and len(err.strip().splitlines()) == 1, err


def test_an_entry_point_mode_loads_only_when_asked(installed: None) -> None:
    assert modes.is_known("helpfulness") and "helpfulness" in modes.known_names()
    mode = modes.get_mode("helpfulness")
    assert isinstance(mode, JudgeMode) and type(mode).__module__ == "helpfulness_mode"
    assert scale_of(get_benchmark("helpfulness")) == RATING_10


def _rating(conv: list[dict[str, str]]) -> str:
    """The scripted judge: 4 + (question length mod 5), one more for a "strong" answer (1-10 either way)."""
    user = conv[-1]["content"]
    question = user.split("Question: ")[1].split("\n\nAnswer: ")[0]
    return f"The answer is fine. Rating: [[{4 + len(question) % 5 + ('strong' in user)}]]"


def _contestant(label: str) -> Scripted:
    return Scripted(label, lambda conv: f"{label} answer to: {conv[-1]['content'][:40]}")


def _run(store: Store, label: str, sent: int = 24) -> Any:
    config = EvalConfig(benchmarks=["helpfulness"], progress=False, judge=JudgeOptions())
    judge = Scripted("judge", _rating)
    outcome = run_eval(config, store, lambda: _contestant(label), make_judge=lambda model: judge)
    assert outcome.status == "complete" and len(judge.sent) == sent
    return outcome


@pytest.mark.timeout(120)
def test_a_new_rated_judged_benchmark_is_one_yaml_and_one_module_and_gates_on_its_scale(
    installed: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two contestants on all 24 items; the judge is scripted (no judge that rates on cue runs here): the weak one is
    rated exactly 1 point lower on every item, i.e. 10 points on the 0-100 scale gate counts in."""
    db = tmp_path / "db.sqlite"
    store = Store(f"sqlite:///{db}")
    strong, weak = _run(store, "strong"), _run(store, "weak")
    questions = [json.loads(line)["question"] for line in (PLUGIN / "questions.jsonl").read_text().splitlines()]
    expected = sum(4 + len(q) % 5 for q in questions) / len(questions)
    [row_strong], [row_weak] = strong.results, weak.results
    assert row_strong["score"] == pytest.approx(expected + 1) and row_weak["score"] == pytest.approx(expected)
    assert row_strong["ci_low"] < row_strong["score"] < row_strong["ci_high"]
    assert set(row_strong["details"]["breakdown"]) == {"cooking", "health", "home", "money", "travel", "work"}
    assert all(v["n"] == 4 for v in row_strong["details"]["breakdown"].values())
    assert _run(store, "strong", sent=0).results[0]["score"] == row_strong["score"]  # judgments stored, reused
    capsys.readouterr()
    store_args = ["--store", str(db)]
    assert main(["gate", weak.run_id, "--baseline", strong.run_id, "--max-drop", "5", *store_args]) == 1
    out = capsys.readouterr().out
    assert out.startswith("gate FAIL") and "helpfulness" in out, out
    assert main(["gate", weak.run_id, "--baseline", strong.run_id, "--max-drop", "15", *store_args]) == 0
    assert capsys.readouterr().out.startswith("gate PASS")


def _site(tmp_path: Path) -> Path:
    """A site folder holding the dist-info of a package that declares the helpfulness entry point."""
    dist = tmp_path / "site" / "helpfulness_mode-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: helpfulness-mode\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT.group}]\n{ENTRY_POINT.name} = {ENTRY_POINT.value}\n")
    return dist.parent


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_new_benchmark_runs_from_the_cli_with_a_real_local_judge(tmp_path: Path) -> None:
    """`fusebench eval` in a fresh process finds the mode through its installed entry point and the spec through
    --include-path; the bundled model answers and judges (a real local judge: its ratings are whatever it writes)."""
    env = cli_env(PYTHONPATH=f"{_site(tmp_path)}:{PLUGIN}:{REPO}")
    out = tmp_path / "out"
    done = run_cli(
        "--include-path", str(PLUGIN), "eval", "--benchmarks", "helpfulness", "--limit", "4",
        "--max-new-tokens", "24", "--judge", "smollm2-135m-instruct", "--judge-backend", "hf",
        "--judge-max-tokens", "24", "--no-progress", "--output-dir", str(out), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    match = re.search(r"^run (\S+?):", done.stdout, re.M)
    assert match, done.stdout
    [row] = Store(f"sqlite:///{out / 'fusebench.db'}").get_benchmark_results(match.group(1))
    assert row["benchmark"] == "helpfulness" and row["scale"] == RATING_10.to_dict()
    details = row["details"]  # a real small judge: it rates, but rarely in the [[x]] format (read loosely then)
    assert details["n_judgments"] == 4 and details["judge_failures"] < 4, details
    assert row["score"] is not None and 1 <= row["score"] <= 10


def test_alignbench_mode_from_a_flat_local_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AlignBench's files carry no license and are not on this machine: a flat copy written here (our own template,
    the same file names) drives the mode's tasks, verdicts, aggregation and per-category breakdown."""
    from fusebench.judging.metrics import alignbench_score  # pandas, scikit-learn

    (tmp_path / "judge_prompt_template.txt").write_text("{category}/{dimensions}/{question}/{reference}/{answer}")
    configs = {
        "dimension_set": {"计算": ["正确性", "完备性"]},
        "dimension_definition": {"正确性": "是否正确", "完备性": "是否完整"},
        "subcategory_question_mapping": {"初等数学": "计算", "逻辑": "计算"},
    }
    for name, value in configs.items():
        (tmp_path / f"config_{name}.json").write_text(json.dumps(value, ensure_ascii=False))
    monkeypatch.setenv("FUSEBENCH_ALIGNBENCH_DIR", str(tmp_path))
    spec = get_benchmark("alignbench")
    cats = [("数学计算", "初等数学"), ("逻辑推理", "逻辑"), ("基本任务", "逻辑")] * 4
    items = [
        Item(f"a{i}", f"问题{i}", None, {"category": c, "subcategory": s, "question": f"问题{i}", "reference": "参考"})
        for i, (c, s) in enumerate(cats)
    ]
    mode = modes.get_mode("alignbench")
    tasks = mode.tasks(spec, items, {it.id: [f"回答{it.id}"] for it in items})
    assert [t.conversation for t in tasks[:1]] == [
        [{"role": "user", "content": "数学计算/1. 正确性: 是否正确\n2. 完备性: 是否完整\n/问题0/参考/回答a0"}]
    ]
    answers = [f"{{'正确性': 7, '综合得分': {3 + i % 6}}}" if i % 5 else "没有分数" for i in range(len(tasks))]
    verdicts = [mode.parse(t, [a], {}) for t, a in zip(tasks, answers, strict=True)]
    judgments = [Judgment(t, v) for t, v in zip(tasks, verdicts, strict=True)]
    scored = score_judged(BenchmarkJudgments(spec, {"model": "judge"}, judgments, JudgeUsage()))
    ratings = [(t.sample_id, t.context["category"], v.value) for t, v in zip(tasks, verdicts, strict=True)]
    expected = alignbench_score(ratings)  # type: ignore[arg-type]
    assert scored.score == expected["score"] and scored.details["metrics"] == expected
    assert scored.details["judge_failures"] == 3  # answers 0, 5, 10 have no score
    rated = {c: [float(3 + i % 6) for i, (cat, _) in enumerate(cats) if cat == c and i % 5] for c, _ in cats}
    assert scored.details["breakdown"] == {c: {"n": len(v), "score": sum(v) / len(v)} for c, v in sorted(rated.items())}
    assert mode.scale == RATING_10
