"""Letting go of stored runs: `tui-flow history --prune` and `tui-flow forget RUN...`.

    tui-flow history --prune [--keep N] [--older-than DURATION] [--workflow NAME] [--dry-run]
    tui-flow forget RUN [RUN ...]

Both delete the runs with everything recorded of them, then vacuum the database so the file
shrinks (`store/retention.py`). A run still going on is never pruned, and `forget` refuses
it (exit 2). `--json` prints `{"schema": 2, "deleted": [...], "bytes_before": ...,
"bytes_after": ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from ..engine.result import SCHEMA_VERSION
from ..errors import BadInput
from ..status import EXIT_OK
from ..store.sqlite import RunStore
from .common import db_path


def _size(path: Path) -> int:
    """The database's bytes on disk, its write-ahead log included."""
    total = 0
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    return total


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


async def _delete(store: RunStore, run_ids: list[str], dry_run: bool) -> tuple[int, int]:
    """Delete the runs and vacuum (also with nothing to delete, when the file has free pages:
    a migrated database's); the database's size before and after."""
    before = _size(store.path)
    if dry_run or not (run_ids or await store.free_pages()):
        return before, before
    await store.forget(run_ids)
    await store.vacuum()
    return before, _size(store.path)


def _report(
    out: TextIO, as_json: bool, run_ids: list[str], sizes: tuple[int, int], dry_run: bool
) -> None:
    if as_json:
        doc = {
            "schema": SCHEMA_VERSION,
            "deleted": [] if dry_run else run_ids,
            "would_delete": run_ids if dry_run else [],
            "bytes_before": sizes[0],
            "bytes_after": sizes[1],
        }
        out.write(json.dumps(doc) + "\n")
        return
    if dry_run:
        out.write(f"would delete {len(run_ids)} run(s)" + (":\n" if run_ids else "\n"))
        out.writelines(f"  {r}\n" for r in run_ids)
        return
    if not run_ids:
        shrunk = f"; the database went from {_mb(sizes[0])} to {_mb(sizes[1])}"
        out.write("nothing to delete" + (shrunk if sizes[1] < sizes[0] else "") + "\n")
        return
    out.write(
        f"deleted {len(run_ids)} run(s); the database went from {_mb(sizes[0])} to "
        f"{_mb(sizes[1])}\n"
    )


def cmd_prune(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`tui-flow history --prune`."""
    out = out or sys.stdout
    if not args.prune:
        raise BadInput("--keep goes with --prune (tui-flow history --prune --keep N)")
    if args.keep is None and args.older_than is None:
        raise BadInput(
            "--prune needs --keep N (keep the N newest runs) and/or --older-than DURATION "
            "(delete runs started longer ago, e.g. 30d)"
        )
    before = None if args.older_than is None else time.time() - args.older_than

    async def go() -> int:
        store = await RunStore.open(db_path(args))
        try:
            ids = await store.prunable(keep=args.keep, before=before, workflow=args.workflow)
            sizes = await _delete(store, ids, args.dry_run)
        finally:
            await store.close()
        _report(out, args.json, ids, sizes, args.dry_run)
        return EXIT_OK

    return asyncio.run(go())


def cmd_forget(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`tui-flow forget RUN...`: every RUN is resolved first; one that cannot be (or is still
    going on) deletes nothing."""
    out = out or sys.stdout

    async def go() -> int:
        store = await RunStore.open(db_path(args))
        try:
            ids: list[str] = []
            for ref in args.runs:
                run = await store.resolve(ref)
                if run.status == "running":
                    raise BadInput(
                        f"run {run.run_id} is still going on (pid {run.owner_pid}); stop it "
                        f"first. Nothing was deleted."
                    )
                if run.run_id not in ids:
                    ids.append(run.run_id)
            sizes = await _delete(store, ids, False)
        finally:
            await store.close()
        _report(out, args.json, ids, sizes, False)
        return EXIT_OK

    return asyncio.run(go())
