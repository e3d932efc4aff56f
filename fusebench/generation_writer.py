"""The generation writer: completions committed to the store while the model goes on generating. Used by the
generate stage (evaluate.generate_missing) and the judge stage (judge answers are generations too)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fusebench.exits import Interrupted

if TYPE_CHECKING:
    from fusebench.store import Store


class GenerationWriter:
    """Commits completions as they arrive, on a committer thread, while the producer goes on (a backend decoding
    its next batch): a batch's answers are in the store within milliseconds of the batch's end, not when the next
    batch ends. Rows that arrive during a commit go together in the next one. `flush()` commits what is buffered
    and stops the thread (call it in a `finally`); a later `add()` starts it again. `judgments`: the rows are
    judge answers (Store.put_judgments), else generations."""

    def __init__(self, store: Store, judgments: bool = False) -> None:
        self._put = store.put_judgments if judgments else store.put_generations
        self._rows: list[dict[str, Any]] = []
        self._wake = threading.Condition()
        self._stopping = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def add(self, row: dict[str, Any]) -> None:
        with self._wake:
            self._raise_error()
            self._rows.append(row)
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._commit_loop, name="fusebench-commit", daemon=True)
                self._thread.start()
            self._wake.notify()

    def flush(self) -> None:
        """Commit every row added so far and stop the committer. An interruption (SIGINT/SIGTERM) that arrives
        meanwhile waits for the commit, then goes on."""
        with self._wake:
            thread, self._stopping = self._thread, True
            self._wake.notify()
        interrupted: Interrupted | None = None
        while thread is not None and thread.is_alive():
            try:
                thread.join()
            except Interrupted as exc:  # a second signal acts at once (exits.signals_raise)
                interrupted = exc
        with self._wake:
            self._thread = None
            if self._rows and self._error is None:  # the thread stopped before these (a race with a later add)
                self._put(self._rows)
                self._rows = []
            self._raise_error()
        if interrupted is not None:
            raise interrupted

    def _commit_loop(self) -> None:
        while True:
            with self._wake:
                while not self._rows and not self._stopping:
                    self._wake.wait()
                rows, self._rows = self._rows, []
            if not rows:
                return
            try:
                self._put(rows)
            except BaseException as exc:  # raised in the producer's thread by its next add() or flush()
                with self._wake:
                    self._error = exc
                return

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
