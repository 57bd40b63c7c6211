"""The Textual app: a live view of a workflow run, built only from the engine's events.

    tui-flow flows/catalog.py

Panels: the task tree (left, with the selected task's details below it) and, on the right,
tabs for the logs, the timeline, the retries and the report. Runs start on the app's own
event loop (`Execution(...).start()`); a `RunSession` subscriber folds the events into a
`RunView` and the screen takes the changes a few times a second (`_tick`). The workflow file
is watched and reloaded when saved (see `reload.py`).

`make_app(...)` builds the app (the CLI and the tests use it); `run_app(args)` runs it for the
CLI, leaves a short summary of the last run in the scrollback and returns the exit code.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane, Tree
from textual.worker import Worker, WorkerState

from ..engine import Execution, RunResult
from ..engine.state import RunView
from ..loader import LoadedFile, load
from ..safe_text import visible
from ..status import fmt_seconds, glyph
from ..workflow import Workflow
from .reload import Diff, diff_workflows, load_file_async, watch, watch_roots
from .session import RunSession, idle_view
from .widgets.dag_tree import DagTree
from .widgets.details import TaskDetails
from .widgets.dialogs import ConcurrencyPrompt, HelpScreen
from .widgets.footer import RunFooter
from .widgets.header import RunHeader, header_text
from .widgets.history import HistoryScreen, field
from .widgets.log_view import LogPanel, LogView
from .widgets.report import ReportPanel
from .widgets.retries import RetriesTable
from .widgets.timeline import Timeline, TimelinePanel

EXIT_FOR_STATUS = {"completed": 0, "failed": 1, "cancelled": 130, "interrupted": 130}
TICK_S = 0.25  # how often the screen takes the run's changes (4 Hz)
SPINNER_FPS = 8
TABS = ("tab-logs", "tab-timeline", "tab-retries", "tab-report")

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Run a handler so that an error in it is shown and the app stays alive."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except Exception as exc:
                self.app.report_error(fn.__name__, exc)
                return None

        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            self.app.report_error(fn.__name__, exc)
            return None

    return run  # type: ignore[return-value]


def display_path(path: str | os.PathLike[str]) -> str:
    """The file as the user knows it: relative to the current folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def rerun_set(view: RunView, mode: str, task_id: str | None, wf: Workflow) -> set[str]:
    """The tasks a re-run runs again: the ones that did not complete (mode "failed") or the
    selected task (mode "from"), plus everything downstream of them."""
    if mode == "from":
        if task_id is None or task_id not in wf.tasks:
            return set()
        roots = {task_id}
    else:
        roots = {
            tid for tid in wf.order if tid not in view.tasks or view.tasks[tid].state != "completed"
        }
    out = set(roots)
    for tid in roots:
        out |= wf.descendants(tid)
    return out


def summary_lines(view: RunView, file: str) -> list[Text]:
    """The lines left in the scrollback when the app exits."""
    if view.status in ("idle", "pending"):
        return [Text(f"tui-flow: {view.workflow} ({file}): no run started")]
    wall = (
        fmt_seconds(view.finished_at - view.started_at)
        if view.finished_at is not None and view.started_at is not None
        else "-"
    )
    counts: dict[str, int] = {}
    for t in view.tasks.values():
        if t.info.parent is None:
            counts[t.state] = counts.get(t.state, 0) + 1
    parts = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()))
    head = Text("tui-flow: ")
    head.append(f"{view.workflow} run {view.run_id} ")
    head.append(f"{glyph(view.status)} {view.status}", style="bold")
    head.append(f" in {wall} · {parts}")
    if view.report:
        head.append(f" · speedup {view.report.get('speedup', 0):.2f}x")
    lines = [head]
    failed = [t for t in view.tasks.values() if t.state == "failed"]
    for t in failed[:5]:
        lines.append(Text(f"  {glyph('failed')} {t.id}: {visible(t.error or 'failed')}"))
    if len(failed) > 5:
        lines.append(Text(f"  … and {len(failed) - 5} more failed tasks"))
    return lines


