"""The app's keys and command palette entries: one place to read (and remap) them. Every
binding has an id (`panels.logs`, `logs.search`...) and a description."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

# the panels on the right, in tab order (keys 1-4)
TABS = ("tab-logs", "tab-timeline", "tab-retries", "tab-report")

# j / k in the scrolling panels (logs, timeline, report), as in the task view
SCROLL_KEYS: list[BindingType] = [
    Binding("j", "scroll_down", "Scroll down", show=False),
    Binding("k", "scroll_up", "Scroll up", show=False),
]

# The footer shows the keys in this order and cuts what does not fit: what matters most
# (run, cancel, help, quit) comes first, so that it shows at every width.
BINDINGS: list[BindingType] = [
    Binding("r", "run", "Run", id="run"),
    Binding("c", "cancel", "Cancel", id="cancel"),
    Binding("question_mark,f1", "help", "Help", id="help"),
    Binding("q", "quit", "Quit", id="quit"),
    # shown only while a past run is on screen, and then what matters next
    Binding("b", "back_to_live", "Back to live run", id="history.back"),
    Binding("slash", "search", "Search", id="logs.search"),
    Binding("n", "search_next", "Next match", id="logs.search_next", show=False),
    Binding("N", "search_previous", "Previous match", id="logs.search_previous", show=False),
    Binding("l", "toggle_log_filter", "Logs: all/task", id="logs.filter"),
    Binding("f", "follow", "Follow logs", id="logs.follow", show=False),
    Binding("y", "copy_log", "Copy log", id="logs.copy"),
    Binding("w", "toggle_wrap", "Wrap log lines", id="logs.wrap", show=False),
    Binding("T", "toggle_timestamps", "Log timestamps", id="logs.timestamps", show=False),
    Binding("v", "toggle_view", "Tree/list", id="tasks.view", show=False),
    Binding("d", "toggle_deps", "Show dependencies", id="tasks.deps", show=False),
    Binding("t", "next_tab", "Next panel", id="panels.next"),
    Binding("1", "show_tab('tab-logs')", "Logs", id="panels.logs", show=False),
    Binding("2", "show_tab('tab-timeline')", "Timeline", id="panels.timeline", show=False),
    Binding("3", "show_tab('tab-retries')", "Retries", id="panels.retries", show=False),
    Binding("4", "show_tab('tab-report')", "Report", id="panels.report", show=False),
    Binding("x", "cancel_task", "Cancel task", id="cancel.task", show=False),
    Binding("R", "rerun_failed", "Re-run failed", id="rerun.failed", show=False),
    Binding("e", "rerun_from", "Re-run from task", id="rerun.from", show=False),
    Binding("h", "toggle_tasks", "Hide tasks", id="tasks.hide"),
    Binding("m", "maximize_pane", "Maximize", id="panes.maximize"),
    Binding("escape", "minimize", "Restore", id="panes.restore", show=False),
    Binding("i", "toggle_details", "Details", id="panes.details", show=False),
    Binding("J", "scroll_panel(3)", "Scroll panel down", id="panels.down", show=False),
    Binding("K", "scroll_panel(-3)", "Scroll panel up", id="panels.up", show=False),
    Binding("p", "toggle_present", "Presenter mode", id="present", show=False),
    Binding("H", "history", "History", id="history"),
    Binding("ctrl+c", "interrupt", "Cancel, then quit", id="interrupt", show=False, priority=True),
    Binding("W", "switch_workflow", "Next workflow", id="workflow.next", show=False),
]


def help_keys(bindings: Iterable[Any] = BINDINGS) -> list[tuple[str, str]]:
    """(key as shown, what it does) for the help screen."""
    return [
        (b.key.replace("question_mark", "?").replace("slash", "/"), b.description)
        for b in bindings
        if isinstance(b, Binding)
    ]


def system_commands(app: Any, screen: Screen[Any]) -> Iterable[SystemCommand]:
    """The app's entries of the command palette (then Textual's own, but its theme entry)."""
    if not app.running:
        yield SystemCommand("Run", "Run the workflow (r)", app.action_run)
        yield SystemCommand(
            "Run with a different concurrency…",
            "Choose how many tasks may run at once for this run",
            app.action_run_with_concurrency,
        )
    else:
        yield SystemCommand("Cancel the run", "Stop the running tasks (c)", app.action_cancel)
    if not app.running and app._rerun_source() is not None:
        yield SystemCommand(
            "Re-run failed tasks",
            "Run again what did not complete, reusing the rest (R)",
            app.action_rerun_failed,
        )
        tid = app.tree.selected_id
        if tid:
            yield SystemCommand(
                f"Re-run from {tid}",
                "Run the selected task and everything after it again (e)",
                app.action_rerun_from,
            )
    if app.use_store:
        yield SystemCommand(
            "Open a past run…", "Runs of this workflow from the store (H)", app.action_history
        )
    for name in app.loaded.workflows:
        if name != app.workflow.name:
            yield SystemCommand(
                f"Switch workflow: {name}",
                f"Show the workflow {name!r} of this file",
                functools.partial(app.switch_workflow, name),
            )
    if app.past_run is not None:
        yield SystemCommand(
            "Back to the live run",
            "Leave the past run for the latest one (b)",
            app.action_back_to_live,
        )
    view = "flat list" if app.tree.mode == "tree" else "tree"
    yield SystemCommand(
        f"Task view: {view}", "Show the tasks as a tree or a flat list (v)", app.action_toggle_view
    )
    yield SystemCommand(
        "Presenter mode " + ("off" if app.presenting else "on"),
        "High contrast, more room, the keys pressed shown (p)",
        app.action_toggle_present,
    )
    yield SystemCommand(
        "Logs: " + ("cut long lines" if app.log_view.wrap else "wrap long lines"),
        "Wrap long log lines under their text, or cut them (w)",
        app.action_toggle_wrap,
    )
    yield SystemCommand(
        "Logs: " + ("hide timestamps" if app.log_view.timestamps else "show timestamps"),
        "Show when each log line was written (T)",
        app.action_toggle_timestamps,
    )
    yield SystemCommand("Switch theme…", "Pick a colour theme", app.action_change_theme)
    for cmd in App.get_system_commands(app, screen):
        if cmd.title not in ("Theme",):
            yield cmd
