"""The header line: workflow, file, run id and status, live elapsed time, slots in use."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ...engine.state import RunView
from ...status import SPINNER, fmt_seconds, glyph, style


def header_text(
    view: RunView,
    file: str,
    now: float,
    *,
    frame: int = 0,
    past: bool = False,
    limit: int | None = None,
    executor: str | None = None,
) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(" tui-flow ", style="bold reverse")
    out.append("  ")
    out.append(view.workflow or "?", style="bold")
    out.append(f"  {file}", style="dim")
    out.append("   ")
    if view.status == "idle":
        out.append("no run yet", style="dim")
        out.append(" · press ", style="dim")
        out.append("r", style="bold")
        out.append(" to run", style="dim")
    else:
        out.append(f"run {view.run_id}" + (" (past)" if past else ""), style="bold")
        out.append(" ")
        st = view.status
        mark = SPINNER[frame % len(SPINNER)] if st == "running" else glyph(st)
        out.append(f"{mark} {st}", style=style(st))
        if view.started_at is not None:
            end = view.finished_at if view.finished_at is not None else now
            out.append("   elapsed ", style="dim")
            out.append(fmt_seconds(max(0.0, end - view.started_at)))
    counts = view.counts()
    total = sum(1 for t in view.tasks.values() if t.info.parent is None)
    done = sum(1 for t in view.tasks.values() if t.info.parent is None and t.final)
    if view.status != "idle":
        out.append(f"   {done}/{total} done", style="")
        for st in ("failed", "retrying", "skipped", "cancelled"):
            if counts.get(st):
                out.append(f" {glyph(st)} {counts[st]}", style=style(st))
    cap = limit if limit is not None else view.max_concurrency
    running = view.running if view.status == "running" else 0
    out.append(f"   slots {running}/{cap}", style="bold" if running else "dim")
    if executor:
        out.append(f"   {executor}", style="dim")
    return out


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
