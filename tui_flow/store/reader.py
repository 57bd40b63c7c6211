"""Reading the run store: the queries, the replay of a run's events, its log lines in chunks.

`Reader` holds every query of `RunStore` (`list_runs`, `get_run`, `resolve`, `task_rows`,
`attempt_rows`, `context_writes`, `run_context`, `initial_context`, `options`, `events`,
`load_run`, `task_logs`, `log_chunks`). The events are the record: a task's status and its
attempts are not stored as rows but derived by replaying the run's events through the
engine's own `RunView` (`replay`), one segment (execution) at a time; a segment whose process
died is closed as "interrupted" on the way (`_close_dead_segment`).

A task may write a million lines. `task_logs` builds them all as `LogRow`s in memory (fine
for the app's last few thousand); `log_chunks` walks a cursor instead, a chunk of plain row
tuples at a time, so `tui-flow show RUN --logs TASK` starts writing at once and holds one
chunk at a time, whatever the size of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncGenerator
from typing import Any, cast

import aiosqlite

from ..engine.events import RunFinished
from ..engine.state import RunView
from .rows import EVENT_COLUMNS, LogRow, RunRow, Stored, TaskRow, event_from_row, final_context
from .schema import Database, StoreError


class RunNotFound(StoreError):
    """No stored run matches the id (or prefix) given."""


#: what a runs query selects: a `RunRow`'s fields, in order (`RunRow(*row)`)
RUN_COLUMNS = ", ".join(RunRow.__dataclass_fields__)
#: what a log query selects: a `LogRow`'s fields, in order (`LogRow(*row)`)
LOG_ROW_FIELDS = tuple(LogRow.__dataclass_fields__)
LOG_ROW_COLUMNS = ", ".join(LOG_ROW_FIELDS)
CHUNK_ROWS = 10_000


def _instances_range(task_id: str) -> tuple[str, str]:
    """The ids of a map_over task's instances, `task[...]`, as a range of the index: exactly
    the strings that start with `task[` (`\\` is the character after `[`)."""
    return task_id + "[", task_id + "\\"


def logs_query(run_id: str, task_id: str | None = None) -> tuple[str, list[Any]]:
    """The SELECT (without ORDER BY) of a run's log lines, of one task and its instances when
    `task_id` is given, and its parameters."""
    sql = f"SELECT {LOG_ROW_COLUMNS} FROM logs WHERE run_id = ?"
    params: list[Any] = [run_id]
    if task_id is not None:
        sql += " AND (task_id = ? OR (task_id >= ? AND task_id < ?))"
        params += [task_id, *_instances_range(task_id)]
    return sql, params


async def _has_instance_lines(conn: aiosqlite.Connection, run_id: str, task_id: str) -> bool:
    low, high = _instances_range(task_id)
    rows = await conn.execute_fetchall(
        "SELECT 1 FROM logs WHERE run_id = ? AND task_id >= ? AND task_id < ? LIMIT 1",
        (run_id, low, high),
    )
    return bool(list(rows))


async def log_chunks(
    conn: aiosqlite.Connection,
    run_id: str,
    task_id: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """A run's log lines (of one task and its instances), in the order written, as lists of
    row tuples (`LOG_ROW_COLUMNS`), at most `chunk_rows` each.

    A task without instance lines is read straight down the (run, task, id) index; only a
    map_over task's lines need SQLite to merge the task's and its instances' by id."""
    if task_id is not None and not await _has_instance_lines(conn, run_id, task_id):
        sql = f"SELECT {LOG_ROW_COLUMNS} FROM logs WHERE run_id = ? AND task_id = ?"
        params: list[Any] = [run_id, task_id]
    else:
        sql, params = logs_query(run_id, task_id)
    async with conn.execute(sql + " ORDER BY id", params) as cursor:
        # the next chunk is read in aiosqlite's thread while the caller handles this one
        ahead = asyncio.ensure_future(cursor.fetchmany(chunk_rows))
        try:
            while True:
                rows = await ahead
                if not rows:
                    return
                ahead = asyncio.ensure_future(cursor.fetchmany(chunk_rows))
                yield cast("list[tuple[Any, ...]]", rows)
        finally:
            ahead.cancel()  # left early: aiosqlite's thread finishes the read, then closes


