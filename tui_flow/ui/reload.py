"""Hot reload: load the workflow file again when it (or a module beside it) is saved.

- `load_file(path)` loads fresh (in a worker thread, never on the event loop) and turns any
  failure into a short message with the file and line (`ReloadResult.error`).
- `diff_workflows(old, new)` says which tasks were added, changed or removed. A task changed
  when its options or its body's code changed (line numbers do not count, so adding a task
  above another does not mark it changed).
- `watch(paths)` yields batches of changed files (watchfiles' `awatch`, tuned to answer
  within a few tens of milliseconds of the save).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Static

from ..engine.events import task_info
from ..errors import LoadError, TuiFlowError, ValidationError
from ..loader import WORKFLOW_SUFFIXES, LoadedFile, load
from ..safe_text import visible
from ..tasks import Task
from ..workflow import Workflow
from .app_base import AppBase
from .session import RunSession, idle_view

WATCHED_SUFFIXES = WORKFLOW_SUFFIXES


@dataclass
class Diff:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def summary(self) -> str:
        """`+1 added (c) ~1 changed (b) -0 removed`"""
        if self.empty:
            return "no task changed"
        parts = []
        for sign, word, ids in (
            ("+", "added", self.added),
            ("~", "changed", self.changed),
            ("-", "removed", self.removed),
        ):
            if ids:
                shown = ", ".join(ids[:4]) + (", …" if len(ids) > 4 else "")
                parts.append(f"{sign}{len(ids)} {word} ({shown})")
        return "  ".join(parts)


@dataclass
class ReloadResult:
    loaded: LoadedFile | None = None
    error: str | None = None


def _const_key(c: Any) -> Any:
    if isinstance(c, CodeType):
        return _code_key(c)
    if isinstance(c, tuple | frozenset):
        return tuple(_const_key(x) for x in c)
    return repr(c)


def _code_key(code: CodeType) -> tuple[Any, ...]:
    return (
        code.co_code,
        tuple(_const_key(c) for c in code.co_consts),
        code.co_names,
        code.co_varnames,
    )


def fingerprint(task: Task) -> str:
    """Options + body code of a task (stable across loads, blind to line numbers)."""
    h = hashlib.sha256()
    h.update(task.spec.model_dump_json().encode())
    h.update(task.runner.encode())
    for fn in (task.fn, task.fallback_fn):
        # a compat body (cloaca's, taskinity's) wraps the user's function: fingerprint that
        code = getattr(inspect.unwrap(fn) if fn is not None else None, "__code__", None)
        h.update(repr(_code_key(code)).encode() if code is not None else b"-")
    return h.hexdigest()


def diff_workflows(old: Workflow | None, new: Workflow) -> Diff:
    if old is None:
        return Diff(added=list(new.order))
    d = Diff()
    for tid in new.order:
        if tid not in old.tasks:
            d.added.append(tid)
        elif fingerprint(old.tasks[tid]) != fingerprint(new.tasks[tid]):
            d.changed.append(tid)
    d.removed = [tid for tid in old.order if tid not in new.tasks]
    return d


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, LoadError | ValidationError | TuiFlowError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def prepared(loaded: LoadedFile) -> LoadedFile:
    """Work out now, off the loop, what a run's start would (each workflow's order and
    runners, each task as events describe it): at 10,000 tasks that is ~0.1 s the event loop,
    and the keys pressed meanwhile, need not wait for when `r` is pressed."""
    for wf in loaded.workflows.values():
        wf.order  # noqa: B018 (cached properties, computed here)
        wf.runners  # noqa: B018
        for t in wf.tasks.values():
            task_info(t)
    return loaded


def load_file(path: str | os.PathLike[str]) -> ReloadResult:
    """Load the file fresh (call from a thread); never raises for a bad file."""
    p = Path(path)
    try:
        return ReloadResult(loaded=prepared(load(p)))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return ReloadResult(error=describe_error(exc))


async def load_file_async(path: str | os.PathLike[str]) -> ReloadResult:
    return await asyncio.to_thread(load_file, path)


def watch_roots(loaded: LoadedFile | None, path: str | os.PathLike[str]) -> list[Path]:
    """The folders to watch: the file's own and those of every file it was loaded from."""
    files = [Path(path).resolve()]
    if loaded is not None:
        files += [Path(p).resolve() for p in loaded.watch_paths]
    roots: list[Path] = []
    for f in files:
        if f.parent not in roots:
            roots.append(f.parent)
    return roots


def is_relevant(changed: str, files: Iterable[Path]) -> bool:
    p = Path(changed)
    if "__pycache__" in p.parts:
        return False
    return p.suffix in WATCHED_SUFFIXES or p in set(files)


