"""How a task reads on screen, and where it sits: the rows of the task view (`DagTree`).

Two layouts of the same tasks, both one row per task:

- the tree (`tree_layout`): a task with exactly one dependency hangs under it; a task with
  several (a fan-in) sits at the top level and names them ("after: a, b"), so that it never
  reads as if it had only one; the instances of a map_over task hang under their task, and
  a task that runs after a map_over task sits beside it, not among its instances;
- the list (`list_layout`): the tasks in run order, flat, with the instances of a map_over
  task grouped under it.

Both are computed without recursion (a 100,000-step chain is 100,000 rows, not 100,000
levels); the widget caps the indentation it draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text

from ...engine.events import CANCEL_WAITS_FOR_THREAD, WAITS_FOR_WORKER
from ...engine.state import RunView, TaskView
from ...safe_text import visible
from ...status import GLYPHS, SPINNER, fmt_seconds, glyph, style

BAR_WIDTH = 10


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


def _mark(t: TaskView, frame: int) -> str:
    return SPINNER[frame % len(SPINNER)] if t.state == "running" else glyph(t.state)


def _name(t: TaskView) -> str:
    name = t.id
    if t.info.parent is not None and name.startswith(t.info.parent):
        name = name[len(t.info.parent) :]  # `[3]` under its task
    return name


def task_details(
    t: TaskView,
    view: RunView,
    now: float,
    *,
    tree_parent: str | None = None,
    duration: bool = True,
    deps: bool = True,
) -> list[Text | str]:
    """What matters about a task right now (`waits on a`, `2/10 instances`, the error...)."""
    state = t.state
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
        if duration:
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
        elif t.started_at is not None and duration:
            details.append(fmt_seconds(t.duration(now)))
        if t.attempt > 1:
            details.append(f"{t.attempt} attempts")
        if t.via_fallback:
            details.append("via fallback")
        if t.instances:
            details.append(f"{len(t.instances)} instances")
    elif state == "failed":
        if t.started_at is not None and duration:
            details.append(fmt_seconds(t.duration(now)))
        if t.error:
            details.append(Text(_short(t.error), style="red"))
    elif state in ("skipped", "cancelled"):
        if t.reason:
            details.append(t.reason)
    others = [d for d in t.info.dependencies if d != tree_parent]
    waiting = state == "pending" and view.status == "running"
    if deps and others and not waiting:
        details.append("after: " + ", ".join(others))
    return details


def _append_details(label: Text, details: list[Text | str]) -> Text:
    for d in details:
        label.append(" · ", style="dim")
        label.append(d if isinstance(d, Text) else Text(d, style="dim"))
    return label


def task_label(
    t: TaskView,
    view: RunView,
    now: float,
    *,
    tree_parent: str | None = None,
    frame: int = 0,
    width: int | None = None,
) -> Text:
    """One tree line: glyph, id, status word and what matters about the task right now.
    Within `width` cells the status word is never cut: the id is shortened first (`proc…`)."""
    state = t.state
    name = _name(t)
    if width is not None:
        over = 2 + len(name) + 2 + len(state) - width
        if over > 0:
            keep = max(1, len(name) - over - 1)
            name = name[:keep] + "…"
    label = Text()
    label.append(_mark(t, frame), style=style(state))
    label.append(" ")
    label.append(name, style="bold" if state in ("running", "retrying") else "")
    label.append("  ")
    label.append(state, style=style(state))
    return _append_details(label, task_details(t, view, now, tree_parent=tree_parent))


STATE_WIDTH = max(len(s) for s in GLYPHS)  # `interrupted`
DURATION_WIDTH = 9


def list_label(
    t: TaskView, view: RunView, now: float, *, frame: int = 0, deps: bool = False
) -> Text:
    """One row of the flat list, in columns: glyph, status word, duration, id, then details
    (the dependencies only when asked for: `deps`)."""
    state = t.state
    label = Text()
    label.append(_mark(t, frame), style=style(state))
    label.append(" ")
    label.append(state.ljust(STATE_WIDTH), style=style(state))
    took = fmt_seconds(t.duration(now)) if t.started_at is not None else ""
    label.append(took.rjust(DURATION_WIDTH - 1) + " ", style="dim")
    label.append(_name(t), style="bold" if state in ("running", "retrying") else "")
    details = task_details(t, view, now, duration=False, deps=False)
    if deps and t.info.dependencies:
        details.append("after: " + ", ".join(t.info.dependencies))
    return _append_details(label, details)


def tree_parents(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> dict[str, str | None]:
    """Each task's parent in the tree: its dependency when it has exactly one, else None."""
    known = set(order)
    parents: dict[str, str | None] = {}
    for tid in order:
        ds = [d for d in deps.get(tid, ()) if d in known]
        parents[tid] = ds[0] if len(ds) == 1 else None
    return parents


def tree_layout(view: RunView) -> dict[str, str | None]:
    """The tree parent of every task of `view` (None: top level); see the module's doc."""
    tasks = view.tasks
    order = [tid for tid in view.order if tid in tasks]
    top = [tid for tid in order if tasks[tid].info.parent is None]
    parents = tree_parents(top, {tid: tasks[tid].info.dependencies for tid in top})
    for tid in top:
        p = parents[tid]
        # after a map_over task: beside it (its children are its instances)
        seen: set[str] = set()
        while p is not None and tasks[p].info.map_over and p not in seen:
            seen.add(p)
            p = parents.get(p)
        parents[tid] = p
    for tid in order:
        if tasks[tid].info.parent is not None:
            parents[tid] = tasks[tid].info.parent
    return parents


def list_layout(view: RunView) -> dict[str, str | None]:
    """The list: every task at the top level, but instances under their map_over task."""
    return {tid: view.tasks[tid].info.parent for tid in view.order if tid in view.tasks}
