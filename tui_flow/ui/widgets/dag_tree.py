"""The task tree: every task once, in a stable order, with a glyph AND a word for its status.

Layout: a task hangs under its latest dependency (the one that comes last in the workflow's
topological order) and names the others ("after: a, b"); tasks without dependencies are at
the top level; the instances of a map_over task hang under it. The tree is rebuilt only when
the graph changes; otherwise nodes are relabelled, and only those whose task changed (plus
running ones, whose spinner and duration move). A node off screen is not relabelled at
once: it is marked stale and gets its label when it scrolls into view (`render_lines`), so a
tick of a 1,000-task run costs the visible lines, not every task that moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ...engine.events import CANCEL_WAITS_FOR_THREAD, WAITS_FOR_WORKER
from ...engine.state import RunView, TaskView
from ...safe_text import visible
from ...status import SPINNER, fmt_seconds, glyph, style

BAR_WIDTH = 10


def tree_parents(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> dict[str, str | None]:
    """Each task's parent in the tree: its latest dependency in `order` (None at top level)."""
    rank = {tid: i for i, tid in enumerate(order)}
    parents: dict[str, str | None] = {}
    for tid in order:
        ds = [d for d in deps.get(tid, ()) if d in rank]
        parents[tid] = max(ds, key=rank.__getitem__) if ds else None
    return parents


def progress_bar(done: float, total: float | None, width: int = BAR_WIDTH) -> Text:
    """`━━━━━╸──── 55%` (or a count when the total is unknown)."""
    if not total or total <= 0:
        return Text(f"{done:g} done", style="dim")
    frac = max(0.0, min(1.0, done / total))
    halves = round(frac * width * 2)
    full, half = divmod(halves, 2)
    out = Text()
    out.append("━" * full, style="cyan")
    if half:
        out.append("╸", style="cyan")
    out.append("─" * (width - full - half), style="dim")
    out.append(f" {frac:4.0%}")
    return out


def _short(text: str | None, n: int = 60) -> str:
    """The first line of an error, shortened, as it may be shown (`visible`)."""
    if not text:
        return ""
    line = visible(text.strip().splitlines()[0]) if text.strip() else ""
    return line if len(line) <= n else line[: n - 1] + "…"


def task_label(
    t: TaskView,
    view: RunView,
    now: float,
    *,
    tree_parent: str | None = None,
    frame: int = 0,
) -> Text:
    """One tree line: glyph, id, status word and what matters about the task right now."""
    state = t.state
    mark = SPINNER[frame % len(SPINNER)] if state == "running" else glyph(state)
    label = Text()
    label.append(mark, style=style(state))
    label.append(" ")
    name = t.id
    if t.info.parent is not None and name.startswith(t.info.parent):
        name = name[len(t.info.parent) :]  # `[3]` under its task
    label.append(name, style="bold" if state in ("running", "retrying") else "")
    label.append("  ")
    label.append(state, style=style(state))
    details: list[Text | str] = []
    tasks = view.tasks
    if state == "pending":
        if view.status == "running":
            waits = [d for d in t.info.dependencies if d in tasks and not tasks[d].final]
            if waits:
                details.append("waits on " + ", ".join(waits))
            elif t.reason == WAITS_FOR_WORKER:  # it holds a slot: the wait is the worker's
                details.append("holds a slot, waits for a worker process to start or free up")
            elif t.info.parent is None:
                details.append("waits for a free slot")
            else:
                details.append("queued")
    elif state == "running":
        if t.reason == CANCEL_WAITS_FOR_THREAD:
            details.append("cancel asked: a thread, it runs until its body returns")
        if t.instances:
            done = sum(1 for i in t.instances if i in tasks and tasks[i].final)
            details.append(f"{done}/{len(t.instances)} instances")
        if t.attempt > 1:
            details.append(f"attempt {t.attempt}/{t.max_attempts}")
        details.append(fmt_seconds(t.duration(now)))
        if t.progress is not None:
            done_v, total, msg = t.progress
            bar = progress_bar(done_v, total)
            if msg:
                bar.append(f" {_short(msg, 30)}", style="dim")
            details.append(bar)
    elif state == "retrying":
        if t.reason == "falling back":
            details.append("running the fallback")
        else:
            nxt = f"attempt {t.attempt + 1}/{t.max_attempts}"
            if t.next_retry_at is not None:
                left = t.next_retry_at - now
                nxt += f", next in {fmt_seconds(left)}" if left > 0 else ", waiting for a slot"
            details.append(nxt)
    elif state == "completed":
        if t.reason == "reused from earlier run":
            details.append("reused from the earlier run")
        elif t.started_at is not None:
            details.append(fmt_seconds(t.duration(now)))
        if t.attempt > 1:
            details.append(f"{t.attempt} attempts")
        if t.via_fallback:
            details.append("via fallback")
        if t.instances:
            details.append(f"{len(t.instances)} instances")
    elif state == "failed":
        if t.started_at is not None:
            details.append(fmt_seconds(t.duration(now)))
        if t.error:
            details.append(Text(_short(t.error), style="red"))
    elif state in ("skipped", "cancelled"):
        if t.reason:
            details.append(t.reason)
    others = [d for d in t.info.dependencies if d != tree_parent]
    waiting = state == "pending" and view.status == "running"
    if others and tree_parent is not None and not waiting:
        details.append("after: " + ", ".join(others))
    for d in details:
        label.append(" · ", style="dim")
        label.append(d if isinstance(d, Text) else Text(d, style="dim"))
    return label


