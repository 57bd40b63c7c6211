"""The engine: the scheduler and its parts, runners, events, logs and the report.

The names below are imported on first use (PEP 562): a worker process that needs only
`engine.runners` (or the store, only `engine.events`) does not load the scheduler.
docs/engine.md has the map of the modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module of this package that defines it
_EXPORTS: dict[str, str] = {
    "FINAL_STATES": "events",
    "ContextWritten": "events",
    "Event": "events",
    "LogLine": "events",
    "RetryScheduled": "events",
    "RunFinished": "events",
    "RunStarted": "events",
    "TaskInfo": "events",
    "TaskLogs": "events",
    "TaskProgress": "events",
    "TasksAdded": "events",
    "TaskStateChanged": "events",
    "event_from_json": "events",
    "Report": "report",
    "TaskTiming": "report",
    "compute_report": "report",
    "RunResult": "result",
    "TaskOutcome": "result",
    "Execution": "scheduler",
    "run": "scheduler",
    "run_sync": "scheduler",
    "start": "scheduler",
    "RunView": "state",
    "TaskView": "state",
}

__all__ = [  # the names of _EXPORTS
    "FINAL_STATES",
    "ContextWritten",
    "Event",
    "Execution",
    "LogLine",
    "Report",
    "RetryScheduled",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunView",
    "TaskInfo",
    "TaskLogs",
    "TaskOutcome",
    "TaskProgress",
    "TaskStateChanged",
    "TaskTiming",
    "TaskView",
    "TasksAdded",
    "compute_report",
    "event_from_json",
    "run",
    "run_sync",
    "start",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tui_flow.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .events import (
        FINAL_STATES,
        ContextWritten,
        Event,
        LogLine,
        RetryScheduled,
        RunFinished,
        RunStarted,
        TaskInfo,
        TaskLogs,
        TaskProgress,
        TasksAdded,
        TaskStateChanged,
        event_from_json,
    )
    from .report import Report, TaskTiming, compute_report
    from .result import RunResult, TaskOutcome
    from .scheduler import Execution, run, run_sync, start
    from .state import RunView, TaskView
