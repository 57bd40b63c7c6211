"""Shell completion (argcomplete): `tui-flow completion SHELL` prints what to add to the
shell's start-up file, e.g. `eval "$(tui-flow completion bash)"` in ~/.bashrc.

The shell then runs `tui-flow` with `_ARGCOMPLETE` set for each completion: `main()` sends it
here before anything else, so a normal start never imports argcomplete. The first word
completes to a command or a workflow file; after a command, that command's options; after a
file, the app's options. Files complete to .py and .flow files (and folders).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from ..status import EXIT_OK
from . import COMMANDS, app_parser, build_parser

# loader.WORKFLOW_SUFFIXES, not imported: completion runs on every key press and stays light
WORKFLOW_SUFFIXES = (".py", ".flow", ".dsl", ".taskinity")


def cmd_completion(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["tui-flow"], shell=args.shell))
    return EXIT_OK


def complete(
    output_stream: TextIO | None = None, exit_method: Callable[[int], Any] = os._exit
) -> None:
    """Answer the shell's completion request ($COMP_LINE, $COMP_POINT) and exit."""
    import argcomplete

    line = os.environ.get("COMP_LINE", "")
    point = int(os.environ.get("COMP_POINT", len(line)))
    words = line[:point].split()
    if line[:point].endswith((" ", "\t")):
        words.append("")  # a new word is being started
    parser = _parser_for(words[1:])
    argcomplete.autocomplete(
        parser,
        output_stream=output_stream,
        exit_method=exit_method,
        always_complete_options=False,  # options when a '-' is typed
        default_completer=argcomplete.completers.SuppressCompleter(),
    )


def _parser_for(args: list[str]) -> argparse.ArgumentParser:
    """The parser that knows the words being completed (`args`: after the program's name)."""
    if len(args) <= 1:  # the first word: a command, a workflow file or a top-level option
        first = argparse.ArgumentParser(prog="tui-flow")
        first.add_argument("--version", action="store_true")
        target = first.add_argument("target", nargs="?")
        target.completer = _first_words  # type: ignore[attr-defined]
        return first
    parser = build_parser() if args[0] in COMMANDS or args[0].startswith("-") else app_parser()
    for action in _actions(parser):
        if action.dest == "file" or action.dest == "output":
            action.completer = workflow_files if action.dest == "file" else files  # type: ignore[attr-defined]
        elif action.dest == "db":
            action.completer = files  # type: ignore[attr-defined]
        elif action.dest == "executor":
            action.completer = lambda **_: ["local", "dask"]  # type: ignore[attr-defined]
        elif action.dest == "run":
            action.completer = lambda **_: ["last"]  # type: ignore[attr-defined]
    return parser


def _actions(parser: argparse.ArgumentParser) -> Iterable[argparse.Action]:
    """Every action of `parser` and of its commands."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def _first_words(prefix: str, **_: Any) -> list[str]:
    return [c for c in COMMANDS if c.startswith(prefix)] + workflow_files(prefix)


def files(prefix: str, **_: Any) -> list[str]:
    """Paths starting with `prefix` (folders end with '/')."""
    return _paths(prefix, lambda name: True)


def workflow_files(prefix: str, **_: Any) -> list[str]:
    """Workflow files (.py, .flow) starting with `prefix`, and folders (ending with '/')."""
    return _paths(prefix, lambda name: name.endswith(WORKFLOW_SUFFIXES))


def _paths(prefix: str, wanted: Callable[[str], bool]) -> list[str]:
    head = prefix[: prefix.rfind("/") + 1]  # the folder part, '' or ending with '/'
    tail = prefix[len(head) :]
    try:
        entries = list(os.scandir(os.path.expanduser(head) or "."))
    except OSError:
        return []
    out = []
    for entry in entries:
        if not entry.name.startswith(tail) or (entry.name.startswith(".") and not tail):
            continue
        if entry.is_dir():
            out.append(f"{head}{entry.name}/")
        elif wanted(entry.name):
            out.append(f"{head}{entry.name}")
    return sorted(out)
