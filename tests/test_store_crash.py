"""Real processes on one database: a run killed with SIGKILL and resumed; two writers at once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from tui_flow.cli import main
from tui_flow.engine.state import RunView
from tui_flow.store.sqlite import RunStore

REPO = Path(__file__).resolve().parent.parent

CRASHY = """
import os
import sqlite3
import threading
import time
from pathlib import Path

from tui_flow import Context, Workflow, task

HERE = Path(__file__).parent
CRASH = os.environ.get("CRASH_TEST") == "1"


def mark(name: str) -> None:
    with open(HERE / "ran.txt", "a") as f:
        f.write(name + "\\n")


def make(i: int):
    @task(id=f"p{i}")
    async def body(context: Context) -> None:
        mark(f"p{i}")
        context.set(f"p{i}", i * i)

    return body


ps = [make(i) for i in range(6)]


@task(dependencies=["p0"])
def slow(context: Context) -> None:
    mark("slow")
    if CRASH:
        threading.Event().wait()  # still running when the process is killed
    context.set("slow", "done")


@task(dependencies=[f"p{i}" for i in range(6)])
def gate(context: Context) -> None:
    mark("gate")
    if CRASH:
        # wait until the store has written the p tasks as completed, say so, then hang
        db = os.environ["TUI_FLOW_DB"]
        while True:
            con = sqlite3.connect(db)
            n = con.execute(
                "SELECT count(*) FROM events WHERE kind = 'task_state' AND state = 'completed' "
                "AND task_id LIKE 'p%'"
            ).fetchone()[0]
            con.close()
            if n == 6:
                break
            time.sleep(0.005)  # workload, allowed: this body polls the database of its own run
        print("GATE REACHED", flush=True)
        threading.Event().wait()
    context.set("gate", sum(context.get(f"p{i}") for i in range(6)))


@task(dependencies=["gate", "slow"])
async def end(context: Context) -> None:
    mark("end")
    context.set("end", context.get("gate") + 1)


workflow = Workflow("crashy", [*ps, slow, gate, end], max_concurrency=3)
"""

ALL = {f"p{i}" for i in range(6)} | {"slow", "gate", "end"}


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("CRASH_TEST", "TUI_FLOW_DB")}
    out["PYTHONPATH"] = str(REPO) + os.pathsep + out.get("PYTHONPATH", "")
    out["PYTHONUNBUFFERED"] = "1"
    out.update(extra)
    return out


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


async def first_segment(db: Path, run_id: str) -> tuple[RunView, float]:
    """The view of a run's first segment, and when the second one began."""
    async with await RunStore.open(db) as store:
        run = await store.get_run(run_id)
        assert run is not None and run.resumed_at is not None
        return await store.load_run(run_id, segment=0), run.resumed_at


