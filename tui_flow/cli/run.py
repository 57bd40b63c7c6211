"""`tui-flow run FILE`, `tui-flow validate FILE`, and `tui-flow FILE` (the app; headless when
there is no terminal)."""

from __future__ import annotations

import argparse
import asyncio

from ..status import EXIT_OK
from .common import load_workflow, no_terminal, run_options


def cmd_run(args: argparse.Namespace) -> int:
    from ..runs import run_headless

    workflow = load_workflow(args.file, args.workflow)
    return asyncio.run(run_headless(workflow, run_options(args)))


def cmd_validate(args: argparse.Namespace) -> int:
    from ..loader import load

    loaded = load(args.file)
    for wf in loaded.workflows.values():
        print(f"workflow {wf.name!r}: {len(wf.tasks)} tasks, max concurrency {wf.max_concurrency}")
        if wf.description:
            print(f"  {wf.description}")
        for i, stage in enumerate(wf.stages, 1):
            print(f"  stage {i}: {', '.join(stage)}")
        for tid in wf.order:
            s = wf.tasks[tid].spec
            deps = f" <- {', '.join(s.dependencies)}" if s.dependencies else ""
            extra = []
            if s.retry_attempts:
                extra.append(f"retries {s.retry_attempts}")
            if s.trigger_rule != "all_success":
                extra.append(s.trigger_rule)
            if s.timeout_s:
                extra.append(f"timeout {s.timeout_s:g} s")
            extra.append(wf.tasks[tid].runner)
            if s.run_if is not None:
                extra.append(f"runs if {s.run_if}")
            print(f"    {tid}{deps}  [{', '.join(extra)}]")
        for what in getattr(wf, "not_scheduled", ()):
            print(f"  not scheduled by tui-flow: {what}")
        print("  results: a task's return value, when not None, is kept in the context under")
        print("  the task's id (a key the task also writes itself is an error)")
    print("ok")
    return EXIT_OK


def cmd_app(args: argparse.Namespace) -> int:
    if no_terminal():
        return cmd_run(args)
    try:
        from ..ui.app import run_app
    except ImportError:
        return cmd_run(args)
    present = bool(getattr(args, "present", False))
    return run_app(args.file, run_options(args), workflow=args.workflow, present=present)
