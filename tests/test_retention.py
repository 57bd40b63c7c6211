"""Retention: each value stored once (schema version 4, and the migration from version 3),
`tui-flow history --prune` and `tui-flow forget`, with the file shrinking after."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import CLI

from tui_flow.cli.common import duration
from tui_flow.engine.events import ContextWritten, RunFinished, RunStarted, TaskInfo
from tui_flow.engine.events import TaskStateChanged as State
from tui_flow.store import RunStore
from tui_flow.store.schema import APPLICATION_ID, SCHEMA_VERSION

DATA = Path(__file__).parent / "data"

FLOW = """
from tui_flow import Context, Workflow, task

@task()
def big(context: Context) -> None:
    context.set("blob", "MARKER-" + "x" * 50_000)
    context.set("n", 7)

@task(dependencies=["big"])
def after(context: Context) -> None:
    context.set("size", len(context.get("blob")))

workflow = Workflow("big", [big, after])
"""


def every_text(db: Path) -> str:
    """All the text the database holds, every column of every table."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(str(row) for t in tables for row in con.execute(f"SELECT * FROM {t}"))


def test_a_written_value_is_stored_once_and_read_back_everywhere(tmp_path: Path, cli: CLI) -> None:
    flow = tmp_path / "big.py"
    flow.write_text(FLOW)
    db = tmp_path / "runs.db"
    assert cli("run", str(flow), "--db", str(db), "--no-logs").returncode == 0
    assert every_text(db).count("MARKER-") == 1  # version 3 held it four times
    code, out, _ = cli("show", "last", "--db", str(db), "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["context"]["blob"].startswith("MARKER-") and doc["context"]["size"] == 50_007

    async def read() -> None:
        async with await RunStore.open(db) as store:
            rid = (await store.resolve("last")).run_id
            events = await store.events(rid)
            written = [e for e in events if isinstance(e, ContextWritten)]
            assert written[0].values["n"] == 7 and written[0].values["blob"].startswith("MARK")
            finished = events[-1]
            assert isinstance(finished, RunFinished)
            assert finished.context == doc["context"]
            view = await store.load_run(rid)
            assert view.context == doc["context"]
            assert view.tasks["big"].written_keys == ["blob", "n"]

    asyncio.run(read())


T0 = 1_700_000_000.5


def v3_run(rid: str, final: dict) -> list:
    """A run's events; its final context as given (need not follow from the writes)."""
    return [
        RunStarted(
            run_id=rid,
            at=T0,
            workflow="w",
            max_concurrency=2,
            tasks=[TaskInfo(id="a"), TaskInfo(id="b", dependencies=("a",))],
            initial_context={"seed": 1},
        ),
        State(run_id=rid, at=T0 + 1, task_id="a", state="running", attempt=1),
        ContextWritten(
            run_id=rid, at=T0 + 2, task_id="a", values={"x": [1, {"y": None}], "s": "é", "t": True}
        ),
        State(run_id=rid, at=T0 + 2, task_id="a", state="completed", attempt=1),
        State(run_id=rid, at=T0 + 3, task_id="b", state="running", attempt=1),
        ContextWritten(run_id=rid, at=T0 + 4, task_id="b", values={"f": 0.1, "z": None}),
        State(run_id=rid, at=T0 + 4, task_id="b", state="completed", attempt=1),
        RunFinished(run_id=rid, at=T0 + 5, status="completed", report={"wall_s": 5}, context=final),
    ]


async def test_a_version_3_database_is_migrated_to_values_stored_once(tmp_path: Path) -> None:
    """Version 3 kept the written values in the context_written events too, and the final
    context in the run_finished event too. Migrated: the events keep the keys, the values
    are where version 4 reads them (context_writes rows filled in where missing), the final
    context is the run's, and every event reads back as it was recorded."""
    db = tmp_path / "v3.db"
    derived = {"seed": 1, "x": [1, {"y": None}], "s": "é", "t": True, "f": 0.1, "z": None}
    runs = {"r1": v3_run("r1", derived), "r2": v3_run("r2", {"other": 2})}
    con = sqlite3.connect(db)
    con.executescript((DATA / "schema_v3.sql").read_text())
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 3")
    for rid, events in runs.items():
        con.execute(
            "INSERT INTO runs (run_id, workflow, status, started_at, max_concurrency, "
            "initial_context, final_context, segments) "
            "VALUES (?, 'w', 'completed', ?, 2, '{\"seed\": 1}', ?, 1)",
            # r2: as a run whose final context never reached its row
            (rid, T0, json.dumps(events[-1].context) if rid == "r1" else None),
        )
        for e in events:  # as version 3 wrote them
            if isinstance(e, State):
                con.execute(
                    "INSERT INTO events (run_id, segment, kind, at, task_id, state, attempt, "
                    "data) VALUES (?, 0, 'task_state', ?, ?, ?, ?, '{}')",
                    (rid, e.at, e.task_id, e.state, e.attempt),
                )
            else:
                con.execute(
                    "INSERT INTO events (run_id, segment, kind, at, task_id, data) "
                    "VALUES (?, 0, ?, ?, ?, ?)",
                    (rid, e.kind, e.at, getattr(e, "task_id", None), e.model_dump_json()),
                )
        if rid == "r1":  # r2: its writes are only in its events
            for e in events:
                if isinstance(e, ContextWritten):
                    con.executemany(
                        "INSERT INTO context_writes VALUES (?, ?, ?, ?, 0, ?)",
                        [(rid, e.task_id, k, json.dumps(v), e.at) for k, v in e.values.items()],
                    )
    con.commit()
    con.close()

    async with await RunStore.open(db) as store:
        for rid, events in runs.items():
            assert await store.events(rid) == events
            assert await store.run_context(rid) == events[-1].context
        assert (await store.context_writes("r2"))["a"] == {
            "x": [1, {"y": None}],
            "s": "é",
            "t": True,
        }
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        data = dict(
            con.execute(
                "SELECT kind, data FROM events WHERE run_id = 'r1' AND kind != 'task_state'"
            ).fetchall()
        )
    assert json.loads(data["context_written"]) == {"task_id": "b", "keys": ["f", "z"]}
    assert "context" not in json.loads(data["run_finished"])
    with contextlib.closing(sqlite3.connect(db)) as con:
        finals = dict(con.execute("SELECT run_id, final_context FROM runs").fetchall())
    # r1's follows from its writes: derived from now on; r2's does not: kept
    assert finals == {"r1": None, "r2": '{"other":2}'}


async def test_a_final_context_that_does_not_follow_from_the_writes_is_stored(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    derived = {"seed": 1, "x": [1, {"y": None}], "s": "é", "t": True, "f": 0.1, "z": None}
    async with await RunStore.open(db) as store:
        for rid, final in (("same", derived), ("odd", {"other": 2})):
            for e in v3_run(rid, final):
                store.record(e)
        await store.flush()
        assert await store.run_context("same") == derived
        assert await store.run_context("odd") == {"other": 2}
        assert (await store.events("odd"))[-1].context == {"other": 2}
    with contextlib.closing(sqlite3.connect(db)) as con:
        stored = dict(con.execute("SELECT run_id, final_context FROM runs").fetchall())
    assert stored == {"same": None, "odd": '{"other":2}'}


# -- pruning and forgetting -------------------------------------------------------------------


def make_runs(db: Path, started: dict[str, float], workflow: str = "w") -> None:
    asyncio.run(_make_runs(db, started, workflow))


async def _make_runs(db: Path, started: dict[str, float], workflow: str) -> None:
    async with await RunStore.open(db) as store:
        for rid, at in started.items():
            store.record(
                RunStarted(
                    run_id=rid,
                    at=at,
                    workflow=workflow,
                    max_concurrency=1,
                    tasks=[TaskInfo(id="a")],
                    initial_context={"pad": "p" * 20_000},
                )
            )
            store.record(ContextWritten(run_id=rid, at=at + 1, task_id="a", values={"k": rid}))
            store.record(State(run_id=rid, at=at + 1, task_id="a", state="completed"))
            store.record(RunFinished(run_id=rid, at=at + 2, status="completed"))
        await store.flush()


def ids(cli: CLI, db: Path) -> list[str]:
    code, out, _ = cli("history", "--db", str(db), "--json")
    assert code == 0
    return [r["run_id"] for r in json.loads(out)["runs"]]


def test_prune_keeps_the_newest_and_the_young_then_vacuums(tmp_path: Path, cli: CLI) -> None:
    import time

    now = time.time()
    db = tmp_path / "runs.db"
    day = 86400.0
    make_runs(db, {f"r{i}": now - i * day for i in range(6)})  # r0 newest, r5 oldest
    make_runs(db, {"other": now - 10 * day}, workflow="v")
    size = db.stat().st_size

    code, out, _ = cli("history", "--db", str(db), "--prune", "--keep", "2", "--dry-run")
    assert code == 0 and out.split()[2] == "5" and "r2" in out
    assert len(ids(cli, db)) == 7  # a dry run deletes nothing

    argv = ("history", "--db", str(db), "--prune", "--keep", "2", "--older-than", "3d12h")
    code, out, _ = cli(*argv, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["deleted"] == ["r4", "r5", "other"]  # r2, r3: young enough
    assert ids(cli, db) == ["r0", "r1", "r2", "r3"]
    assert doc["bytes_after"] < doc["bytes_before"] and db.stat().st_size < size

    code, out, _ = cli("history", "--db", str(db), "--prune", "--keep", "1", "-w", "w")
    assert code == 0 and ids(cli, db) == ["r0"]
    with contextlib.closing(sqlite3.connect(db)) as con:
        for table in ("events", "logs", "context_writes"):
            left = {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM {table}")}
            assert left <= {"r0"}, table


def test_forget_deletes_runs_by_reference(tmp_path: Path, cli: CLI) -> None:
    db = tmp_path / "runs.db"
    make_runs(db, {"abc1": T0, "abd2": T0 + 10, "xyz": T0 + 20})
    code, _, err = cli("forget", "ab", "--db", str(db))
    assert code == 2 and "ambiguous" in err and len(ids(cli, db)) == 3
    code, _, err = cli("forget", "abc", "nope", "--db", str(db))
    assert code == 2 and "no run 'nope'" in err and len(ids(cli, db)) == 3  # all or nothing
    code, out, _ = cli("forget", "abc", "last", "--db", str(db))
    assert code == 0 and out.startswith("deleted 2 run(s)")
    assert ids(cli, db) == ["abd2"]


def test_a_run_going_on_is_never_pruned_nor_forgotten(tmp_path: Path, cli: CLI) -> None:
    db = tmp_path / "runs.db"

    async def start() -> None:  # this process records it, and is alive: it is going on
        async with await RunStore.open(db) as store:
            store.record(
                RunStarted(run_id="live", at=T0, workflow="w", max_concurrency=1, tasks=[])
            )

    asyncio.run(start())
    code, _, err = cli("forget", "live", "--db", str(db))
    assert code == 2 and "still going on" in err
    code, out, _ = cli("history", "--db", str(db), "--prune", "--keep", "0")
    assert code == 0 and out == "nothing to delete\n"
    assert ids(cli, db) == ["live"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--prune",), "--prune needs --keep N"),
        (("--keep", "3"), "--keep goes with --prune"),
        (("--older-than", "3d"), "go with --prune"),
        (("--prune", "--older-than", "3 days"), "expected a duration"),
        (("--prune", "--keep", "-1"), "whole number"),
    ],
)
def test_bad_prune_arguments_exit_2(
    argv: tuple[str, ...], message: str, tmp_path: Path, cli: CLI
) -> None:
    code, _, err = cli("history", "--db", str(tmp_path / "r.db"), *argv)
    assert code == 2 and message in err


def test_durations() -> None:
    assert duration("90s") == 90 and duration("45m") == 2700 and duration("2w") == 14 * 86400
    assert duration("1d12h") == 1.5 * 86400 and duration("1.5h") == 5400
    for bad in ("", "3", "d", "3x", "3d x", "-3d"):
        with pytest.raises(Exception, match="expected a duration"):
            duration(bad)
