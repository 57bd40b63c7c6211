"""Shared fixtures: where the repository and its example flows are, and running the CLI;
the Hypothesis profile."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from tui_flow import provided

# An installed tui-flow's tui_flow_compat.pth provides `import cloaca` and `import taskinity`
# to every import of the interpreter (for `python file.py`); in here the tests check what the
# loader provides on its own (test_compat_cloaca.py runs the .pth in a process of its own).
provided.uninstall()

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"

# Hypothesis keeps the examples that failed in tests/.hypothesis-db, committed with the code:
# a counterexample found once (here or in CI) is tried first on every run after, for good.
# Runs and processes take their time: no deadline per example.
settings.register_profile(
    "tui-flow",
    database=DirectoryBasedExampleDatabase(Path(__file__).parent / ".hypothesis-db"),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("tui-flow")


@pytest.fixture
def flows_dir() -> Path:
    """The folder of the example flows."""
    return FLOWS


@pytest.fixture
def write_flow(tmp_path: Path) -> Callable[..., Path]:
    """Write a (dedented) workflow file into a fresh folder and return its path."""

    def write(source: str, name: str = "flow.py") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
        return path

    return write


class Ran(subprocess.CompletedProcess[str]):
    """What `cli(...)` gives back: a CompletedProcess that also unpacks as (code, out, err)."""

    def __iter__(self) -> Iterator[Any]:
        return iter((self.returncode, self.stdout, self.stderr))


class CLI:
    """Run the command line as `tui-flow ARGS` would, without a terminal (CI=true, NO_COLOR).

    `cli(*args)` runs it in this process (`main(argv)`, output captured): fast, and what most
    tests need. `cli.process(*args)` starts a real process: for what only a process shows
    (exit with a stuck thread, signals, the interpreter's own start and end)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Ran:
        from tui_flow.cli import dispatch

        out, err = io.StringIO(), io.StringIO()
        with self._monkeypatch.context() as m:
            for key, value in {"CI": "true", "NO_COLOR": "1", **(env or {})}.items():
                m.setenv(key, value)
            m.chdir(cwd or ROOT)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = dispatch(list(args))
                except SystemExit as exc:  # argparse: --help, --version, a bad value
                    code = exc.code if isinstance(exc.code, int) else 2
        return Ran(list(args), code, out.getvalue(), err.getvalue())

    def process(
        self,
        *args: str,
        timeout: float = 60,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true", NO_COLOR="1", **(env or {}))
        return subprocess.run(
            [sys.executable, "-m", "tui_flow.cli", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            cwd=cwd or ROOT,
        )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CLI:
    """The command line (see `CLI`)."""
    return CLI(monkeypatch)


@pytest.fixture
def line_of() -> Callable[[Path, str], int]:
    """`line_of(path, marker)`: the 1-based number of the first line containing `marker`."""

    def find(path: Path, marker: str) -> int:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if marker in line:
                return number
        raise AssertionError(f"{marker!r} not found in {path}")

    return find
