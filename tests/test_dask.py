"""The Dask runner against a real LocalCluster (2 workers, 1 thread each, started once)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tui_flow.cli import dispatch as main
from tui_flow.engine import Execution
from tui_flow.engine.events import LogLine, TaskLogs, TaskProgress
from tui_flow.loader import load

ROOT = Path(__file__).resolve().parents[1]

FLOW = textwrap.dedent(
    """
    import logging
    import os
    import sys
    import time
    from pathlib import Path

    from tui_flow import Context, Workflow, task


    def _wait_for(path: Path, limit_s: float = 20.0) -> bool:
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if path.exists():
                return True
            time.sleep(0.01)  # workload, allowed
        return False


    @task
    def root(ctx: Context) -> None:
        ctx.insert("items", [1, 2, 3])
        ctx.insert("base", 10)


    @task(dependencies=[root], runner="process")
    def short(ctx: Context) -> int:
        return ctx.get("base") + 2  # kept in the context as "short"


    @task(dependencies=[short])
    def long(ctx: Context) -> int:
        time.sleep(0.4)  # workload, allowed
        return ctx.get("base") + 1


    @task(dependencies=[root])
    def side(ctx: Context) -> None:
        time.sleep(0.3)  # workload, allowed


    @task(dependencies=[root])
    async def on_loop(ctx: Context) -> None:
        ctx.insert("on_loop", os.getpid())


    @task(dependencies=[root], map_over="items")
    def square(ctx: Context) -> int:
        return ctx.item * ctx.item


    @task(dependencies=[long, side, square, on_loop])
    def join(ctx: Context) -> None:
        ctx.insert("total", ctx.get("long") + ctx.get("short") + sum(ctx.get("square")))


    main = Workflow(
        "main", tasks=[root, short, long, side, on_loop, square, join], max_concurrency=2
    )


    @task
    def chatty(ctx: Context) -> None:
        print(f"pid={os.getpid()}")
        print("to stderr", file=sys.stderr)
        logging.getLogger("flow").warning("a warning")
        ctx.log("through the context")
        ctx.progress(1, 4, "a quarter")
        # the line above must reach the client while this body still runs
        if not _wait_for(Path(ctx.get("dir")) / "go"):
            raise RuntimeError("the test never saw the log line")


    logs = Workflow("logs", tasks=[chatty])


    @task(retry_attempts=1)
    def flaky(ctx: Context) -> str:
        marker = Path(ctx.get("dir")) / "flaky-once"
        if not marker.exists():
            marker.write_text("x")
            raise ValueError("first attempt fails")
        return "ok"


    retry = Workflow("retry", tasks=[flaky])


    @task(timeout_s=0.5)
    def stuck(ctx: Context) -> None:
        d = Path(ctx.get("dir"))
        print("started")
        try:
            _wait_for(d / "never", 20.0)
            (d / "finished").write_text("x")
        except BaseException as exc:
            (d / "stopped").write_text(type(exc).__name__)
            raise


    timeout = Workflow("timeout", tasks=[stuck])
    cancel = Workflow("cancel", tasks=[stuck.with_spec(timeout_s=None)])


    @task(retry_attempts=1)
    def victim(ctx: Context) -> int:
        d = Path(ctx.get("dir"))
        if (d / "killed").exists():
            return os.getpid()
        print(f"pid={os.getpid()}")
        _wait_for(d / "never", 20.0)
        return -1


    kill = Workflow("kill", tasks=[victim])
    """
)


def test_without_dask_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    flow = tmp_path / "flow.py"
    flow.write_text(FLOW)
    code = main(["run", str(flow), "-w", "retry", "--executor", "dask", "--no-store"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert 'pip install "tui-flow[dask]"' in err


# ---------------------------------------------------------------------------------------------
# with a cluster

cluster_test = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def flow_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flows") / "dask_flow.py"
    path.write_text(FLOW)
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def runner() -> AsyncIterator[Any]:
    pytest.importorskip("distributed", reason='Dask is not installed: pip install "tui-flow[dask]"')
    from tui_flow.engine.dask_runner import make_dask_runner

    os.environ.setdefault("PYTHONPATH", str(ROOT))  # workers import this checkout's tui_flow
    r = make_dask_runner(None, n_workers=2, threads_per_worker=1)
    await r.start()
    yield r
    await r.close()


async def worker_pids(runner: Any) -> set[int]:
    return set((await runner._client.run(os.getpid)).values())


async def run_flow(
    runner: Any,
    flow_file: Path,
    name: str,
    context: dict[str, Any] | None = None,
    remote: bool = True,
    on_event: Callable[[Any, Execution], None] | None = None,
) -> Any:
    wf = load(flow_file).workflow(name)
    execution = Execution(wf, context or {}, remote=runner if remote else None)
    lines: list[LogLine] = []
    execution.subscribe(lambda ev: lines.extend(ev.lines) if isinstance(ev, TaskLogs) else None)
    if on_event is not None:
        execution.subscribe(lambda ev: on_event(ev, execution))
    execution.start()
    async with asyncio.timeout(30):
        result = await execution.wait()
    result.lines = lines
    return result


@cluster_test
async def test_results_and_report_match_local_run(runner: Any, flow_file: Path) -> None:
    local = await run_flow(runner, flow_file, "main", remote=False)
    dask = await run_flow(runner, flow_file, "main")
    assert local.status == dask.status == "completed"
    assert dask.executor == "dask" and local.executor == "local"
    on_loop_pid = dask.context.pop("on_loop")
    assert on_loop_pid == os.getpid()  # async bodies stay on the local loop
    local.context.pop("on_loop")
    assert dask.context == local.context
    assert dask.context["total"] == 11 + 12 + 1 + 4 + 9
    assert {k: (t.status, t.attempts) for k, t in dask.tasks.items()} == {
        k: (t.status, t.attempts) for k, t in local.tasks.items()
    }
    assert (
        dask.report.critical_path == local.report.critical_path == ["root", "short", "long", "join"]
    )
    assert [r.id for r in dask.report.tasks] == [r.id for r in local.report.tasks]
    assert dask.report.max_concurrency == local.report.max_concurrency == 2
    assert dask.report.speedup > 1.0  # side overlapped short and long


@cluster_test
async def test_logs_and_progress_arrive_from_workers_while_running(
    runner: Any, flow_file: Path, tmp_path: Path
) -> None:
    progress: list[TaskProgress] = []

    def on_event(ev: Any, execution: Execution) -> None:
        if isinstance(ev, TaskProgress):
            progress.append(ev)
        if isinstance(ev, TaskLogs) and any(line.text.startswith("pid=") for line in ev.lines):
            (tmp_path / "go").write_text("x")  # releases the body

    result = await run_flow(runner, flow_file, "logs", {"dir": str(tmp_path)}, on_event=on_event)
    assert result.status == "completed", result.tasks["chatty"].error
    texts = [line.text for line in result.lines]
    pid = int(next(t for t in texts if t.startswith("pid="))[4:])
    assert pid in await worker_pids(runner) and pid != os.getpid()
    assert "to stderr" in texts and "a warning" in texts and "through the context" in texts
    levels = {line.text: line.level for line in result.lines}
    assert levels["to stderr"] == "error" and levels["a warning"] == "warning"
    loggers = {line.text: line.logger for line in result.lines}
    assert loggers["a warning"] == "flow" and loggers["to stderr"] is None
    assert [(p.done, p.total, p.message) for p in progress] == [(1, 4, "a quarter")]


@cluster_test
async def test_retry_after_a_body_failure(runner: Any, flow_file: Path, tmp_path: Path) -> None:
    result = await run_flow(runner, flow_file, "retry", {"dir": str(tmp_path)})
    outcome = result.tasks["flaky"]
    assert (outcome.status, outcome.attempts) == ("completed", 2)
    assert outcome.attempt_errors[0] == "ValueError: first attempt fails"


@cluster_test
async def test_timeout_stops_the_body_on_the_worker(
    runner: Any, flow_file: Path, tmp_path: Path
) -> None:
    result = await run_flow(runner, flow_file, "timeout", {"dir": str(tmp_path)})
    outcome = result.tasks["stuck"]
    assert outcome.status == "failed"
    assert outcome.error == "TimeoutError: timed out after 0.5 s"
    await runner.drain()  # the worker has answered that the body's thread ended
    assert (tmp_path / "stopped").read_text() == "TaskInterrupted"
    assert not (tmp_path / "finished").exists()


@cluster_test
async def test_cancelling_the_run_stops_the_body(
    runner: Any, flow_file: Path, tmp_path: Path
) -> None:
    def on_event(ev: Any, execution: Execution) -> None:
        if isinstance(ev, TaskLogs) and any(line.text == "started" for line in ev.lines):
            execution.cancel()

    result = await run_flow(runner, flow_file, "cancel", {"dir": str(tmp_path)}, on_event=on_event)
    assert result.status == "cancelled"
    assert result.tasks["stuck"].status == "cancelled"
    await runner.drain()
    assert (tmp_path / "stopped").read_text() == "TaskInterrupted"
    assert not (tmp_path / "finished").exists()


@cluster_test
async def test_a_worker_killed_mid_task_is_a_failed_attempt(
    runner: Any, flow_file: Path, tmp_path: Path
) -> None:
    pids = await worker_pids(runner)
    killed: list[int] = []

    def on_event(ev: Any, execution: Execution) -> None:
        for line in getattr(ev, "lines", []):
            if line.text.startswith("pid=") and not killed:
                pid = int(line.text[4:])
                assert pid in pids
                (tmp_path / "killed").write_text(str(pid))  # the next attempt returns at once
                killed.append(pid)
                os.kill(pid, signal.SIGKILL)

    result = await run_flow(runner, flow_file, "kill", {"dir": str(tmp_path)}, on_event=on_event)
    outcome = result.tasks["victim"]
    assert killed, "the body never reported its pid"
    assert (outcome.status, outcome.attempts) == ("completed", 2), outcome.error
    assert (outcome.attempt_errors[0] or "").startswith("WorkerDied: the Dask worker")
    assert result.view.tasks["victim"].attempts[0].error == outcome.attempt_errors[0]


@cluster_test
async def test_source_runs_on_workers_without_the_file(runner: Any) -> None:
    import pickle

    from tui_flow.engine.dask_worker import _run_attempt
    from tui_flow.engine.worker import ProcessJob

    fake = "/nowhere/on/this/machine/flow.py"
    source = "from tui_flow import task\n\n@task\ndef hello(ctx):\n    ctx.insert('k', 'v')\n"
    job = ProcessJob(fake, "hello", "hello", "body", "hello", {})
    payload = pickle.dumps((job, fake, source, "abc", runner.topic, "hello-test-1"))
    status, writes, value, sent, _ = await runner._client.submit(_run_attempt, payload, pure=False)
    assert (status, writes, value, sent) == ("done", {"k": "v"}, None, 0)

    broken = pickle.dumps((job, fake, "x = 1\ndef (:\n", "def", runner.topic, "hello-test-2"))
    status, summary, _, _, retryable = await runner._client.submit(_run_attempt, broken, pure=False)
    assert retryable
    assert status == "error"
    assert summary == f"LoadError: {fake}:2: syntax error: invalid syntax"


@cluster_test
async def test_unreachable_scheduler_fails_with_a_clear_message(
    flow_file: Path, tmp_path: Path
) -> None:
    pytest.importorskip("distributed", reason='Dask is not installed: pip install "tui-flow[dask]"')
    from tui_flow.engine.dask_runner import ClusterUnreachable, DaskRunner

    dead = DaskRunner("tcp://127.0.0.1:1", connect_timeout=0.3)
    with pytest.raises(ClusterUnreachable, match=r"cannot reach the Dask scheduler at tcp://"):
        await dead.start()
    result = await run_flow(dead, flow_file, "retry", {"dir": str(tmp_path)})
    await dead.close()
    assert result.status == "failed"
    assert (result.tasks["flaky"].error or "").startswith(
        "ClusterUnreachable: cannot reach the Dask scheduler at tcp://127.0.0.1:1"
    )


@cluster_test
async def test_cli_json_names_the_executor(runner: Any, flow_file: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TUI_FLOW_EXECUTOR": "dask",
        "TUI_FLOW_DASK_SCHEDULER": runner.address,  # the env variable picks the cluster
    }
    args = ["-m", "tui_flow.cli", "run", str(flow_file), "-w", "retry", "--json", "--no-store"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        "--set",
        f"dir={tmp_path}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    data = json.loads(out)
    assert data["executor"] == "dask"
    assert data["status"] == "completed"
    assert data["tasks"]["flaky"]["attempts"] == 2


@cluster_test
async def test_the_store_keeps_every_attempt_when_a_worker_dies(
    runner: Any, flow_file: Path, tmp_path: Path
) -> None:
    from tui_flow.store.sqlite import RunStore

    store = await RunStore.open(tmp_path / "runs.db")
    killed: list[int] = []
    try:
        wf = load(flow_file).workflow("kill")
        execution = Execution(wf, {"dir": str(tmp_path)}, remote=runner)
        execution.subscribe(store.recorder(execution.view))

        def on_event(ev: Any) -> None:
            for line in getattr(ev, "lines", []):
                if line.text.startswith("pid=") and not killed:
                    pid = int(line.text[4:])
                    (tmp_path / "killed").write_text(str(pid))
                    killed.append(pid)
                    os.kill(pid, signal.SIGKILL)

        execution.subscribe(on_event)
        execution.start()
        async with asyncio.timeout(30):
            result = await execution.wait()
        await store.flush()
        stored = await store.load_run(result.run_id)
    finally:
        await store.close()
    assert killed
    assert stored.status == "completed"
    victim = stored.tasks["victim"]
    assert [a.status for a in victim.attempts] == ["failed", "completed"]
    assert (victim.attempts[0].error or "").startswith("WorkerDied: the Dask worker")
    logs = [ln.text for ln in await _logs(tmp_path / "runs.db", result.run_id)]
    assert any(t.startswith("pid=") for t in logs)


async def _logs(db: Path, run_id: str) -> list[Any]:
    from tui_flow.store.sqlite import RunStore

    store = await RunStore.open(db)
    try:
        return await store.task_logs(run_id, "victim")
    finally:
        await store.close()


@cluster_test
async def test_a_cloaca_file_runs_on_dask_workers(runner: Any, tmp_path: Path) -> None:
    # the worker executes the file's source: `import cloaca` resolves there as in the loader
    path = tmp_path / "cloaca_flow.py"
    path.write_text(
        "import os\nimport cloaca\n\n"
        "with cloaca.WorkflowBuilder('c') as b:\n"
        "    @cloaca.task(id='where')\n"
        "    def where(context):\n"
        "        context.set('pid', os.getpid())\n"
        "        return context\n"
    )
    result = await run_flow(runner, path, "c")
    assert result.status == "completed", {k: t.error for k, t in result.tasks.items()}
    assert result.context["pid"] in await worker_pids(runner)