# -- a run's events replayed into views, and its tasks' rows from them ----------------------------


def _interrupt(view: RunView, error: str | None, at: float | None) -> None:
    """A replayed view of a run whose process died ends as interrupted (running tasks too)."""
    when = at if at is not None else view.last_event_at or view.started_at or 0.0
    view.apply(
        RunFinished(
            run_id=view.run_id, at=when, status="interrupted", context=view.context, error=error
        )
    )


def _close_dead_segment(view: RunView, run: RunRow, seg: int) -> None:
    """A replayed segment that never finished was cut short by its process dying: an earlier
    segment for certain (a resume followed it), the latest once recovery has marked the run
    "interrupted" (until then it may still be running)."""
    if view.status != "running":
        return
    if seg < run.segments - 1:
        why = "the process recording this part of the run ended before it finished; resumed"
        _interrupt(view, why, view.last_event_at)
    elif run.status == "interrupted":
        _interrupt(view, run.error, run.finished_at)


def _summaries(
    segments: list[tuple[int, RunView, frozenset[str]]],
) -> tuple[list[TaskRow], dict[str, list[dict[str, Any]]]]:
    """A run's per-task rows and each task's attempts, from the replayed views of its
    segments in order. A task's row comes from the latest segment that ran it: an in-place
    resume keeps the rows of the tasks it reused, and a map_over task that runs again
    replaces its instances. Attempts are kept from every segment. Rows: top-level tasks first
    in run order, then map_over instances."""
    rows: dict[str, tuple[int, TaskRow]] = {}
    attempts: dict[str, list[dict[str, Any]]] = {}
    for seg, view, reused in segments:
        in_place = seg > 0
        if in_place:
            again = {tid for tid in view.order if tid not in reused}
            for tid in [k for k, (_, r) in rows.items() if r.parent in again]:
                del rows[tid]
        for pos, tid in enumerate(view.order):
            t = view.tasks.get(tid)
            taken = tid in reused
            if t is None or (taken and in_place):
                continue
            rows[tid] = (
                pos,
                TaskRow(
                    tid,
                    t.info.parent,
                    t.state,
                    len(t.attempts),
                    t.started_at,
                    t.finished_at,
                    t.error,
                    t.reason,
                    t.via_fallback,
                    seg,
                    taken,
                ),
            )
            attempts.setdefault(tid, []).extend(
                {
                    "segment": seg,
                    "attempt": a.number,
                    "started_at": a.started_at,
                    "finished_at": a.finished_at,
                    "status": a.status,
                    "error": a.error,
                    "traceback": a.traceback,
                }
                for a in t.attempts
            )
    ordered = sorted(
        rows.values(), key=lambda pr: (pr[1].parent is not None, pr[1].parent or "", pr[0])
    )
    return [r for _, r in ordered], attempts


def _columns(row: Any) -> tuple[str, float, str | None, str | None, int | None, str]:
    """An `events` row as `EVENT_COLUMNS` selects it (kind, at, task_id, state, attempt,
    data)."""
    kind, at, task_id, state, attempt, data = row
    return kind, at, task_id, state, attempt, data


# -- the queries ----------------------------------------------------------------------------------


