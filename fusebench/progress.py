"""Progress a person can read: bars redrawn on a timer, and a token bar that moves within a batch.

Generation shows a token bar (tokens so far, out of at most what the missing samples may still generate; tokens/s;
time left at most) above one sample bar per benchmark. Judging and code execution show a count bar. A timer thread
redraws every bar twice a second, so the elapsed time moves during a long decode step and a count never lags
behind the store. Bars are on when stderr is a terminal, unless --progress / --no-progress or FUSEBENCH_PROGRESS
(1 or 0) say otherwise.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, Self, TextIO

from tqdm import tqdm

ENV = "FUSEBENCH_PROGRESS"
REFRESH_S = 0.5
TOKEN_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining} at most, {rate_fmt}]"
COUNT_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"


def progress_wanted(flag: bool | None, stream: TextIO | None = None) -> bool:
    """Whether to draw bars: the flag when given (--progress / --no-progress), else FUSEBENCH_PROGRESS=1/0, else
    whether `stream` (stderr) is a terminal."""
    if flag is not None:
        return flag
    env = os.environ.get(ENV, "").strip().lower()
    if env in {"1", "true", "yes", "on"}:
        return True
    if env in {"0", "false", "no", "off"}:
        return False
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class Ticker:
    """Redraws bars every `interval` seconds from a daemon thread until stopped."""

    def __init__(self, bars: list[tqdm[Any]], interval: float = REFRESH_S) -> None:
        self.bars = bars
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fusebench-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for bar in self.bars:
                bar.refresh()


class _Bars:
    """Bars drawn on stderr and redrawn by a Ticker while open; with display off they count without being seen
    (drawn to os.devnull, no ticker)."""

    def __init__(self, display: bool) -> None:
        self.display = display
        self.file: TextIO = sys.stderr if display else open(os.devnull, "w")  # noqa: SIM115 (closed in close)
        self.bars: list[tqdm[Any]] = []
        self.lock = threading.Lock()
        self.ticker: Ticker | None = None

    def add(self, **kwargs: Any) -> tqdm[Any]:
        bar: tqdm[Any] = tqdm(file=self.file, position=len(self.bars), leave=True, dynamic_ncols=True, **kwargs)
        if not self.display:
            # an unseen bar holds no screen line: other tqdm bars (e.g. transformers' weight loading) would
            # otherwise print blank lines and cursor moves into a log to stand below it
            with tqdm.get_lock():
                tqdm._instances.discard(bar)
        self.bars.append(bar)
        return bar

    def start(self) -> None:
        if self.display:
            self.ticker = Ticker(self.bars)
            self.ticker.start()

    def close(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        for bar in self.bars:
            bar.close()
        if not self.display:
            self.file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GenerationProgress(_Bars):
    """The generation stage: a token bar and a sample bar per benchmark.

    `planned` maps each benchmark to (samples to generate, the most tokens they may generate: max_new_tokens each).
    The token bar's total starts at that most and drops by what rows that end leave unused (the backend says so as
    they end, mid-batch for HF), so its time left is an upper bound that tightens as answers end. `on_tokens` is
    the backend's progress callback."""

    def __init__(self, planned: Mapping[str, tuple[int, int]], display: bool) -> None:
        super().__init__(display)
        width = max([len("tokens"), *(len(name) for name in planned)])
        self.tokens = self.add(
            total=sum(budget for _, budget in planned.values()),
            desc=f"{'tokens':>{width}}",
            unit=" tok",
            bar_format=TOKEN_FORMAT,
        )
        self.samples = {
            name: self.add(total=count, desc=f"{name:>{width}}", unit="sample", bar_format=COUNT_FORMAT)
            for name, (count, _) in planned.items()
        }
        self.start()

    def on_tokens(self, count: int, released: int = 0) -> None:
        with self.lock:
            if released and self.tokens.total is not None:
                self.tokens.total = max(self.tokens.n + count, self.tokens.total - released)
            self.tokens.update(count)

    def finished(self, benchmark: str) -> None:
        """One sample stored: its benchmark's bar moves."""
        with self.lock:
            self.samples[benchmark].update(1)


class CountProgress(_Bars):
    """One count bar (judgments, programs run); `on_tokens` adds a tokens/s figure (judges). Thread-safe."""

    def __init__(self, total: int, desc: str, unit: str, display: bool) -> None:
        super().__init__(display)
        self.bar = self.add(total=total, desc=desc, unit=unit, bar_format=COUNT_FORMAT)
        self.tokens = 0
        self.start()

    def advance(self, count: int = 1) -> None:
        with self.lock:
            self.bar.update(count)

    def on_tokens(self, count: int, released: int = 0) -> None:
        with self.lock:
            self.tokens += count
            elapsed = self.bar.format_dict["elapsed"]
            if elapsed >= 1:  # a rate over less than a second says little
                self.bar.set_postfix_str(f"{self.tokens / elapsed:.1f} tok/s", refresh=False)
