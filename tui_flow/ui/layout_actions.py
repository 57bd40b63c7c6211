"""The screen's layout and modes, a mixin of `TuiFlowApp`: panels (1-4, `t`), the responsive
layout's keys (maximize, hide the task view, Details behind `i`, scroll the right pane from
anywhere), the task view's tree/list switch, and presenter mode.

Below `NARROW` columns the panes stack (the Screen gets `-narrow`, see app.tcss); the footer
goes compact and the header is laid out again for the new width.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import TabbedContent

from .app_base import AppBase
from .guard import guarded
from .keymap import TABS
from .theme import CONTRAST
from .widgets.footer import RunFooter
from .widgets.keybar import KeyBar
from .widgets.report import ReportPanel
from .widgets.retries import RetriesTable

NARROW = 100  # columns: below, the panes stack


class LayoutActions(AppBase):
    presenting: bool
    _theme_before_present: str
    _last_key: events.Key | None

    @guarded
    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    @guarded
    def action_next_tab(self) -> None:
        tabs = self.query_one(TabbedContent)
        i = TABS.index(tabs.active) if tabs.active in TABS else -1
        tabs.active = TABS[(i + 1) % len(TABS)]

    def on_resize(self) -> None:
        self.query_one(RunFooter).compact = self.size.width < NARROW
        self.call_after_refresh(self._update_header, self.clock())

    @guarded
    def action_maximize_pane(self) -> None:
        """The focused pane fills the screen (Esc, or `m` again, undoes it)."""
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
            return
        focused = screen.focused
        pane: Widget = self.query_one("#tabs")
        if focused is not None:
            for node in (focused, *focused.ancestors_with_self):
                if isinstance(node, Widget) and node.id in ("tree", "details", "tabs"):
                    pane = node
                    break
        screen.maximized = pane

    @guarded
    def action_minimize(self) -> None:
        if self.screen.maximized is not None:
            self.screen.minimize()

    @guarded
    def action_toggle_tasks(self) -> None:
        """Hide the task view (and Details): the panels take the width."""
        hide = not self.screen.has_class("-hide-tasks")
        self.screen.set_class(hide, "-hide-tasks")
        if (
            hide
            and self.screen.focused is not None
            and self.tree
            in (
                self.screen.focused,
                *self.screen.focused.ancestors,
            )
        ):
            self.log_view.focus()

    @guarded
    def action_toggle_details(self) -> None:
        """Show or hide Details (hidden by default below 100 columns)."""
        self.screen.toggle_class("-details-toggled")

    @guarded
    def action_scroll_panel(self, lines: int) -> None:
        """Scroll the panel on the right, wherever the focus is."""
        tab = self.query_one(TabbedContent).active
        target: Widget | None = {
            "tab-logs": self.log_view,
            "tab-timeline": self.timeline,
            "tab-retries": self.query_one(RetriesTable),
            "tab-report": self.query_one(ReportPanel),
        }.get(tab)
        if target is not None:
            target.scroll_relative(y=lines, animate=False)

    @guarded
    def action_toggle_present(self) -> None:
        """Presenter mode: high contrast, more room, the keys pressed shown in a corner."""
        self.presenting = not self.presenting
        self.screen.set_class(self.presenting, "-present")
        if self.presenting:
            self._theme_before_present = self.theme
            self.theme = CONTRAST.name
        else:
            self.theme = self._theme_before_present
        self.call_after_refresh(self._update_header, self.clock())

    async def on_event(self, event: events.Event) -> None:
        if self.presenting and isinstance(event, events.Key) and event is not self._last_key:
            self._last_key = event  # a key not handled below comes back up: once on the bar
            self.query_one(KeyBar).pressed(event)
        await super().on_event(event)

    @guarded
    def action_toggle_wrap(self) -> None:
        """Logs: wrap long lines, or cut them (then scroll sideways)."""
        log = self.log_view
        log.set_wrap(not log.wrap)
        self.notify("Logs: long lines wrap" if log.wrap else "Logs: long lines are cut", timeout=2)

    @guarded
    def action_toggle_timestamps(self) -> None:
        """Logs: each line's time (when it was written) before it, or not."""
        log = self.log_view
        log.set_timestamps(not log.timestamps)
        self.notify(
            "Logs: timestamps shown" if log.timestamps else "Logs: no timestamps", timeout=2
        )

    @guarded
    def action_toggle_view(self) -> None:
        """The task view as a tree or as a flat list."""
        self.tree.set_mode("list" if self.tree.mode == "tree" else "tree")
        self._update_header(self.clock())

    @guarded
    def action_toggle_deps(self) -> None:
        """Name each task's dependencies in the list (and the tree's fan-ins)."""
        self.tree.toggle_deps()
