"""Handing a run's events out: `--events-jsonl` (every event, the store's models, one JSON
per line) and the OpenTelemetry subscriber (a span per run and per attempt)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from conftest import CLI

from tui_flow import Context, Workflow, task
from tui_flow.engine.events import EVENT_ADAPTER, RunFinished, RunStarted, TaskLogs
from tui_flow.errors import BadInput
from tui_flow.runs import RunOptions, observers
from tui_flow.store import RunStore

FLOW = """
from tui_flow import Context, Workflow, task

@task()
def a(context: Context) -> None:
    print("hello from a")
    context.set("a", [1, 2])

@task(dependencies=["a"], retry_attempts=1)
def b(context: Context) -> None:
    if context.get("a") and not context.get("ok", False):
        raise ValueError("b is broken")

workflow = Workflow("obs", [a, b])
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    p = tmp_path / "obs.py"
    p.write_text(FLOW)
    return p


def test_events_jsonl_holds_every_event_as_the_store_has_it(
    flow: Path, tmp_path: Path, cli: CLI
) -> None:
    db, out = tmp_path / "runs.db", tmp_path / "events.jsonl"
    code, _, _ = cli("run", str(flow), "--db", str(db), "--events-jsonl", str(out))
    assert code == 1
    lines = out.read_text().splitlines()
    events = [EVENT_ADAPTER.validate_json(line) for line in lines]
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert all(json.loads(line)["kind"] == e.kind for line, e in zip(lines, events, strict=True))

    async def stored() -> tuple[list, list]:
        async with await RunStore.open(db) as store:
            return await store.events(events[0].run_id), await store.task_logs(events[0].run_id)

    recorded, logs = asyncio.run(stored())
    assert [e for e in events if not isinstance(e, TaskLogs)] == recorded
    lines_out = [ln for e in events if isinstance(e, TaskLogs) for ln in e.lines]
    assert [(ln.task_id, ln.text) for ln in lines_out] == [(r.task_id, r.text) for r in logs]


def test_events_jsonl_to_standard_output(flow: Path, tmp_path: Path, cli: CLI) -> None:
    code, out, _ = cli("run", str(flow), "--no-store", "--events-jsonl", "-")
    assert code == 1
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]  # nothing else is there
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished" and "task_logs" in kinds

    code, _, err = cli("run", str(flow), "--events-jsonl", "-", "--json")
    assert code == 2 and "both write to standard output" in err
    code, _, err = cli("run", str(flow), "--events-jsonl", str(tmp_path / "no" / "such" / "f"))
    assert code == 2 and "--events-jsonl" in err and "No such file" in err


def test_otel_without_the_extra_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "tui_flow.observe.otel", raising=False)
    with pytest.raises(BadInput, match=r"pip install 'tui-flow\[otel\]'"):
        observers(RunOptions(otel="console"))


async def test_a_span_per_run_and_per_attempt() -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from tui_flow import run
    from tui_flow.observe.otel import OtelSubscriber

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tries: list[int] = []

    @task(retry_attempts=2)
    def flaky(context: Context) -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("down")

    @task(dependencies=[flaky])
    def broken(context: Context) -> None:
        raise KeyError("k")

    @task(dependencies=[broken])
    def never(context: Context) -> None: ...

    result = await run(
        Workflow("spans", [flaky, broken, never]), subscribers=[OtelSubscriber(provider)]
    )
    spans = {s.name: s for s in exporter.get_finished_spans() if s.name.startswith("tui-flow")}
    (root,) = spans.values()
    assert root.name == "tui-flow run spans" and root.status.status_code == StatusCode.ERROR
    assert root.attributes["tui_flow.run_id"] == result.run_id
    assert root.attributes["tui_flow.status"] == "failed"
    assert root.attributes["tui_flow.tasks"] == 3
    assert [e.attributes["tui_flow.task_id"] for e in root.events] == ["never"]  # skipped

    attempts = [s for s in exporter.get_finished_spans() if s.name.startswith("task ")]
    assert [(s.name, s.attributes["tui_flow.attempt"]) for s in attempts] == [
        ("task flaky", 1),
        ("task flaky", 2),
        ("task broken", 1),
    ]
    first, second, failed = attempts
    assert all(s.parent.span_id == root.context.span_id for s in attempts)
    assert all(s.context.trace_id == root.context.trace_id for s in attempts)
    assert first.status.status_code == StatusCode.ERROR
    assert first.attributes["tui_flow.state"] == "retrying"
    assert [e.name for e in first.events] == ["retry_scheduled", "exception"]
    exc = first.events[1].attributes
    assert (exc["exception.type"], exc["exception.message"]) == ("ConnectionError", "down")
    assert "Traceback" in exc["exception.stacktrace"]
    assert second.status.status_code == StatusCode.OK
    assert failed.attributes["tui_flow.state"] == "failed"
    assert failed.status.description == "KeyError: 'k'"
    assert root.start_time <= first.start_time < first.end_time <= second.start_time
    assert failed.end_time <= root.end_time


def test_the_config_file_turns_spans_and_the_log_level_on(
    flow: Path, tmp_path: Path, cli: CLI
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from tui_flow.engine.logs import capture

    (tmp_path / "tui-flow.toml").write_text('otel = "console"\nlog-level = "warning"\n')
    try:
        code, out, err = cli("run", str(flow), "--no-store", "--plain", cwd=tmp_path)
        assert capture.level == 30  # logging records below WARNING are not kept
    finally:
        capture.set_level("info")
    assert code == 1 and "hello from a" in out  # (print is not logging: always kept)
    assert '"name": "tui-flow run obs"' in err and '"name": "task b"' in err

    (tmp_path / "tui-flow.toml").write_text('otel = "jaeger"\n')
    code, _, err = cli("run", str(flow), "--no-store", cwd=tmp_path)
    assert code == 2 and "otel" in err and "otlp or console" in err
