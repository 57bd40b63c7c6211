"""NO_COLOR holds for every headless output, on a terminal (a pseudo-terminal here) and off
one: styles such as bold may stay, colours go (https://no-color.org)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FLOW = """
import logging
from tui_flow import Context, task

@task(retry_attempts=1)
def flaky(context: Context) -> None:
    logging.getLogger("x").error("an error line")  # red on a colour terminal
    raise ValueError("no luck")

@task(dependencies=[flaky], trigger_rule="all_done")
def after(context: Context) -> None:
    print("done")
"""

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def colours(text: str) -> set[str]:
    """The colour parameters of the SGR escape codes in `text` (foreground, background)."""
    found = set()
    for params in SGR.findall(text):
        for p in params.split(";"):
            if p.isdigit() and (30 <= int(p) <= 48 or 90 <= int(p) <= 107) and int(p) != 39:
                found.add(p)
    return found


def on_terminal(args: list[str], cwd: Path, no_color: bool) -> tuple[int, str]:
    """Run `tui-flow ARGS` with its stdout and stderr on a pseudo-terminal; (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CI", "FORCE_COLOR")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm-256color", COLORTERM="truecolor")
    if no_color:
        env["NO_COLOR"] = "1"
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_flow.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return proc.wait(timeout=30), out.decode(errors="replace")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the flow and a database holding one run of it."""
    folder = tmp_path_factory.mktemp("nocolor")
    (folder / "flow.py").write_text(FLOW)
    subprocess.run(
        [sys.executable, "-m", "tui_flow.cli", "run", "flow.py", "--db", "runs.db"],
        cwd=folder,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        timeout=60,
    )
    return folder


COMMANDS = {
    "run": ["run", "flow.py", "--no-store"],
    "app without a terminal for input": ["flow.py", "--no-store"],
    "history": ["history", "--db", "runs.db"],
    "show": ["show", "last", "--db", "runs.db"],
    "show --logs": ["show", "last", "--db", "runs.db", "--logs", "flaky"],
    "compare": ["compare", "flow.py", "-c", "1"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_no_color_on_a_terminal_leaves_styles_and_no_colours(recorded: Path, name: str) -> None:
    code, coloured = on_terminal(COMMANDS[name], recorded, no_color=False)
    assert code in (0, 1), coloured
    assert colours(coloured), f"{name}: no colours on a terminal to begin with:\n{coloured}"
    code, out = on_terminal(COMMANDS[name], recorded, no_color=True)
    assert code in (0, 1), out
    assert SGR.search(out), f"{name}: the output is not styled at all (is it a terminal?)"
    assert colours(out) == set(), f"{name} printed colours under NO_COLOR:\n{out!r}"


@pytest.mark.parametrize("name", ["run", "show", "compare"])  # each way a console is made
def test_off_a_terminal_there_are_no_escape_codes(recorded: Path, name: str) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "tui_flow.cli", *COMMANDS[name]],
        cwd=recorded,
        env=dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", NO_COLOR="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode in (0, 1), p.stderr
    assert p.stdout and "\x1b" not in p.stdout + p.stderr
