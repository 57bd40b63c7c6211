"""Which process owns a run: recorded with it, checked to recover runs whose process died.

A run being recorded is marked "running" with its owner: host, pid, and a token made of the
boot id and the process's start time (`owner_identity`), so a reused pid or a reboot is not
mistaken for the owner (`owner_alive`). A run recorded on another host cannot be checked
from here and is left alone.

`Ownership` (one per open store) marks the runs whose owner is gone as "interrupted" when the
store opens (`recover`), and claims a stopped run for this process before it is resumed in
place (`claim`; `release` undoes it), so two processes cannot resume the same run.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

from .reader import Reader
from .rows import failed_count
from .schema import INTERRUPT_RUN, Database

#: (host, pid, token) of a process
Identity = tuple[str, int, str]

_RESUMABLE = ("interrupted", "failed", "cancelled")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    if not fields or fields[0] in ("Z", "X"):  # a zombie has ended; only its entry remains
        return None
    return fields[19] if len(fields) > 19 else ""


def owner_identity(pid: int | None = None) -> Identity:
    """(host, pid, token) of a process; the token changes if the pid is reused or on reboot."""
    pid = os.getpid() if pid is None else pid
    start = _proc_start(pid) if sys.platform.startswith("linux") else None
    return socket.gethostname(), pid, f"{_boot_id()}:{start or ''}"


def owner_alive(host: str | None, pid: int | None, token: str | None) -> bool:
    """Whether the process that recorded a run still runs. A run recorded on another host
    cannot be checked from here, so it is assumed alive."""
    if pid is None:
        return False
    if host and host != socket.gethostname():
        return True
    boot, _, start = (token or "").partition(":")
    if sys.platform.startswith("linux") and boot:
        if boot != _boot_id():
            return False
        now = _proc_start(pid)
        return now is not None and (not start or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class Ownership:
    """This process as the owner of runs in one store: its identity (which the writer
    records with each run it starts), recovery of dead owners' runs, claim and release."""

    def __init__(self, db: Database, reader: Reader) -> None:
        self._db = db
        self._reader = reader
        self.identity: Identity = owner_identity()

    async def recover(self) -> list[str]:
        """Mark runs whose recording process is gone as "interrupted" (their failed-task count
        from a replay of the events of their latest segment that reached the database).
        Returns their ids. SQLite's errors are left to the caller (`RunStore.open`)."""
        db = self._db
        rows = await db.conn.execute_fetchall(
            "SELECT run_id, owner_host, owner_pid, owner_token FROM runs WHERE status = 'running'"
        )
        dead = [r[0] for r in rows if not owner_alive(r[1], r[2], r[3])]
        if not dead:
            return []
        marked: list[str] = []
        async with db.lock, db.transaction():
            for rid in dead:
                # look again under the write lock: another process may have claimed it
                now = await db.conn.execute_fetchall(
                    "SELECT owner_host, owner_pid, owner_token FROM runs "
                    "WHERE run_id = ? AND status = 'running'",
                    (rid,),
                )
                row = next(iter(now), None)
                if row is None or owner_alive(*row):
                    continue
                why = f"the process recording the run (pid {row[1]}) ended before it finished"
                seg = await self._reader.segment_on_disk(rid)
                failed = 0
                if seg is not None:
                    view, _ = await self._reader.replay(rid, seg)
                    failed = failed_count(view)
                await db.conn.execute(INTERRUPT_RUN, (why, failed, rid))
                marked.append(rid)
        return marked

    async def claim(self, run_id: str) -> bool:
        """Mark a stopped run as running in this process (before resuming it in place), so a
        second `resume` of the same run refuses. False if it is not resumable any more."""
        host, pid, token = self.identity
        return await self._set_status(
            "UPDATE runs SET status = 'running', owner_host = ?, owner_pid = ?, owner_token = ? "
            f"WHERE run_id = ? AND status IN {_RESUMABLE!r}",
            (host, pid, token, run_id),
        )

    async def release(self, run_id: str, status: str = "interrupted") -> bool:
        """Undo `claim()` when the resume could not start after all."""
        _, pid, token = self.identity
        return await self._set_status(
            "UPDATE runs SET status = ? WHERE run_id = ? AND status = 'running' "
            "AND owner_pid = ? AND owner_token = ?",
            (status, run_id, pid, token),
        )

    async def _set_status(self, sql: str, params: tuple[Any, ...]) -> bool:
        """Run one UPDATE of a run's row in its own transaction; whether it changed the row."""
        db = self._db
        async with db.lock:  # never inside the writer's transaction
            try:
                async with db.transaction():
                    cur = await db.conn.execute(sql, params)
                    n = cur.rowcount
                    await cur.close()
            except sqlite3.Error as exc:
                raise db.explain(exc) from None
        return n == 1
