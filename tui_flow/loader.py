"""Load workflow files: `.py` modules (imported fresh, see `fresh_import`) and `.flow` files
(through the DSL). `load(path)` returns a `LoadedFile`: the file's workflows by name."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from .errors import LoadError, TuiFlowError, ValidationError
from .fresh_import import LoadedFile, import_fresh, source_hash
from .tasks import Task
from .workflow import Workflow

__all__ = ["FLOW_SUFFIXES", "WORKFLOW_SUFFIXES", "LoadedFile", "load", "workflows_of"]

FLOW_SUFFIXES = (".flow", ".dsl", ".taskinity")  # the text DSL (Taskinity's names too)
WORKFLOW_SUFFIXES = (".py", *FLOW_SUFFIXES)


def load(path: str | os.PathLike[str]) -> LoadedFile:
    """Load the workflows of a `.py` (or `.flow`) file.

    Raises `LoadError` (file, line, short reason) when the file cannot be imported and
    `ValidationError` (every problem, each with file and line) when a workflow is invalid.
    """
    p = Path(path).resolve()
    if not p.exists():
        raise LoadError(str(path), "no such file")
    if p.is_dir():
        raise LoadError(str(path), "is a folder; give a workflow file (.py or .flow)")
    if p.suffix in FLOW_SUFFIXES:
        from .dsl import load_flow

        return load_flow(p)
    if p.suffix != ".py":
        raise LoadError(
            str(path),
            f"unsupported file type {p.suffix!r}; expected {', '.join(WORKFLOW_SUFFIXES)}",
        )
    module = import_fresh(p)
    workflows = workflows_of(module, p)
    return LoadedFile(p, workflows, source_hash(p), [p])


def workflows_of(module: ModuleType, p: Path) -> dict[str, Workflow]:
    """The module's Workflow objects, or one workflow of all its tasks named after the file."""
    found: dict[str, Workflow] = {}
    collect = vars(module).get("__tui_flow_collect__")  # a compat module's (cloaca's) registry
    if callable(collect):
        try:
            found = dict(collect(vars(module), p.stem))
        except ValidationError:
            raise
        except TuiFlowError as exc:
            raise LoadError(str(p), str(exc)) from None
    for value in vars(module).values():
        if isinstance(value, Workflow) and not any(value is w for w in found.values()):
            if value.name in found:
                raise LoadError(
                    str(p),
                    f"two workflows are named {value.name!r}; names must be unique",
                    value.line,
                )
            found[value.name] = value
    if not found:
        tasks = [v for v in vars(module).values() if isinstance(v, Task)]
        tasks = list({id(t): t for t in tasks}.values())
        if not tasks:
            raise LoadError(str(p), "no tasks found: mark functions with @task")
        tasks.sort(key=lambda t: (t.source_file != str(p), t.source_line or 0))
        wf = Workflow(p.stem, tasks)
        wf.line = None
        found[wf.name] = wf
    digest = source_hash(p)
    for wf in found.values():
        wf.file = str(p)
        wf.source_hash = digest
    return found
