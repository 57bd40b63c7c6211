"""Reading a run's log lines: the query, and the lines in chunks for a run of any size.

A task may write a million lines. `RunStore.task_logs` builds them all as `LogRow`s in
memory (fine for the app's last few thousand); `log_chunks` walks a cursor instead, a chunk
of plain row tuples at a time, so `tui-flow show RUN --logs TASK` starts writing at once and
holds one chunk at a time, whatever the size of the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite

from .rows import LogRow

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
) -> AsyncIterator[list[tuple[Any, ...]]]:
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
                yield list(rows)
        finally:
            ahead.cancel()  # left early: aiosqlite's thread finishes the read, then closes
