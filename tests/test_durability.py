"""Nothing finished is lost, failed generations are not answers, runs end in a true state (in process, fast).

The writer tests use a real SQLite store and read it from a second connection, as another process would. The
eval tests drive run_eval with a scripted backend: the point is to control exactly when a request fails or when
a signal lands (right after a batch is handed over, before anything else runs), which no real model does on cue.
tests/test_eval_e2e.py runs the same paths on the real bundled model and a real OpenAI-compatible server.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from fusebench.backends.base import Completion, Conversation, GenParams, TokenCallback
from fusebench.cli import main
from fusebench.evaluate import EvalConfig, rescore_run, run_eval
from fusebench.exits import EXIT_INCOMPLETE, Interrupted, signals_raise
from fusebench.generation_writer import GenerationWriter
from fusebench.judging.stage import JudgeOptions
from fusebench.report.table import results_table
from fusebench.store import Store

BATCH = 8


def _row(i: int) -> dict[str, Any]:
    return {"key": f"k{i:03d}", "benchmark": "gsm8k", "sample_id": str(i), "sample_index": 0, "prompt": [],
            "output": f"answer {i}", "prompt_tokens": 1, "completion_tokens": 1, "finish_reason": "stop",
            "latency_s": 0.0, "meta": {}}  # fmt: skip


def _stored_keys(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {k for (k,) in conn.execute("select key from generations")}


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal() -> Iterator[None]:
    """Python's own SIGINT handler, as in a terminal: a test run started in the background (`cmd &` in a script)
    inherits SIGINT ignored, which signals_raise rightly leaves ignored, so the SIGINT cases would test nothing."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "fusebench.db"


@pytest.fixture
def store(db: Path) -> Store:
    return Store(f"sqlite:///{db}")


@pytest.mark.timeout(60)
def test_a_batch_is_committed_while_the_producer_works_on_the_next(store: Store, db: Path) -> None:
    """The old writer committed only when a row arrived >= 0.5 s after its last commit: a batch's rows, handed
    over within microseconds, waited for the next batch (a kill meanwhile lost them)."""
    writer = GenerationWriter(store)
    for batch in range(3):
        rows = [_row(batch * BATCH + i) for i in range(BATCH)]
        for row in rows:
            writer.add(row)
        deadline = time.monotonic() + 2.0
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < len(rows):
            sum(i * i for i in range(20_000))  # the producer decoding its next batch, holding the GIL in turns
            seen = _stored_keys(db) & {r["key"] for r in rows}
        assert len(seen) == BATCH, f"batch {batch}: {len(seen)} of {BATCH} rows committed after 2 s"
    writer.flush()
    writer.add(_row(99))  # a writer flushed once starts again
    writer.flush()
    assert len(_stored_keys(db)) == 3 * BATCH + 1


@pytest.mark.timeout(60)
def test_a_commit_error_reaches_the_producer(store: Store) -> None:
    writer = GenerationWriter(store)
    writer.add({**_row(0), "output": None})  # NOT NULL column
    with pytest.raises(Exception, match="NOT NULL"):
        writer.flush()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_raise_once_then_act_as_before(signum: int) -> None:
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as caught, signals_raise():
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler runs at the next bytecode; never reached
    assert caught.value.exit_code == 128 + signum and caught.value.signal_name == signal.Signals(signum).name
    assert signal.getsignal(signum) is before


