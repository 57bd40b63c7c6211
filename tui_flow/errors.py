"""Errors users see. Each one carries enough to point at the file, line or task at fault."""

from __future__ import annotations

import sys
from dataclasses import dataclass


def err(msg: str) -> None:
    """Say what went wrong, on one line of stderr: `tui-flow: ...`."""
    print(f"tui-flow: {msg}", file=sys.stderr)


class TuiFlowError(Exception):
    """Base class of every error tui-flow raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One validation finding, located in a source file when we know where."""

    message: str
    file: str | None = None
    line: int | None = None
    task_id: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.message}"


class BadInput(TuiFlowError):
    """Input the user must fix: a command-line value, a setting (exit code 2)."""


class TaskDefinitionError(TuiFlowError):
    """A `@task(...)` option is wrong (unknown name, bad value)."""


class ValidationError(TuiFlowError):
    """A workflow is invalid. Holds every problem found, not just the first."""

    def __init__(self, problems: list[Problem], workflow: str | None = None) -> None:
        self.problems = list(problems)
        self.workflow = workflow
        head = f"workflow {workflow!r} is invalid" if workflow else "invalid workflow"
        lines = [f"{head} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class LoadError(TuiFlowError):
    """A workflow file could not be loaded. `file` and `line` point at the cause."""

    def __init__(self, file: str, reason: str, line: int | None = None) -> None:
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")


class ContextError(TuiFlowError, KeyError):
    """A context rule was broken: missing key, existing key, value that cannot be stored."""

    def __str__(self) -> str:  # KeyError quotes its message; we do not want that
        return str(self.args[0]) if self.args else ""


class ConflictError(ContextError):
    """Two tasks that may run in parallel wrote the same context key."""

    def __init__(self, key: str, first: str, second: str) -> None:
        self.key = key
        self.tasks = (first, second)
        super().__init__(
            f"context key {key!r} written by both {first!r} and {second!r}, which may run in "
            f"parallel; make one depend on the other or use different keys"
        )
