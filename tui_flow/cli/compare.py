"""`tui-flow compare FILE --concurrency 1,2,4`: the comparison table (see `tui_flow.compare`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..compare import Comparison, measure
from ..status import EXIT_FAILED, EXIT_OK, fmt_seconds, label, style
from .common import context_defaults, load_workflow


def render(cmp: Comparison) -> list[Any]:
    """The comparison as rich renderables."""
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold", show_edge=False, pad_edge=False)
    table.add_column("slots", justify="right")
    table.add_column("wall time", justify="right")
    table.add_column("speedup", justify="right")
    table.add_column("possible", justify="right")
    table.add_column("of possible", justify="right")
    table.add_column("busy", justify="right")
    table.add_column("status", no_wrap=True)
    for s in cmp.settings:
        table.add_row(
            str(s.concurrency),
            fmt_seconds(s.wall_s),
            f"{s.speedup:.2f}x",
            f"{s.bound:.2f}x",
            f"{s.of_possible:.0%}",
            f"{s.slot_utilisation:.0%}",
            Text(label(s.status), style=style(s.status)),
        )
    ctx = ", ".join(f"{k}={json.dumps(v)}" for k, v in cmp.context.items()) or "none"
    runs = f"{cmp.repeat} run{'s' if cmp.repeat != 1 else ''} per setting"
    head = Text(f"compare {cmp.workflow}  (context: {ctx}; {runs}, median shown)", style="bold")
    notes = Text(
        f"total task time {fmt_seconds(cmp.total_task_s)}; critical path "
        f"{' -> '.join(cmp.critical_path) or '-'} ({fmt_seconds(cmp.critical_path_s)}); "
        f"total / critical path {cmp.best_speedup:.2f}x\n"
        "slots = concurrency; speedup = wall time at 1 slot / wall time; possible = "
        "min(slots, total / critical path); busy = speedup / slots",
        style="dim",
    )
    return [head, table, notes]


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    levels = args.concurrency
    context = context_defaults(args)
    workflow = load_workflow(args.file, args.workflow)
    err = Console(file=sys.stderr, highlight=False)

    def progress(c: int, i: int, result: Any) -> None:
        took = fmt_seconds(result.finished_at - result.started_at)
        err.print(f"  concurrency {c}, run {i}/{args.repeat}: {took}  {label(result.status)}")

    cmp = asyncio.run(measure(workflow, context, levels, args.repeat, progress))
    if args.json:
        sys.stdout.write(json.dumps(cmp.to_json()) + "\n")
    else:
        out = Console(highlight=False)
        for r in render(cmp):
            out.print(r)
    return EXIT_OK if cmp.ok else EXIT_FAILED