class Scripted:
    """A Backend yielding batches of BATCH completions; `fail(conv)` makes a request fail (finish_reason "error")
    and `after_batch(k)` runs when batch k has been handed over (a signal, here)."""

    name = "scripted"

    def __init__(
        self, fail: Callable[[Conversation], bool] = lambda c: False, after_batch: Callable[[int], None] | None = None
    ) -> None:
        self.fail = fail
        self.after_batch = after_batch
        self.sent: list[str] = []

    def fingerprint(self) -> dict[str, str]:
        return {"model": "scripted"}

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: TokenCallback | None = None
    ) -> Iterator[Completion]:
        for start in range(0, len(convs), BATCH):
            for i in range(start, min(start + BATCH, len(convs))):
                conv = convs[i]
                self.sent.append(conv[-1]["content"])
                if self.fail(conv):
                    yield Completion(i, "", 0, 0, "error", 0.0, {"sample": 0, "error": "HTTP 503"})
                else:  # GSM8K's scorer reads the last number: "#### 0" is a wrong but well-formed answer
                    yield Completion(i, "The answer is 0.\n#### 0", 10, 5, "stop", 0.0, {"sample": 0})
            if self.after_batch is not None:
                self.after_batch(start // BATCH)


def _config(benchmarks: str = "gsm8k", limit: int = 3 * BATCH) -> EvalConfig:
    return EvalConfig(benchmarks=benchmarks.split(","), limit=limit, progress=False, judge=JudgeOptions())


def _kill_self(signum: int, at_batch: int) -> Callable[[int], None]:
    def after(batch: int) -> None:
        if batch == at_batch:
            os.kill(os.getpid(), signum)

    return after


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_commits_the_finished_batch_marks_the_run_interrupted_and_a_rerun_resumes(
    store: Store, db: Path, signum: int
) -> None:
    first = Scripted(after_batch=_kill_self(signum, at_batch=1))
    with pytest.raises(Interrupted) as caught:
        run_eval(_config(), store, lambda: first)
    assert caught.value.exit_code == 128 + signum
    run = store.get_run(caught.value.run_id or "")
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert len(_stored_keys(db)) == 2 * BATCH == len(first.sent)  # both handed-over batches, none lost
    second = Scripted()
    outcome = run_eval(_config(), store, lambda: second)
    assert (outcome.run_id, outcome.resumed, outcome.status) == (run["id"], True, "complete")
    assert (outcome.model_calls, outcome.cached) == (BATCH, 2 * BATCH)
    assert not set(second.sent) & set(first.sent)  # nothing finished was asked again
    assert store.get_run(run["id"])["status"] == "complete"


def _fails(*fragments: str) -> Callable[[Conversation], bool]:
    return lambda conv: any(f in conv[-1]["content"] for f in fragments)


@pytest.mark.timeout(60)
def test_failed_generations_are_retried_never_scored_and_leave_the_run_incomplete(store: Store) -> None:
    probe = Scripted()
    run_eval(_config(limit=BATCH), Store(f"sqlite:///{store.url.removeprefix('sqlite:///')}.probe"), lambda: probe)
    failing = (probe.sent[1][:60], probe.sent[5][:60])  # two of the eight questions

    first = Scripted(fail=_fails(*failing))
    outcome = run_eval(_config(limit=BATCH), store, lambda: first)
    assert outcome.status == "incomplete" and outcome.incomplete["gsm8k"] == {
        "errors": 2,
        "reason": "model requests failed",
    }
    row = outcome.results[0]
    assert row["score"] is None and row["details"]["errors"] == 2 and row["n"] == BATCH
    assert len(store.get_scores(outcome.run_id)) == BATCH - 2  # the failed ones are never scored as wrong
    table = results_table(outcome.results)
    assert "errors" in table.splitlines()[0] and "incomplete (2 errors)" in table
    # rescore keeps it incomplete (the answers are still missing) and keeps the generation times
    finished = store.get_run(outcome.run_id)["finished_at"]
    rescore_run(store, outcome.run_id)
    after = store.get_run(outcome.run_id)
    assert after["status"] == "incomplete" and after["finished_at"] == finished and after["summary"]["rescored_at"]

    second = Scripted()
    done = run_eval(_config(limit=BATCH), store, lambda: second)
    assert (done.run_id, done.status, done.model_calls, done.cached) == (outcome.run_id, "complete", 2, BATCH - 2)
    assert sorted(s[:60] for s in second.sent) == sorted(failing)  # exactly the failed requests, again
    assert done.results[0]["score"] == 0.0 and done.results[0]["details"].get("errors") is None


class Judge(Scripted):
    """A scripted MT-Bench judge: rates every answer 5."""

    def generate(
        self, convs: Sequence[Conversation], params: GenParams, on_tokens: TokenCallback | None = None
    ) -> Iterator[Completion]:
        for i, conv in enumerate(convs):
            self.sent.append(conv[-1]["content"])
            yield Completion(i, "Rating: [[5]]", 10, 5, "stop", 0.0, {"sample": 0})


def _first_turn_of(fragment: str) -> Callable[[Conversation], bool]:
    return lambda conv: not any(m["role"] == "assistant" for m in conv) and fragment in conv[-1]["content"]


@pytest.mark.timeout(60)
def test_a_failed_first_turn_is_neither_continued_nor_judged(store: Store) -> None:
    """MT-Bench: an item whose first-turn request failed gets no second turn and no judgment; a rerun asks
    exactly that item's two turns and the judge only its two judgments."""
    judge = Judge()
    blog = "Compose an engaging travel blog"
    first_contestant = Scripted(fail=_first_turn_of(blog))
    config = _config("mt_bench", limit=2)
    first = run_eval(config, store, lambda: first_contestant, make_judge=lambda model: judge)
    assert first.status == "incomplete" and first.incomplete["mt_bench"]["errors"] == 1
    assert len(first_contestant.sent) == 3  # two first turns, the answered item's second turn
    assert len(judge.sent) == 2 and not any(blog in j for j in judge.sent)
    assert first.results[0]["score"] is None and first.results[0]["details"]["errors"] == 1
    second_contestant = Scripted()
    second = run_eval(config, store, lambda: second_contestant, make_judge=lambda model: judge)
    assert second.status == "complete" and second.results[0]["score"] == 5.0
    assert len(second_contestant.sent) == 2 and blog in second_contestant.sent[0]
    assert len(judge.sent) == 4 and all(blog in j for j in judge.sent[2:])


@pytest.mark.timeout(120)
def test_cli_exit_codes_incomplete_then_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fusebench eval ... && next` stops on an incomplete run: exit 3, then 0 once a rerun finished it."""
    import fusebench.backends

    state = {"fail": True}
    monkeypatch.setattr(
        fusebench.backends,
        "make_backend",
        lambda *args: Scripted(fail=lambda conv: state["fail"] and "Janet" in conv[-1]["content"]),
    )
    args = ["eval", "--benchmarks", "gsm8k", "--limit", "4", "--no-progress", "--output-dir", str(tmp_path)]
    assert main(args) == EXIT_INCOMPLETE
    captured = capsys.readouterr()
    assert "INCOMPLETE (gsm8k: 1 items' model requests failed)" in captured.err
    assert "incomplete (1 errors)" in captured.out
    run_id = captured.out.split("\nrun ")[1].split(":")[0]
    assert main(["rescore", run_id, "--output-dir", str(tmp_path)]) == EXIT_INCOMPLETE
    state["fail"] = False
    assert main(args) == 0
    assert "(resumed): 1 generated, 3 from cache" in capsys.readouterr().out
    assert main(["rescore", run_id, "--output-dir", str(tmp_path)]) == 0


@pytest.mark.timeout(120)
def test_cli_interrupted_run_exits_143_and_runs_show_compare_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fusebench.backends

    kill = {"at": 1}

    def after(batch: int) -> None:
        if batch == kill["at"]:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(fusebench.backends, "make_backend", lambda *args: Scripted(after_batch=after))
    store = ["--output-dir", str(tmp_path)]
    args = ["eval", "--benchmarks", "gsm8k", "--no-progress", *store]
    assert main([*args, "--limit", str(3 * BATCH)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    stopped = err.split("run ")[1].split(" ")[0]
    assert f"run {stopped} interrupted (SIGTERM)" in err and "rerun the same command to resume" in err
    kill["at"] = -1
    assert main([*args, "--limit", str(BATCH)]) == 0
    done = capsys.readouterr().out.split("\nrun ")[1].split(":")[0]
    assert main(["runs", *store]) == 0
    listing = capsys.readouterr().out
    assert any(stopped in line and "interrupted" in line for line in listing.splitlines()), listing
    assert main(["show", stopped, *store]) == 0
    assert "status interrupted" in capsys.readouterr().out
    main(["compare", stopped, done, *store])
    assert "run is interrupted, not complete" in capsys.readouterr().out
