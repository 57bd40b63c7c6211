"""Themes at WCAG AA for every status colour (computed from the themes' colours, as Textual
draws them), and presenter mode (`p`, `--present`): high contrast, more room, the key bar."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from textual.color import Color

from tui_flow.status import STYLES
from tui_flow.ui.app import make_app
from tui_flow.ui.theme import (
    CONTRAST,
    DARK,
    DARK_ANSI,
    LIGHT,
    LIGHT_ANSI,
    contrast,
    drawn_colour,
    panel_backgrounds,
)
from tui_flow.ui.widgets.header import RunHeader
from tui_flow.ui.widgets.keybar import KeyBar

AA = 4.5


@pytest.mark.parametrize(
    ("theme", "ansi"), [(DARK, DARK_ANSI), (LIGHT, LIGHT_ANSI), (CONTRAST, DARK_ANSI)]
)
@pytest.mark.parametrize("status", sorted(STYLES))
def test_every_status_colour_reads_at_wcag_aa(theme, ansi, status: str) -> None:  # type: ignore[no-untyped-def]
    for where, bg in panel_backgrounds(theme).items():
        fg = drawn_colour(STYLES[status], theme, ansi, bg)
        ratio = contrast(fg, Color.parse(bg).rgb)
        assert ratio >= AA, f"{status} on {theme.name} {where}: {ratio:.2f}:1"


def test_the_contrast_formula_matches_wcag_reference_values() -> None:
    assert contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)
    # what the issue measured: Textual's light ANSI green on its light surface fails
    assert contrast((68, 140, 39), (216, 216, 216)) < AA


FLOW = """
from tui_flow import task, Context, Workflow

@task
def a(context: Context) -> None:
    pass
"""


def app_for(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW))
    return make_app(path, no_store=True, watch_files=False, **kw)  # type: ignore[arg-type]


async def test_the_app_draws_statuses_with_the_checked_palettes(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == DARK.name
        assert app.ansi_theme_dark is DARK_ANSI and app.ansi_theme_light is LIGHT_ANSI
        app.theme = LIGHT.name
        await pilot.pause()
        assert app.ansi_theme is LIGHT_ANSI


async def test_presenter_mode_key_shows_keys_and_contrast(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        bar = app.query_one(KeyBar)
        assert not bar.display
        await pilot.press("p")
        await pilot.pause()
        assert app.screen.has_class("-present") and app.theme == CONTRAST.name
        assert bar.display and app.query_one(RunHeader).region.height == 3
        await pilot.press("j", "question_mark")
        await pilot.pause()
        assert list(bar.keys) == ["j", "?"]  # each key once
        await pilot.press("escape")  # closes help
        await pilot.press("p")
        await pilot.pause()
        assert not app.screen.has_class("-present") and app.theme == DARK.name
        assert not bar.display


async def test_present_flag_opens_in_presenter_mode(tmp_path: Path) -> None:
    app = app_for(tmp_path, present=True)
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        assert app.presenting and app.screen.has_class("-present")
        assert app.theme == CONTRAST.name
