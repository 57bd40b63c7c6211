"""A task's traceback as a user reads it: the frames in their own code first.

The engine records the whole traceback (`traceback.format_exception`), frames of tui-flow, of
asyncio and of installed packages included. `user_frames()` picks the frames in the user's
files out of that text; `failure_lines()` is how every view (Details in the app, the task's
log, `tui-flow show RUN --logs TASK`) lays out an error: the one-line error, "your code" with
those frames (the innermost last, as Python prints them), then the full traceback.
"""

from __future__ import annotations

import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')
_PACKAGE = str(Path(__file__).resolve().parent)
_NOT_USERS = tuple(
    p
    for p in {
        _PACKAGE,
        *(sysconfig.get_paths().get(k, "") for k in ("stdlib", "platstdlib", "purelib", "platlib")),
    }
    if p
)


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    func: str
    code: str = ""

    def where(self) -> str:
        return f"{self.file}:{self.line} in {self.func}"


def is_user_file(file: str) -> bool:
    """A file of the user's (not tui-flow's, not the standard library's, not a package's)."""
    if file.startswith("<") and not file.startswith("<tui-flow"):
        return False  # <frozen importlib._bootstrap>, <string>
    if "site-packages" in file or "dist-packages" in file:
        return False
    return not any(file.startswith(p) for p in _NOT_USERS)


def frames(tb: str) -> list[Frame]:
    """Every frame of a formatted traceback, outermost first."""
    out: list[Frame] = []
    lines = tb.splitlines()
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if m is None:
            continue
        code = ""
        if i + 1 < len(lines) and lines[i + 1].startswith("    "):
            code = lines[i + 1].strip()
        out.append(Frame(m["file"], int(m["line"]), m["func"], code))
    return out


def user_frames(tb: str | None) -> list[Frame]:
    """The frames in the user's own files, outermost first."""
    return [f for f in frames(tb or "") if is_user_file(f.file)]


def failure_lines(error: str | None, tb: str | None, *, full: bool = True) -> list[str]:
    """An error laid out for reading: the error, then "your code:" and its frames (where and
    the source line), then (with `full`) the whole traceback. Plain lines, no styles."""
    out = [error or "failed"]
    mine = user_frames(tb)
    if mine:
        out.append("your code (most recent call last):")
        for f in mine:
            out.append(f"  {f.where()}")
            if f.code:
                out.append(f"    {f.code}")
    if full and tb and tb.strip():
        out.append("full traceback:")
        out.extend(f"  {ln}" for ln in tb.rstrip("\n").splitlines())
    return out
