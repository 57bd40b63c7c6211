"""The header line: workflow, file, run id and status, live elapsed time, slots in use."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...engine.events import FINAL_STATES
from ...engine.state import RunView
from ...status import SPINNER, fmt_seconds, glyph, style


def tally(view: RunView) -> tuple[dict[str, int], int, int]:
    """Tasks per state (instances included), and the top-level tasks done and in all: one
    pass over the tasks (the header is drawn every tick)."""
    counts: dict[str, int] = {}
    done = total = 0
    for t in view.tasks.values():
        state = t.state
        counts[state] = counts.get(state, 0) + 1
        if t.info.parent is None:
            total += 1
            done += state in FINAL_STATES
    return counts, done, total


def header_text(
    view: RunView,
    file: str,
    now: float,
    *,
    frame: int = 0,
    past: bool = False,
    limit: int | None = None,
    executor: str | None = None,
    width: int | None = None,
    stale: bool = False,
    counted: tuple[dict[str, int], int, int] | None = None,
) -> Text:
    """The header line. What matters most (status, elapsed, done, slots) stays at every
    `width`: the brand, the file, the run id and the executor go first, in that order.
    `counted`: `tally(view)`, when the caller has it already."""
    state = Text()
    if view.status == "idle":
        state.append("no run yet", style="dim")
        state.append(" · press ", style="dim")
        state.append("r", style="bold")
        state.append(" to run", style="dim")
    else:
        st = view.status
        mark = SPINNER[frame % len(SPINNER)] if st == "running" else glyph(st)
        state.append(f"{mark} {st}", style=style(st))
        if stale:
            state.append(" · stale: file changed, r to run", style="bold yellow")
        if view.started_at is not None:
            end = view.finished_at if view.finished_at is not None else now
            state.append("   elapsed ", style="dim")
            state.append(fmt_seconds(max(0.0, end - view.started_at)))
    counts, done, total = counted if counted is not None else tally(view)
    if view.status != "idle":
        state.append(f"   {done}/{total} done", style="")
        for st in ("failed", "retrying", "skipped", "cancelled"):
            if counts.get(st):
                state.append(f" {glyph(st)} {counts[st]}", style=style(st))
    cap = limit if limit is not None else view.max_concurrency
    running = view.running if view.status == "running" else 0
    state.append(f"   slots {running}/{cap}", style="bold" if running else "dim")

    name = view.workflow or "?"

    def line(brand: bool, show_file: bool, run_id: bool, show_executor: bool) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        if brand:
            out.append(" tui-flow ", style="bold reverse")
            out.append(" ")
        out.append(" " + name, style="bold")
        if show_file:
            out.append(f"  {file}", style="dim")
        out.append("   ")
        if view.status != "idle" and (run_id or past):
            run = f"run {view.run_id} " if run_id else ""
            out.append(run + ("(past) " if past else ""), style="bold")
        out.append_text(state)
        if executor and show_executor:
            out.append(f"   {executor}", style="dim")
        return out

    tries = [(True, True, True, True), (True, True, True, False), (True, False, True, False)]
    tries += [(False, False, True, False), (False, False, False, False)]
    for t in tries:
        out = line(*t)
        if width is None or out.cell_len <= width:
            return out
    assert width is not None  # (without a width the first try fits)
    room = max(4, len(name) - (out.cell_len - width))  # the workflow's name gives way last
    name = name[: room - 1] + "…" if room < len(name) else name
    return line(*tries[-1])


class RunHeader(Static):
    DEFAULT_CSS = """
    RunHeader { height: 1; background: $panel; color: $foreground; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._last = ""

    def set_text(self, text: Text) -> None:
        """Show `text` (one line: no layout needed; nothing at all if unchanged)."""
        plain = text.plain
        if plain == self._last:
            return
        self._last = plain
        self.update(text, layout=False)
