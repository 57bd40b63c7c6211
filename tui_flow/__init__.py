"""tui-flow: write, run and watch parallel Python workflows from a terminal.

    from tui_flow import task, Context, Workflow

The public names are imported on first use (PEP 562), so `import tui_flow` (and the
command line's `--help` and `--version`) loads next to nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Context": "tui_flow.context",
    "ctx": "tui_flow.conditions",
    "succeeded": "tui_flow.conditions",
    "failed": "tui_flow.conditions",
    "skipped": "tui_flow.conditions",
    "all_of": "tui_flow.conditions",
    "any_of": "tui_flow.conditions",
    "none_of": "tui_flow.conditions",
    "always": "tui_flow.conditions",
    "Condition": "tui_flow.conditions",
    "Execution": "tui_flow.engine.scheduler",
    "RunResult": "tui_flow.engine.result",
    "run": "tui_flow.api",
    "run_sync": "tui_flow.api",
    "start": "tui_flow.engine.scheduler",
    "ConflictError": "tui_flow.errors",
    "ContextError": "tui_flow.errors",
    "LoadError": "tui_flow.errors",
    "Problem": "tui_flow.errors",
    "TaskDefinitionError": "tui_flow.errors",
    "TuiFlowError": "tui_flow.errors",
    "ValidationError": "tui_flow.errors",
    "LoadedFile": "tui_flow.fresh_import",
    "load": "tui_flow.loader",
    "Task": "tui_flow.tasks",
    "TaskSpec": "tui_flow.tasks",
    "task": "tui_flow.tasks",
    "Workflow": "tui_flow.workflow",
}

__all__ = [  # the names of _EXPORTS, and the version
    "Condition",
    "ConflictError",
    "Context",
    "ContextError",
    "Execution",
    "LoadError",
    "LoadedFile",
    "Problem",
    "RunResult",
    "Task",
    "TaskDefinitionError",
    "TaskSpec",
    "TuiFlowError",
    "ValidationError",
    "Workflow",
    "__version__",
    "all_of",
    "always",
    "any_of",
    "ctx",
    "failed",
    "load",
    "none_of",
    "run",
    "run_sync",
    "skipped",
    "start",
    "succeeded",
    "task",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tui_flow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what type checkers and editors see
    from .api import run, run_sync
    from .conditions import (
        Condition,
        all_of,
        always,
        any_of,
        ctx,
        failed,
        none_of,
        skipped,
        succeeded,
    )
    from .context import Context
    from .engine.result import RunResult
    from .engine.scheduler import Execution, start
    from .errors import (
        ConflictError,
        ContextError,
        LoadError,
        Problem,
        TaskDefinitionError,
        TuiFlowError,
        ValidationError,
    )
    from .fresh_import import LoadedFile
    from .loader import load
    from .tasks import Task, TaskSpec, task
    from .workflow import Workflow
