"""Regenerate screenshots/*.svg (and .png) of the app: idle, running, finished, and panels.

    PYTHONPATH=. python scripts/screenshots.py

The app shows the scripted demo run (`tests/demo_run.py`) on a fixed clock, so the images are
the same every time. The PNGs need cairosvg: `pip install -e ".[screenshots]"` (it draws with the
Cairo library: `apt-get install libcairo2` on Debian, `brew install cairo` on macOS).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the scripted demo run lives with the tests

from demo_run import T0, scripted_events, write_demo_flow  # noqa: E402

from tui_flow.ui.app import make_app  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (132, 36)

SHOTS = [
    # name, seconds into the run (None: idle), tab, selected task, extra keys
    ("idle", None, "tab-logs", "fetch_prices", ()),
    ("running", 1.9, "tab-logs", "fetch_prices", ()),
    ("finished", 99.0, "tab-report", "fetch_prices", ()),
    ("timeline", 99.0, "tab-timeline", "validate", ()),
    ("retries", 99.0, "tab-retries", "fetch_prices", ()),
    ("task-logs", 99.0, "tab-logs", "enrich", ("l",)),
]


async def shoot(folder: Path, name: str, until: float | None, tab: str, task: str, keys) -> Path:
    now = T0 + (until if until is not None else 0.0)
    app = make_app(write_demo_flow(folder), no_store=True, watch_files=False, clock=lambda: now)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        if until is not None:
            app.replay(scripted_events(app.workflow, until))
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
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # the header shows the file as `demo_flow.py`
        try:
            for name, until, tab, task, keys in SHOTS:
                paths.append(await shoot(Path(tmp), name, until, tab, task, keys))
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
            cairosvg.svg2png(url=str(p), write_to=str(png), output_width=1600)
            print(png.relative_to(ROOT))
    if cairosvg is None:
        print('(no PNGs: pip install -e ".[screenshots]", see the top of this script)')


if __name__ == "__main__":
    asyncio.run(main())
