"""The log panel's actions: which lines show (all tasks or the selected one), search,
follow, copy. A mixin of `TuiFlowApp`: it reads the session and the tree, and fills `LogView`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual.widgets import TabbedContent

from .app_base import AppBase
from .guard import guarded

if TYPE_CHECKING:
    from .session import RunSession


class LogActions(AppBase):
    session: RunSession
    log_mode: str  # "all", or "task": only the selected task's lines

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
