"""`tui-flow run --events-jsonl FILE`: every event of the run, one JSON object per line.

Each line is the event model's JSON (`engine/events.py`, the models the store records), with
its `kind`: `run_started`, `task_state`, `task_logs`, ... `run_finished`; every field is
written, defaults too, so a reader needs no defaults table. `-` writes to standard output
(the console's lines and the report are then left out: nothing else goes there).

Lines are buffered and written out at most `FLUSH_S` after they came and at the end of the
run, so a reader following the file (`tail -f`) sees the run as it goes.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..engine.events import RunFinished

FLUSH_S = 0.2


class EventsJsonl:
    """A subscriber writing each event as one line of JSON to `out` (closed by `close()`
    unless it is standard output). A write that fails (a full disk, a closed pipe) stops
    the writing; `error` says why, and the run goes on."""

    def __init__(self, out: TextIO, *, close: bool = True) -> None:
        self.out = out
        self._close = close
        self._last_flush = time.monotonic()
        self.error: str | None = None
        self.lines = 0

    @classmethod
    def open(cls, path: str) -> EventsJsonl:
        """`-`: standard output; else the file (created or truncated; its folder must exist).
        Raises OSError for a file that cannot be opened."""
        if path == "-":
            return cls(sys.stdout, close=False)
        return cls(open(path, "w", encoding="utf-8"), close=True)

    def __call__(self, event: Any) -> None:
        if self.error is not None:
            return
        try:
            self.out.write(event.model_dump_json() + "\n")
            self.lines += 1
            now = time.monotonic()
            if isinstance(event, RunFinished) or now - self._last_flush >= FLUSH_S:
                self.out.flush()
                self._last_flush = now
        except (OSError, ValueError) as exc:  # ValueError: written to a closed file
            self.error = f"--events-jsonl: cannot write: {exc}"

    def close(self) -> None:
        try:
            self.out.flush()
            if self._close:
                self.out.close()
        except (OSError, ValueError) as exc:
            self.error = self.error or f"--events-jsonl: cannot write: {exc}"
