"""`RunStore`: every run kept in SQLite (schema, batched writer, queries, recovery).

The store is one more subscriber of the engine's event stream. `recorder()` returns a plain
sync callable that only appends the event to a buffer; a background asyncio task writes the
buffer every `flush_interval` (50 ms) and at once when a run finishes, one `BEGIN IMMEDIATE`
transaction per flush. A flush is all or nothing, so the database always holds a prefix of
each run's event stream: a crash loses at most the events of the last unflushed window.

Two processes may share a database: WAL mode, a busy timeout and immediate transactions make
writers take turns instead of failing. A database that is corrupt, locked beyond the timeout,
from a newer schema, or not a tui-flow database raises `StoreError` and is never written to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ..engine.events import RunStarted
from ..engine.state import RunView
from ..engine.tuning import hold_short_switch_interval
from ..errors import TuiFlowError
from .reader import CHUNK_ROWS, log_chunks, logs_query
from .rows import (
    EVENT_COLUMNS,
    EVENT_ROW_COLUMNS,
    EventRow,
    LogRow,
    RunRow,
    TaskRow,
    dumps,
    event_from_row,
    event_row,
    failed_count,
    state_extras,
)

SCHEMA_VERSION = 3
APPLICATION_ID = 0x74756966  # "tuif"
SCHEMA_FILE = Path(__file__).with_name("schema.sql")
# MIGRATIONS[n] takes a database from schema version n to n + 1 (SQL statements). The newest
# schema is always schema.sql; a new version adds its step here and bumps SCHEMA_VERSION.
MIGRATIONS: dict[int, str] = {
    # 1 -> 2: task_state events keep task_id, state and attempt in columns, and in `data` only
    # their other non-default fields (version 1 kept the whole event as JSON in `data`)
    1: """
    CREATE TABLE events_v2 (
        id      INTEGER PRIMARY KEY,
        run_id  TEXT NOT NULL,
        segment INTEGER NOT NULL,
        kind    TEXT NOT NULL,
        at      REAL NOT NULL,
        task_id TEXT,
        state   TEXT,
        attempt INTEGER,
        data    TEXT NOT NULL
    );
    INSERT INTO events_v2 (id, run_id, segment, kind, at, task_id, state, attempt, data)
    SELECT id, run_id, segment, kind, at, json_extract(data, '$.task_id'),
        CASE WHEN kind = 'task_state' THEN json_extract(data, '$.state') END,
        CASE WHEN kind = 'task_state' THEN COALESCE(json_extract(data, '$.attempt'), 0) END,
        CASE WHEN kind = 'task_state'
            THEN json_remove(data, '$.run_id', '$.at', '$.task_id', '$.state', '$.attempt')
            ELSE data END
    FROM events;
    DROP TABLE events;
    ALTER TABLE events_v2 RENAME TO events;
    CREATE INDEX events_run ON events (run_id, segment, id);
    """,
    # 2 -> 3: the per-task and per-attempt summaries are derived from the events on read
    # (RunStore.task_rows / attempt_rows) instead of written at the end of every run; the
    # task_status view gives each task's latest recorded state to plain SQL
    2: """
    DROP TABLE tasks;
    DROP TABLE attempts;
    CREATE VIEW task_status AS
    SELECT run_id, task_id, segment, state AS status, attempt, at AS updated_at,
        max(id) AS event_id
    FROM events WHERE kind = 'task_state' GROUP BY run_id, task_id;
    """,
}

ENV_DB = "TUI_FLOW_DB"
ENV_TIMEOUT = "TUI_FLOW_DB_TIMEOUT"
DEFAULT_DIR = ".tui-flow"
DEFAULT_NAME = "runs.db"
DEFAULT_TIMEOUT_S = 10.0
FLUSH_INTERVAL_S = 0.05

_SQLITE_MAGIC = b"SQLite format 3\x00"
_RUN_COLUMNS = ", ".join(RunRow.__dataclass_fields__)
_RESUMABLE = ("interrupted", "failed", "cancelled")


class StoreError(TuiFlowError):
    """The run database cannot be used (the CLI prints the message and exits with 2)."""


class RunNotFound(StoreError):
    """No stored run matches the id (or prefix) given."""


def default_path() -> Path:
    """$TUI_FLOW_DB, else `.tui-flow/runs.db` in the working directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    return Path.cwd() / DEFAULT_DIR / DEFAULT_NAME


def default_timeout() -> float:
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StoreError(f"${ENV_TIMEOUT} must be a number of seconds, not {raw!r}") from None


# -- process identity (to find runs whose process is gone) ------------------------------------


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


def owner_identity(pid: int | None = None) -> tuple[str, int, str]:
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


# -- errors --------------------------------------------------------------------------------------


