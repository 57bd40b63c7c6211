"""The shape of the package stays as DESIGN.md draws it: imports go one way down the layers,
no package has cycles between its modules, nothing headless loads Textual, and the command
line starts light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_in_pyproject_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

    monkeypatch.chdir(ROOT)  # the contracts are read from pyproject.toml
    monkeypatch.syspath_prepend(str(ROOT))
    code = lint_imports(config_filename="pyproject.toml", no_logo=True, no_cache=True)
    assert code == EXIT_STATUS_SUCCESS


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import tui_flow; tui_flow.Workflow, tui_flow.run, tui_flow.load",
        "import tui_flow.engine, tui_flow.runs, tui_flow.console, tui_flow.store",
        "import tui_flow.cli.run, tui_flow.cli.store, tui_flow.cli.export, tui_flow.cli.compare",
    ],
)
def test_nothing_headless_loads_textual(code: str) -> None:
    loaded = _loaded_after(code)
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}


def test_the_command_line_starts_light() -> None:
    """`tui-flow --help` and `--version` build the parser only: no engine, no pydantic."""
    loaded = _loaded_after("import tui_flow.cli as c; c.build_parser(); c.app_parser()")
    # (tui_flow.provided: the compat .pth of an installed tui-flow imports it at every start)
    ours = {m for m in loaded if m.startswith("tui_flow")} - {"tui_flow.provided"}
    assert ours == {"tui_flow", "tui_flow.cli", "tui_flow.cli.common", "tui_flow.errors"} | {
        "tui_flow.status"
    }
    assert not loaded & {"pydantic", "networkx", "rich", "textual", "asyncio"}
