"""SVG snapshots of `flows/catalog.py` in the app at 80x24 and 160x45: idle, running, failed
and finished (a scripted run on a fixed clock: tests/catalog_run.py).

Update after an intended change of look: pytest tests/test_app_snapshots.py --snapshot-update

The SVGs are Textual's drawing, which moves a little between Textual releases (a cell's colour,
a line's background) with nothing wrong: they are compared only under the Textual the snapshots
were taken with, the one `constraints.txt` pins (the lowest-versions job of .ci/run, say, runs
an older one and skips them; every other app test runs there).
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import pytest
from catalog_run import CATALOG, ROOT, T0, scripted_events, show_as_live

from tui_flow.ui.app import TuiFlowApp, make_app

PINNED = re.search(r"^textual==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
TAKEN_WITH = PINNED.group(1) if PINNED else "?"
pytestmark = pytest.mark.skipif(
    version("textual") != TAKEN_WITH,
    reason=f"snapshots are of textual {TAKEN_WITH} (constraints.txt); this is {version('textual')}",
)

SIZES = {"80x24": (80, 24), "160x45": (160, 45)}
# state: (outcome, seconds into the run or None for idle, panel, selected task)
STATES = {
    "idle": ("completed", None, "tab-logs", "generate_data"),
    "running": ("completed", 2.0, "tab-logs", "process_partition_2"),
    "failed": ("failed", 99.0, "tab-logs", "process_partition_2"),
    "finished": ("completed", 99.0, "tab-report", "combine_results"),
}


def catalog_app(monkeypatch: pytest.MonkeyPatch, at: float) -> TuiFlowApp:
    monkeypatch.chdir(ROOT)  # the header shows `flows/catalog.py`
    return make_app(CATALOG, no_store=True, watch_files=False, clock=lambda: T0 + at)


def show(outcome: str, until: float | None, tab: str, task: str) -> Any:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        if until is not None:
            app.replay(scripted_events(app.workflow, outcome, until))
            show_as_live(app)
        app.tree.select_task(task)
        app.query_one("TabbedContent").active = tab
        await pilot.pause()
        app._tick()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("state", list(STATES))
def test_catalog_screen(
    snap_compare: Any, monkeypatch: pytest.MonkeyPatch, state: str, size: str
) -> None:
    outcome, until, tab, task = STATES[state]
    app = catalog_app(monkeypatch, until or 0.0)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=show(outcome, until, tab, task))
