"""The key bar of presenter mode: the last keys pressed, in a corner, so a room can follow
what the presenter does (as Dagger's and screencast tools' key bars)."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import events
from textual.widgets import Static

NAMES = {
    "question_mark": "?",
    "slash": "/",
    "escape": "Esc",
    "enter": "Enter",
    "space": "Space",
    "tab": "Tab",
    "shift+tab": "S-Tab",
    "up": "↑",
    "down": "↓",
    "left": "←",
    "right": "→",
}


def key_name(event: events.Key) -> str:
    """How a key reads on the bar: `r`, `J`, `?`, `^c`, `Esc`, `↓`."""
    key = event.key
    if key in NAMES:
        return NAMES[key]
    if key.startswith("ctrl+"):
        return "^" + key[5:]
    if event.character and event.character.isprintable():
        return event.character
    return key


class KeyBar(Static):
    """Shows the last `keep` keys pressed (hidden unless the screen presents)."""

    DEFAULT_CSS = """
    KeyBar {
        display: none;
        height: 1;
        width: 1fr;
        content-align: right middle;
        background: transparent;
    }
    """

    def __init__(self, keep: int = 8, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.keys: deque[str] = deque(maxlen=keep)

    def pressed(self, event: events.Key) -> None:
        self.keys.append(key_name(event))
        text = Text(no_wrap=True)
        text.append(" keys ", style="dim")
        for k in self.keys:
            text.append(f" {k} ", style="bold reverse")
            text.append(" ")
        self.update(text)
