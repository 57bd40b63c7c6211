"""The embedded run store: every run kept in SQLite; history, crash recovery, resume, re-run.

    store = await RunStore.open()            # .tui-flow/runs.db, or $TUI_FLOW_DB, or a path
    execution.subscribe(store.recorder())    # record a run (batched, non-blocking)
    await store.list_runs(); await store.load_run(run_id); await store.task_logs(run_id, "t")
    execution = await resume(store, run_id)  # or rerun_failed(...), rerun_from(..., "task")
    await store.close()

See docs/store.md.
"""

from .actions import (
    ActionRefused,
    RunPlan,
    plan_rerun_failed,
    plan_rerun_from,
    plan_resume,
    rerun_failed,
    rerun_from,
    resume,
    start_plan,
)
from .sqlite import LogRow, RunNotFound, RunRow, RunStore, StoreError, TaskRow, default_path

__all__ = [
    "ActionRefused",
    "LogRow",
    "RunNotFound",
    "RunPlan",
    "RunRow",
    "RunStore",
    "StoreError",
    "TaskRow",
    "default_path",
    "plan_rerun_failed",
    "plan_rerun_from",
    "plan_resume",
    "rerun_failed",
    "rerun_from",
    "resume",
    "start_plan",
]
