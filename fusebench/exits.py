"""How a command ends: exit codes, and SIGINT/SIGTERM turned into an exception so a run records its true state.

Exit codes: 0 ok, 1 a check failed (`gate`) or an internal error, 2 bad input, 3 an eval or rescore that ended
incomplete (failed model requests, missing judgments), 128 + signal number when interrupted (130 SIGINT,
143 SIGTERM), the shell's convention.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_INCOMPLETE = 3
HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `run_id` names the run that was marked interrupted, if one had started."""

    def __init__(self, signum: int, run_id: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_id = run_id

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def signals_raise() -> Iterator[None]:
    """Inside, the first SIGINT or SIGTERM raises Interrupted in the main thread, so `finally` blocks commit what
    finished (SIGTERM's default would end the process without them). A second signal acts as it would without
    this (SIGTERM ends the process, SIGINT raises KeyboardInterrupt): a way out of a hung cleanup. Signals the
    process ignores stay ignored (e.g. SIGINT of a background job); outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) or signal.SIG_DFL for s in HANDLED}  # None: set outside Python

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)

    def raise_interrupted(signum: int, _frame: FrameType | None) -> None:
        restore()
        raise Interrupted(signum)

    for s, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, raise_interrupted)
    try:
        yield
    finally:
        restore()
