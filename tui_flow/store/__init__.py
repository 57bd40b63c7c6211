"""The embedded run store: every run kept in SQLite; history, crash recovery.

    store = await RunStore.open()            # .tui-flow/runs.db, or $TUI_FLOW_DB, or a path
    execution.subscribe(store.recorder())    # record a run (batched, non-blocking)
    await store.list_runs(); await store.load_run(run_id); await store.task_logs(run_id, "t")
    await store.close()

The store only records and reads: resuming and re-running stored runs is `tui_flow.runs`.
See docs/store.md.
"""

from .sqlite import LogRow, RunNotFound, RunRow, RunStore, StoreError, TaskRow, default_path

__all__ = [
    "LogRow",
    "RunNotFound",
    "RunRow",
    "RunStore",
    "StoreError",
    "TaskRow",
    "default_path",
]
