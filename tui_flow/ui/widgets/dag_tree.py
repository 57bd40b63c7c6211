"""The task view: every task once, one row each, a glyph AND a word for its status.

Two layouts (`v` switches): the tree and the flat list (see `task_rows`). The widget is
virtualised (Textual's Line API): it keeps the rows as a flat list and draws only the rows on
screen, so a 100,000-step chain or a 100,000-task fan-out costs the rows in view, and no
recursion anywhere. Indentation is capped at `MAX_INDENT` levels: a long chain reads as a
list past that depth instead of a staircase running off the right edge.

Labels are made lazily: `relabel` marks the rows whose task changed as stale and repaints
those on screen; a stale row off screen gets its label when it scrolls into view. The
cursor is the selected task (`selected_id`); moving it posts `TaskHighlighted`. While
`follow` is on (until the user moves the cursor), the app keeps the cursor on the running
task (`follow_running`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ...engine.state import RunView
from .task_rows import (
    list_label,
    list_layout,
    progress_bar,
    task_details,
    task_label,
    tree_layout,
    tree_parents,
)

__all__ = [
    "DagTree",
    "TaskRow",
    "list_label",
    "progress_bar",
    "task_details",
    "task_label",
    "tree_parents",
]

MAX_INDENT = 4  # levels of indentation drawn, at most (2 columns each)
MODES = ("tree", "list")


@dataclass(eq=False)
class TaskRow:
    """One task's row: its place (parent, depth, children) and its cached label."""

    data: str
    parent: TaskRow | None
    depth: int
    children: list[TaskRow] = field(default_factory=list)
    expanded: bool = True
    tree: DagTree | None = None
    cached: Text | None = None  # None: stale, made again when drawn

    @property
    def label(self) -> Text:
        """The up-to-date label (made now if stale)."""
        assert self.tree is not None
        return self.tree.label_of(self.data) or Text(self.data)


