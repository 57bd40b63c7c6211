"""What the app leaves in the scrollback when it exits, and files as the user knows them."""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text

from ..engine.state import RunView
from ..safe_text import visible
from ..status import fmt_seconds, glyph


def display_path(path: str | os.PathLike[str]) -> str:
    """The file as the user knows it: relative to the current folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


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
