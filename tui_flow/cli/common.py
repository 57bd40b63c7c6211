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
    from .config import Config


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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> float:
    """An argparse `type=`: a duration as a number and a unit, `90s`, `45m`, `12h`, `30d`,
    `2w` (combinations such as `1d12h` too), in seconds."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhdw])", text.strip().lower())
    rebuilt = "".join(f"{n}{u}" for n, u in parts)
    if not parts or rebuilt != re.sub(r"\s+", "", text.strip().lower()):
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90m, 12h, 30d or 2w, got {text!r}"
        )
    return sum(float(n) * _UNITS[u] for n, u in parts)


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


def config(args: argparse.Namespace) -> Config:
    """The configuration file and environment in force for this command (read once, when
    the command runs: `--help` never reads it). See `cli/config.py`."""
    found = getattr(args, "_config", None)
    if found is None:
        from .config import load

        found = args._config = load()
    return found


def db_path(args: argparse.Namespace) -> str:
    """The run database: `--db`, else $TUI_FLOW_DB or the configuration file's, else
    `.tui-flow/runs.db` here, or the user's state directory when here cannot hold it (said
    once, on stderr)."""
    found = getattr(args, "_db_path", None)
    if found is None:
        found = getattr(args, "db", None) or config(args).db()
        if found is None:
            from ..errors import err
            from ..store.schema import default_location

            path, why = default_location()
            if why is not None:
                err(f"note: {why}; runs are recorded in {path}")
            found = str(path)
        args._db_path = found
    return found


def run_options(args: argparse.Namespace, *, stored: bool = False) -> RunOptions:
    """The run asked for, typed (for run, resume, rerun and the app): the command line, then
    the configuration (`config`). A resume or re-run (`stored`) keeps the stored run's
    concurrency and context unless the command line says otherwise."""
    from ..runs import RunOptions

    settings = config(args).settings
    record = not getattr(args, "no_store", False)
    log_level = getattr(args, "log_level", None) or settings.log_level
    if log_level is not None:  # process-wide, as logging is: the app's runs too
        from ..engine.logs import capture

        capture.set_level(log_level)
    events_jsonl = getattr(args, "events_jsonl", None)
    if events_jsonl == "-" and getattr(args, "json", False):
        raise BadInput(
            "--events-jsonl - and --json both write to standard output; give --events-jsonl a file"
        )
    max_concurrency = getattr(args, "max_concurrency", None)
    context = parse_sets(getattr(args, "set", None))
    if not stored:
        if max_concurrency is None:
            max_concurrency = settings.max_concurrency
        context = {**settings.set, **context}
    return RunOptions(
        max_concurrency=max_concurrency,
        context=context,
        db=db_path(args) if record else getattr(args, "db", None),
        record=record,
        executor=getattr(args, "executor", None) or settings.executor,
        scheduler=getattr(args, "scheduler", None) or settings.dask_scheduler,
        json=getattr(args, "json", False),
        plain=True if getattr(args, "plain", False) else None,
        logs=not getattr(args, "no_logs", False),
        events_jsonl=events_jsonl,
        otel=getattr(args, "otel", None) or settings.otel,
    )


def context_defaults(args: argparse.Namespace) -> dict[str, Any]:
    """The initial context: the configuration's `set`, then `--set` (for compare)."""
    return {**config(args).settings.set, **parse_sets(getattr(args, "set", None))}


def load_workflow(path: str, name: str | None) -> Workflow:
    from ..loader import load

    return load(path).workflow(name)


def no_terminal() -> bool:
    """True when the app cannot be shown: not a TTY, CI, or a dumb terminal. An app served to
    a browser (`tui-flow serve`: textual-serve's web driver) has a screen all the same."""
    if os.environ.get("TEXTUAL_DRIVER", "").endswith(":WebDriver"):
        return False
    return (
        not sys.stdout.isatty()
        or not sys.stdin.isatty()
        or bool(os.environ.get("CI"))
        or os.environ.get("TERM") == "dumb"
    )
