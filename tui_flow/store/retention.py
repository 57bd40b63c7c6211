"""Retention: which stored runs to let go of, deleting them, and giving the space back.

- `prunable(db, keep=, before=, workflow=)`: the runs a prune deletes. A run is kept when it
  is among the `keep` newest (of its workflow, when one is named) or started at or after
  `before`; with only one of the two given, that one decides. A run still going on
  ("running": its process is alive, `RunStore.open` recovered the others) is always kept.
- `forget(db, run_ids)`: delete runs and everything recorded of them (events, log lines,
  context writes), in one transaction.
- `free_pages(db)`: how many pages a vacuum would give back (a migration frees some too).
- `vacuum(db)`: rebuild the file without the freed pages and truncate the write-ahead log,
  so the file on disk shrinks (SQLite otherwise keeps freed pages for reuse).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .schema import Database

#: every table holding rows of a run (keyed by run_id); `runs` last
RUN_TABLES = ("events", "logs", "context_writes", "runs")


async def prunable(
    db: Database,
    *,
    keep: int | None = None,
    before: float | None = None,
    workflow: str | None = None,
) -> list[str]:
    """The ids of the runs a prune deletes, newest first (see the module's docstring)."""
    if keep is None and before is None:
        raise ValueError("prunable() needs keep or before")
    where, params = ["status != 'running'"], []
    if workflow:
        where.append("workflow = ?")
        params.append(workflow)
    rows = await db.fetch(
        f"SELECT run_id, started_at FROM runs WHERE {' AND '.join(where)} "
        "ORDER BY started_at DESC, rowid DESC",
        params,
    )
    # the newest runs are counted among the `keep` whatever their status, so a run going on
    # counts as one of them
    if keep is not None:
        newest = await db.fetch(
            "SELECT run_id FROM runs"
            + (" WHERE workflow = ?" if workflow else "")
            + " ORDER BY started_at DESC, rowid DESC LIMIT ?",
            [*params, keep],
        )
        kept = {r[0] for r in newest}
    else:
        kept = set()
    out = []
    for run_id, started_at in rows:
        if run_id in kept:
            continue
        if before is not None and started_at >= before:
            continue
        out.append(run_id)
    return out


async def forget(db: Database, run_ids: Sequence[str]) -> int:
    """Delete the runs and all that was recorded of them; how many runs were deleted."""
    if not run_ids:
        return 0
    deleted = 0
    async with db.lock:
        try:
            async with db.transaction():
                for table in RUN_TABLES:
                    cur = await db.conn.executemany(
                        f"DELETE FROM {table} WHERE run_id = ?", [(r,) for r in run_ids]
                    )
                    if table == "runs":
                        deleted = cur.rowcount
        except sqlite3.Error as exc:
            raise db.explain(exc) from None
    return deleted


async def free_pages(db: Database) -> int:
    """How many pages of the file are free (what `vacuum` would give back)."""
    rows = await db.fetch("PRAGMA freelist_count")
    return int(rows[0][0]) if rows else 0


async def vacuum(db: Database) -> None:
    """Give the freed space back to the file system (VACUUM, then truncate the WAL)."""
    async with db.lock:
        try:
            await db.conn.execute("VACUUM")
            cur = await db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await cur.close()
        except sqlite3.Error as exc:
            raise db.explain(exc) from None
