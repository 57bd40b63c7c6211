"""Regenerate screenshots/*.svg (and .png) of the app on `flows/catalog.py`: idle, running,
failed, finished and the panels, wide (160x45) and at 80x24 (`*-80x24`).

    PYTHONPATH=. python scripts/screenshots.py

The app shows a scripted run of the catalog (`tests/catalog_run.py`: the events of a real
run, on a fixed clock), so the images are the same every time.
The PNGs need cairosvg: `pip install -e ".[screenshots]"` (it draws with the
Cairo library: `apt-get install libcairo2` on Debian, `brew install cairo` on macOS).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the scripted catalog run lives with the tests

from catalog_run import CATALOG, T0, scripted_events  # noqa: E402

from tui_flow.ui.app import make_app  # noqa: E402

OUT = ROOT / "screenshots"
WIDE, NARROW = (160, 45), (80, 24)

SHOTS = [
    # name, size, run (completed / failed), seconds into it (None: idle), tab, task, keys
    ("idle", WIDE, "completed", None, "tab-logs", "generate_data", ()),
    ("running", WIDE, "completed", 2.0, "tab-logs", "process_partition_2", ()),
    ("failed", WIDE, "failed", 99.0, "tab-logs", "process_partition_2", ()),
    ("finished", WIDE, "completed", 99.0, "tab-report", "combine_results", ()),
    ("timeline", WIDE, "completed", 99.0, "tab-timeline", "process_partition_2", ()),
    ("retries", WIDE, "completed", 99.0, "tab-retries", "process_partition_2", ()),
    ("task-logs", WIDE, "failed", 99.0, "tab-logs", "process_partition_2", ("l",)),
    ("list", WIDE, "completed", 2.0, "tab-logs", "process_partition_2", ("v", "d")),
    ("running-80x24", NARROW, "completed", 2.0, "tab-logs", "process_partition_2", ()),
    ("finished-80x24", NARROW, "completed", 99.0, "tab-report", "combine_results", ()),
]


async def shoot(
    name: str, size: tuple[int, int], outcome: str, until: float | None, tab: str, task: str, keys
) -> Path:
    now = T0 + (until if until is not None else 0.0)
    app = make_app(CATALOG, no_store=True, watch_files=False, clock=lambda: now)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        if until is not None:
            app.replay(scripted_events(app.workflow, outcome, until))
        app.tree.select_task(task)
        app.query_one("TabbedContent").active = tab
        await pilot.pause()
        for k in keys:
            await pilot.press(k)
        app._tick()
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()
        svg = app.export_screenshot(title=f"tui-flow · {name}")
    path = OUT / f"{name}.svg"
    path.write_text(svg)
    return path


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    paths = []
    cwd = os.getcwd()
    os.chdir(ROOT)  # the header shows the file as `flows/catalog.py`
    try:
        for shot in SHOTS:
            paths.append(await shoot(*shot))
    finally:
        os.chdir(cwd)
    try:
        import cairosvg
    except ImportError:
        cairosvg = None
    for p in paths:
        print(p.relative_to(ROOT))
        if cairosvg is not None:
            png = p.with_suffix(".png")
            width = 1600 if "80x24" not in p.stem else 1000
            cairosvg.svg2png(url=str(p), write_to=str(png), output_width=width)
            print(png.relative_to(ROOT))
    if cairosvg is None:
        print('(no PNGs: pip install -e ".[screenshots]", see the top of this script)')


if __name__ == "__main__":
    asyncio.run(main())
