"""tui-flow: write, run and watch parallel Python workflows from a terminal.

from tui_flow import task, Context, Workflow
"""

from .context import Context
from .engine import Execution, RunResult, run, run_sync, start
from .errors import (
    ConflictError,
    ContextError,
    LoadError,
    Problem,
    TaskDefinitionError,
    TuiFlowError,
    ValidationError,
)
from .loader import LoadedFile, load
from .task import Task, TaskSpec, task
from .workflow import Workflow

__version__ = "0.1.0"

__all__ = [
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
    "load",
    "run",
    "run_sync",
    "start",
    "task",
]
