"""Reading a run's log a chunk at a time: the same lines as `task_logs`, and `show --logs`
writing the same text and JSON as when it loaded every line and printed each through Rich."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import subprocess
import sys
from dataclasses import astuple
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from tui_flow.cli.store import _row_json, write_logs
from tui_flow.engine.events import LogLine, RunStarted, TaskInfo, TaskLogs, TaskStateChanged
from tui_flow.store import LogRow, RunStore
from tui_flow.store.reader import LOG_ROW_FIELDS

ROOT = Path(__file__).resolve().parent.parent
RID = "logs00000001"


def line(task_id: str, attempt: int, at: float, text: str, level: str = "info") -> LogLine:
    return LogLine(task_id=task_id, attempt=attempt, at=at, level=level, text=text)


async def recorded(tmp_path: Path) -> RunStore:
    """A run with a map_over task `m` (instances m[0], m[1]), a task `m2` whose id merely
    starts like them, and a task `a` with two attempts and error lines, interleaved."""
    store = await RunStore.open(tmp_path / "runs.db")
    tasks = [TaskInfo(id=t) for t in ("a", "m", "m2")]
    store.record(RunStarted(run_id=RID, at=1.0, workflow="w", max_concurrency=4, tasks=tasks))
    for tid in ("a", "m", "m2"):
        store.record(TaskStateChanged(run_id=RID, at=1.5, task_id=tid, state="running"))
    batches = [
        [line("a", 1, 2.0, "first"), line("m", 1, 2.001, "fan out"), line("m2", 1, 2.002, "m2")],
        [line("m[0]", 1, 2.1, "item 0"), line("a", 1, 2.2, "bad 日本 ✔", "error")],
        [line("m[1]", 1, 2.3, ""), line("m", 1, 2.4, "gathered"), line("a", 2, 3.5, "again")],
        [line("a", 2, 3.6, "  spaced  ", "critical"), line("m[0]", 1, 3.7, "item 0 done")],
    ]
    for i, lines in enumerate(batches):
        store.record(TaskLogs(run_id=RID, at=2.0 + i, lines=lines))
    await store.flush()
    return store


async def chunked(store: RunStore, task_id: str | None, size: int) -> list[list[Any]]:
    return [chunk async for chunk in store.log_chunks(RID, task_id, chunk_rows=size)]


async def test_log_chunks_are_task_logs_a_chunk_at_a_time(tmp_path: Path) -> None:
    store = await recorded(tmp_path)
    try:
        for tid in (None, "a", "m", "m[0]", "m2", "nope"):
            whole = [astuple(r) for r in await store.task_logs(RID, tid)]
            for size in (1, 2, 100):
                chunks = await chunked(store, tid, size)
                assert [r for c in chunks for r in c] == whole, (tid, size)
                assert all(0 < len(c) <= size for c in chunks)
        texts = [r[4] for c in await chunked(store, "m", 2) for r in c]
        assert texts == ["fan out", "item 0", "", "gathered", "item 0 done"]  # in order written
        assert [r[4] for c in await chunked(store, "m2", 2) for r in c] == ["m2"]
    finally:
        await store.close()


async def test_the_summary_does_not_count_log_lines_unless_asked(tmp_path: Path) -> None:
    store = await recorded(tmp_path)
    try:
        counted = await store.load_run(RID)
        assert counted.tasks["a"].log_lines == 4
        assert (await store.load_run(RID, log_lines=False)).tasks["a"].log_lines == 0
    finally:
        await store.close()


def rich_reference(lines: list[LogRow], task_id: str) -> str:
    """`show --logs` as it printed each line through Rich (plain, 120 columns)."""
    out = io.StringIO()
    console = Console(file=out, highlight=False, no_color=True, force_terminal=False, width=120)
    marker = None
    for ln in lines:
        key = (ln.task_id, ln.segment, ln.attempt)
        if key != marker:
            marker = key
            who = f"{ln.task_id} " if ln.task_id != task_id else ""
            seg = f" (resume {ln.segment})" if ln.segment else ""
            console.print(Text(f"── {who}attempt {ln.attempt}{seg} ──", style="bold"))
        stamp = dt.datetime.fromtimestamp(ln.at).strftime("%H:%M:%S.%f")[:-3]
        t = Text(f"{stamp}  {ln.level:<8} ")
        t.append(ln.text, style="red" if ln.level in ("error", "critical") else "")
        console.print(t)
    return out.getvalue()


async def test_show_logs_writes_what_it_wrote_before(tmp_path: Path) -> None:
    store = await recorded(tmp_path)
    try:
        for tid in ("a", "m", "m[1]"):
            lines = await store.task_logs(RID, tid)
            out = io.StringIO()
            assert await write_logs(store, RID, tid, out, None) == len(lines)
            assert out.getvalue() == rich_reference(lines, tid)
            out = io.StringIO()
            await write_logs(store, RID, tid, out, None, as_json=True)
            doc = {
                "schema": 2,
                "run_id": RID,
                "task_id": tid,
                "lines": [ln.__dict__ for ln in lines],
            }
            assert out.getvalue() == json.dumps(doc) + "\n"
        out = io.StringIO()
        assert await write_logs(store, RID, "nope", out, None) == 0
        assert out.getvalue() == f"task 'nope' of run {RID} wrote no log lines\n"
        out = io.StringIO()
        await write_logs(store, RID, "nope", out, None, as_json=True)
        assert json.loads(out.getvalue()) == {
            "schema": 2,
            "run_id": RID,
            "task_id": "nope",
            "lines": [],
        }
    finally:
        await store.close()


@given(
    st.tuples(
        st.text(st.characters(blacklist_categories=("Cs",))),
        st.integers(),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()),
        st.text(st.characters(blacklist_categories=("Cs",))),
        st.text(st.characters(blacklist_categories=("Cs",))),
        st.one_of(st.integers(), st.booleans(), st.none()),
        st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)))),
        st.one_of(
            st.none(),
            st.dictionaries(st.text(), st.one_of(st.integers(), st.text(), st.none())),
        ),
    )
)
def test_a_row_as_json_is_what_json_dumps_writes(row: tuple[Any, ...]) -> None:
    """(`extra` as stored: its JSON text, parsed on the way out)"""
    extra = row[-1]
    stored = (*row[:-1], None if extra is None else json.dumps(extra))
    assert _row_json(stored) == json.dumps(dict(zip(LOG_ROW_FIELDS, row, strict=True)))


def test_show_logs_into_a_pipe_closed_early_stops_quietly(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"

    async def record() -> None:
        store = await RunStore.open(db)
        tasks = [TaskInfo(id="t")]
        store.record(RunStarted(run_id=RID, at=1.0, workflow="w", max_concurrency=1, tasks=tasks))
        lines = [line("t", 1, 2.0 + i * 1e-4, f"line {i} of a long log") for i in range(25_000)]
        store.record(TaskLogs(run_id=RID, at=5.0, lines=lines))
        await store.close()

    asyncio.run(record())
    show = [sys.executable, "-m", "tui_flow.cli", "show", RID, "--logs", "t", "--db", str(db)]
    for extra in ([], ["--json"]):
        proc = subprocess.Popen(
            [*show, *extra],
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.read(2)
        proc.stdout.close()  # like `| head -c 2`
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0
        assert first == (b'{"' if extra else "──".encode()[:2])
        assert err == "", err
