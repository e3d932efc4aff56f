"""Progress bars: when they are drawn, a timer that keeps them current, and the generation bar moving within a batch
of the real bundled model (tests/test_hf_backend.py checks the per-step reports themselves)."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from tqdm import tqdm

from fusebench.backends.base import Conversation, GenParams
from fusebench.progress import REFRESH_S, CountProgress, GenerationProgress, Ticker, progress_wanted


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_bars_follow_the_flag_then_the_environment_then_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUSEBENCH_PROGRESS", raising=False)
    assert progress_wanted(None, _Stream(tty=True)) and not progress_wanted(None, _Stream(tty=False))
    assert progress_wanted(True, _Stream(tty=False)) and not progress_wanted(False, _Stream(tty=True))
    monkeypatch.setenv("FUSEBENCH_PROGRESS", "1")
    assert progress_wanted(None, _Stream(tty=False))
    assert not progress_wanted(False, _Stream(tty=False))  # --no-progress wins over the environment
    monkeypatch.setenv("FUSEBENCH_PROGRESS", "0")
    assert not progress_wanted(None, _Stream(tty=True))


def _last_frame(out: io.StringIO) -> str:
    return out.getvalue().split("\r")[-1]


def test_the_ticker_shows_rows_that_arrived_together_without_waiting_for_the_next() -> None:
    # a batch's rows arrive within microseconds: tqdm alone draws the first and waits for a later update to draw
    # the rest (the bar said 1/8 while 4 were stored); the ticker redraws within REFRESH_S
    def feed(out: io.StringIO) -> tqdm[None]:
        bar: tqdm[None] = tqdm(total=8, file=out, mininterval=0.1, ncols=60)
        for _ in range(4):
            bar.update(1)
        return bar

    plain = io.StringIO()
    stale = feed(plain)
    time.sleep(2 * REFRESH_S)
    assert "4/8" not in _last_frame(plain)  # what a user saw: an earlier count
    stale.close()
    ticked = io.StringIO()
    bar = feed(ticked)
    ticker = Ticker([bar])
    ticker.start()
    time.sleep(2 * REFRESH_S)
    ticker.stop()
    assert "4/8" in _last_frame(ticked)
    bar.close()


def test_the_ticker_moves_the_elapsed_time_while_nothing_updates() -> None:
    out = io.StringIO()
    bar: tqdm[None] = tqdm(total=3, file=out, ncols=60, bar_format="{n}/{total} [{elapsed}]")
    ticker = Ticker([bar], interval=0.2)
    ticker.start()
    time.sleep(1.3)
    ticker.stop()
    assert "0/3 [00:01]" in _last_frame(out)
    bar.close()


def test_count_bar_takes_advances_from_many_threads() -> None:
    with CountProgress(400, "run:humaneval", "program", display=False) as bar:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: bar.advance(), range(400)))
        assert bar.bar.n == 400


def test_hidden_bars_count_but_leave_other_bars_on_their_own_line() -> None:
    """With bars off (stderr not a terminal), a bar drawn by a library during generation (transformers' weight
    loading) must not print blank lines and cursor moves into the log to stand below the hidden ones."""
    with GenerationProgress({"gsm8k": (8, 800), "mbpp": (2, 200)}, display=False) as progress:
        progress.on_tokens(40)
        progress.finished("gsm8k")
        log = io.StringIO()
        for _ in tqdm(range(3), file=log, desc="Loading weights"):
            pass
        assert (progress.tokens.n, progress.samples["gsm8k"].n) == (40, 1)
    assert "\n" not in log.getvalue().rstrip("\n") and "\x1b[A" not in log.getvalue()


def test_judge_bar_shows_the_judges_tokens_per_second() -> None:
    with CountProgress(10, "judge:mt_bench", "judgment", display=False) as bar:
        bar.on_tokens(500, 0)  # within the first second: no rate yet
        assert "tok/s" not in str(bar.bar)
        time.sleep(1.1)
        bar.on_tokens(100, 0)
        bar.advance()
        rate = float(re.search(r"([\d.]+) tok/s", str(bar.bar)).group(1))  # type: ignore[union-attr]
        assert 300 < rate < 600 and "1/10 judgment" in str(bar.bar)


def test_token_budget_drops_by_what_finished_answers_left_unused() -> None:
    view = GenerationProgress({"gsm8k": (2, 2 * 100), "math500": (1, 50)}, display=False)
    view.on_tokens(30, 0)
    view.on_tokens(2, 90)  # a row ended at 10 of 100 tokens: 90 fewer to come
    assert (view.tokens.n, view.tokens.total) == (32, 160)
    view.finished("gsm8k")
    assert view.samples["gsm8k"].n == 1 and view.samples["math500"].n == 0
    view.close()


PROMPTS: list[Conversation] = [
    [{"role": "user", "content": f"Explain step by step: what is {n} times {n + 3}?"}] for n in (7, 12, 31, 45)
]


@pytest.fixture(scope="module")
def backend() -> Iterator[object]:
    from fusebench.backends.hf import HFBackend
    from fusebench.models import resolve_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield HFBackend(resolve_model(None), batch_size=4)
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_generation_bar_moves_within_a_batch_with_tokens_per_second(
    backend: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from fusebench.backends.hf import HFBackend

    assert isinstance(backend, HFBackend)
    params = GenParams(max_new_tokens=40)
    list(backend.generate(PROMPTS[:1], GenParams(max_new_tokens=1)))  # load the weights first
    view = GenerationProgress({"gsm8k": (4, 4 * 40)}, display=True)
    frames: list[str] = []
    steps = 0

    def on_tokens(count: int, released: int) -> None:
        nonlocal steps
        view.on_tokens(count, released)
        steps += 1
        if steps in (10, 30):  # mid-batch: no answer has arrived yet
            frames.append(str(view.tokens))
            assert view.samples["gsm8k"].n == 0

    try:
        for _ in backend.generate(PROMPTS, params, on_tokens):  # batch size 4: one batch
            view.finished("gsm8k")
    finally:
        view.close()
    assert len(frames) == 2
    early, later = frames
    assert early.startswith("tokens:") and "tok/s" in later and "at most" in later
    assert re.search(r"\| 40/160 tok", early) and re.search(r"\| 120/160 tok", later)  # 4 rows x 10 and 30 steps
    assert view.samples["gsm8k"].n == 4 and view.tokens.n == view.tokens.total  # done: budget met exactly
    assert "tok/s" in capsys.readouterr().err  # drawn on stderr
