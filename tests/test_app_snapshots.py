"""SVG snapshots of the idle, running and finished screens (a scripted run, a fixed clock).

Update after an intended change of look: pytest tests/test_app_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from demo_run import T0, scripted_events, write_demo_flow

from tui_flow.ui.app import TuiFlowApp, make_app

SIZE = (120, 34)


def demo_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: float) -> TuiFlowApp:
    monkeypatch.chdir(tmp_path)  # the header shows `demo_flow.py`
    path = write_demo_flow(tmp_path)
    return make_app(path, no_store=True, watch_files=False, clock=lambda: T0 + at)


def show(until: float | None, tab: str, task: str) -> Any:
    async def run_before(pilot: Any) -> None:
        app = pilot.app
        if until is not None:
            app.replay(scripted_events(app.workflow, until))
        app.tree.select_task(task)
        app.query_one("TabbedContent").active = tab
        await pilot.pause()
        app._tick()
        await pilot.pause()

    return run_before


def test_idle_screen(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = demo_app(tmp_path, monkeypatch, 0.0)
    assert snap_compare(app, terminal_size=SIZE, run_before=show(None, "tab-logs", "fetch_prices"))


def test_running_screen(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = demo_app(tmp_path, monkeypatch, 1.9)
    assert snap_compare(app, terminal_size=SIZE, run_before=show(1.9, "tab-logs", "fetch_prices"))


def test_finished_screen(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch, 99.0)
    assert snap_compare(app, terminal_size=SIZE, run_before=show(99.0, "tab-report", "validate"))


def test_timeline_while_running(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = demo_app(tmp_path, monkeypatch, 2.5)
    assert snap_compare(app, terminal_size=SIZE, run_before=show(2.5, "tab-timeline", "validate"))
