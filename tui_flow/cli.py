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
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from .errors import BadInput, LoadError, TuiFlowError, ValidationError
from .runs import EXECUTORS
from .status import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK

COMMAND_MODULES = ("tui_flow.store.commands", "tui_flow.dsl_commands", "tui_flow.compare")
CORE_COMMANDS = {"run", "validate"}


def err(msg: str) -> None:
    print(f"tui-flow: {msg}", file=sys.stderr)


class ArgParser(argparse.ArgumentParser):
    """argparse with a one-line error (what is wrong, where the usage is) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _whole_number(text: str, low: int) -> int:
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or n < low:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least {low}, got {text!r}")
    return n


def whole_number(low: int = 1) -> Callable[[str], int]:
    """An argparse `type=` for a numeric option: a whole number of at least `low`.

    Anything else is argparse's error naming the option and the value (exit code 2)."""

    def parse(text: str) -> int:
        return _whole_number(text, low)

    return parse


def whole_numbers(low: int = 1) -> Callable[[str], list[int]]:
    """An argparse `type=`: comma-separated whole numbers (`1,2,4`), each at least `low`."""

    def parse(text: str) -> list[int]:
        try:
            return [_whole_number(part.strip(), low) for part in text.split(",")]
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{exc} in {text!r}") from None

    return parse


def set_pair(text: str) -> tuple[str, Any]:
    """An argparse `type=` for `--set KEY=JSON`: the key and its value (JSON, else the text)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        why = "the key is empty" if sep else "no '='"
        raise argparse.ArgumentTypeError(f"expected KEY=JSON, got {text!r} ({why})")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def parse_sets(pairs: Iterable[tuple[str, Any] | str] | None) -> dict[str, Any]:
    """The initial context from `--set` pairs (as `set_pair` parsed them, or as typed)."""
    out: dict[str, Any] = {}
    for pair in pairs or ():
        if isinstance(pair, str):
            try:
                pair = set_pair(pair)
            except argparse.ArgumentTypeError as exc:
                raise BadInput(f"--set: {exc}") from None
        key, value = pair
        out[key] = value
    return out


def add_workflow_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="workflow file (.py or .flow)")
    p.add_argument("--workflow", "-w", help="which workflow, when the file holds several")
    p.add_argument(
        "--max-concurrency", "-j", type=whole_number(1), help="override the workflow's limit"
    )
    p.add_argument(
        "--set", action="append", type=set_pair, metavar="KEY=JSON", help="initial context value"
    )
    p.add_argument("--db", help="run database (default .tui-flow/runs.db or $TUI_FLOW_DB)")
    p.add_argument("--no-store", action="store_true", help="do not record the run")
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="where sync bodies run (default local; dask needs tui-flow[dask])",
    )
    p.add_argument("--scheduler", help="Dask scheduler address (default: a LocalCluster)")


def load_workflow(path: str, name: str | None) -> Any:
    from .loader import load

    return load(path).workflow(name)


def cmd_run(args: argparse.Namespace) -> int:
    from .runs import run_headless

    workflow = load_workflow(args.file, args.workflow)
    return asyncio.run(run_headless(args, workflow, context=parse_sets(args.set)))


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
    parser = ArgParser(
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
    p = ArgParser(prog="tui-flow", description="Open the app on a workflow file.")
    add_workflow_args(p)
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_app)
    return p


def _exit_past_stuck_threads(code: int) -> int:
    """A timed-out or cancelled thread body cannot be stopped, and the interpreter would wait
    for it at exit forever. The run is over and recorded, so leave without waiting."""
    scheduler = sys.modules.get("tui_flow.engine.scheduler")  # loaded if anything ran
    if scheduler is not None and scheduler.bodies_still_running():
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