class DagTree(ScrollView, can_focus=True):
    """The workflow's tasks as a tree or a flat list; a row's data is the task id."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter,space", "toggle_row", "Expand/collapse", show=False),
        Binding("left", "collapse", "Collapse", show=False),
        Binding("right", "expand", "Expand", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"dag-tree--cursor"}

    DEFAULT_CSS = """
    DagTree { scrollbar-size-vertical: 1; overflow-x: hidden; }
    DagTree > .dag-tree--cursor { background: $block-cursor-blurred-background; }
    DagTree:focus > .dag-tree--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """

    class TaskHighlighted(Message):
        """The cursor moved to another task."""

        def __init__(self, tree: DagTree, task_id: str | None) -> None:
            super().__init__()
            self.tree = tree
            self.task_id = task_id

        @property
        def control(self) -> DagTree:
            return self.tree

    def __init__(self, *, id: str | None = None, mode: str = "tree") -> None:
        super().__init__(id=id)
        self.mode = mode if mode in MODES else "tree"
        self.show_deps = False  # list mode: each row names its dependencies
        self.follow = True  # keep the cursor on the running task until the user moves it
        self.nodes_by_id: dict[str, TaskRow] = {}
        self.parents: dict[str, str | None] = {}
        self.dependents: dict[str, list[str]] = {}
        self.rows: list[TaskRow] = []  # the rows shown (collapsed subtrees left out)
        self._line: dict[str, int] = {}  # task id -> its index in `rows`
        self._top: list[TaskRow] = []
        self._shape: tuple[object, ...] = ()
        self._rank: dict[str, int] = {}
        self.cursor = 0
        self.frame = 0
        self._view: RunView | None = None
        self._now = 0.0
        self._highlighted: str | None = None

    # -- building ------------------------------------------------------------------------------

    def shape_of(self, view: RunView) -> tuple[object, ...]:
        return (self.mode, tuple((tid, view.tasks[tid].info.parent) for tid in view.order))

    def build(self, view: RunView, now: float, *, force: bool = False) -> bool:
        """Lay the rows out for `view` if its graph (or the mode) changed; keep the selection
        and the collapsed rows. Returns True when the rows were laid out again."""
        self._view, self._now = view, now
        shape = self.shape_of(view)
        if shape == self._shape and not force:
            self.relabel_all()  # every row stale: drawn again as it shows (cheap at 100,000)
            return False
        selected = self.selected_id
        collapsed = {tid for tid, r in self.nodes_by_id.items() if r.children and not r.expanded}
        tasks = view.tasks
        order = [tid for tid in view.order if tid in tasks]
        self._rank = {tid: i for i, tid in enumerate(order)}
        self.parents = tree_layout(view) if self.mode == "tree" else list_layout(view)
        self.dependents = {}
        for tid in order:
            for d in tasks[tid].info.dependencies:
                self.dependents.setdefault(d, []).append(tid)
        rows: dict[str, TaskRow] = {}
        top: list[TaskRow] = []
        for tid in order:  # a parent comes before its children in `order`
            p = self.parents.get(tid)
            parent = rows.get(p) if p is not None else None
            row = TaskRow(tid, parent, parent.depth + 1 if parent else 0, tree=self)
            row.expanded = tid not in collapsed
            rows[tid] = row
            (parent.children if parent is not None else top).append(row)
        self.nodes_by_id = rows
        self._top = top
        self._shape = shape
        self._lay_out()
        if selected is not None and selected in rows:
            self.select_task(selected, scroll=False, user=False)
        else:
            self._set_cursor(0, scroll=False)
        return True

    def _lay_out(self) -> None:
        """Flatten the expanded rows (depth first, without recursion)."""
        out: list[TaskRow] = []
        stack = list(reversed(self._top))
        while stack:
            row = stack.pop()
            out.append(row)
            if row.children and row.expanded:
                stack.extend(reversed(row.children))
        self.rows = out
        self._line = {row.data: i for i, row in enumerate(out)}
        self.virtual_size = Size(self.size.width, len(out))
        self.cursor = min(self.cursor, max(0, len(out) - 1))
        self.refresh()

    def set_mode(self, mode: str) -> None:
        """Show the tree or the flat list (the selection stays)."""
        if mode not in MODES or mode == self.mode:
            return
        self.mode = mode
        if self._view is not None:
            self.build(self._view, self._now, force=True)
            self.scroll_to_cursor()

    def toggle_deps(self) -> None:
        self.show_deps = not self.show_deps
        self.relabel_all()

    def relabel_all(self) -> None:
        for row in self.nodes_by_id.values():
            row.cached = None
        self.refresh()

    def relabel(self, view: RunView, ids: Iterable[str], now: float) -> int:
        """Mark the rows of `ids` (and the pending dependents whose wait list changed, and the
        map_over task of an instance) stale; repaint those on screen. Returns how many rows
        on screen were marked."""
        self._view, self._now = view, now
        todo = set(ids)
        for tid in list(todo):
            for dep in self.dependents.get(tid, ()):
                t = view.tasks.get(dep)
                if t is not None and t.state == "pending":
                    todo.add(dep)
            t = view.tasks.get(tid)
            if t is not None and t.info.parent is not None:
                todo.add(t.info.parent)  # "3/10 instances"
        top, bottom = self._visible_lines()
        shown = 0
        for tid in todo:
            row = self.nodes_by_id.get(tid)
            if row is None:
                continue
            row.cached = None
            line = self._line.get(tid)
            if line is not None and top <= line < bottom:
                shown += 1
                self.refresh_line(line)
        return shown

    def _visible_lines(self) -> tuple[int, int]:
        top = int(self.scroll_offset.y)
        return top, top + max(1, self.size.height)

    def label_of(self, task_id: str) -> Text | None:
        """The up-to-date label of a task's row (on screen or not)."""
        row = self.nodes_by_id.get(task_id)
        view = self._view
        if row is None or view is None or task_id not in view.tasks:
            return None
        if row.cached is None:
            t = view.tasks[task_id]
            if self.mode == "list":
                row.cached = list_label(t, view, self._now, frame=self.frame, deps=self.show_deps)
            else:
                row.cached = task_label(
                    t, view, self._now, tree_parent=self.parents.get(task_id), frame=self.frame
                )
        return row.cached

    # -- drawing -------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_offset.y) + y
        width = self.size.width
        base = self.rich_style
        if not 0 <= index < len(self.rows):
            return Strip.blank(width, base)
        row = self.rows[index]
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        depth = min(row.depth, MAX_INDENT)
        if depth:
            text.append("  " * (depth - 1) + ("┆ " if row.depth > MAX_INDENT else "  "), "dim")
        if row.children:
            text.append("▾ " if row.expanded else "▸ ", "dim")
        elif self.mode == "tree" or row.depth:
            text.append("  ")
        label = self.label_of(row.data) or Text(row.data)
        room = width - text.cell_len
        view = self._view
        if self.mode == "tree" and label.cell_len > room and view is not None:
            # too narrow: shorten the id rather than cut the status word (`complet`)
            t = view.tasks.get(row.data)
            if t is not None:
                label = task_label(
                    t,
                    view,
                    self._now,
                    tree_parent=self.parents.get(row.data),
                    frame=self.frame,
                    width=room,
                )
        text.append_text(label)
        if index == self.cursor:
            text.stylize(self.get_component_rich_style("dag-tree--cursor", partial=True))
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop_extend(0, width, base)
        if base:
            strip = Strip(Segment.apply_style(strip, base), strip.cell_length)
        return strip.apply_offsets(0, index)

    def _on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.rows))

    # -- selection -----------------------------------------------------------------------------

    @property
    def selected_id(self) -> str | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor].data
        return None

    @property
    def cursor_node(self) -> TaskRow | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def select_task(self, task_id: str, *, scroll: bool = True, user: bool = True) -> bool:
        """Put the cursor on a task (expanding what hides it). `user`: the user chose it,
        which stops `follow`."""
        row = self.nodes_by_id.get(task_id)
        if row is None:
            return False
        parent, hidden = row.parent, False
        while parent is not None:
            if not parent.expanded:
                parent.expanded, hidden = True, True
            parent = parent.parent
        if hidden:
            self._lay_out()
        if user:
            self.follow = False
        self._set_cursor(self._line[task_id], scroll=scroll)
        return True

    def _set_cursor(self, index: int, *, scroll: bool = True) -> None:
        index = max(0, min(index, len(self.rows) - 1))
        if index != self.cursor:
            self.refresh_line(self.cursor)
            self.cursor = index
            self.refresh_line(index)
        if scroll:
            self.scroll_to_cursor()
        tid = self.selected_id
        if tid != self._highlighted:
            self._highlighted = tid
            self.post_message(self.TaskHighlighted(self, tid))

    def scroll_to_cursor(self, *, center: bool = False) -> None:
        if not self.size.height:  # not laid out yet: once it is
            self.call_after_refresh(self.scroll_to_cursor, center=center)
            return
        top, bottom = self._visible_lines()
        height = max(1, self.size.height)
        y: int | None = None
        if center and not top <= self.cursor < bottom:
            y = max(0, self.cursor - height // 2)
        elif self.cursor < top:
            y = self.cursor
        elif self.cursor >= bottom:
            y = self.cursor - height + 1
        if y is not None:
            # set, not `scroll_to`: that waits for the scrollbars a new layout has not shown yet
            self.scroll_target_y = self.scroll_y = y

    def follow_running(self, running: Iterable[str]) -> None:
        """While following: put the cursor on the first running task (in run order)."""
        if not self.follow:
            return
        rank = self._rank
        first = min(
            (tid for tid in running if tid in self._line),
            key=lambda t: rank.get(t, 0),
            default=None,
        )
        if first is not None and first != self.selected_id:
            self.select_task(first, scroll=False, user=False)
            self.scroll_to_cursor(center=True)

    # -- keys and mouse ------------------------------------------------------------------------

    def _move(self, index: int) -> None:
        self.follow = False
        self._set_cursor(index)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_page_down(self) -> None:
        self._move(self.cursor + max(1, self.size.height - 1))

    def action_page_up(self) -> None:
        self._move(self.cursor - max(1, self.size.height - 1))

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self.rows) - 1)

    def _expand(self, value: bool | None) -> None:
        row = self.cursor_node
        if row is None:
            return
        if not row.children:
            if value is False and row.parent is not None:  # left on a leaf: to its parent
                self._move(self._line[row.parent.data])
            return
        new = (not row.expanded) if value is None else value
        if new != row.expanded:
            row.expanded = new
            self._lay_out()
            self._set_cursor(self._line[row.data])

    def action_toggle_row(self) -> None:
        self._expand(None)

    def action_collapse(self) -> None:
        self._expand(False)

    def action_expand(self) -> None:
        self._expand(True)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)  # inside the border and padding
        if offset is None:
            return
        index = int(self.scroll_offset.y) + offset.y
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain > 1:
                self.action_toggle_row()
            else:
                self._move(index)