def _explain(path: Path, exc: BaseException, timeout: float) -> StoreError:
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(
            f"{path}: the run database is locked by another process (waited {timeout:g} s; "
            f"set ${ENV_TIMEOUT} to wait longer). Nothing was changed."
        )
    if name.startswith("SQLITE_NOTADB") or "not a database" in text:
        return StoreError(
            f"{path}: not a SQLite database (or an encrypted one). It was left untouched; "
            f"pass --db to use another file."
        )
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreError(
            f"{path}: the run database is corrupt ({text}). It was left untouched; move it "
            f"away or pass --db to use another file."
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return StoreError(
            f"{path}: the run database is read-only here, so runs cannot be recorded; pass "
            f"--db to use another file, or --no-store to run without recording"
        )
    return StoreError(f"{path}: cannot use the run database: {text}")


def _statements(script: str) -> list[str]:
    """Split SQL text into statements (sqlite3.complete_statement decides where they end)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if stmt.rstrip(";").strip() and not all(
                ln.strip().startswith("--") or not ln.strip() for ln in stmt.splitlines()
            ):
                out.append(stmt)
            buf = ""
    return out


def _interrupt(view: RunView, error: str | None, at: float | None) -> RunView:
    """A replayed view of a run whose process died: running tasks show as interrupted."""
    view.status = "interrupted"
    view.error = error
    view.finished_at = at
    view.running = 0
    for t in view.tasks.values():
        if t.state in ("running", "retrying"):
            t.state = "interrupted"
            t.next_retry_at = None
            for a in t.attempts:
                if a.finished_at is None:
                    a.status = "interrupted"
    return view


# -- the batch writer -------------------------------------------------------------------------

_INSERT_RUN = (
    "INSERT INTO runs (run_id, workflow, file, source_hash, status, started_at, last_event_at, "
    "max_concurrency, executor, options, initial_context, n_tasks, resumed_from, segments, "
    "owner_host, owner_pid, owner_token) VALUES "
    "(?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)"
)
_RESUME_RUN = (
    "UPDATE runs SET status = 'running', resumed_at = ?, last_event_at = ?, finished_at = NULL, "
    "final_context = NULL, report = NULL, wall_s = NULL, speedup = NULL, error = NULL, "
    "failed = 0, segments = segments + 1, workflow = ?, file = ?, source_hash = ?, "
    "max_concurrency = ?, executor = ?, n_tasks = ?, owner_host = ?, owner_pid = ?, "
    "owner_token = ? WHERE run_id = ?"
)
_DELETE_WRITES = "DELETE FROM context_writes WHERE run_id = ? AND task_id = ?"
_INSERT_WRITES = (
    "INSERT OR REPLACE INTO context_writes (run_id, task_id, key, value, segment, at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_LOG_COLUMNS = "run_id, task_id, segment, attempt, at, level, text"


def _json_picks(n: int) -> str:
    """The `n` items of each JSON array `json_each` yields, as columns."""
    return ", ".join(f"json_extract(value, '$[{i}]')" for i in range(n))


def _inserts(table: str, columns: str) -> tuple[str, str]:
    """The INSERT of one row (for `executemany`), and the INSERT of rows given as one JSON
    array of arrays (one parameter): SQLite unpacks that in C with the GIL released for the
    whole statement. `executemany` takes the GIL back for every row, and while the loop is
    busy each of those waits its turn (see `_rows_as_json`)."""
    n = len(columns.split(", "))
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * n)})",
        f"INSERT INTO {table} ({columns}) SELECT {_json_picks(n)} FROM json_each(?)",
    )


_INSERT_LOGS, _INSERT_LOGS_JSON = _inserts("logs", _LOG_COLUMNS)
_INSERT_EVENTS, _INSERT_EVENTS_JSON = _inserts("events", EVENT_ROW_COLUMNS)
# json.dumps of the rows; not ASCII-only: a string that SQLite cannot take (a lone surrogate)
# fails the flush as the same row given to executemany would
_rows_json = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=False).encode
_LAST_EVENT = "UPDATE runs SET last_event_at = max(COALESCE(last_event_at, 0), ?) WHERE run_id = ?"
_FINISH_RUN = (
    "UPDATE runs SET status = ?, finished_at = ?, final_context = ?, report = ?, wall_s = ?, "
    "speedup = ?, error = ?, failed = ? WHERE run_id = ?"
)
_INTERRUPT_RUN = (
    "UPDATE runs SET status = 'interrupted', finished_at = COALESCE(last_event_at, started_at), "
    "error = ?, failed = ? WHERE run_id = ? AND status = 'running'"
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
                    *(tid, t.info.parent, t.state, len(t.attempts), t.started_at),
                    *(t.finished_at, t.error, t.reason, t.via_fallback, seg, taken),
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


class _Batch:
    """What was recorded since the last flush: `events` rows in the order the events came,
    and, in order too, what else some of them ask for (`ops`: the index into `events` at
    which it came, what, and its payload): a run starting (a batch is written in slices that
    start at each), log lines, context writes, a run finishing."""

    __slots__ = ("events", "last_at", "ops", "unresolved")

    def __init__(self) -> None:
        self.events: list[EventRow] = []
        self.ops: list[tuple[int, str, Any]] = []
        self.last_at: dict[str, float] = {}  # run id -> time of its newest event
        self.unresolved: set[str] = set()  # runs with rows whose segment is not known yet

    def __bool__(self) -> bool:
        return bool(self.events or self.ops)

    def __len__(self) -> int:
        return len(self.events) + sum(1 for op in self.ops if op[1] == "logs")

    def extend(self, later: _Batch) -> None:
        offset = len(self.events)
        self.events += later.events
        self.ops += [(i + offset, what, payload) for i, what, payload in later.ops]
        for rid, at in later.last_at.items():
            if at > self.last_at.get(rid, 0.0):
                self.last_at[rid] = at
        self.unresolved |= later.unresolved


def _resolve(rows: list[Any], col: int, segments: dict[str, int]) -> tuple[list[Any], int]:
    """Rows with the segment (at index `col`) filled in where it was not known yet, and how
    many were dropped (their run has no row in the database)."""
    out = [r if r[col] is not None else (*r[:col], segments.get(r[0]), *r[col + 1 :]) for r in rows]
    kept = [r for r in out if r[col] is not None]
    return kept, len(out) - len(kept)


class RunStore:
    """The embedded run store. Open with `await RunStore.open(path)`; `await close()` at the end."""

    def __init__(
        self, path: Path, conn: aiosqlite.Connection, timeout: float, flush_interval: float
    ) -> None:
        self.path = path
        self._conn = conn
        self.timeout = timeout
        self.flush_interval = flush_interval
        self._json_rows = False  # flushes write rows as one JSON array (see _json_round_trips)
        # the flushes go through aiosqlite's thread, which needs the GIL for a moment at each
        # statement: while it records, the store holds the switch interval short (see
        # engine.tuning), or the thread would wait for a busy run to end
        self._release_switch: Callable[[], None] | None = None
        self._buffer = _Batch()  # recorded, not yet written
        self._retry: _Batch | None = None  # a batch a failed flush kept for the next one
        self._seg: dict[str, int] = {}  # run id -> segment its events belong to, when known
        self._folds: dict[str, RunView] = {}  # run id -> the view the store folds itself
        self._views: dict[str, RunView] = {}  # run id -> the view of the run being recorded
        self._segments: dict[str, int] = {}  # run id -> its segment, as written by flushes
        self._wake: asyncio.Event | None = None
        self._now: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._owner = owner_identity()
        self.last_error: StoreError | None = None
        self.dropped = 0  # events of runs that have no row (never happens when subscribed first)
        self.flushes = 0
        self._flush_cond: asyncio.Condition | None = None

    # -- opening -------------------------------------------------------------------------------

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
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            in_the_way = isinstance(exc, FileExistsError | NotADirectoryError)
            why = "a file is in the way" if in_the_way else exc.strerror or str(exc)
            raise StoreError(
                f"{p.parent}: cannot create the folder for the run database: {why}"
            ) from None
        if p.is_dir():
            raise StoreError(f"{p}: is a folder; --db expects a database file")
        if p.exists():
            try:
                with p.open("rb") as f:
                    head = f.read(len(_SQLITE_MAGIC))
            except OSError as exc:
                raise StoreError(f"{p}: cannot read the run database: {exc}") from None
            if head and head != _SQLITE_MAGIC[: len(head)]:
                raise StoreError(
                    f"{p}: not a SQLite database. It was left untouched; pass --db to use "
                    f"another file."
                )
        elif not os.access(p.parent, os.W_OK):
            raise StoreError(
                f"{p}: cannot create the run database: the folder {p.parent} is not writable; "
                f"pass --db to put it elsewhere"
            )
        pending = aiosqlite.connect(str(p), timeout=timeout, isolation_level=None)
        try:
            conn = await pending
        except sqlite3.Error as exc:
            # aiosqlite stops its thread on a failed connect, but without waiting: let it
            # finish while the loop is still there to take its answer
            await asyncio.to_thread(pending._thread.join, 2.0)
            raise _explain(p, exc, timeout) from None
        store = cls(p, conn, timeout, flush_interval)
        try:
            await store._prepare()
            await store._check_writable()
            await store.recover()
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _explain(p, exc, timeout) from None
            raise
        return store

    async def _prepare(self) -> None:
        """Check (or create, or migrate) the schema; then WAL mode."""
        conn = self._conn
        await conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        app_id, version, n_tables = await self._identity()
        if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
            pass
        elif app_id == APPLICATION_ID and version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: the run database was written by a newer tui-flow (schema "
                f"version {version}; this one knows up to {SCHEMA_VERSION}). Upgrade tui-flow "
                f"or pass --db to use another file. It was left untouched."
            )
        elif (app_id == 0 and n_tables == 0) or app_id == APPLICATION_ID:
            await self._create_or_migrate()
        else:
            raise StoreError(
                f"{self.path}: a SQLite database, but not a tui-flow run database. It was "
                f"left untouched; pass --db to use another file."
            )
        cur = await conn.execute("PRAGMA journal_mode = WAL")
        await cur.close()
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = OFF")
        self._json_rows = await self._json_round_trips()

    async def _check_writable(self) -> None:
        """Refuse a database this process cannot write (a read-only file, a read-only copy)
        now, before a run starts, rather than after its bodies ran for nothing."""
        conn = self._conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute("UPDATE runs SET status = status WHERE 0")
        finally:
            await conn.execute("ROLLBACK")

    def mark_interrupted_now(self, run_id: str, why: str) -> bool:
        """Mark a run being recorded as interrupted, synchronously and from any thread: for a
        process that must end at once (see runs.Interrupts). Events not flushed yet are lost;
        what was flushed stays a consistent prefix of the run. True if the run was marked."""
        view = self._views.get(run_id)
        failed = failed_count(view) if view is not None else 0
        try:
            with contextlib.closing(sqlite3.connect(str(self.path), timeout=0.5)) as conn:
                cur = conn.execute(_INTERRUPT_RUN, (why, failed, run_id))
                conn.commit()
                return cur.rowcount > 0
        except sqlite3.Error:
            return False

    async def _json_round_trips(self) -> bool:
        """Whether this SQLite can take a flush's rows as one JSON array (`_write_slice`): it
        has the JSON functions, and gives back exactly the numbers and text it was given (an
        older SQLite may round the last digit of a float). Otherwise rows go one by one."""
        probe = [
            [1763798400.123456, 0.1 + 0.2, 5e-324, -1.7976931348623157e308, 2**53 + 1],
            [None, "é\n\"'\\\u0001", "日本", ""],
        ]
        try:
            rows = await self._conn.execute_fetchall(
                f"SELECT {_json_picks(5)} FROM json_each(?)", (_rows_json(probe),)
            )
        except sqlite3.Error:
            return False
        return [list(r)[: len(p)] for r, p in zip(rows, probe, strict=True)] == probe

    async def _identity(self) -> tuple[int, int, int]:
        conn = self._conn
        rows = await conn.execute_fetchall("PRAGMA application_id")
        app_id = int(next(iter(rows))[0])
        rows = await conn.execute_fetchall("PRAGMA user_version")
        version = int(next(iter(rows))[0])
        rows = await conn.execute_fetchall("SELECT count(*) FROM sqlite_master")
        n_tables = int(next(iter(rows))[0])
        return app_id, version, n_tables

    async def _create_or_migrate(self) -> None:
        conn = self._conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # look again inside the write lock: another process may have just done it
            app_id, version, n_tables = await self._identity()
            if app_id == 0 and n_tables == 0:
                for stmt in _statements(SCHEMA_FILE.read_text()):
                    await conn.execute(stmt)
                await conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif app_id == APPLICATION_ID and version < SCHEMA_VERSION:
                for v in range(version, SCHEMA_VERSION):
                    step = MIGRATIONS.get(v)
                    if step is None:
                        raise StoreError(
                            f"{self.path}: no migration from schema version {v} to {v + 1}; "
                            f"the database was left untouched."
                        )
                    for stmt in _statements(step):
                        await conn.execute(stmt)
                await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif app_id != APPLICATION_ID or version != SCHEMA_VERSION:
                raise StoreError(f"{self.path}: not a tui-flow run database; left untouched.")
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise

    async def recover(self) -> list[str]:
        """Mark runs whose recording process is gone as "interrupted" (their failed-task count
        from the events that reached the database). Returns their ids. Called by `open()`."""
        conn = self._conn
        rows = await conn.execute_fetchall(
            "SELECT run_id, owner_host, owner_pid, owner_token FROM runs WHERE status = 'running'"
        )
        dead = [(r[0], r[2]) for r in rows if not owner_alive(r[1], r[2], r[3])]
        if not dead:
            return []
        marked: list[str] = []
        async with self._lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                for rid, pid in dead:
                    # look again under the write lock: another process may have claimed it
                    now = await conn.execute_fetchall(
                        "SELECT owner_host, owner_pid, owner_token FROM runs "
                        "WHERE run_id = ? AND status = 'running'",
                        (rid,),
                    )
                    row = next(iter(now), None)
                    if row is None or owner_alive(*row):
                        continue
                    pid = row[1]
                    why = f"the process recording the run (pid {pid}) ended before it finished"
                    seg = await self._segment_of(rid, {})
                    failed = 0
                    if seg is not None:
                        view, _ = await self._replay(rid, seg)
                        failed = failed_count(view)
                    await conn.execute(_INTERRUPT_RUN, (why, failed, rid))
                    marked.append(rid)
                await conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
        return marked

    async def _replay(
        self, run_id: str, seg: int, log_lines: bool = False
    ) -> tuple[RunView, frozenset[str]]:
        """Fold a segment's stored events into a view (off the loop); and its reused tasks.
        `view.last_event_at` is the time of the segment's newest event. `log_lines`: count
        each task's log lines too (a pass over all of them: ~0.4 s a million)."""
        rows = await self._conn.execute_fetchall(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ? AND segment = ? ORDER BY id",
            (run_id, seg),
        )
        counts: Any = ()
        if log_lines:
            counts = await self._conn.execute_fetchall(
                "SELECT task_id, count(*) FROM logs WHERE run_id = ? AND segment = ? "
                "GROUP BY task_id",
                (run_id, seg),
            )

        def fold() -> tuple[RunView, frozenset[str]]:
            view = RunView()
            reused: frozenset[str] = frozenset()
            for row in rows:
                e = event_from_row(run_id, *row)
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

    # -- recording -----------------------------------------------------------------------------

    def recorder(self, view: RunView | None = None) -> Callable[[Any], None]:
        """A subscriber for `Execution` (subscribe before `start()`): it buffers each event and
        a background task writes them, every `flush_interval` and when a run finishes.

        Pass the execution's own view (`store.recorder(execution.view)`) to spare the store
        folding the events a second time; without it the store folds its own copy."""
        if view is None:
            return self.record

        def record(event: Any) -> None:
            self.record(event, view)

        return record

    def record(self, event: Any, view: RunView | None = None) -> None:
        """Buffer one event (never blocks; call on the event loop). `view`: an up-to-date
        view of the event's run that someone else folds (the engine's), if any.

        The event becomes its row at once, plain strings and numbers: the buffer then holds
        no objects the garbage collector has to walk, however many events wait for the flush,
        and the flush has nothing left to convert."""
        if self._closed:
            raise StoreError(f"{self.path}: the run store is closed")
        buf = self._buffer
        if event.kind == "task_state":  # most of what a run records: the short way
            d = event.__dict__
            rid = d["run_id"]
            seg = self._note(event, rid, d["at"])
            buf.events.append(
                (
                    *(rid, seg, "task_state", d["at"], d["task_id"], d["state"], d["attempt"]),
                    state_extras(d),
                )
            )
        else:
            self._record_other(event, view)
        if self._wake is None:
            self._start_flusher()
        assert self._wake is not None
        self._wake.set()

    def _note(self, event: Any, rid: str, at: float) -> int | None:
        """What every recorded event does: fold it into the store's own view of its run (if
        the store folds one), note the time, and give the run's segment (None, noted in the
        buffer, when the flush has to find it)."""
        fold = self._folds.get(rid)
        if fold is not None:
            fold.apply(event)
        self._buffer.last_at[rid] = at
        seg = self._seg.get(rid)
        if seg is None:
            self._buffer.unresolved.add(rid)
        return seg

    def _record_other(self, event: Any, view: RunView | None) -> None:
        buf = self._buffer
        kind = event.kind
        rid = event.run_id
        at = event.at
        if kind == "run_started":
            if view is None:
                view = self._folds[rid] = RunView()
            else:
                self._folds.pop(rid, None)
            self._views[rid] = view
            if event.resumed_from == rid:
                self._seg.pop(rid, None)  # resumed in place: the flush finds its segment
            else:
                self._seg[rid] = 0
            buf.ops.append((len(buf.events), "start", event))
            self._flush_soon()  # the run is on disk at once, whatever happens next
        seg = self._note(event, rid, at)
        if kind == "task_logs":
            rows = [
                (rid, ln.task_id, seg, ln.attempt, ln.at, ln.level, ln.text) for ln in event.lines
            ]
            buf.ops.append((len(buf.events), "logs", rows))
            return
        if kind == "context_written":
            values = [(k, dumps(v)) for k, v in event.values.items()]
            buf.ops.append((len(buf.events), "writes", (rid, event.task_id, at, values)))
        elif kind == "run_finished":
            recorded = self._views.pop(rid, None)
            # None: not recorded from its start; the flush counts from what was written
            failed = failed_count(recorded) if recorded is not None else None
            self._folds.pop(rid, None)
            report = event.report
            buf.ops.append(
                (
                    len(buf.events),
                    "finish",
                    (
                        *(rid, at, event.status, dumps(event.context), dumps(report)),
                        *(report.get("wall_s"), report.get("speedup"), event.error, failed),
                    ),
                )
            )
            self._flush_soon()
        buf.events.append(event_row(event, seg))

    def _flush_soon(self) -> None:
        """Have the writer flush as soon as the loop lets it, not at the end of the interval."""
        if self._now is None:
            self._start_flusher()
        assert self._now is not None
        self._now.set()

    def _start_flusher(self) -> None:
        self._release_switch = hold_short_switch_interval()  # released by close()
        self._wake = asyncio.Event()
        self._now = asyncio.Event()
        self._flusher = asyncio.get_running_loop().create_task(
            self._flush_loop(), name="tui-flow store writer"
        )

    async def _flush_loop(self) -> None:
        assert self._wake is not None and self._now is not None
        failures = 0
        while True:
            await self._wake.wait()
            if not self._now.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._now.wait()
            self._wake.clear()
            self._now.clear()
            try:
                await self._flush_pending()
                failures = 0
            except StoreError:
                # keep the events and try again, backing off; close() reports a lasting failure
                failures += 1
                self._wake.set()
                await asyncio.sleep(min(2.0, self.flush_interval * 2**failures))

    async def flush(self) -> None:
        """Write every buffered event now. Raises `StoreError` if they cannot be written."""
        await self._flush_pending()

    async def wait_for_flushes(self, count: int) -> None:
        """Wait until the writer has made `count` flushes and holds nothing back (for tools
        and tests that watch the background writer without forcing a flush)."""
        if self._flush_cond is None:
            self._flush_cond = asyncio.Condition()
        async with self._flush_cond:
            await self._flush_cond.wait_for(
                lambda: self.flushes >= count and not self._buffer and self._retry is None
            )

    async def _flush_pending(self) -> None:
        async with self._lock:
            while self._buffer or self._retry is not None:
                batch, self._buffer = self._buffer, _Batch()
                if self._retry is not None:
                    self._retry.extend(batch)
                    batch, self._retry = self._retry, None
                try:
                    await self._write(batch)
                except Exception as exc:  # keep the events: the next flush tries again
                    self._retry = batch
                    if isinstance(exc, sqlite3.Error):
                        self.last_error = _explain(self.path, exc, self.timeout)
                    else:
                        self.last_error = StoreError(
                            f"{self.path}: cannot record the run: {type(exc).__name__}: {exc}"
                        )
                    raise self.last_error from exc
                self.last_error = None
                self.flushes += 1
            if self._flush_cond is not None:
                async with self._flush_cond:
                    self._flush_cond.notify_all()

    async def _write(self, batch: _Batch) -> None:
        """One transaction: every event of the batch, or none of them."""
        conn = self._conn
        segments = dict(self._segments)
        # the batch is written in slices, each from one run's start to the next's
        starts = [j for j, op in enumerate(batch.ops) if op[1] == "start"]
        op_cuts = [0, *starts, len(batch.ops)]
        ev_cuts = [0, *(batch.ops[j][0] for j in starts), len(batch.events)]
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for k in range(len(op_cuts) - 1):
                ops = batch.ops[op_cuts[k] : op_cuts[k + 1]]
                lo, hi = ev_cuts[k], ev_cuts[k + 1]
                if not ops and lo == hi:
                    continue
                if ops and ops[0][1] == "start":
                    await self._started(ops[0][2], segments)
                rows = batch.events if (lo, hi) == (0, len(batch.events)) else batch.events[lo:hi]
                await self._write_slice(rows, ops, batch.unresolved, segments)
            if batch.last_at:
                await conn.executemany(_LAST_EVENT, [(at, r) for r, at in batch.last_at.items()])
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise
        self._segments = segments

    async def _write_slice(
        self,
        rows: list[EventRow],
        ops: list[tuple[int, str, Any]],
        unresolved: set[str],
        segments: dict[str, int],
    ) -> None:
        """Write one slice of a batch (all its rows belong after the same run start)."""
        conn = self._conn
        logs = [r for _, what, payload in ops if what == "logs" for r in payload]
        if unresolved:  # rows of runs whose segment was not known when they were recorded
            for rid in unresolved:
                if rid not in segments:
                    await self._segment_of(rid, segments)
            rows, lost = _resolve(rows, 1, segments)
            logs, lost_lines = _resolve(logs, 2, segments)
            self.dropped += lost + lost_lines
        writes = [payload for _, what, payload in ops if what == "writes"]
        if writes:
            await conn.executemany(_DELETE_WRITES, [(rid, tid) for rid, tid, _, _ in writes])
            await conn.executemany(
                _INSERT_WRITES,
                [
                    (rid, tid, key, value, segments[rid], at)
                    for rid, tid, at, values in writes
                    if rid in segments
                    for key, value in values
                ],
            )
        if self._rows_as_json():
            if logs:
                await conn.execute(_INSERT_LOGS_JSON, (_rows_json(logs),))
            if rows:
                await conn.execute(_INSERT_EVENTS_JSON, (_rows_json(rows),))
        else:
            if logs:
                await conn.executemany(_INSERT_LOGS, logs)
            if rows:
                await conn.executemany(_INSERT_EVENTS, rows)
        for _, what, payload in ops:
            if what != "finish":
                continue
            rid, at, status, context, report, wall, speedup, error, failed = payload
            seg = segments.get(rid)
            if seg is None:
                continue  # a run without a row: its events were dropped too
            if failed is None:  # not recorded from its start: from what reached the database
                view, _ = await self._replay(rid, seg)
                failed = failed_count(view)
            await conn.execute(
                _FINISH_RUN, (status, at, context, report, wall, speedup, error, failed, rid)
            )

    def _rows_as_json(self) -> bool:
        """Whether this flush writes its rows as one JSON array: while a run goes on, so the
        loop is busy and each row of `executemany` would wait for the GIL behind it. With no
        run going on (the flush at the end of one), row by row costs half as much: no JSON to
        build and parse (1.8 against 3.6 us a row here)."""
        return self._json_rows and bool(self._views)

    async def _segment_of(self, run_id: str, segments: dict[str, int]) -> int | None:
        seg = segments.get(run_id)
        if seg is None:
            rows = await self._conn.execute_fetchall(
                "SELECT segments FROM runs WHERE run_id = ?", (run_id,)
            )
            row = next(iter(rows), None)
            if row is not None:
                seg = segments[run_id] = int(row[0]) - 1
        return seg

    async def _started(self, e: RunStarted, segments: dict[str, int]) -> None:
        conn = self._conn
        rid = e.run_id
        last = await self._segment_of(rid, {})  # its latest segment in the database, if any
        host, pid, token = self._owner
        n_top = sum(1 for t in e.tasks if t.parent is None)
        if last is None:
            segments[rid] = 0
            origin = e.resumed_from if e.resumed_from != rid else None
            await conn.execute(
                _INSERT_RUN,
                (
                    *(rid, e.workflow, e.file, e.source_hash, e.at, e.at),
                    *(e.max_concurrency, e.executor, dumps(e.options)),
                    *(dumps(e.initial_context), n_top, origin, host, pid, token),
                ),
            )
            return
        # the same run again: an in-place resume. Writes of tasks that run again are dropped.
        segments[rid] = last + 1
        await conn.execute(
            _RESUME_RUN,
            (
                *(e.at, e.at, e.workflow, e.file, e.source_hash, e.max_concurrency),
                *(e.executor, n_top, host, pid, token, rid),
            ),
        )
        again = [t for t in e.tasks if t.id not in e.reused]
        await conn.executemany(_DELETE_WRITES, [(rid, t.id) for t in again])

    async def close(self) -> None:
        """Write what is buffered, stop the writer and close the database."""
        if self._closed:
            return
        self._closed = True
        error: StoreError | None = None
        try:
            await self._flush_pending()
        except StoreError as exc:
            error = exc
        finally:
            if self._flusher is not None:
                self._flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._flusher
            with contextlib.suppress(Exception):
                await self._conn.close()
            if self._release_switch is not None:
                self._release_switch()
        if error is not None:
            n = len(self._buffer) + (len(self._retry) if self._retry is not None else 0)
            raise StoreError(f"{error} ({n} events of the last moments were not recorded)")

    async def __aenter__(self) -> RunStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- queries -------------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise _explain(self.path, exc, self.timeout) from None

    async def list_runs(self, workflow: str | None = None, limit: int | None = 50) -> list[RunRow]:
        """The most recent runs first (of one workflow when given)."""
        where, params = "", []
        if workflow:
            where, params = "WHERE workflow = ?", [workflow]
        sql = f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [RunRow(*r) for r in await self._fetch(sql, params)]

    async def get_run(self, run_id: str) -> RunRow | None:
        rows = await self._fetch(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return RunRow(*rows[0]) if rows else None

    async def resolve(self, ref: str) -> RunRow:
        """A run by id, unique id prefix, or `last` (the newest run)."""
        if ref in ("last", "latest"):
            runs = await self.list_runs(limit=1)
            if not runs:
                raise RunNotFound(f"{self.path}: no runs recorded yet")
            return runs[0]
        row = await self.get_run(ref)
        if row is not None:
            return row
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._fetch(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id LIKE ? ESCAPE '\\' "
            "ORDER BY started_at DESC LIMIT 6",
            (escaped + "%",),
        )
        if len(rows) == 1:
            return RunRow(*rows[0])
        if not rows:
            raise RunNotFound(
                f"no run {ref!r} in {self.path} (see `tui-flow history` for the recorded runs)"
            )
        ids = ", ".join(r[0] for r in rows[:5])
        raise RunNotFound(f"run id {ref!r} is ambiguous: it starts {ids}; give more of it")

    async def task_rows(self, run_id: str) -> list[TaskRow]:
        """The run's tasks, as its events left them (top-level first in run order, then
        map_over instances). For a run resumed in place, each task as the latest segment that
        ran it left it; a task reused from an earlier segment keeps that segment's row."""
        return (await self._derived_rows(run_id))[0]

    async def attempt_rows(self, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """A task's attempts in every segment of the run: segment, attempt, started_at,
        finished_at, status, error, traceback."""
        return (await self._derived_rows(run_id))[1].get(task_id, [])

    async def _derived_rows(
        self, run_id: str
    ) -> tuple[list[TaskRow], dict[str, list[dict[str, Any]]]]:
        run = await self.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run {run_id!r} in {self.path}")
        segments = []
        for seg in range(run.segments):
            view, reused = await self._replay(run_id, seg)
            _close_dead_segment(view, run, seg)
            segments.append((seg, view, reused))
        return _summaries(segments)

    async def context_writes(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Each task's stored context writes: {task_id: {key: value}}."""
        rows = await self._fetch(
            "SELECT task_id, key, value FROM context_writes WHERE run_id = ? ORDER BY task_id, key",
            (run_id,),
        )
        out: dict[str, dict[str, Any]] = {}
        for tid, key, value in rows:
            out.setdefault(tid, {})[key] = json.loads(value)
        return out

    async def run_context(self, run_id: str) -> dict[str, Any]:
        """The run's context: the final one if it finished, else the initial context plus the
        writes of its completed tasks, in run order."""
        rows = await self._fetch(
            "SELECT initial_context, final_context FROM runs WHERE run_id = ?", (run_id,)
        )
        if not rows:
            raise RunNotFound(f"no run {run_id!r} in {self.path}")
        initial, final = rows[0]
        if final is not None:
            return dict(json.loads(final))
        merged = dict(json.loads(initial))
        writes = await self.context_writes(run_id)
        for t in await self.task_rows(run_id):
            if t.parent is None and t.status == "completed" and t.task_id in writes:
                merged.update(writes[t.task_id])
        return merged

    async def initial_context(self, run_id: str) -> dict[str, Any]:
        rows = await self._fetch("SELECT initial_context FROM runs WHERE run_id = ?", (run_id,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def options(self, run_id: str) -> dict[str, Any]:
        rows = await self._fetch("SELECT options FROM runs WHERE run_id = ?", (run_id,))
        return dict(json.loads(rows[0][0])) if rows else {}

    async def events(self, run_id: str, segment: int | None = None) -> list[Any]:
        """The stored events of one segment (the latest by default), task_logs excepted
        (their lines are in `task_logs()`)."""
        seg = await self._latest_segment(run_id) if segment is None else segment
        rows = await self._fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE run_id = ? AND segment = ? ORDER BY id",
            (run_id, seg),
        )
        return await asyncio.to_thread(lambda: [event_from_row(run_id, *r) for r in rows])

    async def _latest_segment(self, run_id: str) -> int:
        rows = await self._fetch("SELECT segments FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFound(f"no run {run_id!r} in {self.path}")
        return int(rows[0][0]) - 1

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
        run = await self.get_run(run_id)
        if run is None:
            raise RunNotFound(f"no run {run_id!r} in {self.path}")
        seg = run.segments - 1 if segment is None else segment
        try:
            view, _ = await self._replay(run_id, seg, log_lines)
        except sqlite3.Error as exc:
            raise _explain(self.path, exc, self.timeout) from None
        _close_dead_segment(view, run, seg)
        return view

    async def task_logs(
        self, run_id: str, task_id: str | None = None, limit: int | None = None
    ) -> list[LogRow]:
        """Log lines of a run (of one task, and of its instances for a map_over task), in the
        order written, across every segment. With `limit`, the last `limit` lines. For a log
        of any size, `log_chunks` reads it a chunk at a time."""
        sql, params = logs_query(run_id, task_id)
        if limit is not None:
            rows = await self._fetch(sql + " ORDER BY id DESC LIMIT ?", [*params, int(limit)])
            rows.reverse()
        else:
            rows = await self._fetch(sql + " ORDER BY id", params)
        return [LogRow(*r) for r in rows]

    async def log_chunks(
        self, run_id: str, task_id: str | None = None, chunk_rows: int = CHUNK_ROWS
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """`task_logs` a chunk at a time, as row tuples in `LogRow`'s field order (see
        `store/reader.py`)."""
        try:
            async with contextlib.aclosing(
                log_chunks(self._conn, run_id, task_id, chunk_rows)
            ) as chunks:
                async for rows in chunks:
                    yield rows
        except sqlite3.Error as exc:
            raise _explain(self.path, exc, self.timeout) from None

    async def claim(self, run_id: str) -> bool:
        """Mark a stopped run as running in this process (before resuming it in place), so a
        second `resume` of the same run refuses. False if it is not resumable any more."""
        host, pid, token = self._owner
        return await self._set_status(
            run_id,
            "UPDATE runs SET status = 'running', owner_host = ?, owner_pid = ?, owner_token = ? "
            f"WHERE run_id = ? AND status IN {_RESUMABLE!r}",
            (host, pid, token, run_id),
        )

    async def release(self, run_id: str, status: str = "interrupted") -> bool:
        """Undo `claim()` when the resume could not start after all."""
        _, pid, token = self._owner
        return await self._set_status(
            run_id,
            "UPDATE runs SET status = ? WHERE run_id = ? AND status = 'running' "
            "AND owner_pid = ? AND owner_token = ?",
            (status, run_id, pid, token),
        )

    async def _set_status(self, run_id: str, sql: str, params: tuple[Any, ...]) -> bool:
        async with self._lock:  # never inside the writer's transaction
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                cur = await self._conn.execute(sql, params)
                n = cur.rowcount
                await cur.close()
                await self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(Exception):
                    await self._conn.execute("ROLLBACK")
                raise _explain(self.path, exc, self.timeout) from None
        return n == 1
