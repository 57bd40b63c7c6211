"""Real processes on one database: a run killed with SIGKILL and resumed (at a chosen moment, and
at random ones); two writers at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tui_flow.cli import dispatch as main
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

    runs = cli_json(capsys, "history", "--db", str(db), "--json")["runs"]
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


# -- killed at random moments, resumed until done ----------------------------------------------

KILLED = """
import asyncio
import os
import time
from pathlib import Path

from tui_flow import Workflow, task

HERE = Path(__file__).parent
PHASE = os.environ.get("PHASE", "clean")


def mark(task_id):
    with open(HERE / "ran.txt", "a") as f:  # one line per run of a body
        f.write(f"{PHASE} {task_id}\\n")


def tell(word):
    if "TELL_FD" in os.environ:
        os.write(int(os.environ["TELL_FD"]), (word + "\\n").encode())


def value(task_id, context, deps):
    return sum(map(ord, task_id)) + sum(context.get(d) for d in deps)


def make(task_id, deps, kind):
    if kind == "block":

        async def body(context):
            mark(task_id)
            tell("blocking")
            time.sleep(0.08)  # blocks the loop: a kill may land here (ok)
            context.set(task_id, value(task_id, context, deps))

    elif kind == "async":

        async def body(context):
            mark(task_id)
            await asyncio.sleep(0.03)  # the workload (ok)
            context.set(task_id, value(task_id, context, deps))

    else:

        def body(context):
            mark(task_id)
            time.sleep(0.03)  # the workload (ok)
            context.set(task_id, value(task_id, context, deps))

    return task(body, id=task_id, dependencies=deps)


SPEC = [
    ("src", [], "async"),
    ("a1", ["src"], "async"),
    ("a2", ["src"], "thread"),
    ("a3", ["src"], "block"),
    ("b1", ["a1"], "thread"),
    ("b2", ["a1", "a2"], "block"),
    ("b3", ["a2", "a3"], "async"),
    ("b4", ["a3"], "thread"),
    ("c1", ["b1", "b2"], "async"),
    ("c2", ["b2", "b3"], "block"),
    ("c3", ["b3", "b4"], "thread"),
    ("c4", ["b4"], "async"),
    ("d1", ["c1", "c2", "c3"], "thread"),
    ("d2", ["c3", "c4"], "async"),
    ("end", ["d1", "d2"], "async"),
]
workflow = Workflow("killed", [make(*s) for s in SPEC], max_concurrency=3)
"""
KILLED_TASKS = 15


def recorded(db: Path) -> tuple[str | None, set[str]]:
    """The newest run's status and the tasks the store holds as completed (None, set(): no
    run is on disk)."""
    if not db.exists():
        return None, set()
    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT status FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        done = con.execute(
            "SELECT DISTINCT task_id FROM events WHERE kind = 'task_state' AND state = 'completed'"
        ).fetchall()
    finally:
        con.close()
    return (row[0] if row else None), {t for (t,) in done}


def heard(fd: int, word: str, limit: float) -> bool:
    """Whether a body says `word` on the pipe within `limit` seconds."""
    end = time.monotonic() + limit
    seen = b""
    while (left := end - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            return False
        chunk = os.read(fd, 1024)
        if not chunk:  # every body that could say it has ended
            return False
        seen += chunk
        if f"{word}\n".encode() in seen:
            return True
    return False


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The final context of the workflow run once without a kill."""
    work = tmp_path_factory.mktemp("clean")
    (work / "killed.py").write_text(KILLED)
    out = subprocess.run(
        [sys.executable, "-m", "tui_flow.cli", "run", str(work / "killed.py"), "--json"],
        capture_output=True,
        text=True,
        env=env(TUI_FLOW_DB=str(work / "runs.db")),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["context"]


# more seeds, to look harder than CI does every time: TUI_FLOW_PROPS=10 python -m pytest ...
SEEDS = 2 * int(os.environ.get("TUI_FLOW_PROPS", "1"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_a_run_killed_at_random_moments_resumes_to_the_same_end(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    uninterrupted: dict[str, Any],
    seed: int,
) -> None:
    """SIGKILL `tui-flow run` (and then `tui-flow resume`) at random moments, some while an
    async body holds the loop, and resume until the run completes: no task the store held as
    completed runs again, and the run ends with the context an uninterrupted run has."""
    rng = random.Random(seed)
    flow = tmp_path / "killed.py"
    flow.write_text(KILLED)
    db = tmp_path / "runs.db"
    kills = rng.randint(1, 3)
    log = []
    for phase in range(10):
        status, done = recorded(db)
        if status == "completed":
            break
        assert phase < 9, f"seed {seed}: not completed after {phase} processes: {log}"
        again = ["resume", "last", "--no-logs"] if status else ["run", str(flow)]
        read_fd, write_fd = os.pipe()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui_flow.cli", *again, "--plain", "--db", str(db)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env(PHASE=str(phase), TELL_FD=str(write_fd)),
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        try:
            if phase < kills:
                # kill it while a body blocks the loop, or after a random delay (it may have
                # ended by then)
                if rng.random() < 0.5 and heard(read_fd, "blocking", 10):
                    moment = f"{again[0]}: blocking"
                    delay = rng.uniform(0, 0.06)
                else:
                    moment = f"{again[0]}: timer"
                    delay = rng.uniform(0.4, 1.4)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=delay)  # (the random moment of the kill is the test)
                proc.kill()
                log.append(f"{moment} +{delay:.3f}s")
            _, err = proc.communicate(timeout=60)
            if phase >= kills:
                assert proc.returncode == 0, f"seed {seed}: {log}: {err.decode()}"
        finally:
            proc.kill()
            os.close(read_fd)
        side = tmp_path / "ran.txt"
        ran = [line.split() for line in side.read_text().splitlines()] if side.exists() else []
        now = [t for p, t in ran if p == str(phase)]
        assert not set(now) & done, f"seed {seed}: {log}: ran again: {set(now) & done}"
        if status is None and recorded(db)[0] is None:
            assert now == [], "a body ran before its run was on disk"

    status, done = recorded(db)
    assert status == "completed" and len(done) == KILLED_TASKS
    final = cli_json(capsys, "show", "last", "--db", str(db), "--json")
    assert final["status"] == "completed"
    assert final["context"] == uninterrupted, f"seed {seed}: {log}"