class Reader:
    """The queries of the run store, on its shared connection (what each returns is told on
    `RunStore`, the public face). They raise `StoreError` for an SQLite error, `RunNotFound`
    for a run that is not there; `replay` and `segment_on_disk` leave SQLite's errors as they
    are (the writer and recovery call them inside their own transaction, and explain what
    fails there themselves)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_runs(self, workflow: str | None = None, limit: int | None = 50) -> list[RunRow]:
        where, params = "", cast("list[Any]", [])
        if workflow:
            where, params = "WHERE workflow = ?", [workflow]
        sql = f"SELECT {RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [RunRow(*r) for r in await self._db.fetch(sql, params)]

    async def get_run(self, run_id: str) -> RunRow | None:
        rows = await self._db.fetch(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return RunRow(*rows[0]) if rows else None

    async def resolve(self, ref: str) -> RunRow:
        path = self._db.path
        if ref in ("last", "latest"):
            runs = await self.list_runs(limit=1)
            if not runs:
                raise RunNotFound(f"{path}: no runs recorded yet")
            return runs[0]
        row = await self.get_run(ref)
        if row is not None:
            return row
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._db.fetch(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id LIKE ? ESCAPE '\\' "
            "ORDER BY started_at DESC LIMIT 6",
            (escaped + "%",),
        )
        if len(rows) == 1:
            return RunRow(*rows[0])
        if not rows:
            raise RunNotFound(
                f"no run {ref!r} in {path} (see `tui-flow history` for the recorded runs)"
            )
        ids = ", ".join(r[0] for r in rows[:5])
        raise RunNotFound(f"run id {ref!r} is ambiguous: it starts {ids}; give more of it")

    async def _run(self, run_id: str) -> RunRow:
        run = await self.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run {run_id!r} in {self._db.path}")
        return run

    async def task_rows(self, run_id: str) -> list[TaskRow]:
        return (await self._derived_rows(run_id))[0]

    async def attempt_rows(self, run_id: str, task_id: str) -> list[dict[str, Any]]:
        return (await self._derived_rows(run_id))[1].get(task_id, [])

    async def _derived_rows(
        self, run_id: str
    ) -> tuple[list[TaskRow], dict[str, list[dict[str, Any]]]]:
        """The run's task rows and each task's attempts, from a replay of every segment."""
        run = await self._run(run_id)
        segments = []
        for seg in range(run.segments):
            view, reused = await self.replay(run_id, seg)
            _close_dead_segment(view, run, seg)
            segments.append((seg, view, reused))
        return _summaries(segments)

    async def context_writes(self, run_id: str) -> dict[str, dict[str, Any]]:
        rows = await self._db.fetch(
            "SELECT task_id, key, value FROM context_writes WHERE run_id = ? ORDER BY task_id, key",
            (run_id,),
        )
        out: dict[str, dict[str, Any]] = {}
        for tid, key, value in rows:
            out.setdefault(tid, {})[key] = json.loads(value)
        return out

    async def run_context(self, run_id: str) -> dict[str, Any]:
        rows = await self._db.fetch(
            "SELECT initial_context, final_context FROM runs WHERE run_id = ?", (run_id,)
        )
        if not rows:
            raise RunNotFound(f"no run {run_id!r} in {self._db.path}")
        initial, final = rows[0]
        if final is not None:
            return dict(json.loads(final))
        writes = await self.context_writes(run_id)
        tasks = await self.task_rows(run_id)
        done = {t.task_id for t in tasks if t.parent is None and t.status == "completed"}
        return final_context(
            json.loads(initial), [t.task_id for t in tasks], done.__contains__, writes
        )

    async def stored(self, run_id: str) -> Stored:
        """What a run's `events` rows leave out (`rows.Stored`): its written values and its
        stored final context. SQLite's errors are left to the caller (as `replay`)."""
        conn = self._db.conn
        writes: dict[str, dict[str, str]] = {}
        for tid, key, value in await conn.execute_fetchall(
            "SELECT task_id, key, value FROM context_writes WHERE run_id = ?", (run_id,)
        ):
            writes.setdefault(tid, {})[key] = value
        rows = list(
            await conn.execute_fetchall(
                "SELECT final_context FROM runs WHERE run_id = ?", (run_id,)
            )
        )
        final = rows[0][0] if rows else None
        return Stored(writes, None if final is None else json.loads(final))

    async def initial_context(self, run_id: str) -> dict[str, Any]:
        rows = await self._db.fetch("SELECT initial_context FROM runs WHERE run_id = ?", (run_id,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def options(self, run_id: str) -> dict[str, Any]:
        rows = await self._db.fetch("SELECT options FROM runs WHERE run_id = ?", (run_id,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def events(self, run_id: str, segment: int | None = None) -> list[Any]:
        seg = await self._latest_segment(run_id) if segment is None else segment
        rows = await self._db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ? AND segment = ? ORDER BY id",
            (run_id, seg),
        )
        try:
            stored = await self.stored(run_id)
        except sqlite3.Error as exc:
            raise self._db.explain(exc) from None

        def convert() -> list[Any]:
            view, out = RunView(), []
            for r in rows:
                e = event_from_row(run_id, *_columns(r), stored=stored, view=view)
                view.apply(e)
                out.append(e)
            return out

        return await asyncio.to_thread(convert)

    async def _latest_segment(self, run_id: str) -> int:
        rows = await self._db.fetch("SELECT segments FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run {run_id!r} in {self._db.path}")
        return int(rows[0][0]) - 1

    async def segment_on_disk(self, run_id: str) -> int | None:
        """The run's latest segment in the database; None if it has no row (yet)."""
        rows = await self._db.conn.execute_fetchall(
            "SELECT segments FROM runs WHERE run_id = ?", (run_id,)
        )
        row = next(iter(rows), None)
        return None if row is None else int(row[0]) - 1

    async def load_run(
        self, run_id: str, segment: int | None = None, *, log_lines: bool = True
    ) -> RunView:
        run = await self._run(run_id)
        seg = run.segments - 1 if segment is None else segment
        try:
            view, _ = await self.replay(run_id, seg, log_lines)
        except sqlite3.Error as exc:
            raise self._db.explain(exc) from None
        _close_dead_segment(view, run, seg)
        return view

    async def replay(
        self, run_id: str, seg: int, log_lines: bool = False
    ) -> tuple[RunView, frozenset[str]]:
        """Fold a segment's stored events into a view (off the loop); and its reused tasks.
        `view.last_event_at` is the time of the segment's newest event. `log_lines`: count
        each task's log lines too (a pass over all of them: ~0.4 s a million)."""
        conn = self._db.conn
        rows: Any = await conn.execute_fetchall(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ? AND segment = ? ORDER BY id",
            (run_id, seg),
        )
        counts: Any = ()
        if log_lines:
            counts = await conn.execute_fetchall(
                "SELECT task_id, count(*) FROM logs WHERE run_id = ? AND segment = ? "
                "GROUP BY task_id",
                (run_id, seg),
            )
        stored = await self.stored(run_id)

        def fold() -> tuple[RunView, frozenset[str]]:
            view = RunView()
            reused: frozenset[str] = frozenset()
            for row in rows:
                e = event_from_row(run_id, *_columns(row), stored=stored, view=view)
                if row[0] == "run_started":
                    reused = frozenset(e.reused)
                view.apply(e)
            view.last_event_at = rows[-1][1] if rows else None
            for tid, n in counts:
                t = view.tasks.get(tid)
                if t is not None:
                    t.log_lines = int(n)
            return view, reused

        return await asyncio.to_thread(fold)

    async def task_logs(
        self, run_id: str, task_id: str | None = None, limit: int | None = None
    ) -> list[LogRow]:
        sql, params = logs_query(run_id, task_id)
        if limit is not None:
            rows = await self._db.fetch(sql + " ORDER BY id DESC LIMIT ?", [*params, int(limit)])
            rows.reverse()
        else:
            rows = await self._db.fetch(sql + " ORDER BY id", params)
        return [LogRow.from_row(r) for r in rows]

    async def log_chunks(
        self, run_id: str, task_id: str | None = None, chunk_rows: int = CHUNK_ROWS
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        try:
            async with contextlib.aclosing(
                log_chunks(self._db.conn, run_id, task_id, chunk_rows)
            ) as chunks:
                async for rows in chunks:
                    yield rows
        except sqlite3.Error as exc:
            raise self._db.explain(exc) from None