class TuiFlowApp(App[int]):
    """Watch, run and re-run one workflow file."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-flow"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("r", "run", "Run", id="run"),
        Binding("c", "cancel", "Cancel", id="cancel"),
        Binding("slash", "search", "Search", id="logs.search"),
        Binding("n", "search_next", "Next match", id="logs.search_next", show=False),
        Binding("N", "search_previous", "Previous match", id="logs.search_previous", show=False),
        Binding("l", "toggle_log_filter", "Logs: all/task", id="logs.filter"),
        Binding("f", "follow", "Follow logs", id="logs.follow", show=False),
        Binding("y", "copy_log", "Copy log", id="logs.copy"),
        Binding("t", "next_tab", "Next panel", id="panels.next"),
        Binding("1", "show_tab('tab-logs')", "Logs", id="panels.logs", show=False),
        Binding("2", "show_tab('tab-timeline')", "Timeline", id="panels.timeline", show=False),
        Binding("3", "show_tab('tab-retries')", "Retries", id="panels.retries", show=False),
        Binding("4", "show_tab('tab-report')", "Report", id="panels.report", show=False),
        Binding("x", "cancel_task", "Cancel task", id="cancel.task", show=False),
        Binding("R", "rerun_failed", "Re-run failed", id="rerun.failed", show=False),
        Binding("e", "rerun_from", "Re-run from task", id="rerun.from", show=False),
        Binding("h", "history", "History", id="history"),
        Binding("w", "switch_workflow", "Next workflow", id="workflow.next", show=False),
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        loaded: LoadedFile | None = None,
        workflow: str | None = None,
        max_concurrency: int | None = None,
        context: dict[str, Any] | None = None,
        store: Any = None,
        db: str | None = None,
        use_store: bool = True,
        remote_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
        watch_files: bool = True,
        max_log_lines: int = 5_000,
        tick_s: float = TICK_S,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.file_label = display_path(path)
        self.loaded = loaded if loaded is not None else load(path)
        self.workflow: Workflow = self.loaded.workflow(workflow)
        self.max_concurrency = max_concurrency
        self.initial_context = dict(context or {})
        self.store = store
        self._own_store = False
        self.db = db
        self.use_store = use_store or store is not None
        self.remote_factory = remote_factory
        self.remote: Any = None  # the remote runner (Dask), made on the first run
        self.clock = clock
        self.watch_files = watch_files
        self.max_log_lines = max_log_lines
        self.tick_s = tick_s
        self.session = RunSession(idle_view(self.workflow, max_concurrency), live=False)
        self.execution: Execution | None = None
        self.last_result: RunResult | None = None
        self.last_live: RunSession | None = None  # the latest run started here
        self.past_run: str | None = None  # the run id when showing a run from the store
        self.interrupted = False
        self.pending_reload: LoadedFile | None = None
        self.reload_error: str | None = None
        self.reloads: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.watch_ready = asyncio.Event()
        self.errors: list[str] = []
        self.log_mode = "all"  # or "task": only the selected task's lines
        self._active: set[str] = set()  # running / retrying tasks, relabelled every tick
        self._shown_task: str | None = None
        self._switch_interval = sys.getswitchinterval()

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Static("", id="reload-error")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield DagTree(id="tree")
                yield TaskDetails(id="details")
            with TabbedContent(id="tabs", initial="tab-logs"):
                with TabPane("Logs", id="tab-logs"):
                    yield LogPanel(self.max_log_lines, id="logs")
                with TabPane("Timeline", id="tab-timeline"):
                    yield TimelinePanel(id="timeline-panel")
                with TabPane("Retries", id="tab-retries"):
                    yield RetriesTable(id="retries")
                with TabPane("Report", id="tab-report"):
                    yield ReportPanel(id="report")
        yield RunFooter()

    @property
    def tree(self) -> DagTree:
        return self.query_one(DagTree)

    @property
    def logs(self) -> LogPanel:
        return self.query_one(LogPanel)

    @property
    def log_view(self) -> LogView:
        return self.query_one(LogView)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def running(self) -> bool:
        return self.execution is not None and not self.execution.is_done

    def on_mount(self) -> None:
        # A task body spinning in a thread holds the GIL in 5 ms slices by default; the
        # screen (and a key press) waits that long at every turn of the loop. 1 ms keeps
        # the app responsive under such a task, for a small cost in throughput.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, 0.001))
        self.query_one("#tree").border_title = "Tasks"
        self.query_one("#details").border_title = "Details"
        self.logs.store_note = self.use_store
        self.show_session(self.session)
        self.tree.focus()
        self.set_interval(self.tick_s, self._tick, name="tick")
        if self.store is None and self.use_store:
            self.open_store()
        if self.watch_files:
            self.watch_workflow()
        if self.remote_factory is not None:
            self.run_worker(self._start_remote(), name="remote", exit_on_error=False)

    async def _start_remote(self) -> None:
        """Connect to the Dask cluster (or start a local one) before the first run needs it."""
        if self.remote is None and self.remote_factory is not None:
            self.remote = self.remote_factory()
        if self.remote is not None and hasattr(self.remote, "start"):
            try:
                await self.remote.start()
            except Exception as exc:
                self.notify(str(exc), title="Dask", severity="error", timeout=10)

    async def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        if self.execution is not None and not self.execution.is_done:
            self.execution.cancel()
        if self.remote is not None and hasattr(self.remote, "close"):
            try:
                await self.remote.close()
            except Exception:
                pass
        if self.store is not None and self._own_store:
            try:
                await self.store.close()
            except Exception:
                pass

    # -- errors --------------------------------------------------------------------------------

    def report_error(self, where: str, exc: BaseException) -> None:
        """An error in the app's own code: say so, keep going."""
        msg = f"{type(exc).__name__}: {exc}"
        self.errors.append(f"{where}: {msg}")
        self.log.error(f"{where}: {msg}")
        try:
            self.notify(msg, title=f"Internal error in {where}", severity="error", timeout=8)
        except Exception:
            pass

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(event.worker.name or "worker", event.worker.error)

    # -- the store -----------------------------------------------------------------------------

    @work(exclusive=True, group="store", exit_on_error=False)
    async def open_store(self) -> None:
        try:
            from ..store.sqlite import RunStore
        except ImportError:
            self.use_store = False
            self.logs.store_note = False
            self.refresh_bindings()
            return
        try:
            self.store = await RunStore.open(self.db)
            self._own_store = True
        except Exception as exc:
            self.use_store = False
            self.logs.store_note = False
            self.notify(f"Runs are not recorded: {exc}", title="Run store", severity="warning")
        self.refresh_bindings()

    # -- showing a run -------------------------------------------------------------------------

    def show_session(self, session: RunSession, *, keep_panels: bool = False) -> None:
        """Point every panel at `session` (a live run, a past run, or the idle workflow)."""
        self.session = session
        view = session.view
        now = self.clock()
        tree = self.tree
        tree.frame = int(now * SPINNER_FPS)
        tree.build(view, now)
        self._active = {tid for tid, t in view.tasks.items() if t.state in ("running", "retrying")}
        if not keep_panels:
            retries = self.query_one(RetriesTable)
            retries.reset()
            retries.sync(view.retries, view.started_at)
            self._retries_label(len(view.retries))
            self._refresh_logs()
            report = self.query_one(ReportPanel)
            if view.status not in ("running", "idle", "pending") and view.started_at is not None:
                self._show_report()
            else:
                report.clear()
        session.take()  # everything is drawn now
        self._show_details(force=True)
        self._update_header(now)
        timeline = self.timeline
        if self._timeline_shown():
            timeline.update_view(view, now)
        else:  # drawn when its tab is opened (`_on_tab`); until then, forget the old run
            timeline.view = None
        self.refresh_bindings()

    def _timeline_shown(self) -> bool:
        return self.query_one(TabbedContent).active == "tab-timeline"

    def _show_report(self) -> None:
        view = self.session.view
        report = view.compute_report()
        self.query_one(ReportPanel).show(report, view.workflow, view.status, view.run_id)

    def _retries_label(self, n: int) -> None:
        tab = self.query_one(TabbedContent).get_tab("tab-retries")
        label = f"Retries ({n})" if n else "Retries"
        if tab.label.plain != label:  # a new label means a layout: only when it changes
            tab.label = Text(label)

    def _update_header(self, now: float) -> None:
        view = self.session.view
        limit = None
        if view.status == "idle":
            limit = self.max_concurrency or self.workflow.max_concurrency
        self.query_one(RunHeader).set_text(
            header_text(
                view,
                self.file_label,
                now,
                frame=int(now * SPINNER_FPS),
                past=self.past_run is not None,
                limit=limit,
                executor=self.remote.describe()
                if self.remote is not None and hasattr(self.remote, "describe")
                else None,
            )
        )
        tree_box = self.query_one("#tree")
        top = [t for t in view.tasks.values() if t.info.parent is None]
        if view.status == "idle":
            subtitle = f"{len(top)} tasks"
        else:
            subtitle = f"{sum(1 for t in top if t.final)}/{len(top)} done"
        if tree_box.border_subtitle != subtitle:
            tree_box.border_subtitle = subtitle

    def _show_details(self, force: bool = False) -> None:
        tid = self.tree.selected_id
        view = self.session.view
        if not force and tid != self._shown_task and tid is None:
            return
        self._shown_task = tid
        self.query_one(TaskDetails).show(view.tasks.get(tid) if tid else None, view, self.clock())

    @guarded
    def _tick(self) -> None:
        """Take the run's changes and draw them: relabel, write logs, update panels."""
        session = self.session
        changes = session.take()
        now = self.clock()
        view = session.view
        tree = self.tree
        tree.frame = int(now * SPINNER_FPS)
        for tid in changes.tasks:
            t = view.tasks.get(tid)
            if t is not None and t.state in ("running", "retrying"):
                self._active.add(tid)
            else:
                self._active.discard(tid)
        if changes.graph:
            tree.build(view, now)
            self.log_view.set_prefix(
                self.log_mode == "all" or self._filter_has_instances(), view.order
            )
        else:
            tree.relabel(view, changes.tasks | self._active, now)
        if changes.lines:
            self._write_lines(changes.lines)
        if changes.retries:
            self.query_one(RetriesTable).sync(view.retries, view.started_at)
            self._retries_label(len(view.retries))
        selected = tree.selected_id
        if selected is not None and (selected in changes.tasks or selected in self._active):
            self._show_details(force=True)
        if view.status == "running" or changes.tasks or changes.finished:
            self._update_header(now)
        timeline_shown = self._timeline_shown()
        if timeline_shown and (view.status == "running" or changes.tasks or changes.finished):
            self.timeline.update_view(view, now)
        if changes.finished:
            self._active.clear()
            self._show_report()
            self.refresh_bindings()

    # -- logs ----------------------------------------------------------------------------------

    def _filter_ids(self) -> set[str] | None:
        if self.log_mode == "all":
            return None
        tid = self.tree.selected_id
        if tid is None:
            return set()
        t = self.session.view.tasks.get(tid)
        return {tid, *(t.instances if t is not None else ())}

    def _filter_has_instances(self) -> bool:
        ids = self._filter_ids()
        return ids is not None and len(ids) > 1

    def _write_lines(self, lines: list[Any]) -> None:
        ids = self._filter_ids()
        if ids is not None:
            lines = [e for e in lines if e[0] in ids]
        self.log_view.write(lines)
        self._log_totals()

    def _log_totals(self) -> None:
        panel = self.logs
        tid = self.tree.selected_id if self.log_mode == "task" else None
        panel.filter_task = tid if self.log_mode == "task" else None
        if self.log_mode == "task":
            panel.total_for_filter = self.session.task_line_count(tid) if tid else 0
        else:
            panel.total_for_filter = self.session.total_lines
        panel.update_status()

    def _refresh_logs(self) -> None:
        """Fill the log view again (a new run, a new filter, a new selection)."""
        view = self.log_view
        ids = self._filter_ids()
        if ids is None:
            view.set_prefix(True, self.session.view.order)
            entries: Iterable[Any] = self.session.lines
        else:
            view.set_prefix(len(ids) > 1, ids)
            tid = self.tree.selected_id
            entries = self.session.lines_of(tid) if tid else []
        query = view.query_text
        view.set_entries(entries)
        if query:
            view.search(query)
        view.follow()
        self._log_totals()

    # -- tree events ---------------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#tree")
    @guarded
    def _on_task_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        self._show_details(force=True)
        if self.log_mode == "task":
            self._refresh_logs()

    @on(TabbedContent.TabActivated, "#tabs")
    @guarded
    def _on_tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-timeline":
            self.timeline.update_view(self.session.view, self.clock())

    # -- actions: runs -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run":
            return None if self.running else True
        if action in ("cancel", "cancel_task"):
            return True if self.running else None
        if action == "history":
            return True if self.use_store else False
        if action in ("rerun_failed", "rerun_from"):
            return None if self.running or self._rerun_source() is None else True
        if action == "switch_workflow":
            return len(self.loaded.workflows) > 1
        return True

    @guarded
    def action_run(self) -> None:
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
            try:
                execution.subscribe(self.store.recorder(execution.view))
            except Exception as exc:
                self.notify(f"This run is not recorded: {exc}", severity="warning")
        self.execution = execution
        self.past_run = None
        self.interrupted = False
        self.last_live = session
        execution.start()
        self.show_session(session)
        self.run_worker(
            self._await_run(execution, remote), name="run", group="run", exit_on_error=False
        )
        return True

    async def _await_run(self, execution: Execution, remote: Any) -> None:
        result = await execution.wait()
        self.last_result = result
        if self.session is self.last_live:
            self._tick()
        self.notify(
            f"{result.workflow} {glyph(result.status)} {result.status} in "
            f"{fmt_seconds(result.finished_at - result.started_at)}; the report is in panel 4",
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
        """Run again the failed part of a finished run (or from a task), reusing the rest."""
        source = self._rerun_source()
        if source is None or self.running:
            self.notify("No finished run to re-run from.", severity="warning")
            return False
        view = source.view
        if mode == "from" and (task_id is None or task_id not in self.workflow.tasks):
            self.notify("Select a task of the workflow first.", severity="warning")
            return False
        plan = await self._store_plan(view.run_id, mode, task_id)
        if plan is False:
            return False
        if plan is not None:
            reuse, context = plan.reuse, plan.context
        else:
            again = rerun_set(view, mode, task_id, self.workflow)
            if not again:
                self.notify("Nothing failed in that run.", severity="warning")
                return False
            writes = await self._writes_of(source)
            reuse = {}
            for tid in self.workflow.order:
                t = view.tasks.get(tid)
                deps = self.workflow.tasks[tid].spec.dependencies
                if tid in again or t is None or t.state != "completed":
                    continue
                if all(d in reuse for d in deps):
                    reuse[tid] = writes.get(tid, {})
            context = None
        started = self.start_run(reuse=reuse, resumed_from=view.run_id, context=context)
        if started:
            n = len(self.workflow.tasks) - len(reuse)
            self.notify(f"Re-running {n} task(s); reusing {len(reuse)} from run {view.run_id}.")
        return started

    async def _store_plan(self, run_id: str, mode: str, task_id: str | None) -> Any:
        """The run store's plan for a re-run (None: no store, plan in memory; False: refused)."""
        store = self.store
        if store is None or not hasattr(store, "context_writes"):
            return None
        try:
            from ..store import actions
        except ImportError:
            return None
        try:
            if mode == "from":
                return await actions.plan_rerun_from(
                    store, run_id, task_id, workflow=self.workflow, force=True
                )
            return await actions.plan_rerun_failed(
                store, run_id, workflow=self.workflow, force=True
            )
        except actions.ActionRefused as exc:
            self.notify(str(exc), title="Cannot re-run", severity="warning")
            return False
        except Exception as exc:  # the run is not in the store (e.g. recorded nowhere)
            self.log.warning(f"store plan failed, planning in memory: {exc!r}")
            return None

    async def _writes_of(self, source: RunSession) -> dict[str, dict[str, Any]]:
        """The context writes of each task of a finished run."""
        if source.writes or source.live:
            return source.writes
        helper = getattr(self.store, "context_writes", None)
        if helper is not None:
            try:
                return dict(await helper(source.view.run_id))
            except Exception:
                pass
        # fall back on the final context, key by key, as each task reported writing it
        ctx = source.view.context
        return {
            tid: {k: ctx[k] for k in t.written_keys if k in ctx}
            for tid, t in source.view.tasks.items()
        }

    # -- actions: logs -------------------------------------------------------------------------

    @guarded
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    @guarded
    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        i = TABS.index(tabs.active) if tabs.active in TABS else -1
        tabs.active = TABS[(i + 1) % len(TABS)]

    @guarded
    def action_search(self) -> None:
        self.query_one(TabbedContent).active = "tab-logs"
        self.logs.open_search()

    @guarded
    def action_search_next(self) -> None:
        self.log_view.next_match(1)
        self.logs.update_status()

    @guarded
    def action_search_previous(self) -> None:
        self.log_view.next_match(-1)
        self.logs.update_status()

    @guarded
    def action_toggle_log_filter(self) -> None:
        self.log_mode = "task" if self.log_mode == "all" else "all"
        self._refresh_logs()
        tid = self.tree.selected_id
        which = f"task {tid}" if self.log_mode == "task" else "all tasks"
        self.notify(f"Logs: {which}", timeout=2)

    @guarded
    def action_follow(self) -> None:
        self.log_view.follow()
        self.logs.update_status()

    @guarded
    def action_copy_log(self) -> None:
        text = self.log_view.text()
        self.copy_to_clipboard(text)
        n = len(self.log_view.entries)
        which = f"task {self.logs.filter_task}" if self.logs.filter_task else "all tasks"
        self.notify(f"Copied {n:,} lines ({which}) to the clipboard.", timeout=3)

    # -- actions: other ------------------------------------------------------------------------

    @guarded
    def action_help(self) -> None:
        keys = []
        for b in self.BINDINGS:
            if isinstance(b, Binding):
                keys.append(
                    (b.key.replace("question_mark", "?").replace("slash", "/"), b.description)
                )
        self.push_screen(HelpScreen(keys))

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

    @work(exclusive=True, group="history", exit_on_error=False)
    async def open_past_run(self, run_id: str) -> None:
        """Show a recorded run in the same panels as a live one."""
        view = await self.store.load_run(run_id)
        if view is None:
            self.notify(f"No run {run_id} in the store.", severity="warning")
            return
        session = RunSession(view, live=False, max_lines=max(self.max_log_lines * 2, 10_000))
        limit = session.max_lines
        try:
            rows = await self.store.task_logs(run_id, None, limit=limit)
        except TypeError:  # a store that reads one task at a time
            rows = []
            for tid in view.order:
                rows += list(await self.store.task_logs(run_id, tid))
        entries = [
            (field(r, "task_id", "?"), field(r, "level", "info"), str(field(r, "text", r)))
            for r in rows
        ]
        session.add_lines(entries[-limit:])
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
        if self.interrupted:
            return 130
        if self.last_result is None:
            return 0
        return EXIT_FOR_STATUS.get(self.last_result.status, 1)

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

    # -- command palette -----------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        if not self.running:
            yield SystemCommand("Run", "Run the workflow (r)", self.action_run)
            yield SystemCommand(
                "Run with a different concurrency…",
                "Choose how many tasks may run at once for this run",
                self.action_run_with_concurrency,
            )
        else:
            yield SystemCommand("Cancel the run", "Stop the running tasks (c)", self.action_cancel)
        if not self.running and self._rerun_source() is not None:
            yield SystemCommand(
                "Re-run failed tasks",
                "Run again what did not complete, reusing the rest (R)",
                self.action_rerun_failed,
            )
            tid = self.tree.selected_id
            if tid:
                yield SystemCommand(
                    f"Re-run from {tid}",
                    "Run the selected task and everything after it again (e)",
                    self.action_rerun_from,
                )
        if self.use_store:
            yield SystemCommand(
                "Open a past run…", "Runs of this workflow from the store (h)", self.action_history
            )
        for name in self.loaded.workflows:
            if name != self.workflow.name:
                yield SystemCommand(
                    f"Switch workflow: {name}",
                    f"Show the workflow {name!r} of this file",
                    functools.partial(self.switch_workflow, name),
                )
        yield SystemCommand("Switch theme…", "Pick a colour theme", self.action_change_theme)
        for cmd in super().get_system_commands(screen):
            if cmd.title not in ("Theme",):
                yield cmd

    # -- hot reload ----------------------------------------------------------------------------

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def watch_workflow(self) -> None:
        """Reload the workflow when its file (or a module beside it) is saved."""
        files = [self.path.resolve(), *(Path(p).resolve() for p in self.loaded.watch_paths)]
        changes = watch(watch_roots(self.loaded, self.path), files)
        first = asyncio.ensure_future(changes.__anext__())
        await asyncio.sleep(0)  # let the watcher register its watches
        self.watch_ready.set()
        try:
            paths = await first
            while True:
                await self.reload(paths)
                paths = await changes.__anext__()
        except StopAsyncIteration:
            pass
        finally:
            first.cancel()
            await changes.aclose()

    async def reload(self, changed: Iterable[str] = ()) -> None:
        """Load the file again; show the new version, or the error with the last good one."""
        try:
            result = await load_file_async(self.path)
        except Exception as exc:  # never let a reload kill the watcher
            self.report_error("reload", exc)
            return
        if result.error is not None or result.loaded is None:
            self._show_reload_error(result.error or "could not load")
            self.reloads.put_nowait(("error", result.error))
            return
        loaded = result.loaded
        had_error = self.reload_error is not None
        self._show_reload_error(None)
        if self.running:
            self.pending_reload = loaded
            new = self._pick_workflow(loaded)
            diff = diff_workflows(self.workflow, new)
            self.notify(
                f"{diff.summary()}. The running run keeps its version; "
                "this one applies when it ends.",
                title=f"Reloaded {self.path.name}",
                timeout=5,
            )
            self.reloads.put_nowait(("deferred", diff))
            return
        diff = self._apply_loaded(loaded, fixed=had_error)
        self.reloads.put_nowait(("ok", diff))

    def _pick_workflow(self, loaded: LoadedFile) -> Workflow:
        return loaded.workflows.get(self.workflow.name) or loaded.workflow(None)

    def _apply_loaded(self, loaded: LoadedFile, *, fixed: bool = False) -> Diff:
        new = self._pick_workflow(loaded)
        diff = diff_workflows(self.workflow, new)
        renamed = new.name != self.workflow.name
        self.loaded = loaded
        self.workflow = new
        self.pending_reload = None
        if self.session is not self.last_live or not self.running:
            idle = RunSession(idle_view(new, self.max_concurrency), live=False)
            old = self.session
            idle.lines, idle.task_lines, idle.total_lines = (
                old.lines,
                old.task_lines,
                old.total_lines,
            )
            self.past_run = None
            self.show_session(idle, keep_panels=True)
        title = f"Reloaded {self.path.name}" + (" (fixed)" if fixed else "")
        msg = diff.summary()
        if renamed:
            msg += f"; now showing workflow {new.name!r}"
        self.notify(msg, title=title, timeout=4)
        return diff

    def _show_reload_error(self, error: str | None) -> None:
        self.reload_error = error
        box = self.query_one("#reload-error", Static)
        if error is None:
            box.remove_class("visible")
            box.update("")
            return
        text = Text()
        text.append(
            "⚠ the file does not load; showing the last good version until it is fixed\n",
            style="bold",
        )
        text.append(visible(error, keep_newlines=True))
        box.update(text)
        box.add_class("visible")


def make_app(
    path: str | os.PathLike[str],
    *,
    workflow: str | None = None,
    max_concurrency: int | None = None,
    context: dict[str, Any] | None = None,
    db: str | None = None,
    no_store: bool = False,
    store: Any = None,
    remote_factory: Callable[[], Any] | None = None,
    clock: Callable[[], float] | None = None,
    watch_files: bool = True,
    max_log_lines: int = 5_000,
    tick_s: float = TICK_S,
) -> TuiFlowApp:
    """Build the app on a workflow file. Raises LoadError / ValidationError for a bad file."""
    return TuiFlowApp(
        path,
        workflow=workflow,
        max_concurrency=max_concurrency,
        context=context,
        store=store,
        db=db,
        use_store=not no_store,
        remote_factory=remote_factory,
        clock=clock or time.time,
        watch_files=watch_files,
        max_log_lines=max_log_lines,
        tick_s=tick_s,
    )


def run_app(args: Any) -> int:
    """The CLI's entry: open the app, then leave a summary of the last run; the exit code."""
    from ..cli import parse_sets, remote_runner

    executor = getattr(args, "executor", None) or os.environ.get("TUI_FLOW_EXECUTOR") or "local"
    app = make_app(
        args.file,
        workflow=getattr(args, "workflow", None),
        max_concurrency=getattr(args, "max_concurrency", None),
        context=parse_sets(getattr(args, "set", None)),
        db=getattr(args, "db", None),
        no_store=getattr(args, "no_store", False),
        remote_factory=(lambda: remote_runner(args)) if executor != "local" else None,
    )
    from ..engine.runners import prepare_for_subprocesses

    prepare_for_subprocesses()  # before the app takes over stdout/stderr
    app.run()
    console = Console(highlight=False, soft_wrap=True)
    for line in app.summary():
        console.print(line)
    if app.errors:
        console.print(
            f"tui-flow: {len(app.errors)} internal error(s) were shown; first: {app.errors[0]}"
        )
    return app.exit_code