async def watch(
    roots: Sequence[Path], files: Sequence[Path], stop: asyncio.Event | None = None
) -> AsyncGenerator[list[str], None]:
    """Yield the relevant changed paths, batch by batch, until `stop` is set."""
    from watchfiles import awatch

    async for changes in awatch(
        *roots,
        debounce=250,
        step=30,
        recursive=False,
        stop_event=stop,
        watch_filter=lambda _change, name: is_relevant(name, files),
        yield_on_timeout=False,
    ):
        paths = sorted({p for _, p in changes})
        if paths:
            yield paths


class ReloadActions(AppBase):
    """Hot reload in the app (a mixin of `TuiFlowApp`): watch the file, load it again off the
    loop, show the new version or the error beside the last good one; a run going on keeps
    its version until it ends."""

    path: Path
    loaded: LoadedFile
    workflow: Workflow
    session: Any
    last_live: Any
    past_run: str | None
    pending_reload: LoadedFile | None
    reload_error: str | None
    reloads: asyncio.Queue[tuple[str, Any]]
    watch_ready: asyncio.Event
    max_concurrency: int | None
    stale: bool

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def watch_workflow(self) -> None:
        """Reload the workflow when its file (or a module beside it) is saved."""
        files = [self.path.resolve(), *(Path(p).resolve() for p in self.loaded.watch_paths)]
        changes = watch(watch_roots(self.loaded, self.path), files)
        first = asyncio.ensure_future(changes.__anext__())
        await asyncio.sleep(0)  # let the watcher register its watches
        self.watch_ready.set()
        try:
            paths = await first
            while True:
                await self.reload(paths)
                paths = await changes.__anext__()
        except StopAsyncIteration:
            pass
        finally:
            first.cancel()
            await changes.aclose()

    async def reload(self, changed: Iterable[str] = ()) -> None:
        """Load the file again; show the new version, or the error with the last good one."""
        try:
            result = await load_file_async(self.path)
        except Exception as exc:  # never let a reload kill the watcher
            self.report_error("reload", exc)
            return
        if result.error is not None or result.loaded is None:
            self._show_reload_error(result.error or "could not load")
            self.reloads.put_nowait(("error", result.error))
            return
        loaded = result.loaded
        had_error = self.reload_error is not None
        self._show_reload_error(None)
        if self.running:
            self.pending_reload = loaded
            new = self._pick_workflow(loaded)
            diff = diff_workflows(self.workflow, new)
            self.notify(
                f"{diff.summary()}. The running run keeps its version; "
                "this one applies when it ends.",
                title=f"Reloaded {self.path.name}",
                timeout=5,
            )
            self.reloads.put_nowait(("deferred", diff))
            return
        diff = self._apply_loaded(loaded, fixed=had_error)
        self.reloads.put_nowait(("ok", diff))

    def _pick_workflow(self, loaded: LoadedFile) -> Workflow:
        return loaded.workflows.get(self.workflow.name) or loaded.workflow(None)

    def _apply_loaded(self, loaded: LoadedFile, *, fixed: bool = False) -> Diff:
        new = self._pick_workflow(loaded)
        diff = diff_workflows(self.workflow, new)
        renamed = new.name != self.workflow.name
        self.loaded = loaded
        self.workflow = new
        self.pending_reload = None
        shown = self.session.view.status
        if shown not in ("idle", "running", "pending"):
            # a finished run (live or past) stays on screen, marked stale: `r` runs the new
            # version
            self.stale = True
            self._update_header(self.clock())
        elif self.session is not self.last_live or not self.running:
            idle = RunSession(idle_view(new, self.max_concurrency), live=False)
            old = self.session
            idle.lines, idle.task_lines, idle.total_lines = (
                old.lines,
                old.task_lines,
                old.total_lines,
            )
            self.past_run = None
            self.show_session(idle, keep_panels=True)
        title = f"Reloaded {self.path.name}" + (" (fixed)" if fixed else "")
        msg = diff.summary()
        if renamed:
            msg += f"; now showing workflow {new.name!r}"
        self.notify(msg, title=title, timeout=4)
        return diff

    def _show_reload_error(self, error: str | None) -> None:
        self.reload_error = error
        box = self.query_one("#reload-error", Static)
        if error is None:
            box.remove_class("visible")
            box.update("")
            return
        text = Text()
        text.append(
            "⚠ the file does not load; showing the last good version until it is fixed\n",
            style="bold",
        )
        text.append(visible(error, keep_newlines=True))
        box.update(text)
        box.add_class("visible")
