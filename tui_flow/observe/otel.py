"""OpenTelemetry spans of a run (`pip install tui-flow[otel]`): one span per run, and under it
one span per attempt of each task, as Prefect, Airflow and Hamilton export them.

- The run's span, `tui-flow run <workflow>`: from RunStarted to RunFinished; attributes
  `tui_flow.run_id`, `tui_flow.workflow`, `tui_flow.max_concurrency`, `tui_flow.executor`,
  `tui_flow.tasks`, and at the end `tui_flow.status`, `tui_flow.wall_s`, `tui_flow.speedup`;
  status OK when the run completed, ERROR (with the run's error or its status) otherwise.
  A task that never ran (skipped, cancelled before its start) is an event on it.
- An attempt's span, `task <id>` (a child of the run's): from the task's `running` to the
  state that ends the attempt; attributes `tui_flow.task_id`, `tui_flow.attempt`,
  `tui_flow.max_attempts`, `tui_flow.parent` (a map_over instance's task), and at the end
  `tui_flow.state` (`completed`, `retrying`, `failed`, ...), `tui_flow.reason`,
  `tui_flow.timed_out`, `tui_flow.via_fallback`. A failed attempt has status ERROR and an
  `exception` event (`exception.type`, `exception.message`, `exception.stacktrace`); a retry
  is a `retry_scheduled` event on the attempt that failed (`tui_flow.next_attempt`,
  `tui_flow.delay_s`).
- Times are the events' own (`at`), so the spans line up with the store's and the report's.

Use: `tui-flow run FILE --otel` (exports with OTLP when opentelemetry-exporter-otlp is
installed and configured by the usual OTEL_* variables, `--otel console` prints the spans),
or in code `tui_flow.run(wf, subscribers=[OtelSubscriber()])` with the tracer provider the
program configured (the global one by default).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from ..engine.events import RetryScheduled, RunFinished, RunStarted, TaskStateChanged

_ENDS_ATTEMPT = frozenset(
    {"completed", "retrying", "failed", "cancelled", "skipped", "timed_out", "interrupted"}
)


def _ns(at: float) -> int:
    return int(at * 1e9)


class OtelSubscriber:
    """Turns a run's events into spans (see the module's docstring). One subscriber may
    follow several runs, one after the other or at once."""

    def __init__(self, tracer_provider: Any = None) -> None:
        from .. import __version__

        self.tracer = trace.get_tracer("tui_flow", __version__, tracer_provider=tracer_provider)
        self.provider: Any = None  # a provider of its own (`cli_subscriber`): shut by close()
        self._runs: dict[str, Span] = {}
        self._attempts: dict[tuple[str, str], tuple[int, Span]] = {}  # (run, task) -> span

    def close(self) -> None:
        """Export what is left (when the subscriber made its own provider)."""
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, TaskStateChanged):
            self._state(event)
        elif isinstance(event, RetryScheduled):
            open_ = self._attempts.get((event.run_id, event.task_id))
            if open_ is not None:
                open_[1].add_event(
                    "retry_scheduled",
                    {
                        "tui_flow.next_attempt": event.next_attempt,
                        "tui_flow.delay_s": event.delay_s,
                        "tui_flow.error": event.error,
                    },
                    timestamp=_ns(event.at),
                )
        elif isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, RunFinished):
            self._finished(event)

    def _started(self, e: RunStarted) -> None:
        span = self.tracer.start_span(
            f"tui-flow run {e.workflow}",
            start_time=_ns(e.at),
            attributes={
                "tui_flow.run_id": e.run_id,
                "tui_flow.workflow": e.workflow,
                "tui_flow.max_concurrency": e.max_concurrency,
                "tui_flow.executor": e.executor,
                "tui_flow.tasks": sum(1 for t in e.tasks if t.parent is None),
                **({"tui_flow.resumed_from": e.resumed_from} if e.resumed_from else {}),
            },
        )
        self._runs[e.run_id] = span

    def _state(self, e: TaskStateChanged) -> None:
        key = (e.run_id, e.task_id)
        run = self._runs.get(e.run_id)
        if run is None:
            return
        if e.state == "running":
            if e.attempt <= 0 or key in self._attempts:
                return
            attrs: dict[str, Any] = {
                "tui_flow.task_id": e.task_id,
                "tui_flow.attempt": e.attempt,
                "tui_flow.max_attempts": e.max_attempts,
            }
            if "[" in e.task_id:
                attrs["tui_flow.parent"] = e.task_id.split("[", 1)[0]
            if e.reason:
                attrs["tui_flow.reason"] = e.reason
            span = self.tracer.start_span(
                f"task {e.task_id}",
                context=trace.set_span_in_context(run),
                start_time=_ns(e.at),
                attributes=attrs,
            )
            self._attempts[key] = (e.attempt, span)
            return
        if e.state not in _ENDS_ATTEMPT:
            return
        open_ = self._attempts.pop(key, None)
        if open_ is None:
            if e.state in ("skipped", "cancelled"):
                run.add_event(
                    f"task {e.state}",
                    {"tui_flow.task_id": e.task_id, "tui_flow.reason": e.reason or ""},
                    timestamp=_ns(e.at),
                )
            return
        _, span = open_
        self._end_attempt(span, e.state, e.at, e.error, e.traceback, e.reason, e)

    def _end_attempt(
        self,
        span: Span,
        state: str,
        at: float,
        error: str | None,
        tb: str | None,
        reason: str | None,
        e: TaskStateChanged | None = None,
    ) -> None:
        span.set_attribute("tui_flow.state", state)
        if reason:
            span.set_attribute("tui_flow.reason", reason)
        if e is not None:
            if e.timed_out:
                span.set_attribute("tui_flow.timed_out", True)
            if e.via_fallback:
                span.set_attribute("tui_flow.via_fallback", True)
        if state == "completed":
            span.set_status(Status(StatusCode.OK))
        elif error or state in ("retrying", "failed", "interrupted"):
            message = error or state
            kind, _, text = message.partition(": ")
            span.add_event(
                "exception",
                {
                    "exception.type": kind if text else "Error",
                    "exception.message": text or message,
                    "exception.stacktrace": tb or "",
                },
                timestamp=_ns(at),
            )
            span.set_status(Status(StatusCode.ERROR, message))
        span.end(end_time=_ns(at))

    def _finished(self, e: RunFinished) -> None:
        for key in [k for k in self._attempts if k[0] == e.run_id]:
            _, span = self._attempts.pop(key)
            why = "the run ended while the attempt ran"
            self._end_attempt(span, "interrupted", e.at, e.error or why, None, e.status)
        run = self._runs.pop(e.run_id, None)
        if run is None:
            return
        run.set_attribute("tui_flow.status", e.status)
        for name in ("wall_s", "speedup"):
            value = e.report.get(name)
            if isinstance(value, int | float):
                run.set_attribute(f"tui_flow.{name}", value)
        if e.status == "completed":
            run.set_status(Status(StatusCode.OK))
        else:
            run.set_status(Status(StatusCode.ERROR, e.error or e.status))
        run.end(end_time=_ns(e.at))


def cli_subscriber(mode: str) -> OtelSubscriber:
    """The subscriber `--otel MODE` asks for, with a tracer provider of its own (flushed at
    the end of the process): `otlp` exports with opentelemetry-exporter-otlp (configured by
    OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables); `console` prints each span
    as JSON on standard error."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from ..errors import BadInput

    if mode == "console":
        import sys

        exporter: Any = ConsoleSpanExporter(out=sys.stderr)
    else:
        import importlib

        module = None
        for name in ("http", "grpc"):  # opentelemetry-exporter-otlp brings both
            try:
                module = importlib.import_module(
                    f"opentelemetry.exporter.otlp.proto.{name}.trace_exporter"
                )
                break
            except ImportError:
                continue
        if module is None:
            raise BadInput(
                "--otel otlp needs an OTLP exporter: pip install opentelemetry-exporter-otlp "
                "(or --otel console to print the spans)"
            )
        exporter = module.OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "tui-flow"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    subscriber = OtelSubscriber(provider)
    subscriber.provider = provider
    return subscriber