class DagTree(Tree[str]):
    """The workflow's tasks as a tree; node data is the task id."""

    ICON_NODE = "▸ "
    ICON_NODE_EXPANDED = "▾ "

    DEFAULT_CSS = """
    DagTree { scrollbar-size-vertical: 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("tasks", id=id)
        self.show_root = False
        self.guide_depth = 3
        self.nodes_by_id: dict[str, TreeNode[str]] = {}
        self.parents: dict[str, str | None] = {}
        self.dependents: dict[str, list[str]] = {}
        self._shape: tuple[tuple[str, str | None], ...] = ()
        self.frame = 0
        self._stale: set[str] = set()  # off-screen nodes whose label is out of date
        self._view: RunView | None = None  # what stale labels are made from
        self._now = 0.0

    # -- building ------------------------------------------------------------------------------

    def shape_of(self, view: RunView) -> tuple[tuple[str, str | None], ...]:
        return tuple((tid, view.tasks[tid].info.parent) for tid in view.order if tid in view.tasks)

    def build(self, view: RunView, now: float, *, force: bool = False) -> bool:
        """Rebuild the tree for `view` if its graph differs; keep selection and collapsed nodes.

        Returns True when the tree was rebuilt.
        """
        shape = self.shape_of(view)
        if shape == self._shape and not force:
            self.relabel(view, view.order, now)
            return False
        selected = self.selected_id
        collapsed = {
            tid for tid, n in self.nodes_by_id.items() if n.allow_expand and not n.is_expanded
        }
        scroll_y = self.scroll_y
        self.clear()
        self.nodes_by_id = {}
        self._stale = set()
        self._view, self._now = view, now
        deps = {tid: view.tasks[tid].info.dependencies for tid in view.order}
        top = [tid for tid in view.order if view.tasks[tid].info.parent is None]
        self.parents = tree_parents(top, deps)
        for tid in view.order:
            parent = view.tasks[tid].info.parent
            if parent is not None:
                self.parents[tid] = parent
        self.dependents = {}
        for tid, ds in deps.items():
            for d in ds:
                self.dependents.setdefault(d, []).append(tid)
        children: dict[str | None, list[str]] = {}
        for tid in view.order:
            children.setdefault(self.parents.get(tid), []).append(tid)

        def add(parent_node: TreeNode[str], tid: str) -> None:
            t = view.tasks[tid]
            label = task_label(t, view, now, tree_parent=self.parents.get(tid), frame=self.frame)
            kids = children.get(tid, [])
            if kids:
                node = parent_node.add(label, data=tid, expand=tid not in collapsed)
                self.nodes_by_id[tid] = node
                for k in kids:
                    add(node, k)
            else:
                self.nodes_by_id[tid] = parent_node.add_leaf(label, data=tid)

        for tid in children.get(None, []):
            add(self.root, tid)
        self._shape = shape
        self._tree_lines  # noqa: B018 - lay the lines out now so nodes know their line
        if selected in self.nodes_by_id:
            self.select_task(selected, scroll=False)
        elif self.nodes_by_id:
            self.move_cursor(self.nodes_by_id[next(iter(self.nodes_by_id))], animate=False)
        self.scroll_to(y=scroll_y, animate=False)
        return True

    def relabel(self, view: RunView, ids: Iterable[str], now: float) -> int:
        """Relabel the nodes of `ids` (and the pending dependents whose wait list changed).

        Nodes on screen get their new label now; the others are marked stale (see
        `render_lines`). Returns how many nodes on screen changed."""
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
        changed: list[TreeNode[str]] = []
        for tid in todo:
            node = self.nodes_by_id.get(tid)
            if node is None or tid not in view.tasks:
                continue
            if not top <= node._line < bottom:
                self._stale.add(tid)
                continue
            if self._set_label(node, tid):
                changed.append(node)
        if len(changed) > 16:
            self.refresh()
        else:  # repaint just their lines (a spinner ticking must not repaint the whole tree)
            for node in changed:
                self._refresh_node(node)
        return len(changed)

    def _visible_lines(self) -> tuple[int, int]:
        """The tree lines on screen: [top, bottom)."""
        self._tree_lines  # noqa: B018 - nodes know their line once the lines are laid out
        top = int(self.scroll_offset.y)
        return top, top + max(1, self.size.height)

    def _set_label(self, node: TreeNode[str], tid: str) -> bool:
        """Give `node` its task's current label; True if it changed."""
        view = self._view
        if view is None or tid not in view.tasks:
            return False
        self._stale.discard(tid)
        t = view.tasks[tid]
        label = task_label(t, view, self._now, tree_parent=self.parents.get(tid), frame=self.frame)
        old = node._label
        if isinstance(old, Text) and old.plain == label.plain and old.spans == label.spans:
            return False
        # what `set_label` does, minus its per-node refresh callback: the caller refreshes
        node._label = self.process_label(label)
        node._updates += 1
        return True

    def render_lines(self, crop):  # type: ignore[no-untyped-def]
        """Bring stale labels that came into view up to date, then draw."""
        if self._stale:
            top, bottom = self._visible_lines()
            for line in self._tree_lines[top:bottom]:
                tid = line.node.data
                if tid in self._stale and self._set_label(line.node, tid):
                    self._refresh_node(line.node)  # its line may be cached: draw it again
        return super().render_lines(crop)

    def label_of(self, task_id: str) -> Text | None:
        """The up-to-date label of a task's node (on screen or not)."""
        node = self.nodes_by_id.get(task_id)
        if node is None:
            return None
        if task_id in self._stale:
            self._set_label(node, task_id)
        return node.label if isinstance(node.label, Text) else Text(str(node.label))

    # -- selection -----------------------------------------------------------------------------

    @property
    def selected_id(self) -> str | None:
        node = self.cursor_node
        return node.data if node is not None else None

    def select_task(self, task_id: str, *, scroll: bool = True) -> bool:
        node = self.nodes_by_id.get(task_id)
        if node is None:
            return False
        parent = node.parent
        while parent is not None and not parent.is_root:
            parent.expand()
            parent = parent.parent
        self.move_cursor(node, animate=False)
        if scroll:
            self.scroll_to_node(node, animate=False)
        return True
