"""`RunStore`: every run kept in SQLite. The public face of the store; the work is done by
three parts sharing one connection (`schema.Database`):

- `writer.Writer`: the recorder the engine calls for each event, and the background task
  that writes the buffered events in batches (one transaction per flush);
- `reader.Reader`: the queries, and the replay of a run's events into the engine's view;
- `owner.Ownership`: which process owns a run, recovery of runs whose process died, claim
  and release of a run before an in-place resume.

`schema.py` opens the database (and creates, migrates or refuses it); `rows.py` has the rows
the queries return and the conversions between events and rows. See docs/store.md.

Two processes may share a database: WAL mode, a busy timeout and immediate transactions make
writers take turns instead of failing. A database that is corrupt, locked beyond the timeout,
from a newer schema, or not a tui-flow database raises `StoreError` and is never written to.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

from ..engine.state import RunView
from . import retention
from .owner import Ownership
from .reader import CHUNK_ROWS, Reader, RunNotFound
from .rows import LogRow, RunRow, TaskRow
from .schema import Database, StoreError, connect, default_path, default_timeout, prepare
from .writer import FLUSH_INTERVAL_S, Writer

__all__ = [
    "FLUSH_INTERVAL_S",
    "LogRow",
    "RunNotFound",
    "RunRow",
    "RunStore",
    "StoreError",
    "TaskRow",
    "default_path",
]


class RunStore:
    """The embedded run store. Open with `await RunStore.open(path)`; `await close()` at the end.

    Composed rather than inherited: the writer, the reader and the ownership each hold only
    their own state, and what one needs of another is passed in (the writer and recovery
    replay what reached the database through the reader), so each can be read on its own.
    The methods below are the whole public API, each handed to the part that does it."""

    def __init__(self, db: Database, flush_interval: float) -> None:
        self._db = db
        self._reader = Reader(db)
        self._ownership = Ownership(db, self._reader)
        self._writer = Writer(db, self._reader, self._ownership.identity, flush_interval)

    # -- opening and closing -----------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float | None = None,
        flush_interval: float = FLUSH_INTERVAL_S,
    ) -> RunStore:
        """Open (creating if needed) the run database and mark runs whose process is gone as
        "interrupted". Raises `StoreError` for a database that cannot be used."""
        p = Path(path).expanduser() if path else default_path()
        timeout = default_timeout() if timeout is None else timeout
        db = await connect(p, timeout)
        store = cls(db, flush_interval)
        try:
            await prepare(db)
            await store._writer.probe()
            await store.recover()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await db.conn.close()
            if isinstance(exc, sqlite3.Error):
                raise db.explain(exc) from None
            raise
        return store

    async def close(self) -> None:
        """Write what is buffered, stop the writer and close the database."""
        if self._writer.closed:
            return
        try:
            await self._writer.close()
        finally:
            with contextlib.suppress(Exception):
                await self._db.conn.close()

    async def __aenter__(self) -> RunStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def timeout(self) -> float:
        """Seconds to wait for another process holding the write lock."""
        return self._db.timeout

    @property
    def flush_interval(self) -> float:
        """Seconds between flushes at the latest while events come."""
        return self._writer.flush_interval

    # -- recording (writer.py) ---------------------------------------------------------------

    def recorder(self, view: RunView | None = None) -> Callable[[Any], None]:
        """A subscriber for `Execution` (subscribe before `start()`): it buffers each event and
        a background task writes them, every `flush_interval` and when a run finishes.

        Pass the execution's own view (`store.recorder(execution.view)`) to spare the store
        folding the events a second time; without it the store folds its own copy."""
        return self._writer.recorder(view)

    def record(self, event: Any, view: RunView | None = None) -> None:
        """Buffer one event (never blocks; call on the event loop). `view`: an up-to-date
        view of the event's run that someone else folds (the engine's), if any."""
        self._writer.record(event, view)

    async def flush(self) -> None:
        """Write every buffered event now. Raises `StoreError` if they cannot be written."""
        await self._writer.flush()

    async def wait_for_flushes(self, count: int) -> None:
        """Wait until the writer has made `count` flushes and holds nothing back (for tools
        and tests that watch the background writer without forcing a flush)."""
        await self._writer.wait_for_flushes(count)

    def mark_interrupted_now(self, run_id: str, why: str) -> bool:
        """Mark a run being recorded as interrupted, synchronously and from any thread: for a
        process that must end at once (see runs.Interrupts). Events not flushed yet are lost;
        what was flushed stays a consistent prefix of the run. True if the run was marked."""
        return self._writer.mark_interrupted_now(run_id, why)

    @property
    def last_error(self) -> StoreError | None:
        """Why the last flush failed, until one succeeds."""
        return self._writer.last_error

    @property
    def dropped(self) -> int:
        """Events dropped for belonging to a run that has no row (never happens when the
        recorder is subscribed before the run starts)."""
        return self._writer.dropped

    @property
    def flushes(self) -> int:
        """How many flushes were written."""
        return self._writer.flushes

    # -- queries (reader.py) -----------------------------------------------------------------

    async def list_runs(self, workflow: str | None = None, limit: int | None = 50) -> list[RunRow]:
        """The most recent runs first (of one workflow when given)."""
        return await self._reader.list_runs(workflow, limit)

    async def get_run(self, run_id: str) -> RunRow | None:
        return await self._reader.get_run(run_id)

    async def resolve(self, ref: str) -> RunRow:
        """A run by id, unique id prefix, or `last` (the newest run)."""
        return await self._reader.resolve(ref)

    async def task_rows(self, run_id: str) -> list[TaskRow]:
        """The run's tasks, as its events left them (top-level first in run order, then
        map_over instances). For a run resumed in place, each task as the latest segment that
        ran it left it; a task reused from an earlier segment keeps that segment's row."""
        return await self._reader.task_rows(run_id)

    async def attempt_rows(self, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """A task's attempts in every segment of the run: segment, attempt, started_at,
        finished_at, status, error, traceback."""
        return await self._reader.attempt_rows(run_id, task_id)

    async def context_writes(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Each task's stored context writes: {task_id: {key: value}}."""
        return await self._reader.context_writes(run_id)

    async def run_context(self, run_id: str) -> dict[str, Any]:
        """The run's context: the final one if it finished, else the initial context plus the
        writes of its completed tasks, in run order."""
        return await self._reader.run_context(run_id)

    async def initial_context(self, run_id: str) -> dict[str, Any]:
        return await self._reader.initial_context(run_id)

    async def options(self, run_id: str) -> dict[str, Any]:
        return await self._reader.options(run_id)

    async def events(self, run_id: str, segment: int | None = None) -> list[Any]:
        """The stored events of one segment (the latest by default), task_logs excepted
        (their lines are in `task_logs()`)."""
        return await self._reader.events(run_id, segment)

    async def load_run(
        self, run_id: str, segment: int | None = None, *, log_lines: bool = True
    ) -> RunView:
        """Rebuild the `RunView` of a stored run by replaying its events: exactly what the live
        run's views showed. For a run resumed in place, its latest segment (`segment=` for an
        earlier one): reused tasks show as completed, "reused from earlier run". A run whose
        process died shows as "interrupted", and so do the tasks that were running; so does an
        earlier segment cut short that way (its end: its last recorded event).
        `log_lines=False` leaves each task's `log_lines` at 0 instead of counting them (what
        costs time in a run with millions of lines)."""
        return await self._reader.load_run(run_id, segment, log_lines=log_lines)

    async def task_logs(
        self, run_id: str, task_id: str | None = None, limit: int | None = None
    ) -> list[LogRow]:
        """Log lines of a run (of one task, and of its instances for a map_over task), in the
        order written, across every segment. With `limit`, the last `limit` lines. For a log
        of any size, `log_chunks` reads it a chunk at a time."""
        return await self._reader.task_logs(run_id, task_id, limit)

    def log_chunks(
        self, run_id: str, task_id: str | None = None, chunk_rows: int = CHUNK_ROWS
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """`task_logs` a chunk at a time, as row tuples in `LogRow`'s field order (see
        `store/reader.py`); close it (`contextlib.aclosing`) when leaving it early."""
        return self._reader.log_chunks(run_id, task_id, chunk_rows)

    # -- retention (retention.py) -------------------------------------------------------------

    async def prunable(
        self, *, keep: int | None = None, before: float | None = None, workflow: str | None = None
    ) -> list[str]:
        """The runs a prune would delete, newest first: all but the `keep` newest (of
        `workflow`, when given) that started before `before` (epoch seconds); a run still
        going on is always kept. At least one of `keep` and `before` is needed."""
        return await retention.prunable(self._db, keep=keep, before=before, workflow=workflow)

    async def forget(self, run_ids: list[str]) -> int:
        """Delete the runs and everything recorded of them (one transaction); how many
        were deleted. `vacuum()` gives the space back to the file system."""
        return await retention.forget(self._db, run_ids)

    async def free_pages(self) -> int:
        """How many pages of the database file are free (`vacuum()` gives them back)."""
        return await retention.free_pages(self._db)

    async def vacuum(self) -> None:
        """Rebuild the database file without its free pages, so it shrinks on disk."""
        await self.flush()
        await retention.vacuum(self._db)

    # -- which process owns a run (owner.py) -------------------------------------------------

    async def recover(self) -> list[str]:
        """Mark runs whose recording process is gone as "interrupted" (their failed-task count
        from the events that reached the database). Returns their ids. Called by `open()`."""
        return await self._ownership.recover()

    async def claim(self, run_id: str) -> bool:
        """Mark a stopped run as running in this process (before resuming it in place), so a
        second `resume` of the same run refuses. False if it is not resumable any more."""
        return await self._ownership.claim(run_id)

    async def release(self, run_id: str, status: str = "interrupted") -> bool:
        """Undo `claim()` when the resume could not start after all."""
        return await self._ownership.release(run_id, status)
