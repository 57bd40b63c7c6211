"""Text a task wrote, made safe to show on a terminal.

A body may print anything: colour codes, `ESC[2J` (clear the screen), a bell, a carriage
return. Written as they are to a terminal, or to the app's screen, they move the cursor and
wipe what is drawn (the app's header disappears). `visible()` is the one rule every place
that shows task text (log lines, errors, tracebacks) applies just before showing it:

- colour and style codes (SGR, `ESC[...m`) are dropped: the words stay, the colours go;
- a carriage return is dropped (as a terminal would show `a\\rb`, roughly: both parts stay);
- every other control character is shown as its Unicode "control picture": `ESC` as `␛`,
  BEL as `␇`, NUL as `␀`, DEL as `␡`, a newline as `␊` unless the place shows several lines;
  so `ESC[2J` reads `␛[2J` and moves nothing; C1 controls (U+0080-U+009F) read `\\x9b`;
- tabs, printable text and every other Unicode character are left as they are.

The store keeps the raw text; this is only about showing it.
"""

from __future__ import annotations

import re

# everything that can drive a terminal: C0 controls but tab, DEL, C1 controls
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_UNSAFE_BUT_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SGR = re.compile("\x1b\\[[0-9;:]*m")


def _pictures(keep_newline: bool) -> dict[int, str]:
    table = {c: chr(0x2400 + c) for c in range(0x20) if c != 0x09}
    table[0x0D] = ""  # a carriage return: dropped
    table[0x7F] = "\u2421"  # ␡
    table.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
    if keep_newline:
        del table[0x0A]
    return table


_ONE_LINE = _pictures(keep_newline=False)
_LINES = _pictures(keep_newline=True)


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with nothing in it that a terminal would act on (see the module's docstring).
    Text without control characters comes back as it is (the same object), cheaply.
    `keep_newlines`: for a place that shows several lines (a traceback, an error)."""
    unsafe = _UNSAFE_BUT_NEWLINE if keep_newlines else _UNSAFE
    if unsafe.search(text) is None:
        return text
    if "\x1b" in text:
        text = _SGR.sub("", text)
    return text.translate(_LINES if keep_newlines else _ONE_LINE)
