"""Logs: every task merged with a coloured prefix, or one task; follow mode; search; copy.

`LogView` is a scroll view over a bounded deque of lines (task id, level, text). It draws only
the visible lines and caches them; new lines arrive in batches (`write`) a few times a second.
Follow mode keeps the newest line in view; scrolling up pauses it (the view then stays on the
lines being read, even as old lines are dropped) and the panel counts what arrived since.
"""

from __future__ import annotations

import time
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence

from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

from ...safe_text import visible
from ..keymap import SCROLL_KEYS
from ..session import Entry

# Accent colours that read on dark and light backgrounds alike (Solarized's accents).
PREFIX_COLOURS = (
    "#268bd2",
    "#2aa198",
    "#859900",
    "#b58900",
    "#cb4b16",
    "#d33682",
    "#6c71c4",
    "#5f8787",
)
LEVEL_STYLES = {"error": "red", "critical": "bold red", "warning": "yellow", "debug": "dim"}
MAX_WIDTH = 1000
NARROW_VIEW = 100  # columns: below, the task column is at most NARROW_PREFIX wide
NARROW_PREFIX = 14


def prefix_colour(task_id: str) -> str:
    """A stable colour per task (instances `t[3]` share their task's colour)."""
    base = task_id.split("[", 1)[0]
    return PREFIX_COLOURS[zlib.crc32(base.encode()) % len(PREFIX_COLOURS)]


TIME_W = 13  # `12:00:01.120 `, with timestamps on (`T`)


def _shown(entry: Entry) -> Entry:
    """A log line as the view keeps it: (task id, level, text, source, at), the text through
    `visible()`, a `logging` record's logger and extra fields (the source) in brackets, to be
    shown dim before the text (the same tuple when there is nothing to change)."""
    text = visible(entry[2])
    source = entry[3] if len(entry) > 3 else ""
    if not source and text is entry[2] and len(entry) == 5:
        return entry
    at = entry[4] if len(entry) > 4 else None
    return (entry[0], entry[1], text, f"[{visible(source)}] " if source else "", at)


def _source(entry: Entry) -> str:
    return entry[3] if len(entry) > 3 else ""


def clock_time(at: float | None) -> str:
    """`12:00:01.120 ` (local time), or blanks for a line without a time."""
    if at is None:
        return " " * TIME_W
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d} "


