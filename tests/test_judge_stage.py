"""The judge stage in process: retries, failures, cache and resume, budget, rescore, compare across judges.

The contestant and the judge here are scripted backends: the point is to control exactly what a judge answers
(well-formed verdicts, garbage, transport errors), which no real small model does. tests/test_judged_e2e.py runs the
same paths against a real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from test_compare_support import add_run

from fusebench.backends.base import Completion, Conversation, GenParams
from fusebench.compare import check_judges, compare
from fusebench.errors import UsageError
from fusebench.evaluate import EvalConfig, rescore_run, run_eval
from fusebench.judging.prompts import ARENA_HARD_CONTINUE
from fusebench.judging.stage import JudgeOptions
from fusebench.report.compare_table import JUDGE_MISMATCH, render_comparison
from fusebench.report.table import results_table
from fusebench.store import Store

pytest_plugins = ["test_compare_support"]

Answer = Callable[[Conversation], str | None]  # None: a transport error


class Scripted:
    """A Backend answering each conversation with answer(conv); records what it was sent."""

    name = "scripted"

    def __init__(self, model: str, answer: Answer) -> None:
        self.model = model
        self.answer = answer
        self.sent: list[Conversation] = []
        self.params: list[GenParams] = []  # per conversation sent

    def fingerprint(self) -> dict[str, str]:
        return {"model": self.model}

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: Callable[[int, int], None] | None = None
    ) -> Iterator[Completion]:
        for i, conv in enumerate(convs):
            self.sent.append(conv)
            self.params.append(params)
            text = self.answer(conv)
            if text is None:
                yield Completion(i, "", 0, 0, "error", 0.0, {"sample": 0, "error": "HTTP 503"})
            else:
                yield Completion(i, text, 100, 10, "stop", 0.0, {"sample": 0})


def contestant() -> Scripted:
    return Scripted("contestant", lambda conv: f"my answer to: {conv[-1]['content'][:30]}")


def _eval(
    store: Store, judge: Scripted, benches: str, options: JudgeOptions | None = None, limit: int = 2
) -> tuple[Any, Scripted]:
    config = EvalConfig(benchmarks=benches.split(","), limit=limit, progress=False, judge=options or JudgeOptions())
    return run_eval(config, store, contestant, make_judge=lambda model: judge), judge


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'db.sqlite'}")


def _result(outcome: Any, bench: str) -> dict[str, Any]:
    return next(r for r in outcome.results if r["benchmark"] == bench)


@pytest.mark.timeout(60)
def test_garbage_verdicts_fail_after_one_retry_and_are_never_scored(store: Store) -> None:
    judge = Scripted("judge", lambda conv: "I cannot decide.")
    outcome, _ = _eval(store, judge, "arena_hard,mt_bench")
    # arena: 2 items x 2 games, mt_bench: 2 items x 2 turns; each asked twice, then a failure
    assert len(judge.sent) == 2 * (4 + 4)
    continuations = [c for c in judge.sent if c[-1]["content"] == ARENA_HARD_CONTINUE]
    assert len(continuations) == 4 and all(
        c[-2] == {"role": "assistant", "content": "I cannot decide."} for c in continuations
    )
    assert outcome.status == "complete"  # every judgment was obtained: failures are results, not gaps
    for bench in ("arena_hard", "mt_bench"):
        row = _result(outcome, bench)
        assert row["score"] is None and row["details"]["judge_failures"] == 4 == row["details"]["n_judgments"]
        assert store.get_scores(outcome.run_id, bench) == []  # no item scored as a loss
    table = results_table(outcome.results)
    assert "judge failures" in table and "4/4" in table and "no verdicts" in table
    again, judge2 = _eval(store, Scripted("judge", lambda conv: "[[A>>B]]"), "arena_hard,mt_bench")
    assert judge2.sent == [] and _result(again, "arena_hard")["details"]["judge_failures"] == 4


@pytest.mark.timeout(60)
def test_verdicts_move_scores_and_retry_can_rescue(store: Store) -> None:
    def answer(conv: Conversation) -> str:
        text = conv[-1]["content"]
        if text == ARENA_HARD_CONTINUE:
            return "Finally: [[A>B]]"
        if "<|User Prompt|>" in text:  # game 1: the model is B; game 2: the model is A but no label at first
            model_is_b = text.index("my answer to") > text.index("Assistant B's Answer|>")
            return "[[B>>A]]" if model_is_b else "Let me think more."
        return "Rating: [[3]]" if "Conversation with User" in text else "Rating: [[9]]"  # turn 2 : turn 1

    outcome, judge = _eval(store, Scripted("judge", answer), "arena_hard,mt_bench")
    arena = _result(outcome, "arena_hard")
    metrics = arena["details"]["metrics"]
    # game 1 B>>A (model wins strongly); game 2 rescued by the continuation: A>B (model wins)
    assert (metrics["wins"], metrics["losses"], metrics["judge_failures"]) == (4, 0, 0)
    assert arena["score"] > 90 and metrics["position_consistency"] == 1.0
    assert arena["details"]["verdict_methods"] == {"regex": 4}
    assert {s["score"] for s in store.get_scores(outcome.run_id, "arena_hard")} == {1.0}
    mt = _result(outcome, "mt_bench")
    assert mt["details"]["metrics"] | {"score": mt["score"]} == {
        "score": 6.0, "turn1": 9.0, "turn2": 3.0, "n_rated": 4, "judge_failures": 0, "suspect_ratings": 0
    }  # fmt: skip
    assert mt["details"]["breakdown"] == {"turn 1": {"n": 2, "score": 9.0}, "turn 2": {"n": 2, "score": 3.0}}
    assert len(judge.sent) == 4 + 2 + 4  # arena games, 2 continuations, mt turns
    assert rescore_run(store, outcome.run_id)[0]["score"] == pytest.approx(arena["score"])  # no judge needed


@pytest.mark.timeout(60)
def test_budget_stops_judging_and_a_larger_budget_finishes_without_repeats(store: Store) -> None:
    judge = Scripted("judge", lambda conv: "Rating: [[6]]")

    def options(budget: float) -> JudgeOptions:  # 0.02 USD per scripted judgment (100 tokens in, 10 out)
        return JudgeOptions(budget_usd=budget, concurrency=1, price_input_per_mtok=100.0, price_output_per_mtok=1000.0)

    tight = options(0.03)
    first, _ = _eval(store, judge, "mt_bench", tight)
    assert first.status == "incomplete" and first.incomplete["mt_bench"]["reason"] == "judge budget reached"
    assert len(judge.sent) == 2  # 0.02, 0.04 >= 0.03: stop
    row = _result(first, "mt_bench")
    assert row["score"] is None and row["details"]["missing_judgments"] == 2
    assert "incomplete (2 unjudged)" in results_table(first.results)
    assert store.get_run(first.run_id)["status"] == "incomplete"
    second, _ = _eval(store, judge, "mt_bench", options(1.0))
    assert second.run_id == first.run_id and second.resumed and second.status == "complete"
    assert len(judge.sent) == 4 and len({str(c) for c in judge.sent}) == 4  # nothing asked twice
    usage = _result(second, "mt_bench")["details"]["judge_usage"]
    assert usage["cost_usd"] == pytest.approx(0.08) and usage["requests_sent"] == 2
    assert _result(second, "mt_bench")["score"] == 6.0


@pytest.mark.timeout(60)
def test_transport_errors_are_not_stored_and_a_rerun_asks_again(store: Store) -> None:
    down = Scripted("judge", lambda conv: None)
    first, _ = _eval(store, down, "mt_bench", limit=1)
    assert first.status == "incomplete" and first.incomplete["mt_bench"]["reason"] == "judge requests failed"
    up = Scripted("judge", lambda conv: "[[7]]")
    second, _ = _eval(store, up, "mt_bench", limit=1)
    assert second.status == "complete" and len(up.sent) == 2 and _result(second, "mt_bench")["score"] == 7.0


def test_budget_needs_prices_before_any_model_runs(store: Store) -> None:
    built: list[str] = []

    def make() -> Scripted:
        built.append("contestant")
        return contestant()

    config = EvalConfig(benchmarks=["mt_bench"], limit=1, judge=JudgeOptions(model="my-judge", budget_usd=1.0))
    with pytest.raises(UsageError, match="--judge-price-input"):
        run_eval(config, store, make, make_judge=lambda model: Scripted(model, lambda conv: "[[5]]"))
    assert built == []


def test_compare_refuses_runs_judged_differently(store: Store) -> None:
    judge_a = {"model": "gpt-4-0125-preview", "prompt_version": "fastchat-single-v1"}
    add_run(store, "a", "A", {"mt_bench": [8.0, 7.0]}, details={"judge": judge_a})
    add_run(store, "b", "B", {"mt_bench": [9.0, 8.0]}, details={"judge": {**judge_a, "model": "smollm2"}})
    add_run(store, "c", "C", {"mt_bench": [9.0, 9.0]}, details={"judge": judge_a})
    allowed = compare(store, ["a", "b"])
    with pytest.raises(UsageError, match=r"different judges.*mt_bench: judge .*--allow-judge-mismatch"):
        check_judges(allowed)
    check_judges(allowed, allow_mismatch=True)
    assert allowed.judge_mismatches == ("mt_bench",)
    text = render_comparison(allowed)
    assert f"mt_bench {JUDGE_MISMATCH}" in text and "NOT comparable" in text
    assert compare(store, ["a", "c"]).judge_mismatches == ()


def test_compare_cli_flag(store: Store, cli: Any) -> None:
    add_run(store, "a", "A", {"mt_bench": [8.0]}, details={"judge": {"model": "x"}})
    add_run(store, "b", "B", {"mt_bench": [9.0]}, details={"judge": {"model": "y"}})
    code, _, err = cli("compare", "a", "b")
    assert code == 2 and "different judges" in err
    code, out, err = cli("compare", "a", "b", "--allow-judge-mismatch")
    assert code == 0 and JUDGE_MISMATCH in out and "WARNING" in err


def test_cli_judge_setup_errors_are_one_line_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fusebench.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("FUSEBENCH_ALIGNBENCH_DIR", raising=False)
    base = ["eval", "--limit", "1", "--output-dir", str(tmp_path), "--no-progress"]
    assert main([*base, "--benchmarks", "mt_bench"]) == 2  # the default judge is OpenAI's: no key, no run
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert main([*base, "--benchmarks", "alignbench"]) == 2
    err = capsys.readouterr().err
    assert "FUSEBENCH_ALIGNBENCH_DIR" in err and len(err.strip().splitlines()) == 1
    judge = ["--judge", "local", "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-budget-usd", "1"]
    assert main([*base, "--benchmarks", "arena_hard", *judge]) == 2
    assert "--judge-price-input" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_alpaca_eval_token_verdicts_and_identical_outputs(store: Store) -> None:
    import json

    from fusebench.judging.prompts import alpaca_eval_switched
    from fusebench.spec import benchmarks_dir

    refs = json.loads((benchmarks_dir() / "data/alpaca_eval2/gpt4_turbo_reference_outputs.json").read_text())
    by_instruction = {r["instruction"]: r["output"] for r in refs[:2]}
    first = refs[0]["instruction"]
    copycat = Scripted("copycat", lambda conv: by_instruction[first] if conv[-1]["content"] == first else "short")
    judge = Scripted("judge", lambda conv: "M")  # no logprobs from this judge: the token decides
    config = EvalConfig(benchmarks=["alpaca_eval2"], limit=2, progress=False, judge=JudgeOptions())
    outcome = run_eval(config, store, lambda: copycat, make_judge=lambda model: judge)
    assert len(judge.sent) == 1  # the copied reference ties at 1.5 without asking, as alpaca_eval does
    scores = {s["sample_id"]: s["score"] for s in store.get_scores(outcome.run_id, "alpaca_eval2")}
    assert scores == {"0": 0.5, "1": 0.0 if alpaca_eval_switched(refs[1]["instruction"]) else 1.0}
    details = _result(outcome, "alpaca_eval2")["details"]
    assert details["verdict_methods"] == {"identical outputs": 1, "token": 1}
    assert details["metrics"]["n"] == 2 and details["metrics"]["judge_failures"] == 0


@pytest.mark.timeout(60)
def test_show_and_rescore_print_the_judge(store: Store, cli: Any) -> None:
    outcome, _ = _eval(store, Scripted("my-judge", lambda conv: "Rating: [[8]]"), "mt_bench", limit=1)
    code, out, _ = cli("show", outcome.run_id)
    assert code == 0 and "judge failures" in out and "0/2" in out
    assert "mt_bench: judged by my-judge (openai), prompt fastchat-single-v1" in out
    assert "turn 2" in out  # the per-turn breakdown
    code, out, _ = cli("rescore", outcome.run_id)
    assert code == 0 and re.search(r"mt_bench\s+rating\s+1\s+8\s", out) and "judged by my-judge" in out


@pytest.mark.timeout(60)
def test_mt_bench_turn_two_sees_turn_one_and_resumes_per_turn(store: Store) -> None:
    class Crash(Exception):
        pass

    def first_turn_only(conv: Conversation) -> str:
        if len(conv) > 1:
            raise Crash("killed before turn 2")
        return f"answer one to {conv[0]['content'][:20]}"

    judge = Scripted("judge", lambda conv: "[[5]]")
    config = EvalConfig(benchmarks=["mt_bench"], limit=2, progress=False, judge=JudgeOptions())
    with pytest.raises(Crash):
        run_eval(config, store, lambda: Scripted("m", first_turn_only), make_judge=lambda model: judge)
    model = Scripted("m", lambda conv: f"answer {len(conv) // 2 + 1}")
    outcome = run_eval(config, store, lambda: model, make_judge=lambda model_: judge)
    assert outcome.resumed and (outcome.model_calls, outcome.cached) == (2, 2)  # turn 1 came from the store
    assert [len(c) for c in model.sent] == [3, 3]
    for conv in model.sent:  # [question 1, the model's own stored answer 1, question 2]
        assert [m["role"] for m in conv] == ["user", "assistant", "user"]
        assert conv[1]["content"] == f"answer one to {conv[0]['content'][:20]}"
    judged_turn2 = [c for c in judge.sent if "Conversation with User" in c[-1]["content"]]
    assert len(judged_turn2) == 2 and all("### Assistant A:\nanswer 2" in c[-1]["content"] for c in judged_turn2)


FASTCHAT_TEMPERATURES = {"writing": 0.7, "roleplay": 0.7, "stem": 0.1, "humanities": 0.1}  # others: greedy


def test_mt_bench_answers_use_fastchat_temperatures_per_category(store: Store) -> None:
    questions = {q["turns"][0]: q["category"] for q in _mt_bench_questions()}
    judge = Scripted("judge", lambda conv: "[[5]]")
    model = contestant()
    config = EvalConfig(benchmarks=["mt_bench"], progress=False, judge=JudgeOptions())
    outcome = run_eval(config, store, lambda: model, make_judge=lambda model_: judge)
    assert len(model.sent) == 160  # 80 questions x 2 turns
    sent = zip(model.sent, model.params, strict=True)
    temperatures = {(questions[conv[0]["content"]], params.temperature) for conv, params in sent}
    assert temperatures == {(c, FASTCHAT_TEMPERATURES.get(c, 0.0)) for c in set(questions.values())}
    generation = _result(outcome, "mt_bench")["generation"]
    assert generation["temperature"] == 0.0 and generation["by"]["category=writing"]["temperature"] == 0.7
    assert rescore_run(store, outcome.run_id)[0]["score"] == _result(outcome, "mt_bench")["score"]  # same keys rebuilt

    greedy = Scripted("m2", model.answer)  # a command-line temperature wins over the per-category ones
    override = EvalConfig(benchmarks=["mt_bench"], limit=12, generation={"temperature": 0.0}, progress=False)
    run_eval(override, store, lambda: greedy, make_judge=lambda model_: judge)
    assert {p.temperature for p in greedy.params} == {0.0}


def _mt_bench_questions() -> list[dict[str, Any]]:
    import json

    from fusebench.spec import benchmarks_dir

    lines = (benchmarks_dir() / "data" / "mt_bench" / "question.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.shared_data("alignbench")  # AlignBench states no license: fusebench ships none of it
def test_judged_benchmark_data_loads_checksummed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from fusebench.evaluate import load_benchmark_items
    from fusebench.spec import get_benchmark
    from tests.conftest import SHARED_DATA

    alpaca = get_benchmark("alpaca_eval2")
    data = load_benchmark_items(alpaca)
    assert len(data.items) == 805 and data.checksum == alpaca.data.sha256
    assert data.items[0].input.startswith("What are the names of some famous actors") and data.items[0].id == "0"
    damaged = tmp_path / "ref.json"
    damaged.write_text('[{"instruction": "x", "output": "y"}]')
    with pytest.raises(UsageError, match="sha256"):
        load_benchmark_items(replace(alpaca, data=replace(alpaca.data, path=str(damaged))))
    monkeypatch.setenv("FUSEBENCH_ALIGNBENCH_DIR", str(SHARED_DATA / "alignbench"))
    align = load_benchmark_items(get_benchmark("alignbench"), limit=3)
    assert [i.id for i in align.items] == ["1", "2", "3"] and align.items[0].target.startswith("高音单簧管")
    assert len(load_benchmark_items(get_benchmark("mt_bench")).items) == 80
    assert len(load_benchmark_items(get_benchmark("arena_hard")).items) == 500
