"""What a run gives back: its status, each task's outcome, the final context and the report."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .report import Report
from .state import RunView

#: the version of the shape of every JSON document tui-flow prints (its `schema` field); the
#: documents and their JSON Schema: tui_flow/documents.py
SCHEMA_VERSION = 2


@dataclass
class TaskOutcome:
    """How one task ended (what `RunResult.tasks` holds)."""

    id: str
    status: str
    attempts: int
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    error: str | None = None
    traceback: str | None = None
    via_fallback: bool = False
    attempt_errors: list[str | None] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "error": self.error,
            "via_fallback": self.via_fallback,
        }


class TaskOutcomes(Mapping[str, TaskOutcome]):
    """`RunResult.tasks`: each task's outcome, built from the finished run's view the first
    time it is read (a run of 10,000 tasks need not build 10,000 outcomes nobody reads)."""

    def __init__(self, view: RunView) -> None:
        self._view = view
        self._built: dict[str, TaskOutcome] | None = None

    def _all(self) -> dict[str, TaskOutcome]:
        if self._built is None:
            self._built = {
                tid: TaskOutcome(
                    tid,
                    tv.state,
                    len(tv.attempts),
                    tv.started_at,
                    tv.finished_at,
                    tv.duration(),
                    tv.error,
                    tv.traceback,
                    tv.via_fallback,
                    [a.error for a in tv.attempts],
                )
                for tid, tv in self._view.tasks.items()
            }
        return self._built

    def __getitem__(self, task_id: str) -> TaskOutcome:
        return self._all()[task_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._view.tasks)

    def __repr__(self) -> str:
        return repr(self._all())


@dataclass
class RunResult:
    """What `run()` returns: status, per-task outcomes, the final context and the report."""

    run_id: str
    workflow: str
    status: str
    started_at: float
    finished_at: float
    tasks: Mapping[str, TaskOutcome]
    context: dict[str, Any]
    report: Report
    view: RunView
    executor: str = "local"
    subscriber_errors: list[str] = field(default_factory=list)
    error: str | None = None  # an error of the engine's own that ended the run

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def to_json(self) -> dict[str, Any]:
        """The object `tui-flow run --json` prints (`documents.RunDocument`)."""
        return {
            "schema": SCHEMA_VERSION,
            "workflow": self.workflow,
            "run_id": self.run_id,
            "status": self.status,
            "executor": self.executor,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "tasks": {k: v.to_json() for k, v in self.tasks.items()},
            "report": self.report.summary(),
            "context": self.context,
            "error": self.error,
        }