class LogView(ScrollView, can_focus=True):
    """A bounded, virtual list of log lines."""

    BINDINGS = SCROLL_KEYS

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $foreground;
        overflow: auto auto;
        scrollbar-size-vertical: 1;
    }
    """

    class FollowChanged(Message):
        def __init__(self, following: bool) -> None:
            super().__init__()
            self.following = following

    def __init__(self, max_lines: int = 5_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self.entries: deque[Entry] = deque(maxlen=max_lines)
        self.dropped = 0  # lines dropped from the top since the last clear
        self.show_prefix = True
        self.prefix_width = 12
        self.following = True
        self.new_while_paused = 0
        self.query_text = ""
        self.matches: list[int] = []  # absolute line numbers (dropped + index)
        self.current_match = -1
        self._width = 0  # the virtual width: the widest line's text and source, plus the pad
        self._text_w = 0  # the widest line's text and source
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(2048)
        self._adjusting = False
        self._base_style: Style | None = None
        self.wrap = False  # long lines continue on the next rows (`w`)
        self.timestamps = False  # each line's time before it (`T`)
        self._narrow = False  # below NARROW_VIEW columns the task column is narrower
        self._starts: list[int] = []  # wrap: the first row of each entry, then the row count

    # -- content -------------------------------------------------------------------------------

    def clear(self) -> None:
        self.entries.clear()
        self.dropped = 0
        self._width = 0
        self._text_w = 0
        self._cache.clear()
        self.matches = []
        self.current_match = -1
        self.new_while_paused = 0
        self._starts = [0] if self.wrap else []
        self.virtual_size = Size(0, 0)
        self.refresh()

    def set_prefix(self, show: bool, ids: Iterable[str] = ()) -> None:
        self.show_prefix = show
        widths = [len(i) for i in ids]
        self.prefix_width = min(24, max([8, *widths]))
        self._fit_width()
        self._cache.clear()
        self._lay_out()

    def write(self, entries: Sequence[Entry]) -> None:
        """Append lines (a batch); keep at most `max_lines`; follow or hold the reading place.
        A line is kept as it is shown: through `visible()` (a task's escape codes and control
        characters must not reach the terminal), so search and copy see what is on screen."""
        if not entries:
            return
        if len(entries) > self.max_lines:
            entries = entries[-self.max_lines :]
        entries = [_shown(e) for e in entries]
        overflow = max(0, len(self.entries) + len(entries) - self.max_lines)
        self.entries.extend(entries)
        self.dropped += overflow
        widest = max(len(e[2]) + len(_source(e)) for e in entries)
        self._text_w = max(self._text_w, widest)
        self._fit_width()
        if self.query_text:
            q = self.query_text
            base = self.dropped + len(self.entries) - len(entries)
            self.matches = [m for m in self.matches if m >= self.dropped]
            self.matches += [base + i for i, e in enumerate(entries) if q in e[2].lower()]
        self._lay_out()
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
            if round(self.scroll_y) < self.max_scroll_y:  # scrollbars not laid out yet
                self.call_after_refresh(self._end_if_following)
            # a full view at its end does not move as lines rotate through it: repaint it
            self.refresh()
        else:
            self.new_while_paused += len(entries)
            if overflow:
                # keep the lines being read in place while older ones are dropped above them
                self._adjusting = True
                self.scroll_to(y=max(0, self.scroll_y - overflow), animate=False, immediate=True)
                self._adjusting = False
            self.refresh()

    # -- wrap --------------------------------------------------------------------------------

    def set_wrap(self, wrap: bool) -> None:
        """Wrap long lines (continuation rows indented under the text) or cut them."""
        self.wrap = wrap
        self._cache.clear()
        self._lay_out()
        if self.following:
            self.call_after_refresh(self._end_if_following)
        self.refresh()

    def set_timestamps(self, shown: bool) -> None:
        """Show each line's time (when it was written) before it, or not."""
        self.timestamps = shown
        self._fit_width()
        self._cache.clear()
        self._lay_out()
        self.refresh()

    def _fit_width(self) -> None:
        """The virtual width for the lines held and what goes before them (after either
        changes: a line wider than any before, the task column, timestamps)."""
        self._width = min(MAX_WIDTH, self._text_w + self._pad()) if self._text_w else 0

    def _pad(self) -> int:
        stamp = TIME_W if self.timestamps else 0
        return stamp + (self._prefix_shown() + 3 if self.show_prefix else 0)

    def _prefix_shown(self) -> int:
        """The task column's width: narrower on a narrow view, so lines keep their room."""
        return min(self.prefix_width, NARROW_PREFIX) if self._narrow else self.prefix_width

    def _lay_out(self) -> None:
        """The virtual size: one row per line, or, wrapping, the rows each line takes."""
        if not self.wrap:
            self._starts = []
            self.virtual_size = Size(self._width, len(self.entries))
            return
        width = self.scrollable_content_region.width or self.size.width or 80
        avail = max(1, width - self._pad())
        starts = [0]
        total = 0
        for e in self.entries:
            cells = len(e[2].expandtabs()) + len(_source(e))
            total += max(1, -(-cells // avail))
            starts.append(total)
        self._starts = starts
        self.virtual_size = Size(width, total)

    def _row_of(self, index: int) -> int:
        """The first row of entry `index`."""
        return self._starts[index] if self.wrap and index < len(self._starts) else index

    def on_resize(self) -> None:
        narrow = 0 < self.size.width < NARROW_VIEW
        if narrow != self._narrow:
            self._narrow = narrow
            self._fit_width()
            self._cache.clear()
            self._lay_out()
            self.refresh()
        elif self.wrap:
            self._cache.clear()
            self._lay_out()

    def set_entries(self, entries: Iterable[Entry]) -> None:
        """Replace the content (a new filter, a new run)."""
        self.clear()
        self.write(list(entries)[-self.max_lines :])

    def text(self) -> str:
        """The visible log as plain text (what `copy` puts on the clipboard)."""

        def stamp(e: Entry) -> str:
            return clock_time(e[4] if len(e) > 4 else None) if self.timestamps else ""

        if self.show_prefix:
            w = self.prefix_width
            return "\n".join(f"{stamp(e)}{e[0]:<{w}} │ {_source(e)}{e[2]}" for e in self.entries)
        return "\n".join(stamp(e) + _source(e) + e[2] for e in self.entries)

    # -- follow --------------------------------------------------------------------------------

    def _end_if_following(self) -> None:
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def follow(self) -> None:
        self.current_match = -1
        self._cache.clear()
        self._set_following(True)
        self.scroll_end(animate=False, immediate=True, x_axis=False)

    def _set_following(self, value: bool) -> None:
        if value == self.following:
            return
        self.following = value
        if value:
            self.new_while_paused = 0
        self.post_message(self.FollowChanged(value))

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._adjusting:
            return
        at_end = round(new_value) >= self.max_scroll_y
        if at_end and not self.following and self.current_match < 0:
            # back at the bottom: follow again (not while stepping through search matches)
            self._set_following(True)
        elif new_value < old_value and not at_end and self.following:
            self._set_following(False)

    # -- search --------------------------------------------------------------------------------

    def search(self, query: str) -> int:
        """Mark every line containing `query` (case-insensitive); go to the newest match."""
        self.query_text = query.lower()
        self._cache.clear()
        if not self.query_text:
            self.matches, self.current_match = [], -1
            self.refresh()
            return 0
        q = self.query_text
        self.matches = [self.dropped + i for i, e in enumerate(self.entries) if q in e[2].lower()]
        self.current_match = len(self.matches) - 1
        self._show_current()
        return len(self.matches)

    def next_match(self, step: int = 1) -> bool:
        """Go to the next (`step=1`, further down) or previous (`-1`) match; wraps around."""
        self.matches = [m for m in self.matches if m >= self.dropped]
        if not self.matches:
            return False
        if self.current_match < 0:
            self.current_match = len(self.matches) - 1
        else:
            self.current_match = (self.current_match + step) % len(self.matches)
        self._show_current()
        return True

    @property
    def current_line(self) -> int | None:
        if 0 <= self.current_match < len(self.matches):
            return self.matches[self.current_match] - self.dropped
        return None

    def _show_current(self) -> None:
        self._cache.clear()
        line = self.current_line
        if line is None:
            self.refresh()
            return
        self._set_following(False)
        self._adjusting = True
        row = self._row_of(line)
        self.scroll_to(y=max(0, row - self.size.height // 2), animate=False, immediate=True)
        self._adjusting = False
        self.refresh()

    # -- drawing -------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def render_lines(self, crop):
        self._base_style = self.rich_style  # once per paint, not once per line
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self._base_style if self._base_style is not None else self.rich_style
        if self.wrap:
            return self._wrapped_row(index, width, base)
        if index >= len(self.entries):
            return Strip.blank(width, base)
        key = (self.dropped + index, self._width)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_entry(index, base)
            self._cache[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, index)

    def _wrapped_row(self, row: int, width: int, base: Style) -> Strip:
        """Row `row` of the wrapped log: a piece of one entry's line."""
        starts = self._starts
        if not starts or row >= starts[-1]:
            return Strip.blank(width, base)
        index = bisect_right(starts, row) - 1
        key = (self.dropped + index, -1)
        full = self._cache.get(key)
        if full is None:
            full = self._cache[key] = self._render_entry(index, base)
        pad = self._pad()
        avail = max(1, width - pad)
        k = row - starts[index]
        if k == 0:
            piece = full.crop(0, pad + avail)
        else:
            start = pad + k * avail
            piece = Strip.join([Strip.blank(pad, base), full.crop(start, start + avail)])
        return piece.crop_extend(0, width, base).apply_offsets(0, row)

    def _render_entry(self, index: int, base: Style) -> Strip:
        entry = self.entries[index]
        task_id, level, text = entry[:3]
        text = text.expandtabs()
        line = Text(no_wrap=True, end="")
        if self.timestamps:
            line.append(clock_time(entry[4] if len(entry) > 4 else None), style="dim")
        if self.show_prefix:
            w = self._prefix_shown()
            tid = visible(task_id)
            tid = tid if len(tid) <= w else tid[: w - 1] + "…"
            line.append(f"{tid:<{w}}", style=prefix_colour(task_id))
            line.append(" │ ", style="dim")
        if len(entry) > 3 and entry[3]:
            line.append(entry[3], style="dim")
        start = len(line)
        line.append(text, style=LEVEL_STYLES.get(level, ""))
        q = self.query_text
        if q:
            current = self.current_line == index
            low = text.lower()
            pos = low.find(q)
            while pos >= 0:
                line.stylize(
                    "reverse bold" if current else "reverse", start + pos, start + pos + len(q)
                )
                pos = low.find(q, pos + len(q))
            if current:
                line.stylize("bold", 0, start)
        line.stylize_before(base)
        segments = list(line.render(self.app.console))
        return Strip(segments, line.cell_len)


class LogPanel(Vertical):
    """The log view with its status line and the search box."""

    DEFAULT_CSS = """
    LogPanel { height: 1fr; }
    LogPanel > #log-status { height: 1; padding: 0 1; color: $text-muted; background: $boost; }
    LogPanel > #log-search { display: none; height: 3; }
    LogPanel.searching > #log-search { display: block; }
    """

    def __init__(self, max_lines: int = 5_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self.filter_task: str | None = None  # None: all tasks merged
        self.total_for_filter = 0
        self.store_note = False
        self._status = ""

    def compose(self):
        yield Static("", id="log-status")
        yield LogView(self.max_lines, id="log-view")
        yield Input(
            placeholder="search the log (Enter: go, Esc: close, n / N: next / previous)",
            id="log-search",
        )

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def update_status(self) -> None:
        v = self.view
        parts: list[tuple[str, str]] = []
        if self.filter_task is None:
            parts.append(("all tasks", "bold"))
        else:
            parts.append((f"task {self.filter_task}", "bold"))
        if v.query_text:
            n = len(v.matches)
            pos = f"{v.current_match + 1}/{n}" if n and v.current_match >= 0 else "no match"
            if n and v.current_match < 0:
                pos = f"{n} matches"
            parts.append((f"search {v.query_text!r}: {pos} (n/N)", "cyan"))
        if v.following:
            parts.append(("following", "green"))
        elif v.new_while_paused:
            parts.append((f"paused · {v.new_while_paused:,} new lines (f: follow)", "yellow"))
        else:
            parts.append(("paused (f: follow)", "yellow"))
        shown = len(v.entries)
        if self.total_for_filter > shown:
            where = "; all lines are in the run store" if self.store_note else ""
            parts.append(
                (f"showing the last {shown:,} of {self.total_for_filter:,} lines{where}", "dim")
            )
        text = Text()
        for i, (p, s) in enumerate(parts):
            if i:
                text.append(" · ", style="dim")
            text.append(p, style=s)
        if text.plain != self._status:
            self._status = text.plain
            self.query_one("#log-status", Static).update(text, layout=False)

    def open_search(self) -> None:
        self.add_class("searching")
        box = self.query_one("#log-search", Input)
        box.value = self.view.query_text
        box.focus()

    def close_search(self, clear: bool = True) -> None:
        self.remove_class("searching")
        if clear:
            self.view.search("")
        self.view.focus()
        self.update_status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.view.search(event.value)
        self.remove_class("searching")
        self.view.focus()
        self.update_status()

    def on_key(self, event) -> None:
        if event.key == "escape" and self.has_class("searching"):
            event.stop()
            self.close_search()

    def on_log_view_follow_changed(self, event: LogView.FollowChanged) -> None:
        self.update_status()
