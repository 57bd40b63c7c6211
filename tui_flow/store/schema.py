"""The run database itself: where it is, its schema and migrations, opening it safely.

- Where: `default_path()` ($TUI_FLOW_DB, else `.tui-flow/runs.db`), `default_timeout()`
  ($TUI_FLOW_DB_TIMEOUT, how long to wait for another writer).
- What: the schema is `schema.sql` (always the newest version, used to create a new
  database); `PRAGMA user_version` is `SCHEMA_VERSION` and `PRAGMA application_id` is
  `APPLICATION_ID`. `MIGRATIONS[n]` takes a database from version n to n + 1.
- Opening: `connect()` refuses what is not a usable file before SQLite touches it;
  `prepare()` checks the file's identity, creates or migrates it in one transaction (a
  database from a newer tui-flow, or another program's, is refused untouched), switches to
  WAL and checks that this process can write to it.
- `Database`: the open connection the store's parts share, with its path, busy timeout and
  the lock that keeps one transaction at a time on it.
- `StoreError` and `explain()`: what SQLite's errors mean, as one line for the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from ..errors import TuiFlowError

SCHEMA_VERSION = 5
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
    # 3 -> 4: each value stored once. A context_written event keeps the keys written (the
    # values are context_writes rows: copied there first where missing); a run_finished
    # event no context (runs.final_context, filled from the event where it was NULL). A
    # final context written by version 3 stays as it was; VACUUM (history --prune, forget)
    # gives the space back.
    3: """
    INSERT OR IGNORE INTO context_writes (run_id, task_id, key, value, segment, at)
    SELECT e.run_id, e.task_id, j.key, e.data -> ('$.values.' || json_quote(j.key)),
        e.segment, e.at
    FROM events e, json_each(e.data, '$.values') j
    WHERE e.kind = 'context_written' ORDER BY e.id;
    UPDATE events SET data = json_object(
        'task_id', json_extract(data, '$.task_id'),
        'keys', (SELECT json_group_array(j.key) FROM json_each(events.data, '$.values') j))
    WHERE kind = 'context_written' AND json_type(data, '$.values') IS NOT NULL;
    UPDATE runs SET final_context = (
        SELECT e.data -> '$.context' FROM events e
        WHERE e.run_id = runs.run_id AND e.kind = 'run_finished'
            AND json_type(e.data, '$.context') IS NOT NULL
        ORDER BY e.segment DESC, e.id DESC LIMIT 1)
    WHERE final_context IS NULL;
    UPDATE events SET data = json_remove(data, '$.context') WHERE kind = 'run_finished';
    """,
    # 4 -> 5: a log line written through `logging` keeps its logger's name and its extra
    # fields (JSON) in columns of their own (version 4 folded the name into the text)
    4: """
    ALTER TABLE logs ADD COLUMN logger TEXT;
    ALTER TABLE logs ADD COLUMN extra TEXT;
    """,
}

ENV_DB = "TUI_FLOW_DB"
ENV_TIMEOUT = "TUI_FLOW_DB_TIMEOUT"
DEFAULT_DIR = ".tui-flow"
DEFAULT_NAME = "runs.db"
DEFAULT_TIMEOUT_S = 10.0

_SQLITE_MAGIC = b"SQLite format 3\x00"

# statements more than one part of the store runs
#: a run whose process is gone (or is ending at once) becomes "interrupted"
INTERRUPT_RUN = (
    "UPDATE runs SET status = 'interrupted', finished_at = COALESCE(last_event_at, started_at), "
    "error = ?, failed = ? WHERE run_id = ? AND status = 'running'"
)


class StoreError(TuiFlowError):
    """The run database cannot be used (the CLI prints the message and exits with 2)."""


def default_path() -> Path:
    """$TUI_FLOW_DB, else `.tui-flow/runs.db` in the working directory (or, when that cannot
    be, in the user's state directory: see `default_location`)."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env).expanduser()
    return default_location()[0]


def default_location() -> tuple[Path, str | None]:
    """Where the run database goes when none is named: `.tui-flow/runs.db` in the working
    directory; when the working directory cannot hold `.tui-flow/` (read-only, not ours, a
    file in the way), `runs.db` in the user's state directory (platformdirs), with the reason
    as the second item (None when the working directory is used). The caller tells the user."""
    local = Path.cwd() / DEFAULT_DIR
    why = _cannot_hold(local)
    if why is None:
        return local / DEFAULT_NAME, None
    from platformdirs import user_state_path

    return user_state_path("tui-flow", appauthor=False) / DEFAULT_NAME, why


def _cannot_hold(folder: Path) -> str | None:
    """Why `folder` cannot hold the run database (None: it can; it is created if need be)."""
    try:
        folder.mkdir(exist_ok=True)
    except FileExistsError:
        return f"{folder} is not a folder"
    except OSError as exc:
        return f"cannot create {folder}: {exc.strerror or exc}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable"
    return None


def default_timeout() -> float:
    """$TUI_FLOW_DB_TIMEOUT in seconds, else `DEFAULT_TIMEOUT_S`."""
    raw = os.environ.get(ENV_TIMEOUT)
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise StoreError(f"${ENV_TIMEOUT} must be a number of seconds, not {raw!r}") from None


def explain(path: Path, exc: BaseException, timeout: float) -> StoreError:
    """An SQLite error as one line for the user (what happened, what to do)."""
    # the error name is there when SQLite itself failed; errors the sqlite3 module raises on
    # its own (a closed connection, a misuse) have no such attribute
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


def statements(script: str) -> list[str]:
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


@dataclass(eq=False)
class Database:
    """The open run database, shared by the store's reader, writer and ownership: one
    connection (autocommit; transactions are explicit), its path and busy timeout, and the
    lock that keeps a second transaction from starting inside the writer's."""

    conn: aiosqlite.Connection
    path: Path
    timeout: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def explain(self, exc: BaseException) -> StoreError:
        return explain(self.path, exc, self.timeout)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query; an SQLite error raises `StoreError`."""
        try:
            return list(await self.conn.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise self.explain(exc) from None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """`BEGIN IMMEDIATE` (wait for the write lock, up to the busy timeout), then COMMIT;
        whatever the body raises rolls it all back and is raised again. Take `lock` first
        wherever the writer may be flushing."""
        conn = self.conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            raise


async def connect(path: Path, timeout: float) -> Database:
    """Open the connection to the run database at `path` (its folder is created). A path
    that cannot be a run database (a folder, another kind of file, a folder that cannot be
    written to) is refused with `StoreError` before SQLite opens it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        in_the_way = isinstance(exc, FileExistsError | NotADirectoryError)
        why = "a file is in the way" if in_the_way else exc.strerror or str(exc)
        raise StoreError(
            f"{path.parent}: cannot create the folder for the run database: {why}"
        ) from None
    if path.is_dir():
        raise StoreError(f"{path}: is a folder; --db expects a database file")
    if path.exists():
        try:
            with path.open("rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the run database: {exc}") from None
        if head and head != _SQLITE_MAGIC[: len(head)]:
            raise StoreError(
                f"{path}: not a SQLite database. It was left untouched; pass --db to use "
                f"another file."
            )
    elif not os.access(path.parent, os.W_OK):
        raise StoreError(
            f"{path}: cannot create the run database: the folder {path.parent} is not "
            f"writable; pass --db to put it elsewhere"
        )
    pending = aiosqlite.connect(str(path), timeout=timeout, isolation_level=None)
    try:
        conn = await pending
    except sqlite3.Error as exc:
        # aiosqlite stops its thread on a failed connect, but without waiting: let it
        # finish while the loop is still there to take its answer (the thread is the
        # connection itself before aiosqlite 0.21, its `_thread` since)
        thread = getattr(pending, "_thread", pending)
        join = getattr(thread, "join", None)
        if callable(join):
            await asyncio.to_thread(join, 2.0)
        raise explain(path, exc, timeout) from None
    return Database(conn, path, timeout)


async def prepare(db: Database) -> None:
    """Check (or create, or migrate) the schema; then WAL mode; then refuse a database this
    process cannot write (a read-only file, a read-only copy) now, before a run starts,
    rather than after its bodies ran for nothing. SQLite errors are left to the caller."""
    conn = db.conn
    await conn.execute(f"PRAGMA busy_timeout = {int(db.timeout * 1000)}")
    app_id, version, n_tables = await _identity(conn)
    if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
        pass
    elif app_id == APPLICATION_ID and version > SCHEMA_VERSION:
        raise StoreError(
            f"{db.path}: the run database was written by a newer tui-flow (schema "
            f"version {version}; this one knows up to {SCHEMA_VERSION}). Upgrade tui-flow "
            f"or pass --db to use another file. It was left untouched."
        )
    elif (app_id == 0 and n_tables == 0) or app_id == APPLICATION_ID:
        await _create_or_migrate(db)
    else:
        raise StoreError(
            f"{db.path}: a SQLite database, but not a tui-flow run database. It was "
            f"left untouched; pass --db to use another file."
        )
    cur = await conn.execute("PRAGMA journal_mode = WAL")
    await cur.close()
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA foreign_keys = OFF")
    await _check_writable(conn)


async def _identity(conn: aiosqlite.Connection) -> tuple[int, int, int]:
    """(application id, schema version, number of schema objects) of the file."""
    rows = await conn.execute_fetchall("PRAGMA application_id")
    app_id = int(next(iter(rows))[0])
    rows = await conn.execute_fetchall("PRAGMA user_version")
    version = int(next(iter(rows))[0])
    rows = await conn.execute_fetchall("SELECT count(*) FROM sqlite_master")
    n_tables = int(next(iter(rows))[0])
    return app_id, version, n_tables


async def _create_or_migrate(db: Database) -> None:
    conn = db.conn
    async with db.transaction():
        # look again inside the write lock: another process may have just done it
        app_id, version, n_tables = await _identity(conn)
        if app_id == 0 and n_tables == 0:
            for stmt in statements(SCHEMA_FILE.read_text()):
                await conn.execute(stmt)
            await conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif app_id == APPLICATION_ID and version < SCHEMA_VERSION:
            for v in range(version, SCHEMA_VERSION):
                step = MIGRATIONS.get(v)
                if step is None:
                    raise StoreError(
                        f"{db.path}: no migration from schema version {v} to {v + 1}; "
                        f"the database was left untouched."
                    )
                for stmt in statements(step):
                    await conn.execute(stmt)
                if v == 3:
                    await _derivable_final_contexts(conn)
            await conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif app_id != APPLICATION_ID or version != SCHEMA_VERSION:
            raise StoreError(f"{db.path}: not a tui-flow run database; left untouched.")


async def _derivable_final_contexts(conn: aiosqlite.Connection) -> None:
    """The end of the 3 -> 4 migration: a run's stored final context is set to NULL where it
    is what version 4 derives when reading (the initial context plus the completed top-level
    tasks' writes, in run order: `rows.final_context`), so a migrated run keeps each value
    once too. Anything else is left as it was."""
    from .rows import final_context

    runs = await conn.execute_fetchall(
        "SELECT run_id, initial_context, final_context, segments FROM runs "
        "WHERE final_context IS NOT NULL"
    )
    for run_id, initial, final, segments in runs:
        started = list(
            await conn.execute_fetchall(
                "SELECT data FROM events WHERE run_id = ? AND segment = ? AND "
                "kind = 'run_started' ORDER BY id DESC LIMIT 1",
                (run_id, int(segments) - 1),
            )
        )
        if not started:
            continue
        tasks = json.loads(started[0][0]).get("tasks", [])
        order = [t["id"] for t in tasks if not t.get("parent")]
        states: dict[str, str] = {
            r[0]: r[1]
            for r in await conn.execute_fetchall(
                "SELECT task_id, status FROM task_status WHERE run_id = ?", (run_id,)
            )
        }
        writes: dict[str, dict[str, Any]] = {}
        for tid, key, value in await conn.execute_fetchall(
            "SELECT task_id, key, value FROM context_writes WHERE run_id = ?", (run_id,)
        ):
            writes.setdefault(tid, {})[key] = json.loads(value)
        done = {tid for tid, status in states.items() if status == "completed"}
        derived = final_context(json.loads(initial), order, done.__contains__, writes)
        if derived == json.loads(final):
            await conn.execute("UPDATE runs SET final_context = NULL WHERE run_id = ?", (run_id,))


async def _check_writable(conn: aiosqlite.Connection) -> None:
    """Take the write lock and write nothing: fails here if this process cannot write."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("UPDATE runs SET status = status WHERE 0")
    finally:
        await conn.execute("ROLLBACK")
