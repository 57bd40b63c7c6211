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
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ..engine import Execution, RunResult
from ..engine.tuning import hold_short_switch_interval
from ..interrupts import Interrupts, terminal_restorer
from ..loader import LoadedFile, load
from ..runs import RunOptions, executor_name, open_store, remote_runner
from ..workflow import Workflow
from .guard import guarded
from .keymap import BINDINGS, help_keys, system_commands
from .layout_actions import NARROW, LayoutActions
from .log_actions import LogActions
from .reload import ReloadActions, prepared
from .run_actions import RunActions
from .session import RunSession, idle_view
from .summary import display_path
from .theme import DARK, DARK_ANSI, LIGHT_ANSI, THEMES
from .widgets.dag_tree import DagTree
from .widgets.details import TaskDetails
from .widgets.dialogs import HelpScreen
from .widgets.footer import RunFooter
from .widgets.header import RunHeader, header_text, tally
from .widgets.keybar import KeyBar
from .widgets.log_view import LogPanel, LogView
from .widgets.report import ReportPanel
from .widgets.retries import RetriesTable
from .widgets.timeline import Timeline, TimelinePanel

TICK_S = 0.25  # how often the screen takes the run's changes (4 Hz)
SPINNER_FPS = 8


class TuiFlowApp(RunActions, LogActions, ReloadActions, LayoutActions, App[int]):
    """Watch, run and re-run one workflow file."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-flow"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = BINDINGS
    # below NARROW columns the panes stack and Details waits behind `i` (see app.tcss)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW, "-wide")]

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
        present: bool = False,
    ) -> None:
        super().__init__()
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = DARK.name
        self.ansi_theme_dark = DARK_ANSI
        self.ansi_theme_light = LIGHT_ANSI
        self.presenting = present
        self._theme_before_present = DARK.name
        self._last_key: events.Key | None = None
        self.path = Path(path)
        self.file_label = display_path(path)
        self.loaded = prepared(loaded if loaded is not None else load(path))
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
        self.interrupted_by: int | None = None  # the signal that ended the app, if one did
        self.pending_reload: LoadedFile | None = None
        self.stale = False  # the run shown is of the file before its last change
        self.reload_error: str | None = None
        self.reloads: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.watch_ready = asyncio.Event()
        self.errors: list[str] = []
        self.log_mode = "all"  # or "task": only the selected task's lines
        self._active: set[str] = set()  # running / retrying tasks, relabelled every tick
        self._shown_task: str | None = None
        self._release_switch: Callable[[], None] = lambda: None
        # set once the run store is open (or known to be off): a run waits for it, so that
        # a run started at once is recorded from its start too
        self.store_ready = asyncio.Event()
        self._interrupts: Interrupts | None = None
        self.restore_terminal: Callable[[], None] | None = None  # set by run_app

    # -- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Static("", id="reload-error")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield DagTree(id="tree")
                yield TaskDetails(id="details")
            with TabbedContent(id="tabs", initial="tab-logs"):
                with TabPane("1 Logs", id="tab-logs"):
                    yield LogPanel(self.max_log_lines, id="logs")
                with TabPane("2 Timeline", id="tab-timeline"):
                    yield TimelinePanel(id="timeline-panel")
                with TabPane("3 Retries", id="tab-retries"):
                    yield RetriesTable(id="retries")
                with TabPane("4 Report", id="tab-report"):
                    yield ReportPanel(id="report")
        yield KeyBar(id="keybar")
        yield RunFooter()

    @property
    def tree(self) -> DagTree:  # type: ignore[override]  # (Textual's DOMNode.tree: debugging)
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
        self._release_switch = hold_short_switch_interval()
        self.query_one("#tree").border_title = "Tasks"
        self.query_one("#details").border_title = "Details"
        self.logs.store_note = self.use_store
        self.show_session(self.session)
        if self.presenting:
            self.presenting = False
            self.action_toggle_present()
        self.tree.focus()
        # Tab goes from the task view straight to the panel's content, not to the tab bar
        # (1-4 and `t` switch panels)
        for tabs in self.query("#tabs Tabs"):
            tabs.can_focus = False
        self.set_interval(self.tick_s, self._tick, name="tick")
        if self.store is None and self.use_store:
            self.open_store()
        else:
            self.store_ready.set()
        self._interrupts = Interrupts(
            self._on_signal,
            execution=lambda: self.execution,
            store=lambda: self.store,
            before_exit=self.restore_terminal,
        ).__enter__()
        if self.watch_files:
            self.watch_workflow()
        if self.remote_factory is not None:
            self.run_worker(self._start_remote(), name="remote", exit_on_error=False)

    async def _start_remote(self) -> None:
        """Connect to the Dask cluster (or start a local one) before the first run needs it."""
        if self.remote is None and self.remote_factory is not None:
            self.remote = self.remote_factory()
        if self.remote is not None:
            try:
                await self.remote.start()
            except Exception as exc:
                self.notify(str(exc), title="Dask", severity="error", timeout=10)

    async def on_unmount(self) -> None:
        self._release_switch()
        if self._interrupts is not None:
            self._interrupts.__exit__()
        if self.execution is not None and not self.execution.is_done:
            self.execution.cancel()
        if self.remote is not None:
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
            self.store = await open_store(self.db)
            self._own_store = self.store is not None
        except Exception as exc:
            self.notify(f"Runs are not recorded: {exc}", title="Run store", severity="warning")
        finally:
            if self.store is None:
                self.use_store = False
                self.logs.store_note = False
            self.store_ready.set()
            self.refresh_bindings()

    def _on_signal(self, signum: int) -> None:
        """SIGTERM, SIGHUP (or a SIGINT sent to the app): cancel the run and leave."""
        self.interrupted_by = signum
        self.run_worker(self.action_quit(), name="quit on signal", exit_on_error=False)

    # -- showing a run -------------------------------------------------------------------------

    def show_session(self, session: RunSession, *, keep_panels: bool = False) -> None:
        """Point every panel at `session` (a live run, a past run, or the idle workflow)."""
        self.session = session
        self.stale = False
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
        label = f"3 Retries ({n})" if n else "3 Retries"
        if tab.label.plain != label:  # a new label means a layout: only when it changes
            tab.label = Text(label)

    def _update_header(self, now: float) -> None:
        view = self.session.view
        limit = None
        if view.status == "idle":
            limit = self.max_concurrency or self.workflow.max_concurrency
        header = self.query_one(RunHeader)
        counted = tally(view)
        header.set_text(
            header_text(
                view,
                self.file_label,
                now,
                frame=int(now * SPINNER_FPS),
                past=self.past_run is not None,
                limit=limit,
                executor=self.remote.describe() if self.remote is not None else None,
                width=header.content_size.width or self.size.width,
                stale=self.stale,
                counted=counted,
            )
        )
        tree_box = self.query_one("#tree")
        title = "Tasks" if self.tree.mode == "tree" else "Tasks (list)"
        if tree_box.border_title != title:
            tree_box.border_title = title
        _, done, total = counted
        subtitle = f"{total} tasks" if view.status == "idle" else f"{done}/{total} done"
        if tree_box.border_subtitle != subtitle:
            tree_box.border_subtitle = subtitle

    def _show_details(self, force: bool = False) -> None:
        tid = self.tree.selected_id
        view = self.session.view
        if not force and tid != self._shown_task and tid is None:
            return
        self._shown_task = tid
        self.query_one(TaskDetails).show(
            view.tasks.get(tid) if tid else None,
            view,
            self.clock(),
            needed_by=self.tree.dependents.get(tid, []) if tid else None,
        )

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
        if view.status == "running" and self._active:
            tree.follow_running(self._active)
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
            self._run_ended()  # (run_actions: cursor to the failure, the report opens)
            self.refresh_bindings()

    # -- tree events ---------------------------------------------------------------------------

    @on(DagTree.TaskHighlighted, "#tree")
    @guarded
    def _on_task_highlighted(self, event: DagTree.TaskHighlighted) -> None:
        self._show_details(force=True)
        if self.log_mode == "task":
            self._refresh_logs()

    @on(TabbedContent.TabActivated, "#tabs")
    @guarded
    def _on_tab(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "tab-timeline":
            self.timeline.update_view(self.session.view, self.clock())

    # -- actions: panels and help --------------------------------------------------------------

    @guarded
    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_keys(self.BINDINGS)))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        return system_commands(self, screen)


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
    present: bool = False,
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
        present=present,
    )


def run_app(
    path: str, options: RunOptions, *, workflow: str | None = None, present: bool = False
) -> int:
    """The CLI's entry: open the app, then leave a summary of the last run; the exit code."""
    executor = executor_name(options.executor)
    app = make_app(
        path,
        workflow=workflow,
        max_concurrency=options.max_concurrency,
        context=dict(options.context),
        db=options.db,
        no_store=not options.record,
        present=present,
        remote_factory=(
            (lambda: remote_runner(executor, options.scheduler)) if executor != "local" else None
        ),
    )
    from ..engine.runners import prepare_for_subprocesses

    prepare_for_subprocesses()  # before the app takes over stdout/stderr
    app.restore_terminal = terminal_restorer()
    app.run()
    console = Console(highlight=False, soft_wrap=True)
    for line in app.summary():
        console.print(line)
    if app.errors:
        console.print(
            f"tui-flow: {len(app.errors)} internal error(s) were shown; first: {app.errors[0]}"
        )
    return app.exit_code
