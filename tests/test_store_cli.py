"""`tui-flow history | show | resume | rerun` on a real database, and the action APIs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tui_flow.cli import dispatch as main
from tui_flow.runs import ActionRefused, plan_rerun_from, rerun_failed, resume
from tui_flow.store import RunStore

FLOW = """
from pathlib import Path

from tui_flow import Context, Workflow, task

HERE = Path(__file__).parent


def mark(name: str) -> None:
    with open(HERE / "ran.txt", "a") as f:
        f.write(name + "\\n")


@task()
def a(context: Context) -> None:
    mark("a")
    context.set("a", 1)


@task()
def d(context: Context) -> None:
    mark("d")
    context.set("d", 4)


@task(dependencies=["a"])
def b(context: Context) -> None:
    mark("b")
    print("b tries")
    if not (HERE / "fixed").exists():
        raise RuntimeError("b is broken")
    context.set("b", context.get("a") + 1)


@task(dependencies=["b"])
def c(context: Context) -> None:
    mark("c")
    context.set("c", context.get("b") + 1)


workflow = Workflow("fix", [a, d, b, c], max_concurrency=2)
"""

GOOD = {"a": 1, "d": 4, "b": 2, "c": 3}


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    p = tmp_path / "fix.py"
    p.write_text(FLOW)
    return p


def ran(flow: Path) -> Counter[str]:
    path = flow.parent / "ran.txt"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def show_json(capsys: pytest.CaptureFixture[str], db: Path, run: str = "last") -> dict:
    code, out, _ = cli(capsys, "show", run, "--db", str(db), "--json")
    assert code == 0
    return json.loads(out)


def test_resume_continues_in_place_without_redoing_completed_tasks(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    code, _, _ = cli(capsys, "run", str(flow), "--db", str(db), "--plain", "--no-logs")
    assert code == 1
    first = show_json(capsys, db)
    assert first["status"] == "failed" and first["tasks"]["c"]["status"] == "skipped"
    assert ran(flow) == Counter({"a": 1, "d": 1, "b": 1})

    (flow.parent / "fixed").touch()
    code, out, _ = cli(capsys, "resume", first["run_id"][:6], "--db", str(db), "--plain")
    assert code == 0, out
    assert f"(resuming {first['run_id']})" in out
    assert ran(flow) == Counter({"a": 1, "d": 1, "b": 2, "c": 1})  # a and d not again
    after = show_json(capsys, db)
    assert after["run_id"] == first["run_id"] and after["segments"] == 2
    assert after["status"] == "completed"
    assert all(t["status"] == "completed" for t in after["tasks"].values())
    assert after["context"] == GOOD  # a's write restored from the store

    code, out, _ = cli(capsys, "show", "last", "--db", str(db), "--logs", "b", "--plain")
    assert code == 0
    assert out.splitlines() == [
        "── attempt 1 ──",
        out.splitlines()[1],
        "── attempt 1 (resume 1) ──",
        out.splitlines()[3],
    ]
    assert out.splitlines()[1].endswith("info     b tries")

    code, _, err = cli(capsys, "resume", "last", "--db", str(db))
    assert code == 2 and "nothing to resume" in err
    assert ran(flow)["b"] == 2


def test_rerun_failed_makes_a_new_linked_run(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert cli(capsys, "run", str(flow), "--db", str(db), "--no-logs")[0] == 1
    old = show_json(capsys, db)["run_id"]
    (flow.parent / "fixed").touch()
    code, _, _ = cli(capsys, "rerun", old, "--failed", "--db", str(db), "--no-logs")
    assert code == 0
    new = show_json(capsys, db)
    assert new["run_id"] != old and new["resumed_from"] == old
    assert new["context"] == GOOD
    assert ran(flow) == Counter({"a": 1, "d": 1, "b": 2, "c": 1})
    assert show_json(capsys, db, old)["status"] == "failed"  # the old run is left as it was

    code, _, err = cli(capsys, "rerun", new["run_id"], "--failed", "--db", str(db))
    assert code == 2 and "no failed tasks" in err


def test_rerun_from_a_task_runs_it_and_its_downstream_only(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    (flow.parent / "fixed").touch()
    assert cli(capsys, "run", str(flow), "--db", str(db), "--no-logs")[0] == 0
    code, _, _ = cli(capsys, "rerun", "last", "--from", "b", "--db", str(db), "--no-logs")
    assert code == 0
    assert ran(flow) == Counter({"a": 1, "d": 1, "b": 2, "c": 2})
    assert show_json(capsys, db)["context"] == GOOD

    code, _, err = cli(capsys, "rerun", "last", "--from", "bb", "--db", str(db))
    assert code == 2 and "no task 'bb'; did you mean 'b'?" in err


def test_a_changed_workflow_file_is_refused_unless_forced(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert cli(capsys, "run", str(flow), "--db", str(db), "--no-logs")[0] == 1
    flow.write_text(FLOW + "\n# edited\n")
    (flow.parent / "fixed").touch()
    code, _, err = cli(capsys, "resume", "last", "--db", str(db))
    assert code == 2 and "changed since run" in err and "--force" in err
    assert ran(flow)["b"] == 1
    code, _, err = cli(capsys, "resume", "last", "--db", str(db), "--force", "--no-logs")
    assert code == 0 and "changed since" in err  # still said, as a warning
    assert ran(flow) == Counter({"a": 1, "d": 1, "b": 2, "c": 1})


def test_history_lists_runs_newest_first(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    code, out, _ = cli(capsys, "history", "--db", str(db))
    assert code == 0 and "no runs recorded" in out
    assert cli(capsys, "run", str(flow), "--db", str(db), "--no-logs")[0] == 1
    (flow.parent / "fixed").touch()
    assert cli(capsys, "run", str(flow), "--db", str(db), "--no-logs")[0] == 0

    code, out, _ = cli(capsys, "history", "--db", str(db), "--json")
    assert json.loads(out)["schema"] == 2
    runs = json.loads(out)["runs"]
    assert [r["status"] for r in runs] == ["completed", "failed"]
    assert [r["failed"] for r in runs] == [0, 1]
    assert all(r["workflow"] == "fix" and r["wall_s"] > 0 and r["speedup"] > 0 for r in runs)

    code, out, _ = cli(capsys, "history", "--db", str(db), "--plain")
    lines = out.splitlines()
    assert lines[0].split() == [
        "run",
        "┃",
        "workflow",
        "┃",
        "status",
        "┃",
        "started",
        "┃",
        "wall",
        "┃",
        "speedup",
        "┃",
        "failed",
        "┃",
        "from",
    ]
    assert runs[0]["run_id"] in lines[2] and "✔ completed" in lines[2]
    assert runs[1]["run_id"] in lines[3] and "✖ failed" in lines[3]
    assert lines[3].split("│")[6].strip() == "1"

    code, out, _ = cli(capsys, "history", "--db", str(db), "--limit", "1", "--json")
    assert [r["run_id"] for r in json.loads(out)["runs"]] == [runs[0]["run_id"]]
    code, out, _ = cli(capsys, "history", "--db", str(db), "-w", "other", "--json")
    assert json.loads(out) == {"schema": 2, "runs": []}


def test_show_prints_the_report_of_the_live_run(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    code, live, _ = cli(capsys, "run", str(flow), "--db", str(db), "--plain", "--no-logs")
    assert code == 1
    code, shown, _ = cli(capsys, "show", "last", "--db", str(db), "--plain")
    assert code == 0
    assert "critical path" in shown and "✖ failed" in shown
    assert live.endswith(shown)  # the very same report, table and all


def test_bad_references_and_databases_exit_2(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    code, _, err = cli(capsys, "show", "nope", "--db", str(db))
    assert code == 2 and "no run 'nope'" in err
    assert cli(capsys, "run", str(flow), "--db", str(db), "--no-logs")[0] == 1
    code, _, err = cli(capsys, "show", "last", "--db", str(db), "--logs", "zz")
    assert code == 2 and "has no task 'zz'" in err

    text = tmp_path / "notes.db"
    text.write_text("not a database at all\n")
    for argv in (["history"], ["show", "last"], ["resume", "last"], ["run", str(flow)]):
        code, _, err = cli(capsys, *argv, "--db", str(text))
        assert code == 2, argv
        assert err.startswith(f"tui-flow: {text}: not a SQLite database"), err
        assert "Traceback" not in err
    assert text.read_text() == "not a database at all\n"


async def test_the_actions_are_engine_apis(flow: Path, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    from tui_flow.loader import load

    store = await RunStore.open(db)
    try:
        wf = load(flow).workflow()
        from tui_flow.engine import Execution

        ex = Execution(wf)
        ex.subscribe(store.recorder(ex.view))
        first = await ex.start().wait()
        assert first.status == "failed"
        await store.flush()

        plan = await plan_rerun_from(store, first.run_id, "a")
        assert plan.to_run == ["a", "b", "c"] and set(plan.reuse) == {"d"}
        assert plan.reuse["d"] == {"d": 4} and plan.run_id is None

        (flow.parent / "fixed").touch()
        again = await rerun_failed(store, first.run_id)
        result = await again.wait()
        assert result.status == "completed" and result.run_id != first.run_id
        assert result.context == GOOD

        resumed = await (await resume(store, first.run_id)).wait()
        assert resumed.run_id == first.run_id and resumed.context == GOOD
        with pytest.raises(ActionRefused, match="nothing to resume"):
            await resume(store, first.run_id)
        assert ran(flow) == Counter({"a": 1, "d": 1, "b": 3, "c": 2})
    finally:
        await store.close()


def test_show_logs_of_a_run_that_is_still_going(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live run has its events in the database but no per-task rows until it ends: `show
    --logs` still knows its tasks."""
    import asyncio

    from tui_flow.engine.events import LogLine, RunStarted, TaskInfo, TaskLogs, TaskStateChanged

    db = tmp_path / "runs.db"

    async def record_half_a_run() -> None:
        store = await RunStore.open(db)
        for e in (
            RunStarted(
                run_id="live00000001",
                at=1.0,
                workflow="w",
                max_concurrency=1,
                tasks=[TaskInfo(id="a"), TaskInfo(id="b", dependencies=("a",))],
            ),
            TaskStateChanged(
                run_id="live00000001", at=2.0, task_id="a", state="running", attempt=1
            ),
            TaskLogs(
                run_id="live00000001",
                at=3.0,
                lines=[LogLine(task_id="a", attempt=1, at=2.5, level="info", text="hi")],
            ),
        ):
            store.record(e)
        await store.close()  # flushed; the run stays "running" (this process still lives)

    asyncio.run(record_half_a_run())
    code, out, err = cli(capsys, "show", "live0000", "--db", str(db), "--logs", "a", "--plain")
    assert code == 0, err
    assert "hi" in out
    code, _, err = cli(capsys, "show", "live0000", "--db", str(db), "--logs", "zz")
    assert code == 2 and "tasks: a, b" in err


def test_show_logs_prints_each_attempts_error_and_the_traceback(
    flow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    assert cli(capsys, "run", str(flow), "--db", str(db), "--no-logs")[0] == 1
    code, out, _ = cli(capsys, "show", "last", "--db", str(db), "--logs", "b", "--plain")
    assert code == 0
    lines = out.splitlines()
    # the attempt's lines, then its error, the user's frame first, then the full traceback
    at = lines.index("✖ attempt 1 failed: RuntimeError: b is broken")
    assert "b tries" in lines[at - 1]
    assert lines[at + 1] == "your code (most recent call last):"
    assert lines[at + 2] == f"  {flow}:31 in b"
    assert lines[at + 3] == '    raise RuntimeError("b is broken")'
    full = lines.index("full traceback:")
    assert full > at and lines[-1] == "  RuntimeError: b is broken"
    # a task that failed without a line of its own says so, and still shows its error
    code, out, _ = cli(capsys, "show", "last", "--db", str(db), "--logs", "a", "--plain")
    assert "wrote no log lines" in out and "failed" not in out
