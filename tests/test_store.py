"""The run store with a real SQLite file: round trips, queries, recovery, bad databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tui_flow import Context, Workflow, task
from tui_flow.engine import Execution
from tui_flow.engine.events import (
    ContextWritten,
    LogLine,
    RetryScheduled,
    RunFinished,
    RunStarted,
    TaskInfo,
    TaskLogs,
    TaskProgress,
    TasksAdded,
    TaskStateChanged,
)
from tui_flow.engine.state import RunView
from tui_flow.store.owner import owner_alive, owner_identity
from tui_flow.store.schema import APPLICATION_ID, SCHEMA_VERSION
from tui_flow.store.sqlite import RunNotFound, RunStore, StoreError, default_path
from tui_flow.store.writer import Writer

RID = "run000000001"


def every_kind() -> list:
    """One run's events, covering every kind and the awkward values."""
    t0 = 1_700_000_000.123456789
    infos = [
        TaskInfo(id="a", description="first", retry_attempts=2, retry_delay_ms=5.5),
        TaskInfo(id="m", dependencies=("a",), map_over="items", has_fallback=True),
        TaskInfo(id="z", dependencies=("m",), trigger_rule="all_done", timeout_s=1.25),
    ]
    return [
        RunStarted(
            run_id=RID,
            at=t0,
            workflow="w",
            file="/tmp/w.py",
            source_hash="abc",
            max_concurrency=3,
            tasks=infos,
            initial_context={"seed": [1, {"x": None}], "name": "é ✔"},
            options={"k": 1},
        ),
        TaskStateChanged(
            run_id=RID, at=t0 + 0.1, task_id="a", state="running", attempt=1, max_attempts=3
        ),
        TaskLogs(
            run_id=RID,
            at=t0 + 0.15,
            lines=[
                LogLine(task_id="a", attempt=1, at=t0 + 0.11, level="info", text="hello ✔"),
                LogLine(task_id="a", attempt=1, at=t0 + 0.12, level="error", text='it\'s "bad"'),
            ],
        ),
        TaskProgress(run_id=RID, at=t0 + 0.16, task_id="a", done=1, total=4, message="1/4"),
        RetryScheduled(
            run_id=RID,
            at=t0 + 0.2,
            task_id="a",
            attempt=1,
            next_attempt=2,
            max_attempts=3,
            delay_s=0.0055,
            error="ValueError: nope",
        ),
        TaskStateChanged(
            run_id=RID,
            at=t0 + 0.2,
            task_id="a",
            state="retrying",
            attempt=1,
            max_attempts=3,
            error="ValueError: nope",
            traceback="Traceback...\n",
        ),
        TaskStateChanged(
            run_id=RID, at=t0 + 0.3, task_id="a", state="running", attempt=2, max_attempts=3
        ),
        ContextWritten(run_id=RID, at=t0 + 0.4, task_id="a", values={"items": [1, 2], "f": 0.1}),
        TaskStateChanged(
            run_id=RID, at=t0 + 0.4, task_id="a", state="completed", attempt=2, max_attempts=3
        ),
        TaskStateChanged(run_id=RID, at=t0 + 0.5, task_id="m", state="running"),
        TasksAdded(
            run_id=RID,
            at=t0 + 0.5,
            parent="m",
            tasks=[TaskInfo(id=f"m[{i}]", parent="m") for i in range(2)],
        ),
        TaskStateChanged(run_id=RID, at=t0 + 0.6, task_id="m[0]", state="running", attempt=1),
        TaskStateChanged(run_id=RID, at=t0 + 0.6, task_id="m[1]", state="running", attempt=1),
        TaskLogs(
            run_id=RID,
            at=t0 + 0.65,
            lines=[LogLine(task_id="m[1]", attempt=1, at=t0 + 0.61, level="info", text="")],
        ),
        TaskStateChanged(
            run_id=RID,
            at=t0 + 0.7,
            task_id="m[0]",
            state="completed",
            attempt=1,
            via_fallback=True,
            reason="via fallback",
        ),
        TaskStateChanged(
            run_id=RID,
            at=t0 + 0.7,
            task_id="m[1]",
            state="failed",
            attempt=1,
            error="KeyError: 'q'",
            traceback="tb",
            reason="timed out",
        ),
        TaskStateChanged(
            run_id=RID,
            at=t0 + 0.8,
            task_id="m",
            state="failed",
            error="1 of 2 instances did not complete",
        ),
        TaskStateChanged(
            run_id=RID, at=t0 + 0.9, task_id="z", state="skipped", reason="upstream 'm' failed"
        ),
        RunFinished(
            run_id=RID,
            at=t0 + 1.0,
            status="failed",
            report={"wall_s": 1.0, "speedup": 0.5},
            context={"seed": 1},
            error=None,
        ),
    ]


