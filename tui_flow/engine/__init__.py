"""The engine: scheduler, runners, events, logs and the efficiency report."""

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

__all__ = [
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
