"""The JSON documents tui-flow prints, as models: their fields, what each means, and the JSON
Schema generated from them (`tui-flow schema NAME`; published in docs/json-schema/).

    run      tui-flow run --json (and resume, rerun)      one object at the end of the run
    show     tui-flow show RUN --json                     a stored run: run's fields and more
    history  tui-flow history --json                      {"schema": 2, "runs": [...]}
    logs     tui-flow show RUN --logs TASK --json         {"schema": 2, ..., "lines": [...]}
    compare  tui-flow compare FILE --json                 the comparison table

Every document carries `"schema": SCHEMA_VERSION`. Within a version, fields are only ever
added; a field renamed or removed, or a meaning changed, is a new version. These models
describe the output (the tests validate real output against their schema); the output itself
is written by each command (`RunResult.to_json`, `cli/store.py`, `Comparison.to_json`).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .engine.events import RunStatus, TaskState
from .engine.result import SCHEMA_VERSION
from .store.rows import LogRow, RunRow

__all__ = ["DOCUMENTS", "SCHEMA_VERSION", "json_schema"]

Schema = Literal[2]  # SCHEMA_VERSION, as a type
TaskStatus = TaskState | Literal["interrupted"]  # interrupted: a stored run whose process died


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Versioned(_Document):
    schema_: Schema = Field(
        alias="schema", description="The version of this document's shape (SCHEMA_VERSION)."
    )


class TaskOutcome(_Document):
    """How one task ended (for a map_over task, each instance `task[i]` is listed too)."""

    status: TaskStatus
    attempts: int = Field(description="Attempts made (0: the task never started).")
    started_at: float | None = Field(description="First attempt's start, seconds since the epoch.")
    finished_at: float | None = Field(description="Last attempt's end, seconds since the epoch.")
    duration_s: float | None = Field(description="finished_at - started_at, retry waits included.")
    error: str | None = Field(
        description="One line: why the task failed, was skipped or cancelled."
    )
    via_fallback: bool = Field(description="The task completed through its fallback.")


class Breakdown(_Document):
    """Where the wall time went along the chain of tasks that ended the run; sums to wall_s."""

    running_s: float = Field(description="The chain's task bodies running.")
    retry_wait_s: float = Field(description="The chain's tasks waiting between attempts.")
    worker_wait_s: float = Field(
        description="The chain's tasks holding a slot while a worker process started (or the "
        "pool was busy)."
    )
    slot_wait_s: float = Field(description="Ready, waiting for a free slot (or the scheduler).")
    other_s: float = Field(description="The rest: engine start-up, ending the run.")


class ReportSummary(_Document):
    """The efficiency report's headline figures (docs/engine.md explains each)."""

    wall_s: float = Field(description="Run start to run end.")
    total_task_s: float = Field(description="Sum of every attempt's running time (retries too).")
    speedup: float = Field(description="total_task_s / wall_s: the speedup achieved.")
    possible_speedup: float = Field(
        description="min(max_concurrency, total_task_s / critical_path_s): what this graph "
        "allows at the run's concurrency cap; at least 1."
    )
    of_possible: float = Field(description="speedup / possible_speedup (1.0: all of it).")
    slot_utilisation: float = Field(
        description="total_task_s / (wall_s * max_concurrency): the share of slot time busy."
    )
    max_concurrency: int
    critical_path: list[str] = Field(description="The dependency chain with the most work.")
    critical_path_s: float = Field(description="Its work (attempts' running time).")
    graph_speedup: float = Field(description="total_task_s / critical_path_s (no slot cap).")
    retry_wait_s: float = Field(description="Time spent waiting between attempts, all tasks.")
    breakdown: Breakdown


class RunDocument(_Versioned):
    """`tui-flow run --json`: one object when the run ends (also `resume` and `rerun`)."""

    workflow: str
    run_id: str
    status: RunStatus
    executor: str = Field(description="Where sync bodies ran: local or dask.")
    started_at: float = Field(description="Seconds since the epoch.")
    finished_at: float = Field(description="Seconds since the epoch.")
    tasks: dict[str, TaskOutcome] = Field(description="Each task by id, in run order.")
    report: ReportSummary
    context: dict[str, Any] = Field(description="The final context (JSON values).")
    error: str | None = Field(description="What ended the run when the engine itself failed.")


