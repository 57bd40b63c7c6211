"""What every command shares: the one-line error, checked values (`type=` functions for
argparse), and the typed options of a run built once from the parsed arguments."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import BadInput
from ..status import EXIT_BAD_INPUT

if TYPE_CHECKING:
    from ..runs import RunOptions
    from ..workflow import Workflow


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


def run_options(args: argparse.Namespace) -> RunOptions:
    """The run asked for on the command line, typed (for run, resume, rerun and the app)."""
    from ..runs import RunOptions

    return RunOptions(
        max_concurrency=getattr(args, "max_concurrency", None),
        context=parse_sets(getattr(args, "set", None)),
        db=getattr(args, "db", None),
        record=not getattr(args, "no_store", False),
        executor=getattr(args, "executor", None),
        scheduler=getattr(args, "scheduler", None),
        json=getattr(args, "json", False),
        plain=True if getattr(args, "plain", False) else None,
        logs=not getattr(args, "no_logs", False),
    )


def load_workflow(path: str, name: str | None) -> Workflow:
    from ..loader import load

    return load(path).workflow(name)


def no_terminal() -> bool:
    """True when the app cannot be shown: not a TTY, CI, or a dumb terminal."""
    return (
        not sys.stdout.isatty()
        or not sys.stdin.isatty()
        or bool(os.environ.get("CI"))
        or os.environ.get("TERM") == "dumb"
    )
