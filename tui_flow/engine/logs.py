"""Attributing output to the task that wrote it.

While a task body runs, a context variable names its attempt. `print()` (through a proxy on
sys.stdout / sys.stderr), `logging` (through a root handler) and `context.log` all look it up
and append to the run's `LogBuffer`, from the loop or from a worker thread. The buffer hands
lines to the loop in batches: one wake-up per batch, not per line.

A `logging` record keeps its logger's name and its `extra=` fields beside its text
(`record_fields`). Which records are kept: `capture.level` (INFO unless `--log-level` says
otherwise, `set_level`); the root logger is lowered to it while a run goes on, and the
user's own root handlers still see only what they saw before.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from .events import LogLine

_current: contextvars.ContextVar[AttemptSink | None] = contextvars.ContextVar(
    "tui_flow_attempt", default=None
)


_CLEAN = contextvars.Context()


class LogBuffer:
    """Collects lines and progress from any thread; flushes them on the loop in batches."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_lines: Callable[[list[LogLine]], None],
        on_progress: Callable[[str, float, float | None, str | None], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._on_lines = on_lines
        self._on_progress = on_progress
        self._clock = clock
        self._lock = threading.Lock()
        self._lines: list[LogLine] = []
        self._progress: dict[str, tuple[float, float | None, str | None]] = {}
        self._scheduled = False
        self._drained = threading.Event()
        self.closed = False

    #: A thread that has this many lines waiting for the loop pauses until they are handed on
    #: (at most BACKPRESSURE_WAIT_S each time): a body printing in a tight loop then cannot
    #: starve the loop (and the app's key presses) of the interpreter lock, and the buffer
    #: stays bounded.
    BACKPRESSURE_LINES = 2000
    BACKPRESSURE_WAIT_S = 0.05

    def add(
        self,
        task_id: str,
        attempt: int,
        level: str,
        text: str,
        logger: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if logger is None and extra is None:  # print and context.log: the short way
            line = LogLine(
                task_id=task_id, attempt=attempt, at=self._clock(), level=level, text=text
            )
        else:
            line = LogLine(
                task_id=task_id,
                attempt=attempt,
                at=self._clock(),
                level=level,
                text=text,
                logger=logger,
                extra=extra,
            )
        with self._lock:
            self._lines.append(line)
            wake = not self._scheduled
            self._scheduled = True
            behind = len(self._lines) >= self.BACKPRESSURE_LINES
            if behind:
                self._drained.clear()
        if wake:
            self._wake()
        if behind and not self.closed and threading.get_ident() != self._loop_thread:
            self._drained.wait(self.BACKPRESSURE_WAIT_S)

    def progress(self, task_id: str, done: float, total: float | None, msg: str | None) -> None:
        with self._lock:
            self._progress[task_id] = (done, total, msg)
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            self._wake()

    def _wake(self) -> None:
        if self.closed:
            return
        try:
            # run the flush outside any task's context, or its output would be the task's
            if threading.get_ident() == self._loop_thread:
                self._loop.call_soon(self.flush, context=_CLEAN)
            else:
                self._loop.call_soon_threadsafe(self.flush, context=_CLEAN)
        except RuntimeError:  # loop closed: a zombie thread outlived its run
            pass

    @property
    def pending(self) -> bool:
        """Anything waiting to be flushed (a racy peek: flush() itself takes the lock)."""
        return bool(self._lines or self._progress)

    def flush(self) -> None:
        """Hand every pending line and progress update to the run (call on the loop)."""
        with self._lock:
            lines, self._lines = self._lines, []
            progress, self._progress = self._progress, {}
            self._scheduled = False
        self._drained.set()
        if lines:
            self._on_lines(lines)
        for task_id, (done, total, msg) in progress.items():
            self._on_progress(task_id, done, total, msg)


_STREAM_LEVEL = {"stdout": "info", "stderr": "error"}


class StreamLines:
    """Turns text written to stdout/stderr into whole log lines; a line without its newline
    yet waits for the rest (or for `close_streams`). Subclasses say where lines go."""

    __slots__ = ()
    _partial: dict[str, str]

    def _lines(self, level: str, lines: list[str]) -> None:
        raise NotImplementedError

    def write(self, stream: str, text: str) -> None:
        """Text written to stdout/stderr: complete lines go to the log, the rest waits."""
        data = self._partial.pop(stream, "") + text
        *complete, rest = data.split("\n")
        if complete:
            self._lines(_STREAM_LEVEL.get(stream, "info"), [ln.rstrip("\r") for ln in complete])
        if rest:
            self._partial[stream] = rest

    def close_streams(self) -> None:
        """Flush a last line that had no newline."""
        if not self._partial:
            return
        for stream, rest in list(self._partial.items()):
            self._lines(_STREAM_LEVEL.get(stream, "info"), [rest])
        self._partial.clear()


def record_text(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    """A logging record's text: its message, with the traceback of `logger.exception()`; a
    bad format string must not kill the task."""
    try:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + formatter.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + formatter.formatStack(record.stack_info)
        return text
    except Exception:
        return str(record.msg)


#: the attributes every LogRecord has: anything else on one came from `extra=`
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _json_safe(value: Any) -> Any:
    """A value as JSON can hold it (else its `str()`)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def record_lines(
    text: str, logger: str | None, extra: dict[str, Any] | None
) -> list[tuple[str, str | None, dict[str, Any] | None]]:
    """A logged text as its lines, each with the record's logger, the extra fields on the
    first line only (a record written over several lines keeps them once)."""
    lines = str(text).splitlines() or [""]
    return [(line, logger, extra if i == 0 else None) for i, line in enumerate(lines)]


def record_fields(
    record: logging.LogRecord, formatter: logging.Formatter
) -> tuple[str, str | None, dict[str, Any] | None]:
    """A logging record as the log keeps it: its text (`record_text`), its logger's name
    (None for the root logger) and its `extra=` fields as JSON values (None when none)."""
    extra = {
        k: _json_safe(v)
        for k, v in record.__dict__.items()
        if k not in _RECORD_ATTRS and not k.startswith("_")
    }
    name = record.name if record.name != "root" else None
    return record_text(record, formatter), name, extra or None


TASK_LOG_FORMAT = "%(message)s"

LEVELS = ("debug", "info", "warning", "error", "critical")


def level_number(name: str | int) -> int:
    """`debug` ... `critical` (any case) or a number, as the logging level number."""
    if isinstance(name, int):
        return name
    if name.strip().isdigit():
        return int(name)
    number = logging.getLevelName(name.strip().upper())
    if not isinstance(number, int):
        raise ValueError(f"a log level is one of {', '.join(LEVELS)}, not {name!r}")
    return number


class AttemptSink(StreamLines):
    """What `context.log`, `print` and `logging` write to during one attempt."""

    __slots__ = ("_partial", "attempt", "buffer", "task_id")

    def __init__(self, buffer: Any, task_id: str, attempt: int) -> None:
        self.buffer = buffer
        self.task_id = task_id
        self.attempt = attempt
        self._partial: dict[str, str] = {}

    def _lines(self, level: str, lines: list[str]) -> None:
        for line in lines:
            self.buffer.add(self.task_id, self.attempt, level, line)

    def log(
        self,
        level: str,
        text: str,
        logger: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if logger is None and extra is None:
            self._lines(level, str(text).splitlines() or [""])
            return
        add = self.buffer.add
        for line, name, fields in record_lines(text, logger, extra):
            add(self.task_id, self.attempt, level, line, name, fields)

    def progress(self, done: float, total: float | None, message: str | None) -> None:
        self.buffer.progress(self.task_id, done, total, message)

    def close(self) -> None:
        self.close_streams()


def enter_attempt(sink: AttemptSink) -> contextvars.Token[AttemptSink | None]:
    return _current.set(sink)


def exit_attempt(token: contextvars.Token[AttemptSink | None]) -> None:
    sink = _current.get()
    if sink is not None:
        sink.close()
    _current.reset(token)


class _StreamProxy:
    """Stands in for sys.stdout/sys.stderr: task output to its log, the rest passes through."""

    def __init__(self, real: TextIO, name: str) -> None:
        self._real = real
        self._name = name

    def write(self, text: str) -> int:
        sink = _current.get()
        if sink is None:
            return self._real.write(text)
        sink.write(self._name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _current.get() is None:
            self._real.flush()

    def fileno(self) -> int:
        """The wrapped stream's descriptor; `io.UnsupportedOperation` when it has none (a
        full-screen app's capture answers -1, which would reach multiprocessing and
        subprocess as a descriptor). multiprocessing then passes no descriptor for stderr to
        the helper processes it starts, which inherit 0-2 anyway (see runners.py)."""
        fd = self._real.fileno()
        if not isinstance(fd, int) or fd < 0:
            raise io.UnsupportedOperation("fileno: the stream has no file descriptor")
        return fd

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _TaskLogHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(TASK_LOG_FORMAT))
        self.lone = False  # True when the root logger had no handler of its own

    def emit(self, record: logging.LogRecord) -> None:
        sink = _current.get()
        if sink is None:
            if self.lone and record.levelno >= logging.lastResort.level:  # type: ignore[union-attr]
                logging.lastResort.handle(record)  # type: ignore[union-attr]
            return
        sink.log(record.levelname.lower(), *record_fields(record, self.formatter))  # type: ignore[arg-type]


class _NotInTask(logging.Filter):
    """Keeps the user's own root handlers as they were: no task records, no new levels."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return _current.get() is None and record.levelno >= self.level


class _Capture:
    """Installs the stdout/stderr proxies and the logging handler while any run is active."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: dict[str, Any] = {}
        self.level = logging.INFO  # the lowest level of the records a task's log keeps
        # every proxy ever installed stays alive (and is used again): `print()` holds a
        # *borrowed* reference to sys.stdout while it writes, so a thread body printing while
        # a run ends (a body that outlived its run) would write through a freed object and
        # crash the process
        self._proxies: list[_StreamProxy] = []

    def _proxy(self, real: TextIO, name: str) -> _StreamProxy:
        for p in self._proxies:
            if p._real is real and p._name == name:
                return p
        proxy = _StreamProxy(real, name)
        self._proxies.append(proxy)
        return proxy

    def install(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            self._saved = {"stdout": sys.stdout, "stderr": sys.stderr}
            sys.stdout = self._proxy(sys.stdout, "stdout")
            sys.stderr = self._proxy(sys.stderr, "stderr")
            root = logging.getLogger()
            handler = _TaskLogHandler()
            handler.setLevel(self.level)
            handler.lone = not root.handlers
            level = root.level
            filt = _NotInTask(level)
            for h in root.handlers:
                h.addFilter(filt)
            self._saved.update(handler=handler, level=level, filter=filt)
            root.addHandler(handler)
            if root.level == logging.NOTSET or root.level > self.level:
                root.setLevel(self.level)

    def set_level(self, level: str | int) -> None:
        """Keep the records of `level` and above in tasks' logs (INFO by default), from now
        on; a run going on too. Process-wide, like logging itself."""
        number = level_number(level)
        with self._lock:
            self.level = number
            handler = self._saved.get("handler")
            if handler is None:
                return
            handler.setLevel(number)
            root = logging.getLogger()
            saved = self._saved["level"]
            low = min(number, saved) if saved != logging.NOTSET else number
            root.setLevel(low)

    def uninstall(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                if isinstance(current, _StreamProxy):
                    setattr(sys, name, current._real)
            root = logging.getLogger()
            root.removeHandler(self._saved["handler"])
            for h in root.handlers:
                h.removeFilter(self._saved["filter"])
            root.setLevel(self._saved["level"])
            self._saved = {}


capture = _Capture()
