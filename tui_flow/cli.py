"""`tui-flow`: the command line.

    tui-flow FILE [--workflow NAME] [--max-concurrency N] [--db PATH]   open the app
    tui-flow run FILE [...] [--json] [--plain]                          run headless
    tui-flow validate FILE                                              check a workflow file

Other commands (history, show, resume, rerun, export, compare) register themselves from
their own modules through `COMMAND_MODULES`, each exposing `register(subparsers)`.

Exit codes: 0 completed, 1 failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .errors import LoadError, TuiFlowError, ValidationError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_FOR_STATUS = {"completed": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_INTERRUPTED}

COMMAND_MODULES = ("tui_flow.store.commands", "tui_flow.dsl_commands", "tui_flow.compare")
CORE_COMMANDS = {"run", "validate"}


class BadInput(TuiFlowError):
    """Input the user must fix (exit code 2)."""


def err(msg: str) -> None:
    print(f"tui-flow: {msg}", file=sys.stderr)


def parse_sets(pairs: Sequence[str] | None) -> dict[str, Any]:
    """`--set key=json` pairs; a value that is not JSON is taken as a string."""
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--set expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def add_workflow_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="workflow file (.py or .flow)")
    p.add_argument("--workflow", "-w", help="which workflow, when the file holds several")
    p.add_argument("--max-concurrency", "-j", type=int, help="override the workflow's limit")
    p.add_argument("--set", action="append", metavar="KEY=JSON", help="initial context value")
    p.add_argument("--db", help="run database (default .tui-flow/runs.db or $TUI_FLOW_DB)")
    p.add_argument("--no-store", action="store_true", help="do not record the run")
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default=None,
        help="where sync bodies run (default local; dask needs tui-flow[dask])",
    )
    p.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")


def load_workflow(path: str, name: str | None) -> Any:
    from .loader import load

    return load(path).workflow(name)


async def open_store(args: argparse.Namespace) -> Any:
    """The run store for this command, or None when disabled or not available."""
    if getattr(args, "no_store", False):
        return None
    try:
        from .store.sqlite import RunStore
    except ImportError:
        return None
    return await RunStore.open(getattr(args, "db", None))


def remote_runner(args: argparse.Namespace) -> Any:
    """The remote runner asked for with --executor (None for local)."""
    executor = getattr(args, "executor", None) or os.environ.get("TUI_FLOW_EXECUTOR") or "local"
    if executor == "local":
        return None
    from .engine.dask_runner import make_dask_runner

    return make_dask_runner(getattr(args, "scheduler", None))


async def run_headless(
    args: argparse.Namespace,
    workflow: Any,
    *,
    context: dict[str, Any] | None = None,
    reuse: dict[str, dict[str, Any]] | None = None,
    resumed_from: str | None = None,
    run_id: str | None = None,
    store: Any = None,
) -> int:
    """Run with console output (or JSON); return the exit code. Ctrl-C cancels the run."""
    from .console import ConsoleReporter, print_report
    from .engine import Execution

    as_json = getattr(args, "json", False)
    plain = True if getattr(args, "plain", False) else None
    subscribers: list[Any] = []
    reporter = None
    if not as_json:
        reporter = ConsoleReporter(plain=plain, logs=not getattr(args, "no_logs", False))
        subscribers.append(reporter)
    own_store = store is None
    if store is None:
        store = await open_store(args)
    remote = remote_runner(args)
    try:
        if remote is not None and hasattr(remote, "start"):
            await remote.start()  # connect before the run, so no attempt pays for it
        execution = Execution(
            workflow,
            context if context is not None else parse_sets(getattr(args, "set", None)),
            max_concurrency=getattr(args, "max_concurrency", None),
            subscribers=subscribers,
            reuse=reuse,
            resumed_from=resumed_from,
            run_id=run_id,
            remote=remote,
        )
        if store is not None:
            execution.subscribe(store.recorder(execution.view))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, execution.cancel)
            loop.add_signal_handler(signal.SIGTERM, execution.cancel)
        execution.start()
        result = await execution.wait()
    finally:
        with contextlib.suppress(Exception):
            loop = asyncio.get_running_loop()
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
        if store is not None and own_store:
            await store.close()
        if remote is not None and hasattr(remote, "close"):
            await remote.close()
    if reporter is not None:
        reporter.flush()  # whatever the last events wrote goes before the report
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), default=str) + "\n")
    else:
        print_report(result.report, result.workflow, result.status, result.run_id, plain=plain)
    for msg in result.subscriber_errors:
        err(f"warning: {msg}")
    return EXIT_FOR_STATUS.get(result.status, EXIT_FAILED)


def cmd_run(args: argparse.Namespace) -> int:
    workflow = load_workflow(args.file, args.workflow)
    return asyncio.run(run_headless(args, workflow))


def cmd_validate(args: argparse.Namespace) -> int:
    from .loader import load

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
            print(f"    {tid}{deps}  [{', '.join(extra)}]")
    print("ok")
    return EXIT_OK


def no_terminal() -> bool:
    """True when the app cannot be shown: not a TTY, CI, or a dumb terminal."""
    return (
        not sys.stdout.isatty()
        or not sys.stdin.isatty()
        or bool(os.environ.get("CI"))
        or os.environ.get("TERM") == "dumb"
    )


def cmd_app(args: argparse.Namespace) -> int:
    if no_terminal():
        return cmd_run(args)
    try:
        from .ui.app import run_app
    except ImportError:
        return cmd_run(args)
    return run_app(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tui-flow",
        description="Write, run and watch parallel Python workflows from a terminal.",
        epilog="Open the app: tui-flow FILE. Exit codes: 0 ok, 1 failed, 2 bad input, "
        "130 interrupted.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"tui-flow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a workflow without the app")
    add_workflow_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--plain", action="store_true", help="plain text, no colours")
    p.add_argument("--no-logs", action="store_true", help="do not print task log lines")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check a workflow file and print its stages")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def app_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tui-flow", description="Open the app on a workflow file.")
    add_workflow_args(p)
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_app)
    return p


def _exit_past_stuck_threads(code: int) -> int:
    """A timed-out or cancelled thread body cannot be stopped, and the interpreter would wait
    for it at exit forever. The run is over and recorded, so leave without waiting."""
    stuck = [t for t in threading.enumerate() if t.name.startswith("tui-flow-") and t.is_alive()]
    if stuck:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    return _exit_past_stuck_threads(_main(argv))


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices) if parser._subparsers else set()  # type: ignore[union-attr]
    if argv and not argv[0].startswith("-") and argv[0] not in commands:
        args = app_parser().parse_args(argv)
    else:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_BAD_INPUT
    try:
        return int(args.func(args))
    except ValidationError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    except LoadError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    except BadInput as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except TuiFlowError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
