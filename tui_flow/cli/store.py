"""The commands on stored runs: `tui-flow history | show | resume | rerun`.

    tui-flow history [--workflow NAME] [--limit N] [--json]
    tui-flow show RUN [--json] [--logs TASK]
    tui-flow resume RUN [--force]
    tui-flow rerun RUN (--failed | --from TASK) [--force]

RUN is a run id, a unique prefix of one, or `last`. Every command takes `--db PATH`
(default: $TUI_FLOW_DB, the configuration file's, else .tui-flow/runs.db: `common.db_path`).
A database that cannot be used gives a message and exit code 2 (the CLI's handling of
`TuiFlowError`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import astuple
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..engine.result import SCHEMA_VERSION
from ..status import EXIT_OK, fmt_seconds, label, style
from ..store.reader import LOG_ROW_FIELDS
from ..store.sqlite import LogRow, RunRow, RunStore
from .common import db_path, run_options

if TYPE_CHECKING:
    from ..console import TextOut


# -- helpers ---------------------------------------------------------------------------------------


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return _dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _console(out: TextIO, plain: bool | None) -> tuple[Console, bool]:
    from ..console import rich_console

    console = rich_console(out, plain)
    return console, not console.is_terminal


def _plain_flag(args: argparse.Namespace) -> bool | None:
    return True if getattr(args, "plain", False) else None


async def _with_store(args: argparse.Namespace, fn: Any) -> int:
    store = await RunStore.open(db_path(args))
    try:
        return int(await fn(store))
    finally:
        await store.close()


# -- history ---------------------------------------------------------------------------------------


def history_table(runs: list[RunRow]) -> Table:
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("run")
    table.add_column("workflow")
    table.add_column("status")
    table.add_column("started")
    table.add_column("wall", justify="right")
    table.add_column("speedup", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("from")
    for r in runs:
        origin = r.resumed_from or ""
        if r.segments > 1:
            origin = (origin + " " if origin else "") + f"resumed x{r.segments - 1}"
        table.add_row(
            r.run_id,
            r.workflow,
            Text(label(r.status), style=style(r.status)),
            _when(r.started_at),
            fmt_seconds(r.wall_s),
            f"{r.speedup:.2f}x" if r.speedup is not None else "-",
            str(r.failed) if r.status != "running" else "-",
            origin,
        )
    return table


def cmd_history(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout

    if getattr(args, "prune", False) or getattr(args, "keep", None) is not None:
        from .retention import cmd_prune

        return cmd_prune(args, out)
    if getattr(args, "older_than", None) is not None or getattr(args, "dry_run", False):
        from ..errors import BadInput

        raise BadInput("--older-than and --dry-run go with --prune")

    async def go(store: RunStore) -> int:
        runs = await store.list_runs(workflow=args.workflow, limit=args.limit)
        if args.json:  # documents.HistoryDocument
            doc = {"schema": SCHEMA_VERSION, "runs": [r.to_json() for r in runs]}
            out.write(json.dumps(doc) + "\n")
            return EXIT_OK
        console, _ = _console(out, _plain_flag(args))
        if not runs:
            what = f" of workflow {args.workflow!r}" if args.workflow else ""
            console.print(f"no runs{what} recorded in {store.path}")
            return EXIT_OK
        console.print(history_table(runs))
        return EXIT_OK

    return asyncio.run(_with_store(args, go))


# -- show ------------------------------------------------------------------------------------------


class LogPrinter:
    """A task's log as text: a marker line before each attempt (and resume), then its lines
    (`HH:MM:SS.mmm  level    text`), built as strings for `TextOut` (styles as ANSI codes on
    a terminal, task text through `visible()` there). Feed it rows chunk by chunk."""

    def __init__(self, task_id: str, text: TextOut, view: Any = None) -> None:
        from ..console import Clock

        self.task_id = task_id
        self.text = text
        self._clock = Clock()
        self._marker: tuple[str, int, int] | None = None
        self._red = text.codes("red")
        # each failed attempt's error (and traceback), printed after its lines: (task, n) ->
        # (error, traceback, whether it is the task's last failed attempt)
        self._errors: dict[tuple[str, int], tuple[str, str | None, bool]] = {}
        for t in view.tasks.values() if view is not None else ():
            if t.id != task_id and t.info.parent != task_id:
                continue
            failed = [a for a in t.attempts if a.error and a.status not in ("completed",)]
            for a in failed:
                self._errors[(t.id, a.number)] = (a.error, a.traceback, a is failed[-1])

    def _error_of(self, key: tuple[str, int]) -> str:
        found = self._errors.pop(key, None)
        if found is None:
            return ""
        from ..tracebacks import failure_lines

        error, tb, last = found
        who = f"{self.text.user(key[0])} " if key[0] != self.task_id else ""
        lines = failure_lines(error, tb, full=last)
        lines[0] = f"✖ {who}attempt {key[1]} failed: {lines[0]}"
        if self.text.safe:
            lines = [self.text.user(ln) for ln in lines]
        red_head, red_tail = self._red
        lines[0] = f"{red_head}{lines[0]}{red_tail}"
        return "".join(ln + "\n" for ln in lines)

    def finish(self) -> str:
        """What is left once every row is written: the last attempt's error, and those of
        attempts that wrote no line."""
        out = []
        if self._marker is not None:
            out.append(self._error_of((self._marker[0], self._marker[2])))
        for key in list(self._errors):
            out.append(self._error_of(key))
        return "".join(out)

    def lines(self, rows: Iterable[Sequence[Any]]) -> str:
        """The text of `rows` (tuples in `LogRow`'s field order, or `LogRow`s)."""
        out: list[str] = []
        clock, user = self._clock, self.text.user
        safe = self.text.safe
        red_head, red_tail = self._red
        for tid, attempt, at, level, text, segment, logger, extra in rows:
            key = (tid, segment, attempt)
            if key != self._marker:
                if self._marker is not None:
                    out.append(self._error_of((self._marker[0], self._marker[2])))
                self._marker = key
                who = f"{user(tid)} " if tid != self.task_id else ""
                seg = f" (resume {segment})" if segment else ""
                out.append(self.text.styled(f"── {who}attempt {attempt}{seg} ──", "bold") + "\n")
            if safe:
                text = user(text)
            if text and level in ("error", "critical"):
                text = f"{red_head}{text}{red_tail}"
            if logger is not None or extra is not None:
                text = self._with_source(text, logger, extra)
            out.append(f"{clock(at)}  {level:<8} {text}\n")
        return "".join(out)

    def _with_source(self, text: str, logger: str | None, extra: Any) -> str:
        """`logger: text  key=value ...`: a `logging` record's logger and extra fields."""
        user = self.text.user if self.text.safe else str
        if logger is not None:
            text = self.text.styled(user(logger) + ":", "dim") + " " + text
        if extra:
            fields = json.loads(extra) if isinstance(extra, str) else extra
            shown = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
            text += "  " + self.text.styled(user(shown), "dim")
        return text


def print_logs(lines: list[LogRow], task_id: str, out: TextIO, plain: bool | None) -> None:
    """A task's log with a marker line before each attempt (and resume)."""
    from ..console import TextOut

    text = TextOut(out, plain=plain)
    text.write(LogPrinter(task_id, text).lines(astuple(ln) for ln in lines))


_json_str = json.encoder.encode_basestring_ascii  # what json.dumps does with a str
_json_float = float.__repr__  # and with a finite float


def _row_json(row: Sequence[Any]) -> str:
    """A log row as `json.dumps(dict(zip(LOG_ROW_FIELDS, row)))` writes it (its extra
    parsed), ~3x as fast."""
    tid, attempt, at, level, text, segment, logger, extra = row
    if logger is not None or extra is not None:
        fields = dict(zip(LOG_ROW_FIELDS, row, strict=True))
        fields["extra"] = json.loads(extra) if isinstance(extra, str) else extra
        return json.dumps(fields)
    if (
        type(tid) is str
        and type(attempt) is int
        and type(at) is float
        and math.isfinite(at)
        and type(level) is str
        and type(text) is str
        and type(segment) is int
    ):
        return (
            f'{{"task_id": {_json_str(tid)}, "attempt": {attempt}, "at": {_json_float(at)}, '
            f'"level": {_json_str(level)}, "text": {_json_str(text)}, "segment": {segment}, '
            '"logger": null, "extra": null}'
        )
    return json.dumps(dict(zip(LOG_ROW_FIELDS, row, strict=True)))


async def write_logs(
    store: RunStore,
    run_id: str,
    task_id: str,
    out: TextIO,
    plain: bool | None,
    *,
    as_json: bool = False,
    view: Any = None,
) -> int:
    """Write a task's log (`show --logs`), read from the store and written a chunk at a time:
    a log of any size starts at once and never sits in memory whole. As text (see
    `LogPrinter`), or as one JSON object (`documents.LogDocument`) whose `lines` are `LogRow`
    objects, written as `json.dumps` would. Returns how many lines."""
    from ..console import TextOut

    text = TextOut(out, plain=plain)
    n = 0
    if as_json:
        head = {"schema": SCHEMA_VERSION, "run_id": run_id, "task_id": task_id, "lines": []}
        text.write(json.dumps(head)[: -len("[]}")] + "[")
        async with contextlib.aclosing(store.log_chunks(run_id, task_id)) as chunks:
            async for rows in chunks:
                # a list's items are joined by ", ": a chunk's go as they would in the whole
                body = ", ".join([_row_json(r) for r in rows])
                text.write(body if not n else ", " + body)
                n += len(rows)
                if text.closed:
                    break
        text.write("]}\n")
        return n
    printer = LogPrinter(task_id, text, view)
    async with contextlib.aclosing(store.log_chunks(run_id, task_id)) as chunks:
        async for rows in chunks:
            text.write(printer.lines(rows))
            n += len(rows)
            if text.closed:
                break
    if not n:
        text.write(f"task {task_id!r} of run {run_id} wrote no log lines\n")
    if not text.closed:
        text.write(printer.finish())  # the errors, tracebacks with the user's frames first
    return n


def show_json(run: RunRow, view: Any, report: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The same shape as `tui-flow run --json`, plus what the store knows about the run
    (`documents.ShowDocument`)."""
    tasks = {}
    for tid in view.order:
        t = view.tasks[tid]
        tasks[tid] = {
            "status": t.state,
            "attempts": len(t.attempts),
            "started_at": t.started_at,
            "finished_at": t.finished_at,
            "duration_s": t.duration(),
            "error": t.error,
            "via_fallback": t.via_fallback,
        }
    return {
        "schema": SCHEMA_VERSION,
        "workflow": run.workflow,
        "run_id": run.run_id,
        "status": view.status,
        "executor": run.executor,
        "started_at": view.started_at,
        "finished_at": view.finished_at,
        "tasks": tasks,
        "report": report.summary(),
        "context": context,
        "file": run.file,
        "source_hash": run.source_hash,
        "resumed_from": run.resumed_from,
        "segments": run.segments,
        "error": run.error,
    }


def cmd_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from ..console import print_report
    from ..runs import ActionRefused

    out = out or sys.stdout
    plain = _plain_flag(args)

    async def go(store: RunStore) -> int:
        run = await store.resolve(args.run)
        if args.logs:
            # from its events: a run still going has no per-task rows yet
            view = await store.load_run(run.run_id, log_lines=False)
            known = set(view.tasks)
            if args.logs not in known:
                raise ActionRefused(
                    f"run {run.run_id} has no task {args.logs!r} (tasks: "
                    f"{', '.join(sorted(known))})"
                )
            await write_logs(store, run.run_id, args.logs, out, plain, as_json=args.json, view=view)
            return EXIT_OK
        # the summary does not count log lines: it costs the same for a run of a million
        view = await store.load_run(run.run_id, log_lines=False)
        report = view.compute_report()
        if args.json:
            context = await store.run_context(run.run_id)
            out.write(json.dumps(show_json(run, view, report, context), default=str) + "\n")
            return EXIT_OK
        print_report(report, view.workflow, view.status, view.run_id, out=out, plain=plain)
        console, _ = _console(out, plain)
        if run.resumed_from:
            console.print(f"re-run of {run.resumed_from}")
        if run.segments > 1:
            n = run.segments - 1
            console.print(
                f"resumed in place {n} time{'s' if n != 1 else ''}; the table shows the last "
                f"resume (earlier attempts: tui-flow show {run.run_id} --logs TASK)"
            )
        if run.error:
            console.print(Text(run.error, style=style(view.status)))
        return EXIT_OK

    return asyncio.run(_with_store(args, go))


# -- resume / rerun --------------------------------------------------------------------------------


def cmd_resume(args: argparse.Namespace) -> int:
    from ..runs import plan_resume, run_plan_headless

    async def go(store: RunStore) -> int:
        plan = await plan_resume(store, args.run, force=args.force)
        return await run_plan_headless(store, plan, run_options(args, stored=True))

    return asyncio.run(_with_store(args, go))


def cmd_rerun(args: argparse.Namespace) -> int:
    from ..runs import plan_rerun_failed, plan_rerun_from, run_plan_headless

    async def go(store: RunStore) -> int:
        if args.from_task:
            plan = await plan_rerun_from(store, args.run, args.from_task, force=args.force)
        else:
            plan = await plan_rerun_failed(store, args.run, force=args.force)
        return await run_plan_headless(store, plan, run_options(args, stored=True))

    return asyncio.run(_with_store(args, go))
