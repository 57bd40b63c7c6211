"""`tui-flow run`: JSON output, plain output and exit codes, through a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

OK_FLOW = """
from tui_flow import task, Context

@task
def first(ctx: Context) -> None:
    print("hello")
    ctx.set("n", ctx.get("start", 1) + 1)

@task(dependencies=[first])
async def second(ctx: Context) -> None:
    ctx.set("double", ctx.get("n") * 2)
"""

FAILING_FLOW = """
from tui_flow import task, Context

@task(retry_attempts=1)
def breaks(ctx: Context) -> None:
    raise ValueError("row 12 is bad")

@task(dependencies=[breaks])
def after(ctx: Context) -> None:
    pass
"""

CYCLE_FLOW = """
from tui_flow import task

@task(dependencies=["b"])
def a(ctx): pass

@task(dependencies=["a"])
def b(ctx): pass
"""

HANGING_FLOW = """
import asyncio
from pathlib import Path
from tui_flow import task, Context

@task
async def hang(ctx: Context) -> None:
    Path(ctx.get("marker")).write_text("started")
    await asyncio.Event().wait()
"""


def test_run_json_prints_exactly_one_object(tmp_path, cli):
    (tmp_path / "ok.py").write_text(OK_FLOW)
    p = cli("run", "ok.py", "--json", "--no-store", "--set", "start=20", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)  # the whole of stdout is one JSON object
    assert set(data) >= {
        "workflow",
        "run_id",
        "status",
        "started_at",
        "finished_at",
        "tasks",
        "report",
        "context",
    }
    assert data["workflow"] == "ok"
    assert data["status"] == "completed"
    assert data["context"] == {"start": 20, "n": 21, "double": 42}
    assert set(data["tasks"]["first"]) >= {
        "status",
        "attempts",
        "started_at",
        "finished_at",
        "duration_s",
        "error",
    }
    assert data["tasks"]["second"]["status"] == "completed"
    assert set(data["report"]) >= {
        "wall_s",
        "total_task_s",
        "speedup",
        "possible_speedup",
        "of_possible",
        "slot_utilisation",
        "max_concurrency",
        "critical_path",
        "critical_path_s",
        "breakdown",
    }
    assert data["report"]["critical_path"] == ["first", "second"]


def test_run_plain_output_names_states_and_the_report(tmp_path, cli):
    (tmp_path / "ok.py").write_text(OK_FLOW)
    p = cli("run", "ok.py", "--no-store", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "✔ completed  first" in out
    assert "first: hello" in out
    for figure in (
        "wall time",
        "total task time",
        "speedup",
        "possible",
        "slot utilisation",
        "critical path",
        "wall time went to",
    ):
        assert figure in out
    assert "\x1b[" not in out  # not a TTY: no escape codes


def test_failed_run_exits_1_and_reports_the_error(tmp_path, cli):
    (tmp_path / "bad.py").write_text(FAILING_FLOW)
    p = cli("run", "bad.py", "--json", "--no-store", cwd=tmp_path)
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert data["status"] == "failed"
    assert data["tasks"]["breaks"]["attempts"] == 2
    assert data["tasks"]["breaks"]["error"] == "ValueError: row 12 is bad"
    assert data["tasks"]["after"]["status"] == "skipped"


def test_bad_input_exits_2_with_file_and_line(tmp_path, cli):
    (tmp_path / "cycle.py").write_text(CYCLE_FLOW)
    p = cli("run", "cycle.py", "--no-store", cwd=tmp_path)
    assert p.returncode == 2
    assert "cycle.py:4" in p.stderr and "a -> b -> a" in p.stderr
    assert "Traceback" not in p.stderr
    (tmp_path / "syntax.py").write_text("from tui_flow import task\n\ndef broken(:\n")
    p = cli("run", "syntax.py", "--no-store", cwd=tmp_path)
    assert p.returncode == 2
    assert "syntax.py:3" in p.stderr and "Traceback" not in p.stderr
    p = cli("run", "missing.py", "--no-store", cwd=tmp_path)
    assert p.returncode == 2 and "missing.py" in p.stderr


def test_ctrl_c_cancels_the_run_and_exits_130(tmp_path):
    (tmp_path / "hang.py").write_text(HANGING_FLOW)
    marker = tmp_path / "started"
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tui_flow.cli",
            "run",
            "hang.py",
            "--no-store",
            "--plain",
            "--set",
            f'marker="{marker}"',
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the run reports the task running, then press Ctrl-C
    assert proc.stdout is not None
    for line in proc.stdout:
        if "running" in line and "hang" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "■ cancelled  hang" in out


STUCK_THREAD_FLOW = """
import threading
from tui_flow import task, Context

@task(timeout_s=0.2)
def stuck(ctx: Context) -> None:
    threading.Event().wait()  # never returns: only the timeout ends this attempt
"""


def test_a_thread_body_that_never_returns_does_not_keep_the_process_alive(tmp_path, cli):
    (tmp_path / "stuck.py").write_text(STUCK_THREAD_FLOW)
    p = cli.process("run", "stuck.py", "--json", "--no-store", cwd=tmp_path)
    assert p.returncode == 1
    data = json.loads(p.stdout)
    assert data["tasks"]["stuck"]["error"] == "TimeoutError: timed out after 0.2 s"


def test_opening_the_app_without_a_terminal_runs_headless_like_run(tmp_path, cli):
    (tmp_path / "bad.py").write_text(FAILING_FLOW)
    # stdout is a pipe here (and CI may be set): the app cannot show, so it runs the flow
    p = cli("bad.py", "--no-store", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert "✖ failed     breaks" in p.stdout
    assert "⊘ skipped    after" in p.stdout
    assert "wall time" in p.stdout
