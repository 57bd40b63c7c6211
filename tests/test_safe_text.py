"""Task text shown on a terminal: nothing in it can drive the terminal; plain text and
Unicode are left alone."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

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