def test_a_killed_run_is_resumed_without_redoing_flushed_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "crash"
    work.mkdir()
    flow = work / "crashy.py"
    flow.write_text(CRASHY)
    db = work / "runs.db"

    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_flow.cli", "run", str(flow), "--plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(CRASH_TEST="1", TUI_FLOW_DB=str(db)),
    )
    watchdog = threading.Timer(60, proc.kill)  # never hang the suite if the gate never opens
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "GATE REACHED" in line:
                break
        else:
            pytest.fail(f"the run ended before reaching the gate: {proc.stderr.read()}")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        proc.kill()
        proc.wait()

    con = sqlite3.connect(db)
    status, run_id = con.execute("SELECT status, run_id FROM runs").fetchone()
    finished = {
        r[0]
        for r in con.execute(
            "SELECT task_id FROM events WHERE kind = 'task_state' AND state = 'completed'"
        )
    }
    con.close()
    assert status == "running"  # nobody has looked yet
    assert finished >= {f"p{i}" for i in range(6)} and not finished & {"gate", "slow", "end"}

    runs = cli_json(capsys, "history", "--db", str(db), "--json")
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "interrupted")]

    resumed = subprocess.run(
        [sys.executable, "-m", "tui_flow.cli", "resume", run_id, "--plain", "--no-logs"],
        capture_output=True,
        text=True,
        env=env(TUI_FLOW_DB=str(db)),
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    counts = Counter((work / "ran.txt").read_text().split())
    assert set(counts) == ALL
    assert all(counts[t] == 1 for t in finished), counts  # flushed before the kill: not again
    assert counts["gate"] == counts["slow"] == 2  # running at the kill: run again

    after = cli_json(capsys, "show", run_id, "--db", str(db), "--json")
    assert after["status"] == "completed" and after["segments"] == 2
    assert {t: v["status"] for t, v in after["tasks"].items()} == dict.fromkeys(ALL, "completed")
    cut, resumed_at = asyncio.run(first_segment(db, run_id))
    # the killed segment, read back: cut short where its events stop, its running tasks too
    assert cut.status == "interrupted" and "ended before it finished" in (cut.error or "")
    assert cut.finished_at is not None and cut.finished_at < resumed_at
    assert {t for t, v in cut.tasks.items() if v.state == "interrupted"} == {"gate", "slow"}
    assert {t for t, v in cut.tasks.items() if v.state == "completed"} == finished

    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "crashy.py").write_text(CRASHY)
    capsys.readouterr()
    assert main(["run", str(clean / "crashy.py"), "--db", str(clean / "runs.db"), "--json"]) == 0
    uninterrupted = json.loads(capsys.readouterr().out)
    assert after["context"] == uninterrupted["context"]
    assert after["context"]["end"] == sum(i * i for i in range(6)) + 1


BUSY = """
import os

from tui_flow import Context, Workflow, task

N = 400


@task()
def meet(context: Context) -> None:
    # both processes open one pipe, one to write and one to read: each open blocks until the
    # other process is there, so the two runs below really write at the same time
    with open(os.environ["FIFO"], "w" if os.environ["ROLE"] == "a" else "r"):
        pass


def make(i: int):
    @task(id=f"t{i}", dependencies=["meet"])
    async def body(context: Context) -> None:
        context.log(f"line {i}")
        context.set(f"k{i}", i)

    return body


workflow = Workflow("busy", [meet, *[make(i) for i in range(N)]], max_concurrency=8)
"""


def test_two_processes_write_to_one_database_at_once(tmp_path: Path) -> None:
    flow = tmp_path / "busy.py"
    flow.write_text(BUSY)
    fifo = tmp_path / "meet.fifo"
    os.mkfifo(fifo)
    db = tmp_path / "runs.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tui_flow.cli", "run", str(flow), "--db", str(db), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(FIFO=str(fifo), ROLE=role),
        )
        for role in ("a", "b")
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert all(r["status"] == "completed" for r in results)

    con = sqlite3.connect(db)
    try:

        def one(sql: str, rid: str) -> object:
            return con.execute(sql, (rid,)).fetchone()[0]

        for r in results:
            rid = r["run_id"]
            q = lambda sql, rid=rid: one(sql, rid)  # noqa: E731
            assert q("SELECT status FROM runs WHERE run_id = ?") == "completed"
            assert (
                q("SELECT count(*) FROM task_status WHERE run_id = ? AND status = 'completed'")
                == 401
            )
            assert q("SELECT count(*) FROM events WHERE run_id = ? AND state = 'running'") == 401
            assert q("SELECT count(*) FROM logs WHERE run_id = ?") == 400
            assert q("SELECT count(*) FROM context_writes WHERE run_id = ?") == 400
            assert q("SELECT count(*) FROM events WHERE run_id = ?") == 1 + 2 * 401 + 400 + 1
        # the two runs overlapped in time: each started before the other finished
        (a0, a1), (b0, b1) = con.execute("SELECT started_at, finished_at FROM runs").fetchall()
        assert a0 < b1 and b0 < a1
    finally:
        con.close()