class ShowDocument(RunDocument):
    """`tui-flow show RUN --json`: a stored run, as `run --json` has it, plus the store's own."""

    started_at: float | None = Field(description="Seconds since the epoch (None: no events).")  # type: ignore[assignment]
    finished_at: float | None = Field(description="Seconds since the epoch (None: not ended).")  # type: ignore[assignment]
    file: str | None = Field(description="The workflow file the run was started from.")
    source_hash: str | None = Field(description="Hash of the workflow's source at the run.")
    resumed_from: str | None = Field(description="The run this one re-runs, if any.")
    segments: int = Field(description="1, plus one for each time the run was resumed in place.")
    error: str | None = Field(description="What ended the run, if it did not complete.")


class HistoryDocument(_Versioned):
    """`tui-flow history --json`: the runs listed, newest first."""

    runs: list[RunRow] = Field(description="One stored run each (the store's run row).")


class LogDocument(_Versioned):
    """`tui-flow show RUN --logs TASK --json`: a task's log, every attempt, in order."""

    run_id: str
    task_id: str
    lines: list[LogRow] = Field(
        description="One line each: attempt (1-based), at (seconds since the epoch), level, "
        "text, and segment (0: the run's first execution, n: its n-th resume); logger and "
        "extra: the name of the `logging` logger that wrote it and its record's extra= "
        "fields (null for print, context.log and the root logger)."
    )


class Setting(_Document):
    """The runs at one concurrency."""

    concurrency: int
    wall_s: float = Field(description="Median wall time of the runs.")
    walls_s: list[float] = Field(description="Each run's wall time.")
    speedup: float = Field(description="Wall time at concurrency 1 / wall_s.")
    bound: float = Field(
        description="min(concurrency, best_speedup): the speedup possible at this concurrency."
    )
    of_possible: float = Field(description="speedup / bound.")
    slot_utilisation: float = Field(description="speedup / concurrency.")
    status: RunStatus = Field(description="completed, or the first other status of the runs.")


class CompareDocument(_Versioned):
    """`tui-flow compare FILE --json`: the workflow run at each concurrency."""

    workflow: str
    context: dict[str, Any] = Field(description="The initial context (`--set`).")
    repeat: int = Field(description="Runs per concurrency (the median is shown).")
    baseline_concurrency: int = Field(description="The concurrency speedups are measured from.")
    total_task_s: float = Field(description="Total task time at concurrency 1.")
    critical_path: list[str]
    critical_path_s: float
    best_speedup: float = Field(description="total_task_s / critical_path_s (no slot cap).")
    settings: list[Setting]


#: each document by the name `tui-flow schema NAME` takes
DOCUMENTS: dict[str, type[BaseModel]] = {
    "run": RunDocument,
    "show": ShowDocument,
    "history": HistoryDocument,
    "logs": LogDocument,
    "compare": CompareDocument,
}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the document `name` (a key of `DOCUMENTS`); the same
    whichever pydantic 2 made it (`_tidy`)."""
    model = DOCUMENTS[name]
    schema = TypeAdapter(model).json_schema(by_alias=True, mode="serialization")
    for row in (RunRow, LogRow):  # older pydantic leaves a dataclass's docstring out
        found = schema.get("$defs", {}).get(row.__name__)
        if found is not None and row.__doc__:
            found["description"] = inspect.cleandoc(row.__doc__)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"tui-flow {name} --json, schema {SCHEMA_VERSION}",
        **{k: _tidy(v) for k, v in schema.items() if k != "title"},
    }


def _tidy(node: Any) -> Any:
    """What pydantic versions write differently, in one way: no `enum` beside the same
    `const`, no `additionalProperties: true` (the default)."""
    if isinstance(node, list):
        return [_tidy(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _tidy(v) for k, v in node.items()}
    if "const" in out and out.get("enum") == [out["const"]]:
        del out["enum"]
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]
    return out
