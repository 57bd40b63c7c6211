"""How a status looks, everywhere: a glyph AND a word (never colour alone), plus a style."""

from __future__ import annotations

GLYPHS: dict[str, str] = {
    "pending": "○",
    "running": "▶",
    "retrying": "↻",
    "completed": "✔",
    "failed": "✖",
    "skipped": "⊘",
    "cancelled": "■",
    "interrupted": "⚡",
}

STYLES: dict[str, str] = {
    "pending": "dim",
    "running": "bold cyan",
    "retrying": "bold yellow",
    "completed": "green",
    "failed": "bold red",
    "skipped": "dim yellow",
    "cancelled": "magenta",
    "interrupted": "bold magenta",
}

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def glyph(status: str) -> str:
    return GLYPHS.get(status, "?")


def style(status: str) -> str:
    return STYLES.get(status, "")


def label(status: str) -> str:
    """`✔ completed`"""
    return f"{glyph(status)} {status}"


def fmt_seconds(s: float | None) -> str:
    """Short human durations: 0.012 s, 1.50 s, 2 m 03 s, 1 h 02 m."""
    if s is None:
        return "-"
    if s < 0.001:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.2f} s"
    if s < 3600:
        m, sec = divmod(round(s), 60)
        return f"{m} m {sec:02d} s"
    h, rem = divmod(round(s), 3600)
    return f"{h} h {rem // 60:02d} m"


# -- exit codes: one table for the CLI, the app and headless runs --------------------------------

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CLOSED_PIPE = 141  # stdout was closed (`tui-flow run ... | head`): as SIGPIPE would end it
EXIT_FOR_STATUS: dict[str, int] = {
    "completed": EXIT_OK,
    "failed": EXIT_FAILED,
    "cancelled": EXIT_INTERRUPTED,
    "interrupted": EXIT_INTERRUPTED,
}


def exit_code(status: str) -> int:
    """The process exit code for a run that ended with `status`."""
    return EXIT_FOR_STATUS.get(status, EXIT_FAILED)
