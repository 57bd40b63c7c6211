"""Task text shown on a terminal: nothing in it can drive the terminal; plain text and
Unicode are left alone."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from textual.widgets import Static

from tui_flow.safe_text import visible

CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def spec(c: str) -> str:
    """What one character shows as (text without ESC: no sequences to drop)."""
    o = ord(c)
    if c == "\r":
        return ""
    if c == "\t":
        return c
    if o < 0x20:
        return chr(0x2400 + o)
    if o == 0x7F:
        return "\u2421"
    if 0x80 <= o < 0xA0:
        return f"\\x{o:02x}"
    return c


@given(st.text())
def test_nothing_left_that_a_terminal_acts_on(text: str) -> None:
    assert not CONTROLS.search(visible(text))
    assert not CONTROLS.search(visible(text, keep_newlines=True).replace("\n", ""))


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs"))))
def test_text_without_control_characters_is_left_alone(text: str) -> None:
    assert visible(text) is text


@given(st.text(st.characters(blacklist_characters="\x1b", blacklist_categories=("Cs",))))
def test_each_control_character_is_shown_as_its_picture(text: str) -> None:
    assert visible(text) == "".join(spec(c) for c in text)
    assert visible(text, keep_newlines=True) == "\n".join(
        "".join(spec(c) for c in part) for part in text.split("\n")
    )


def test_colour_codes_go_other_sequences_show() -> None:
    line = "\x1b[2J\x1b[H wiped\r bell\x07 \x1b[1;31mred\x1b[0m\ttab é 日本 ✔"
    assert visible(line) == "␛[2J␛[H wiped bell␇ red\ttab é 日本 ✔"
    assert visible("a\nb") == "a␊b"
    assert visible("a\nb", keep_newlines=True) == "a\nb"
    assert visible("\x9b2J\x00\x7f") == "\\x9b2J␀␡"


# -- in the app ------------------------------------------------------------------------------

NASTY_FLOW = """
from tui_flow import task, Context, Workflow

@task
async def noisy(context: Context) -> None:
    print("\\x1b[2J\\x1b[H wiped\\r bell\\x07 \\x1b[31mred\\x1b[0m done")
    context.log("title \\x1b]0;pwned\\x07 set")

@task(dependencies=[noisy])
async def breaks(context: Context) -> None:
    raise ValueError("bad \\x1b[2J\\x1b[H row [/x]")

workflow = Workflow("nasty", tasks=[noisy, breaks])
"""

RAW_LINE = "\x1b[2J\x1b[H wiped\r bell\x07 \x1b[31mred\x1b[0m done"
SHOWN_LINE = "␛[2J␛[H wiped bell␇ red done"
SHOWN_ERROR = "bad ␛[2J␛[H row [/x]"
# what the app itself writes to the terminal: colours and cursor moves to a row and column
APP_SEQUENCES = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\d+;\d+H")


def terminal_output(app: Any) -> tuple[str, str]:
    """What the app would write to the terminal for its whole screen, and the screen's text."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.file.getvalue(), console.export_text(styles=False)


async def test_escape_codes_a_task_prints_show_as_text_and_the_header_stays(
    tmp_path: Path,
) -> None:
    from tui_flow.ui.app import make_app
    from tui_flow.ui.summary import summary_lines

    flow = tmp_path / "nasty.py"
    flow.write_text(NASTY_FLOW)
    app = make_app(flow, no_store=True, watch_files=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("r")
        assert app.execution is not None
        await asyncio.wait_for(app.execution.wait(), 20)
        for _ in range(500):
            if app.last_result is not None:
                break
            await pilot.pause(0.01)
        assert app.last_result is not None and app.last_result.status == "failed"
        assert app.tree.select_task("breaks")
        app.query_one("TabbedContent").active = "tab-logs"  # (the end opened the report)
        await pilot.pause()

        texts = [e[2] for e in app.log_view.entries]
        assert texts[:2] == [SHOWN_LINE, "title ␛]0;pwned␇ set"]
        assert texts[2].startswith("✖ attempt 1/1 failed: ValueError: bad ␛[2J")  # inline, safe
        raw, screen = terminal_output(app)
        foreign = APP_SEQUENCES.sub("", raw)
        assert "\x1b" not in foreign  # no escape sequence but the app's own
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", foreign.replace("\r\n", "\n"))
        first_line = screen.splitlines()[0]
        assert first_line.startswith(" tui-flow ") and "nasty" in first_line  # the header
        assert "wiped bell␇ red done" in screen  # the log line, readable
        assert SHOWN_ERROR in str(app.tree.label_of("breaks"))
        assert SHOWN_ERROR in _plain(app.query_one("#details-body", Static).content)
        assert SHOWN_ERROR in app.query_one("#report").text()
        assert SHOWN_ERROR in "\n".join(t.plain for t in summary_lines(app.session.view, str(flow)))


def _plain(renderable: Any) -> str:
    console = Console(width=200, no_color=True, file=io.StringIO(), record=True)
    console.print(renderable)
    return console.export_text()


async def test_the_store_keeps_the_raw_text(tmp_path: Path) -> None:
    from tui_flow import load
    from tui_flow.engine import Execution
    from tui_flow.store import RunStore

    flow = tmp_path / "nasty.py"
    flow.write_text(NASTY_FLOW)
    store = await RunStore.open(tmp_path / "runs.db")
    try:
        execution = Execution(load(flow).workflow(), {})
        execution.subscribe(store.recorder(execution.view))
        execution.start()
        result = await execution.wait()
        await store.flush()
        rows = await store.task_logs(result.run_id, "noisy")
        assert [r.text for r in rows] == [RAW_LINE, "title \x1b]0;pwned\x07 set"]
        assert "\x1b[2J" in ((await store.load_run(result.run_id)).tasks["breaks"].error or "")
    finally:
        await store.close()