@pytest.fixture(params=["one JSON array", "row by row"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a flush writes its rows: as one JSON array SQLite unpacks (where this SQLite
    gives values back exactly), or one row at a time (older SQLite)."""
    if request.param == "row by row":

        async def no(self: Writer) -> bool:
            return False

        monkeypatch.setattr(Writer, "_json_round_trips", no)
    else:  # the JSON array even for a flush with no run going on (the way a busy run writes)
        monkeypatch.setattr(Writer, "_rows_as_json", lambda self: self.json_rows)
    return request.param


async def test_the_json_write_path_is_taken_where_sqlite_has_json(tmp_path: Path) -> None:
    store = await RunStore.open(tmp_path / "runs.db")
    try:
        if sqlite3.sqlite_version_info >= (3, 38):  # JSON functions built in from then on
            assert store._writer.json_rows
    finally:
        await store.close()


async def test_every_event_kind_round_trips(tmp_path: Path, write_path: str) -> None:
    events = every_kind()
    kinds = {e.kind for e in events}
    assert kinds == {
        "run_started",
        "task_state",
        "retry_scheduled",
        "task_logs",
        "task_progress",
        "context_written",
        "tasks_added",
        "run_finished",
    }
    store = await RunStore.open(tmp_path / "runs.db")
    for e in events:
        store.record(e)
    await store.close()

    store = await RunStore.open(tmp_path / "runs.db")
    try:
        assert store._writer.json_rows == (write_path == "one JSON array")
        stored = await store.events(RID)
        assert stored == [e for e in events if e.kind != "task_logs"]
        lines = [ln for e in events if e.kind == "task_logs" for ln in e.lines]
        logs = await store.task_logs(RID)
        assert [LogLine(**{k: getattr(r, k) for k in LogLine.model_fields}) for r in logs] == lines
        assert [r.text for r in await store.task_logs(RID, "m")] == [""]  # instances included
        assert [r.text for r in await store.task_logs(RID, "a", limit=1)] == ['it\'s "bad"']

        view = await store.load_run(RID)
        expected = RunView.from_events(events)
        assert view.counts() == expected.counts()
        assert view.compute_report() == expected.compute_report()
        assert view.tasks["a"].log_lines == 2
        assert [a.status for a in view.tasks["a"].attempts] == ["failed", "completed"]

        run = await store.get_run(RID)
        assert run is not None
        assert (run.status, run.failed, run.n_tasks, run.wall_s) == ("failed", 1, 3, 1.0)
        rows = {t.task_id: t for t in await store.task_rows(RID)}
        assert rows["a"].status == "completed" and rows["a"].attempts == 2
        assert rows["m[1]"].parent == "m" and rows["m[1]"].error == "KeyError: 'q'"
        assert rows["m[0]"].via_fallback
        assert rows["z"].status == "skipped"
        attempts = await store.attempt_rows(RID, "a")
        assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "failed"), (2, "completed")]
        assert attempts[0]["traceback"] == "Traceback...\n"
        assert (await store.attempt_rows(RID, "m[1]"))[0]["status"] == "timed_out"
        assert await store.context_writes(RID) == {"a": {"items": [1, 2], "f": 0.1}}
        assert await store.run_context(RID) == {"seed": 1}
        assert await store.initial_context(RID) == {"seed": [1, {"x": None}], "name": "é ✔"}
    finally:
        await store.close()


def catalog() -> Workflow:
    @task()
    async def gen(context: Context) -> None:
        print("generating")
        context.insert("items", [1, 2, 3])

    @task(dependencies=["gen"], map_over="items")
    async def square(context: Context) -> int:
        context.log(f"item {context.item}")
        return context.item**2

    @task(dependencies=["gen"], retry_attempts=1)
    def flaky(context: Context) -> None:
        context.progress(1, 2)
        if context.get("tries", 0) == 0:
            context.set("tries", 1)
            raise RuntimeError("first time fails")

    @task(dependencies=["square"])
    async def total(context: Context) -> None:
        context.set("total", sum(context.get("square")))

    return Workflow("catalog", [gen, square, flaky, total], max_concurrency=2)


async def test_a_live_run_and_its_stored_view_match(tmp_path: Path) -> None:
    store = await RunStore.open(tmp_path / "runs.db")
    ex = Execution(catalog())
    ex.subscribe(store.recorder())  # the store folds its own copy of the view
    result = await ex.start().wait()
    await store.close()

    store = await RunStore.open(tmp_path / "runs.db")
    try:
        view = await store.load_run(result.run_id)
        assert view.status == result.status == "failed"  # flaky has no second try in context
        assert view.compute_report() == result.report
        assert view.order == result.view.order
        runs = await store.list_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        assert runs[0].speedup == pytest.approx(result.report.speedup)
        assert await store.run_context(result.run_id) == result.context
        rows = {t.task_id: t for t in await store.task_rows(result.run_id)}
        # the per-task summary, derived from the stored events, is the live run's
        assert {
            k: (v.status, v.attempts, v.started_at, v.finished_at, v.error) for k, v in rows.items()
        } == {
            k: (v.status, v.attempts, v.started_at, v.finished_at, v.error)
            for k, v in result.tasks.items()
        }
        flaky = await store.attempt_rows(result.run_id, "flaky")
        assert [a["error"] for a in flaky] == result.tasks["flaky"].attempt_errors
        assert runs[0].failed == 1
        logs = await store.task_logs(result.run_id, "gen")
        assert [ln.text for ln in logs] == ["generating"]
    finally:
        await store.close()


async def test_recording_lowers_the_switch_interval_and_close_puts_it_back(
    tmp_path: Path,
) -> None:
    """The writer thread must get the GIL while a run keeps the loop busy: from its first
    event the store holds the process-wide switch interval short through `engine.tuning`
    (its one owner), and closing the store lets go of it."""
    from tui_flow.engine import tuning

    assert tuning._switch_users == 0, "an earlier test left the switch interval held"
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        store = await RunStore.open(tmp_path / "runs.db")
        assert sys.getswitchinterval() == 0.005  # opening records nothing
        store.record(every_kind()[0])
        assert sys.getswitchinterval() == tuning.SWITCH_INTERVAL_S
        await store.close()
        assert sys.getswitchinterval() == 0.005
        # one already lower is left alone
        sys.setswitchinterval(0.0005)
        store = await RunStore.open(tmp_path / "runs.db")
        store.record(every_kind()[0].model_copy(update={"run_id": "run000000002"}))
        await store.close()
        assert sys.getswitchinterval() == 0.0005
        # another holder (the app) keeps it short after the store closes
        sys.setswitchinterval(0.005)
        release = tuning.hold_short_switch_interval()
        store = await RunStore.open(tmp_path / "runs.db")
        store.record(every_kind()[0].model_copy(update={"run_id": "run000000003"}))
        await store.close()
        assert sys.getswitchinterval() == tuning.SWITCH_INTERVAL_S
        release()
        assert sys.getswitchinterval() == 0.005
    finally:
        sys.setswitchinterval(before)


async def test_a_run_start_is_written_at_once_not_at_the_end_of_the_interval(
    tmp_path: Path,
) -> None:
    store = await RunStore.open(tmp_path / "runs.db", flush_interval=3600)
    try:
        events = every_kind()
        store.record(events[0])
        await asyncio.wait_for(store.wait_for_flushes(1), 10)
        # (with an hour between flushes, only the start itself can have asked for this one)
        assert await store.get_run(RID) is not None
    finally:
        await store.close()


async def test_flushes_within_the_interval_and_at_the_end_of_a_run(tmp_path: Path) -> None:
    store = await RunStore.open(tmp_path / "runs.db")
    try:
        events = every_kind()
        store.record(events[0])
        # the writer runs by itself: wait for its first flush, without calling flush()
        await asyncio.wait_for(store.wait_for_flushes(1), 10)
        assert await store.get_run(RID) is not None
        for e in events[1:]:
            store.record(e)
        # RunFinished asks for a flush at once
        await asyncio.wait_for(store.wait_for_flushes(2), 10)
        run = await store.get_run(RID)
        assert run is not None and run.status == "failed"
    finally:
        await store.close()


async def test_resume_in_place_keeps_earlier_attempts_and_logs(tmp_path: Path) -> None:
    events = every_kind()
    store = await RunStore.open(tmp_path / "runs.db")
    for e in events:
        store.record(e)
    await store.flush()
    t1 = events[-1].at + 10
    again = [
        events[0].model_copy(update={"at": t1, "resumed_from": RID, "reused": {"a": "completed"}}),
        ContextWritten(run_id=RID, at=t1, task_id="a", values={"items": [1, 2], "f": 0.1}),
        TaskStateChanged(
            run_id=RID, at=t1, task_id="a", state="completed", reason="reused from earlier run"
        ),
        TaskStateChanged(run_id=RID, at=t1 + 1, task_id="m", state="running"),
        TasksAdded(run_id=RID, at=t1 + 1, parent="m", tasks=[TaskInfo(id="m[0]", parent="m")]),
        TaskStateChanged(run_id=RID, at=t1 + 2, task_id="m[0]", state="running", attempt=1),
        TaskLogs(
            run_id=RID,
            at=t1 + 2,
            lines=[LogLine(task_id="m[0]", attempt=1, at=t1 + 2, level="info", text="second go")],
        ),
        TaskStateChanged(run_id=RID, at=t1 + 3, task_id="m[0]", state="completed", attempt=1),
        ContextWritten(run_id=RID, at=t1 + 3, task_id="m", values={"m": [1]}),
        TaskStateChanged(run_id=RID, at=t1 + 3, task_id="m", state="completed"),
        TaskStateChanged(run_id=RID, at=t1 + 4, task_id="z", state="running", attempt=1),
        TaskStateChanged(run_id=RID, at=t1 + 5, task_id="z", state="completed", attempt=1),
        RunFinished(
            run_id=RID,
            at=t1 + 6,
            status="completed",
            report={"wall_s": 6.0},
            context={"done": True},
        ),
    ]
    for e in again:
        store.record(e)
    await store.close()

    store = await RunStore.open(tmp_path / "runs.db")
    try:
        run = await store.get_run(RID)
        assert run is not None
        assert (run.status, run.segments, run.failed, run.resumed_from) == (
            "completed",
            2,
            0,
            None,
        )
        assert run.started_at == events[0].at and run.resumed_at == t1
        rows = {t.task_id: t for t in await store.task_rows(RID)}
        # the reused task keeps what it did in the first segment
        assert (rows["a"].segment, rows["a"].attempts, rows["a"].finished_at) == (
            0,
            2,
            events[8].at,
        )
        assert set(rows) == {"a", "m", "z", "m[0]"}  # m[1] of the first segment is gone
        assert rows["m"].status == "completed" and rows["m"].segment == 1
        logs = await store.task_logs(RID)
        assert [(ln.segment, ln.text) for ln in logs] == [
            (0, "hello ✔"),
            (0, 'it\'s "bad"'),
            (0, ""),
            (1, "second go"),
        ]
        assert [a["attempt"] for a in await store.attempt_rows(RID, "a")] == [1, 2]
        view = await store.load_run(RID)
        assert view.status == "completed" and view.tasks["a"].reason == "reused from earlier run"
        first = await store.load_run(RID, segment=0)
        assert first.status == "failed"
        assert await store.context_writes(RID) == {
            "a": {"items": [1, 2], "f": 0.1},
            "m": {"m": [1]},
        }
    finally:
        await store.close()


async def test_a_run_whose_process_died_is_marked_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    events = every_kind()[:15]  # "a" and m[0] completed, m[1] still running
    store = await RunStore.open(db)
    for e in events:
        store.record(e)
    await store.close()
    assert (await _status(db)) == "running"  # this process is alive: not interrupted

    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host, pid, token = owner_identity(int(proc.stdout))
    assert not owner_alive(host, pid, token)
    assert owner_alive(*owner_identity())
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET owner_pid = ?, owner_token = ?", (pid, token))
    con.commit()
    con.close()

    store = await RunStore.open(db)
    try:
        run = await store.get_run(RID)
        assert run is not None and run.status == "interrupted"
        assert f"pid {pid}" in (run.error or "")
        assert run.finished_at == events[-1].at
        rows = {t.task_id: t.status for t in await store.task_rows(RID)}
        assert rows == {
            "a": "completed",
            "m": "interrupted",
            "z": "pending",
            "m[0]": "completed",
            "m[1]": "interrupted",
        }
        assert [a["status"] for a in await store.attempt_rows(RID, "m[1]")] == ["interrupted"]
        assert [a["status"] for a in await store.attempt_rows(RID, "a")] == ["failed", "completed"]
        view = await store.load_run(RID)
        assert view.status == "interrupted"
        assert view.tasks["a"].state == "completed"
        assert view.tasks["m[1]"].state == "interrupted"
    finally:
        await store.close()


async def _status(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT status FROM runs").fetchone()[0]
    finally:
        con.close()


async def test_resolve_by_prefix_and_last(tmp_path: Path) -> None:
    store = await RunStore.open(tmp_path / "runs.db")
    try:
        for rid, at in (("abc111", 1.0), ("abc222", 2.0), ("def333", 3.0)):
            store.record(every_kind()[0].model_copy(update={"run_id": rid, "at": at}))
        await store.flush()
        assert (await store.resolve("last")).run_id == "def333"
        assert (await store.resolve("abc1")).run_id == "abc111"
        with pytest.raises(RunNotFound, match="ambiguous"):
            await store.resolve("abc")
        with pytest.raises(RunNotFound, match="no run 'zzz'"):
            await store.resolve("zzz")
        assert [r.run_id for r in await store.list_runs(limit=2)] == ["def333", "abc222"]
        assert await store.list_runs(workflow="other") == []
    finally:
        await store.close()


async def test_default_path_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUI_FLOW_DB", raising=False)
    assert default_path() == tmp_path / ".tui-flow" / "runs.db"
    store = await RunStore.open()
    await store.close()
    assert (tmp_path / ".tui-flow" / "runs.db").exists()
    monkeypatch.setenv("TUI_FLOW_DB", str(tmp_path / "elsewhere" / "x.db"))
    store = await RunStore.open()
    await store.close()
    assert (tmp_path / "elsewhere" / "x.db").exists()
    con = sqlite3.connect(tmp_path / "elsewhere" / "x.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


# -- databases that must not be used (nor touched) ----------------------------------------------


def _other_sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.execute("INSERT INTO notes VALUES ('mine')")
    con.commit()
    con.close()


def _newer(path: Path) -> None:
    asyncio.run(_make(path))
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()


async def _make(path: Path) -> None:
    store = await RunStore.open(path)
    for e in every_kind():
        store.record(e)
    await store.close()


def _corrupt(path: Path) -> None:
    asyncio.run(_make(path))
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xde\xad\xbe\xef" * ((len(data) - page) // 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("just some text\n" * 100), "not a SQLite database"),
        (_other_sqlite, "not a tui-flow run database"),
        (_newer, "newer tui-flow"),
        (_corrupt, "corrupt"),
    ],
    ids=["text-file", "other-sqlite", "newer-schema", "corrupt"],
)
async def test_unusable_databases_are_refused_and_left_untouched(
    tmp_path: Path, make, message: str
) -> None:
    db = tmp_path / "runs.db"
    await asyncio.to_thread(make, db)
    before = db.read_bytes()
    with pytest.raises(StoreError, match=message):
        await RunStore.open(db)
    assert db.read_bytes() == before
    assert not (tmp_path / "runs.db-wal").exists() or message in ("newer tui-flow", "corrupt")


async def test_a_locked_database_is_refused_after_the_timeout(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE x (y)")  # a rollback-journal database, exclusively locked
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another process"):
            await RunStore.open(db, timeout=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_schema_file_is_the_only_definition() -> None:
    from tui_flow.store import schema as mod

    text = mod.SCHEMA_FILE.read_text()
    assert "CREATE TABLE runs" in text and f"schema version {SCHEMA_VERSION}" in text
    assert all(v < SCHEMA_VERSION for v in mod.MIGRATIONS)
    assert os.path.basename(mod.SCHEMA_FILE) == "schema.sql"


async def test_a_flush_that_cannot_write_keeps_its_events_for_the_next(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = await RunStore.open(db, timeout=0.05)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock past our timeout
        events = every_kind()
        for e in events:
            store.record(e)
        with pytest.raises(StoreError, match="locked by another process"):
            await store.flush()
        holder.execute("ROLLBACK")
        await store.flush()
        assert await store.events(RID) == [e for e in events if e.kind != "task_logs"]
        assert len(await store.task_logs(RID)) == 3
    finally:
        holder.close()
        await store.close()


async def test_a_version_1_database_is_migrated_and_keeps_its_runs(tmp_path: Path) -> None:
    """Version 1 kept each task_state event whole as JSON; version 2 keeps its task, state and
    attempt in columns; version 3 drops the `tasks` and `attempts` tables (derived from the
    events since). A version 1 file (made with that version's schema, its rows written the
    way it wrote them) opens, is migrated in place, replays to the same events, and ends
    with the same tables and views as a new database."""
    db = tmp_path / "v1.db"
    events = every_kind()
    con = sqlite3.connect(db)
    con.executescript((Path(__file__).parent / "data" / "schema_v1.sql").read_text())
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 1")
    con.execute(
        "INSERT INTO runs (run_id, workflow, status, started_at, max_concurrency, segments) "
        "VALUES (?, 'w', 'failed', ?, 3, 1)",
        (RID, events[0].at),
    )
    con.executemany(
        "INSERT INTO events (run_id, segment, kind, at, data) VALUES (?, 0, ?, ?, ?)",
        [
            (RID, e.kind, e.at, e.model_dump_json(exclude_defaults=True))
            for e in events
            if e.kind != "task_logs"
        ],
    )
    con.commit()
    con.close()

    store = await RunStore.open(db)
    try:
        assert await store.events(RID) == [e for e in events if e.kind != "task_logs"]
        view = await store.load_run(RID)
        assert view.counts() == RunView.from_events(events).counts()
        assert {t.task_id: t.status for t in await store.task_rows(RID)} == {
            tid: t.state for tid, t in view.tasks.items()
        }
    finally:
        await store.close()
    fresh = tmp_path / "fresh.db"
    await (await RunStore.open(fresh)).close()

    def objects(path: Path) -> list[tuple[str, str]]:
        with contextlib.closing(sqlite3.connect(path)) as c:
            return c.execute(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
            ).fetchall()

    assert objects(db) == objects(fresh)
    assert ("view", "task_status") in objects(db)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    assert con.execute(
        "SELECT task_id, status FROM task_status WHERE run_id = ? AND task_id = 'a'", (RID,)
    ).fetchone() == ("a", view.tasks["a"].state)
    states = con.execute(
        "SELECT task_id, state, attempt, data FROM events WHERE kind = 'task_state' ORDER BY id"
    ).fetchall()
    con.close()
    assert states[0] == ("a", "running", 1, '{"max_attempts":3}')
    assert states[-1] == ("z", "skipped", 0, '{"reason":"upstream \'m\' failed"}')
