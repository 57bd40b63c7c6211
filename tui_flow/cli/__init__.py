"""`tui-flow`: the command line.

    tui-flow FILE [--workflow NAME] [-j N] [--set KEY=JSON] [--db PATH]   open the app
    tui-flow run FILE [...] [--json] [--plain]                            run headless
    tui-flow validate FILE | export FILE | compare FILE                   workflow files
    tui-flow serve FILE [--host ADDR] [--port N]                          the app in a browser
    tui-flow history | show RUN | resume RUN | rerun RUN                  stored runs

Every command and its arguments are declared here; the module that carries a command out is
imported only when that command runs (`COMMANDS`), so `--help` and `--version` load little.

Exit codes: 0 completed, 1 failed, 2 bad input, 130 interrupted (128 + the signal for
SIGTERM/SIGHUP), 141 standard output closed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from ..errors import BadInput, LoadError, TuiFlowError, ValidationError, err
from ..status import EXIT_BAD_INPUT, EXIT_INTERRUPTED
from .common import ArgParser, duration, set_pair, whole_number, whole_numbers

# command -> (module that carries it out, its function, one line of help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("run", "cmd_run", "run a workflow without the app"),
    "validate": ("run", "cmd_validate", "check a workflow file and print its stages"),
    "history": ("store", "cmd_history", "list recent runs (--prune: delete old ones)"),
    "forget": ("retention", "cmd_forget", "delete stored runs and all recorded of them"),
    "show": ("store", "cmd_show", "the report of a past run (or a task's log)"),
    "resume": ("store", "cmd_resume", "continue an interrupted or failed run in place"),
    "rerun": ("store", "cmd_rerun", "a new run re-running what failed, or from a task on"),
    "export": ("export", "cmd_export", "write a workflow out as a .flow file or a Mermaid graph"),
    "compare": ("compare", "cmd_compare", "run a workflow at several concurrencies, compare"),
    "serve": ("serve", "cmd_serve", "the app in a browser (textual-serve), on 127.0.0.1"),
    "schema": ("schema", "cmd_schema", "print the JSON Schema of a --json output"),
    "completion": ("completion", "cmd_completion", "print the shell code of tab completion"),
}
# the JSON documents `--json` prints, as `tui-flow schema` names them (tui_flow/documents.py)
DOCUMENTS = ("run", "show", "history", "logs", "compare")
SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")  # what `tui-flow completion` knows
APP = ("run", "cmd_app")


# -- arguments ----------------------------------------------------------------------------------


def _workflow_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="workflow file (.py or .flow)")
    p.add_argument(
        "--workflow", "-w", metavar="NAME", help="which workflow, when the file holds several"
    )


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help="run database (default: $TUI_FLOW_DB, the config's db, else .tui-flow/runs.db)",
    )


def _log_level(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        type=str.lower,
        choices=("debug", "info", "warning", "error", "critical"),
        metavar="LEVEL",
        help="the lowest level of `logging` records kept in tasks' logs: debug, info "
        "(default), warning, error, critical",
    )


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        metavar="{local,dask}",
        help="where sync bodies run (default: $TUI_FLOW_EXECUTOR, the config's executor, else "
        "local; dask needs tui-flow[dask])",
    )
    p.add_argument(
        "--scheduler", metavar="ADDR", help="Dask scheduler address (default: a LocalCluster)"
    )


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument("--plain", action="store_true", help="plain text, no colours")
    p.add_argument("--no-logs", action="store_true", help="do not print task log lines")
    p.add_argument(
        "--events-jsonl",
        metavar="FILE",
        help="write every event of the run to FILE, one JSON object per line ('-': standard "
        "output, instead of the run's lines and report)",
    )
    p.add_argument(
        "--otel",
        nargs="?",
        const="otlp",
        choices=("otlp", "console"),
        help="OpenTelemetry spans, a span per run and per attempt (needs tui-flow[otel]): "
        "otlp (default; opentelemetry-exporter-otlp, OTEL_* variables) or console (stderr)",
    )


def add_workflow_args(p: argparse.ArgumentParser) -> None:
    """What a run of a workflow file takes (the app and `run`)."""
    _workflow_file(p)
    p.add_argument(
        "--max-concurrency",
        "-j",
        type=whole_number(1),
        metavar="N",
        help="override the workflow's limit (default: the config's max-concurrency)",
    )
    p.add_argument(
        "--set",
        action="append",
        type=set_pair,
        metavar="KEY=JSON",
        help="initial context value, repeatable (over the config's [set])",
    )
    _db(p)
    p.add_argument("--no-store", action="store_true", help="do not record the run")
    _where(p)
    _log_level(p)


def _stored_run(p: argparse.ArgumentParser) -> None:
    """What resume and rerun take."""
    p.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")
    _db(p)
    p.add_argument("--force", action="store_true", help="go ahead even if the file changed")
    p.add_argument(
        "--max-concurrency",
        "-j",
        type=whole_number(1),
        metavar="N",
        help="override the run's limit",
    )
    _output(p)
    _where(p)
    _log_level(p)


def _arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "run":
        add_workflow_args(p)
        _output(p)
    elif name == "validate":
        p.add_argument("file", help="workflow file (.py or .flow)")
    elif name == "history":
        _db(p)
        p.add_argument("--workflow", "-w", help="only runs of this workflow")
        p.add_argument(
            "--limit", "-n", type=whole_number(1), default=20, help="how many runs (default 20)"
        )
        p.add_argument("--json", action="store_true", help="print a JSON list")
        p.add_argument("--plain", action="store_true", help="plain text, no colours")
        prune = p.add_argument_group(
            "pruning",
            "--prune deletes the stored runs that are neither among the --keep newest nor "
            "younger than --older-than (of --workflow, when given; runs going on are kept), "
            "then vacuums the database",
        )
        prune.add_argument("--prune", action="store_true", help="delete old runs")
        prune.add_argument(
            "--keep", type=whole_number(0), metavar="N", help="keep the N newest runs"
        )
        prune.add_argument(
            "--older-than",
            type=duration,
            metavar="DURATION",
            help="delete runs started longer ago than this (90m, 12h, 30d, 2w)",
        )
        prune.add_argument(
            "--dry-run", action="store_true", help="list what --prune would delete, delete nothing"
        )
    elif name == "forget":
        p.add_argument("runs", nargs="+", metavar="RUN", help="run id, unique prefix, or 'last'")
        _db(p)
        p.add_argument("--json", action="store_true", help="print what was deleted as JSON")
    elif name == "show":
        p.add_argument("run", metavar="RUN", help="run id, unique prefix, or 'last'")
        _db(p)
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument("--logs", metavar="TASK", help="print TASK's log, attempt by attempt")
        p.add_argument("--plain", action="store_true", help="plain text, no colours")
    elif name == "resume":
        _stored_run(p)
    elif name == "rerun":
        _stored_run(p)
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--failed", action="store_true", help="re-run what did not complete")
        which.add_argument("--from", dest="from_task", metavar="TASK", help="TASK and downstream")
    elif name == "export":
        p.description = "Write a workflow (from a .py or .flow file) out as DSL text or Mermaid."
        p.add_argument("file", help="workflow file (.py or .flow)")
        p.add_argument(
            "--format",
            "-f",
            choices=("flow", "mermaid"),
            default="flow",
            help="flow: the text DSL (default); mermaid: a Mermaid flowchart",
        )
        p.add_argument("--workflow", "-w", help="which workflow, when the file holds several")
        p.add_argument("--output", "-o", help="write to this file instead of standard output")
    elif name == "compare":
        p.description = (
            "Run a workflow at each concurrency (1 is always the baseline) and print wall "
            "time, speedup, the speedup possible there and the share of it reached."
        )
        _workflow_file(p)
        p.add_argument(
            "--concurrency",
            "-c",
            type=whole_numbers(1),
            default=[1, 2, 4],
            help="comma-separated settings (default 1,2,4)",
        )
        p.add_argument(
            "--set",
            action="append",
            type=set_pair,
            metavar="KEY=JSON",
            help="initial context value",
        )
        p.add_argument(
            "--repeat", "-r", type=whole_number(1), default=1, help="runs per setting (median)"
        )
        p.add_argument(
            "--json", action="store_true", help="print the comparison as one JSON object"
        )
    elif name == "serve":
        p.description = (
            "Serve the app on a workflow file to browsers (textual-serve; pip install "
            '"tui-flow[serve]"): each browser gets its own app. Whoever opens the page can run '
            "the workflow's code on this machine: 127.0.0.1 unless --host says otherwise."
        )
        add_workflow_args(p)
        p.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
        )
        p.add_argument(
            "--port", type=whole_number(1), default=8000, help="port to listen on (default 8000)"
        )
        p.add_argument(
            "--present", action="store_true", help="each browser's app in presenter mode"
        )
    elif name == "schema":
        p.description = (
            "Print the JSON Schema of what --json prints: run (run, resume, rerun), show, "
            "history, logs (show RUN --logs TASK) or compare. Every document carries "
            '"schema": its version; within a version, fields are only added.'
        )
        p.add_argument("document", choices=DOCUMENTS, help="which output")
    elif name == "completion":
        p.description = (
            "Print the shell code that completes tui-flow's commands, options and workflow "
            'files; e.g. in ~/.bashrc: eval "$(tui-flow completion bash)" (zsh: the same in '
            "~/.zshrc)."
        )
        p.add_argument("shell", choices=SHELLS, help="which shell")


class MainParser(ArgParser):
    """The top-level parser; its help shows the app's options too (`tui-flow FILE [...]` is
    parsed by `app_parser`, since a file name cannot be told from a command by argparse)."""

    def format_help(self) -> str:
        formatter = self._get_formatter()
        formatter.add_usage(self.usage, self._actions, self._mutually_exclusive_groups)
        formatter.add_text(self.description)
        app = app_parser()
        formatter.start_section(
            "open the app: tui-flow FILE [options] (without a terminal: runs headless, as run)"
        )
        formatter.add_arguments(
            [a for a in app._actions if a.help != argparse.SUPPRESS and a.dest != "help"]
        )
        formatter.end_section()
        for group in self._action_groups:
            formatter.start_section(group.title)
            formatter.add_text(group.description)
            formatter.add_arguments(group._group_actions)
            formatter.end_section()
        formatter.add_text(self.epilog)
        return formatter.format_help()


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = MainParser(
        prog="tui-flow",
        usage="%(prog)s FILE [options]      open the app on a workflow file\n"
        "       %(prog)s COMMAND [options]   (%(prog)s COMMAND --help)",
        description="Write, run and watch parallel Python workflows from a terminal.",
        epilog="Defaults for --db, -j, --executor, --scheduler and --set can be set in the "
        "nearest tui-flow.toml, or pyproject.toml under [tool.tui-flow]; the command line "
        "wins. Exit codes: 0 ok, 1 failed, 2 bad input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"tui-flow {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", prog="tui-flow", parser_class=ArgParser
    )
    for name, (_, _, help_text) in COMMANDS.items():
        _arguments(name, sub.add_parser(name, help=help_text))
    return parser


def app_parser() -> argparse.ArgumentParser:
    p = ArgParser(prog="tui-flow", description="Open the app on a workflow file.")
    add_workflow_args(p)
    p.add_argument(
        "--present",
        action="store_true",
        help="presenter mode: high contrast, more room, the keys pressed shown (p toggles)",
    )
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return p


# -- running a command --------------------------------------------------------------------------


def _exit_past_stuck_threads(code: int) -> int:
    """A timed-out or cancelled thread body cannot be stopped, and the interpreter would wait
    for it at exit forever. The run is over and recorded, so leave without waiting."""
    attempts = sys.modules.get("tui_flow.engine.attempts")  # loaded if anything ran
    if attempts is not None and attempts.bodies_still_running():
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """The `tui-flow` command: run it, then leave (past a stuck thread body, if any). Run by
    the shell for tab completion (`_ARGCOMPLETE` set), it answers that and exits."""
    if "_ARGCOMPLETE" in os.environ:
        importlib.import_module(f"{__name__}.completion").complete()
    return _exit_past_stuck_threads(dispatch(argv))


def dispatch(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, carry the command out, return its exit code (the process stays: what
    tests and tools call in process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        args = app_parser().parse_args(argv)
        module, function = APP
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        module, function, _ = COMMANDS[args.command]
    command = getattr(importlib.import_module(f"{__name__}.{module}"), function)
    try:
        return int(command(args))
    except (ValidationError, LoadError, BadInput) as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except TuiFlowError as exc:
        err(str(exc))
        return EXIT_BAD_INPUT
