"""Starting, cancelling and re-running runs, opening past ones, quitting. A mixin of
`TuiFlowApp`: runs start on the app's own loop; what they do reaches the screen as events
through a `RunSession`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.widgets import TabbedContent

from ..engine import Execution, RunResult
from ..engine.events import CANCEL_WAITS_FOR_THREAD
from ..runs import ActionRefused, downstream, plan_rerun_failed, plan_rerun_from, plan_reuse
from ..status import EXIT_INTERRUPTED, exit_code, fmt_seconds, glyph
from ..workflow import Workflow
from .app_base import AppBase
from .guard import guarded
from .session import RunSession, idle_view, with_attempt_errors
from .summary import summary_lines
from .widgets.dialogs import ConcurrencyPrompt
from .widgets.history import HistoryScreen

if TYPE_CHECKING:
    from ..fresh_import import LoadedFile


class RunActions(AppBase):
    loaded: LoadedFile
    workflow: Workflow
    store: Any
    session: RunSession
    execution: Execution | None
    last_result: RunResult | None
    last_live: RunSession | None
    past_run: str | None
    interrupted: bool
    interrupted_by: int | None
    pending_reload: LoadedFile | None
    tab_at_start: str | None = None  # the panel shown when the live run started
    report_opened: bool = False  # the run's end opened the Report panel
    initial_context: dict[str, Any]
    max_concurrency: int | None
    max_log_lines: int
    remote: Any
    remote_factory: Callable[[], Any] | None
    store_ready: asyncio.Event
    file_label: str

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run":
            return None if self.running else True
        if action in ("cancel", "cancel_task"):
            return True if self.running else None
        if action == "history":
            return True if self.use_store else False
        if action in ("rerun_failed", "rerun_from"):
            return None if self.running or self._rerun_source() is None else True
        if action == "back_to_live":
            return self.past_run is not None
        if action == "switch_workflow":
            return len(self.loaded.workflows) > 1
        return True

    @guarded
    def action_run(self) -> None:
        if not self.store_ready.is_set():
            self.notify("Opening the run store first…", timeout=2)
            self.run_worker(self._run_when_store_ready(), group="run", exit_on_error=False)
            return
        self.start_run()

    async def _run_when_store_ready(self) -> None:
        await self.store_ready.wait()
        self.start_run()

    def start_run(
        self,
        *,
        max_concurrency: int | None = None,
        reuse: dict[str, dict[str, Any]] | None = None,
        resumed_from: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> bool:
        """Start a run of the current workflow on this loop. False if one is running."""
        if self.running:
            self.notify("A run is in progress: cancel it first (c).", severity="warning")
            return False
        if self.pending_reload is not None:
            self._apply_loaded(self.pending_reload)
        remote = self.remote
        if remote is None and self.remote_factory is not None:
            # one runner (one Dask cluster) for the app's life, not one per run
            remote = self.remote = self.remote_factory()
        session = RunSession(max_lines=max(self.max_log_lines * 2, 10_000))
        execution = Execution(
            self.workflow,
            self.initial_context if context is None else context,
            max_concurrency=max_concurrency or self.max_concurrency,
            subscribers=[session],
            reuse=reuse,
            resumed_from=resumed_from,
            remote=remote,
        )
        if self.store is not None:
            execution.subscribe(self.store.recorder(execution.view))
            session.recorded = True
        self.execution = execution
        self.tab_at_start = self.query_one(TabbedContent).active
        self.past_run = None
        self.interrupted = False
        self.last_live = session
        self.tree.follow = True  # the cursor follows the running task until the user moves it
        # the run is on disk before its first body starts
        execution.start(gate=self.store.flush() if self.store is not None else None)
        self.show_session(session)
        self.run_worker(
            self._await_run(execution, remote), name="run", group="run", exit_on_error=False
        )
        return True

    def _run_ended(self) -> None:
        """The live run ended: the cursor goes to the task that failed first (its error and
        traceback in Details); the Report panel opens unless the user chose another panel
        while the run went."""
        view = self.session.view
        failed = [t for t in view.tasks.values() if t.state == "failed"]
        if failed:
            first = min(failed, key=lambda t: (t.finished_at or 0.0, view.order.index(t.id)))
            tree = self.tree
            if not tree.select_task(first.id, user=False) and first.info.parent is not None:
                tree.select_task(first.info.parent, user=False)
            tree.scroll_to_cursor(center=True)
        tabs = self.query_one(TabbedContent)
        self.report_opened = tabs.active == self.tab_at_start
        if self.report_opened:
            tabs.active = "tab-report"

    async def _await_run(self, execution: Execution, remote: Any) -> None:
        result = await execution.wait()
        self.last_result = result
        if self.session is self.last_live:
            self._tick()
        where = "" if self.report_opened else "; the report is in panel 4"
        self.notify(
            f"{result.workflow} {glyph(result.status)} {result.status} in "
            f"{fmt_seconds(result.finished_at - result.started_at)}{where}",
            title=f"Run {result.run_id}",
            severity="information" if result.ok else "warning",
        )
        for msg in result.subscriber_errors:
            self.notify(msg, title="A view failed", severity="warning")
        if self.pending_reload is not None:
            self._apply_loaded(self.pending_reload)
        self.refresh_bindings()

    @guarded
    def action_cancel(self) -> None:
        if self.execution is not None and self.running:
            self.execution.cancel()
            self.notify("Cancelling the run…")

    @guarded
    def action_cancel_task(self) -> None:
        tid = self.tree.selected_id
        if self.execution is None or not self.running or tid is None:
            return
        if self.past_run is None and self.execution.cancel_task(tid):
            t = self.session.view.tasks.get(tid)
            if t is not None and t.reason == CANCEL_WAITS_FOR_THREAD:
                self.notify(
                    f"{tid} runs in a thread, which cannot be stopped: it keeps running until "
                    "its body returns, then it is cancelled (what it did is dropped).",
                    title="Cancel",
                    timeout=6,
                )
            else:
                self.notify(f"Cancelling {tid}…")

    @guarded
    def action_run_with_concurrency(self) -> None:
        current = self.max_concurrency or self.workflow.max_concurrency

        def chosen(value: int | None) -> None:
            if value:
                self.start_run(max_concurrency=value)

        self.push_screen(ConcurrencyPrompt(current), chosen)

    def _rerun_source(self) -> RunSession | None:
        """The finished run a re-run starts from: the one on screen, else the latest here."""
        for s in (self.session, self.last_live):
            if s is not None and s.view.status in (
                "completed",
                "failed",
                "cancelled",
                "interrupted",
            ):
                return s
        return None

    @guarded
    async def action_rerun_failed(self) -> None:
        await self.rerun("failed")

    @guarded
    async def action_rerun_from(self) -> None:
        await self.rerun("from", self.tree.selected_id)

    async def rerun(self, mode: str, task_id: str | None = None) -> bool:
        """Run again the failed part of a finished run (or from a task), reusing the rest:
        planned by the store when the run is in it, else from what this session saw."""
        source = self._rerun_source()
        if source is None or self.running:
            self.notify("No finished run to re-run from.", severity="warning")
            return False
        view = source.view
        if mode == "from" and (task_id is None or task_id not in self.workflow.tasks):
            self.notify("Select a task of the workflow first.", severity="warning")
            return False
        context: dict[str, Any] | None = None
        if self.store is not None and source.recorded:
            try:
                if mode == "from":
                    assert task_id is not None
                    plan = await plan_rerun_from(
                        self.store, view.run_id, task_id, workflow=self.workflow, force=True
                    )
                else:
                    plan = await plan_rerun_failed(
                        self.store, view.run_id, workflow=self.workflow, force=True
                    )
            except ActionRefused as exc:
                self.notify(str(exc), title="Cannot re-run", severity="warning")
                return False
            reuse, context = plan.reuse, plan.context
        else:
            completed = [tid for tid, t in view.tasks.items() if t.state == "completed"]
            if mode == "failed" and all(t in completed for t in self.workflow.order):
                self.notify("Nothing failed in that run.", severity="warning")
                return False
            again = downstream(self.workflow, task_id) if mode == "from" and task_id else set()
            reuse = plan_reuse(self.workflow, completed, source.writes, again)
        started = self.start_run(reuse=reuse, resumed_from=view.run_id, context=context)
        if started:
            n = len(self.workflow.tasks) - len(reuse)
            self.notify(f"Re-running {n} task(s); reusing {len(reuse)} from run {view.run_id}.")
        return started

    @guarded
    async def action_history(self) -> None:
        if self.store is None:
            self.notify("No run store: runs are not recorded.", severity="warning")
            return
        rows = list(await self.store.list_runs(workflow=self.workflow.name, limit=100))

        def chosen(run_id: str | None) -> None:
            if run_id:
                self.open_past_run(run_id)

        self.push_screen(HistoryScreen(self.workflow.name, rows), chosen)

    @guarded
    def action_back_to_live(self) -> None:
        """From a past run back to the latest run started here (or the idle workflow)."""
        if self.past_run is None:
            return
        self.past_run = None
        if self.last_live is not None:
            self.show_session(self.last_live)
        else:
            self.show_session(
                RunSession(idle_view(self.workflow, self.max_concurrency), live=False)
            )
        self.notify("Back to the live run." if self.running else "Back to the latest run.")

    @guarded
    def action_interrupt(self) -> None:
        """ctrl+c: cancel the run; with no run going (or at the second press), quit."""
        if self.execution is not None and self.running and not self.interrupted:
            self.interrupted = True
            self.execution.cancel()
            self.notify("Cancelling the run… ctrl+c again (or q) quits.", timeout=4)
            return
        self.run_worker(self.action_quit(), name="quit", exit_on_error=False)

    @work(exclusive=True, group="history", exit_on_error=False)
    async def open_past_run(self, run_id: str) -> None:
        """Show a recorded run in the same panels as a live one."""
        live = self.last_live
        if live is not None and live.view.run_id == run_id:
            # the run going on (or the latest one here): the live view, not a frozen copy
            if self.session is not live:
                self.past_run = None
                self.show_session(live)
            return
        view = await self.store.load_run(run_id)
        if view is None:
            self.notify(f"No run {run_id} in the store.", severity="warning")
            return
        session = RunSession(view, live=False, max_lines=max(self.max_log_lines * 2, 10_000))
        session.recorded = True
        limit = session.max_lines
        rows = await self.store.task_logs(run_id, None, limit=limit)
        session.add_lines(with_attempt_errors(rows, view))
        self.past_run = run_id
        self.show_session(session)
        self.notify(f"Showing past run {run_id}; r starts a new run.", timeout=4)

    @guarded
    def action_switch_workflow(self) -> None:
        names = list(self.loaded.workflows)
        if len(names) < 2:
            return
        i = names.index(self.workflow.name) if self.workflow.name in names else -1
        self.switch_workflow(names[(i + 1) % len(names)])

    def switch_workflow(self, name: str) -> None:
        if self.running:
            self.notify("Switch after the run ends.", severity="warning")
            return
        self.workflow = self.loaded.workflow(name)
        self.past_run = None
        self.show_session(RunSession(idle_view(self.workflow, self.max_concurrency), live=False))
        self.notify(f"Workflow {name}", timeout=2)

    @guarded
    async def action_quit(self) -> None:
        if self.execution is not None and self.running:
            self.interrupted = True
            self.execution.cancel()
            try:
                await asyncio.wait_for(self.execution.wait(), 5)
            except Exception:
                pass
        self.exit(self.exit_code)

    @property
    def exit_code(self) -> int:
        if self.interrupted_by is not None:
            return 128 + self.interrupted_by if self.interrupted_by != 2 else EXIT_INTERRUPTED
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.last_result is None:
            return 0
        return exit_code(self.last_result.status)

    def summary(self) -> list[Text]:
        view = self.last_result.view if self.last_result is not None else self.session.view
        return summary_lines(view, self.file_label)

    def replay(self, events: Iterable[Any], *, past: str | None = None) -> RunSession:
        """Show a run given as its events (a recorded run, a test, the screenshots)."""
        session = RunSession(live=False, max_lines=max(self.max_log_lines * 2, 10_000))
        for e in events:
            session(e)
        self.past_run = past
        self.show_session(session)
        return session
