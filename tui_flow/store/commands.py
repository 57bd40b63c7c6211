"""The store's commands: `tui-flow history | show | resume | rerun`.

    tui-flow history [--workflow NAME] [--limit N] [--json]
    tui-flow show RUN [--json] [--logs TASK]
    tui-flow resume RUN [--force]
    tui-flow rerun RUN (--failed | --from TASK) [--force]

RUN is a run id, a unique prefix of one, or `last`. Every command takes `--db PATH`
(default $TUI_FLOW_DB, else .tui-flow/runs.db). A database that cannot be used gives a
message and exit code 2 (the CLI's handling of `TuiFlowError`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import json
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..cli import whole_number
from ..runs import EXECUTORS
from ..status import fmt_seconds, label, style
from .sqlite import LogRow, RunRow, RunStore

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="run database (default .tui-flow/runs.db or $TUI_FLOW_DB)")


def _run_args(p: argparse.ArgumentParser) -> None:
    _db_arg(p)
    p.add_argument("--force", action="store_true", help="go ahead even if the file changed")
    p.add_argument("--max-concurrency", "-j", type=whole_number(1), help="override the run's limit")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--plain", action="store_true", help="plain text, no colours")
    p.add_argument("--no-logs", action="store_true", help="do not print task log lines")
    p.add_argument("--executor", choices=EXECUTORS, default=None, help="where sync bodies run")
    p.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")


def register(sub: Any) -> None:
    """Add the store's commands to the CLI's subparsers."""
    p = sub.add_parser("history", help="list recent runs")
    _db_arg(p)
    p.add_argument("--workflow", "-w", help="only runs of this workflow")
    p.add_argument(
        "--limit", "-n", type=whole_number(1), default=20, help="how many runs (default 20)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--plain", action="store_true", help="plain text, no colours")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("show", help="the report of a past run (or a task's log)")
    p.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")
    _db_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--logs", metavar="TASK", help="print TASK's log, attempt by attempt")
    p.add_argument("--plain", action="store_true", help="plain text, no colours")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("resume", help="continue an interrupted or failed run in place")
    p.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")
    _run_args(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("rerun", help="a new run re-running what failed, or from a task on")
    p.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--failed", action="store_true", help="re-run what did not complete")
    which.add_argument("--from", dest="from_task", metavar="TASK", help="TASK and downstream")
    _run_args(p)
    p.set_defaults(func=cmd_rerun)


# -- helpers ---------------------------------------------------------------------------------------


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return _dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _console(out: TextIO, plain: bool | None) -> tuple[Console, bool]:
    if plain is None:
        plain = not out.isatty()
    return (
        Console(
            file=out,
            highlight=False,
            no_color=plain,
            force_terminal=not plain,
            width=None if not plain else 120,
        ),
        plain,
    )


def _plain_flag(args: argparse.Namespace) -> bool | None:
    return True if getattr(args, "plain", False) else None


async def _with_store(args: argparse.Namespace, fn: Any) -> int:
    store = await RunStore.open(getattr(args, "db", None))
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

    async def go(store: RunStore) -> int:
        runs = await store.list_runs(workflow=args.workflow, limit=args.limit)
        if args.json:
            out.write(json.dumps([r.to_json() for r in runs]) + "\n")
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


def print_logs(lines: list[LogRow], task_id: str, out: TextIO, plain: bool | None) -> None:
    """A task's log with a marker line before each attempt (and resume)."""
    console, _ = _console(out, plain)
    marker: tuple[str, int, int] | None = None
    for ln in lines:
        key = (ln.task_id, ln.segment, ln.attempt)
        if key != marker:
            marker = key
            who = f"{ln.task_id} " if ln.task_id != task_id else ""
            seg = f" (resume {ln.segment})" if ln.segment else ""
            console.print(Text(f"── {who}attempt {ln.attempt}{seg} ──", style="bold"))
        stamp = _dt.datetime.fromtimestamp(ln.at).strftime("%H:%M:%S.%f")[:-3]
        t = Text(f"{stamp}  {ln.level:<8} ")
        t.append(ln.text, style="red" if ln.level in ("error", "critical") else "")
        console.print(t)


def show_json(run: RunRow, view: Any, report: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The same shape as `tui-flow run --json`, plus what the store knows about the run."""
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
    from .actions import ActionRefused

    out = out or sys.stdout
    plain = _plain_flag(args)

    async def go(store: RunStore) -> int:
        run = await store.resolve(args.run)
        if args.logs:
            # from its events: a run still going has no per-task rows yet
            known = set((await store.load_run(run.run_id)).tasks)
            if args.logs not in known:
                raise ActionRefused(
                    f"run {run.run_id} has no task {args.logs!r} (tasks: "
                    f"{', '.join(sorted(known))})"
                )
            lines = await store.task_logs(run.run_id, args.logs)
            if args.json:
                out.write(json.dumps([ln.__dict__ for ln in lines]) + "\n")
            elif not lines:
                out.write(f"task {args.logs!r} of run {run.run_id} wrote no log lines\n")
            else:
                print_logs(lines, args.logs, out, plain)
            return EXIT_OK
        view = await store.load_run(run.run_id)
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


async def _run_plan(args: argparse.Namespace, store: RunStore, plan: Any) -> int:
    from ..runs import err, run_headless

    if plan.source_changed:
        err(f"warning: {plan.workflow.file} changed since run {plan.source.run_id} (--force)")
    if getattr(args, "max_concurrency", None) is None:
        args.max_concurrency = plan.max_concurrency
    if not plan.to_run:
        err(f"every task of run {plan.source.run_id} is reused; nothing will run")
    if plan.action == "resume":
        from .actions import ActionRefused

        if not await store.claim(plan.source.run_id):
            raise ActionRefused(f"run {plan.source.run_id} is being resumed by another process")
    try:
        return await run_headless(
            args,
            plan.workflow,
            context=plan.context,
            reuse=plan.reuse,
            resumed_from=plan.resumed_from,
            run_id=plan.run_id,
            store=store,
        )
    except BaseException:
        if plan.action == "resume":
            with contextlib.suppress(Exception):
                await store.flush()
            run = await store.get_run(plan.source.run_id)
            if run is not None and run.segments == plan.source.segments:  # never started
                await store.release(plan.source.run_id, plan.source.status)
        raise


def cmd_resume(args: argparse.Namespace) -> int:
    from .actions import plan_resume

    async def go(store: RunStore) -> int:
        plan = await plan_resume(store, args.run, force=args.force)
        return await _run_plan(args, store, plan)

    return asyncio.run(_with_store(args, go))


def cmd_rerun(args: argparse.Namespace) -> int:
    from .actions import plan_rerun_failed, plan_rerun_from

    async def go(store: RunStore) -> int:
        if args.from_task:
            plan = await plan_rerun_from(store, args.run, args.from_task, force=args.force)
        else:
            plan = await plan_rerun_failed(store, args.run, force=args.force)
        return await _run_plan(args, store, plan)

    return asyncio.run(_with_store(args, go))
