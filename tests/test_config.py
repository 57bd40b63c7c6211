"""The configuration file (`[tool.tui-flow]` in pyproject.toml, or tui-flow.toml): found from
the working directory up, below the environment and the command line, for `run`, the app,
`compare`, the store commands; one clear line for what is wrong in it. And the run database's
fallback to the user's state directory when the working directory cannot hold `.tui-flow/`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tui_flow.cli import app_parser, build_parser
from tui_flow.cli.common import run_options

FLOW = """
from tui_flow import Context, task

@task
def a(context: Context) -> None:
    seen = {key: context.get(key, default=None) for key in ("n", "m")}
    context.insert("seen", seen)
"""

PYPROJECT = """
[project]
name = "someone-else"

[tool.tui-flow]
db = "state/runs.db"
max-concurrency = 3

[tool.tui-flow.set]
n = 5
m = "five"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the config in pyproject.toml and the flow in a sub-folder."""
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "flow.py").write_text(FLOW)
    return tmp_path


def run_json(cli: Any, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Any:
    p = cli("run", "flow.py", "--json", *args, cwd=cwd, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_the_nearest_pyproject_sets_the_defaults_of_a_run(cli: Any, project: Path) -> None:
    doc = run_json(cli, cwd=project / "flows")
    assert doc["report"]["max_concurrency"] == 3
    assert doc["context"]["seen"] == {"n": 5, "m": "five"}
    # db is relative to the file's folder, not to the working directory
    p = cli("history", "--json", cwd=project / "flows")
    assert [r["run_id"] for r in json.loads(p.stdout)["runs"]] == [doc["run_id"]]
    assert (project / "state" / "runs.db").exists()
    assert not (project / "flows" / ".tui-flow").exists()


def test_the_command_line_wins_then_the_environment(cli: Any, project: Path) -> None:
    folder = project / "flows"
    doc = run_json(cli, "-j", "1", "--set", "n=6", "--db", "mine.db", cwd=folder)
    assert doc["report"]["max_concurrency"] == 1
    assert doc["context"]["seen"] == {"n": 6, "m": "five"}  # --set wins key by key
    assert (folder / "mine.db").exists()
    env = {"TUI_FLOW_MAX_CONCURRENCY": "2", "TUI_FLOW_SET": '{"m": "env"}'}
    doc = run_json(cli, "--no-store", cwd=folder, env=env)
    assert doc["report"]["max_concurrency"] == 2
    assert doc["context"]["seen"] == {"n": 5, "m": "env"}  # key by key, as --set


def test_tui_flow_toml_is_taken_over_pyproject_and_the_nearest_folder_wins(
    cli: Any, project: Path
) -> None:
    (project / "tui-flow.toml").write_text("max-concurrency = 4\n")
    doc = run_json(cli, "--no-store", cwd=project / "flows")
    assert doc["report"]["max_concurrency"] == 4 and doc["context"]["seen"]["n"] is None
    (project / "flows" / "pyproject.toml").write_text("[tool.tui-flow]\nmax_concurrency = 2\n")
    assert run_json(cli, "--no-store", cwd=project / "flows")["report"]["max_concurrency"] == 2
    (project / "flows" / "pyproject.toml").write_text("[tool.black]\nline-length = 90\n")
    assert run_json(cli, "--no-store", cwd=project / "flows")["report"]["max_concurrency"] == 4


def test_the_app_compare_and_resume_take_the_config(
    project: Path, monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    monkeypatch.chdir(project / "flows")
    app = run_options(app_parser().parse_args(["flow.py", "--executor", "local"]))
    assert app.max_concurrency == 3 and dict(app.context) == {"n": 5, "m": "five"}
    assert app.db == str(project / "state" / "runs.db") and app.executor == "local"
    (project / "tui-flow.toml").write_text('executor = "dask"\nscheduler = "tcp://h:1"\n')
    app = run_options(app_parser().parse_args(["flow.py"]))
    assert (app.executor, app.scheduler, app.max_concurrency) == ("dask", "tcp://h:1", None)
    monkeypatch.setenv("TUI_FLOW_DASK_SCHEDULER", "tcp://env:2")  # the Dask runner's variable
    assert run_options(app_parser().parse_args(["flow.py"])).scheduler == "tcp://env:2"
    # a resume keeps the stored run's concurrency and context
    (project / "tui-flow.toml").write_text("max-concurrency = 3\nset = {n = 1}\n")
    resume = run_options(build_parser().parse_args(["resume", "last"]), stored=True)
    assert resume.max_concurrency is None and dict(resume.context) == {}
    p = cli("compare", "flow.py", "-c", "1", "--json", cwd=project / "flows")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["context"] == {"n": 1}


@pytest.mark.parametrize(
    ("where", "text", "message"),
    [
        (
            "pyproject.toml",
            "[tool.tui-flow]\nmax_concurency = 3\n",
            "pyproject.toml: [tool.tui-flow] max_concurency: unknown setting; did you mean "
            "'max-concurrency'? (known: db, max-concurrency, executor, scheduler, set, "
            "log-level, otel)",
        ),
        (
            "pyproject.toml",
            "[tool.tui-flow]\nmax-concurrency = 0\n",
            "pyproject.toml: [tool.tui-flow] max-concurrency must be a whole number of at least "
            "1, not 0",
        ),
        (
            "tui-flow.toml",
            'executor = "dusk"\n',
            "tui-flow.toml: executor must be local or dask, not 'dusk'",
        ),
        (
            "tui-flow.toml",
            "max-concurrency = true\n",
            "tui-flow.toml: max-concurrency must be a whole number of at least 1, not True",
        ),
        (
            "tui-flow.toml",
            "set = 3\n",
            "tui-flow.toml: set must be a table of initial context values (JSON values), not 3",
        ),
        (
            "tui-flow.toml",
            "db = 'a'\ndb = 'b'\n",
            "tui-flow.toml: not valid TOML: Cannot overwrite a value (at line 2, column 9)",
        ),
        (
            "pyproject.toml",
            "[tool]\ntui-flow = 1\n",
            "pyproject.toml: [tool.tui-flow] must be a table",
        ),
    ],
)
def test_a_bad_config_is_one_line_naming_the_file_and_key_and_exit_2(
    cli: Any, tmp_path: Path, where: str, text: str, message: str
) -> None:
    (tmp_path / where).write_text(text)
    (tmp_path / "flow.py").write_text(FLOW)
    for argv in (["run", "flow.py"], ["flow.py"], ["history"], ["compare", "flow.py", "-c", "1"]):
        p = cli(*argv, cwd=tmp_path)
        assert (p.returncode, p.stderr) == (2, f"tui-flow: {message}\n"), argv
    # what needs no configuration does not read it
    assert cli("validate", "flow.py", cwd=tmp_path).returncode == 0
    assert cli("--help", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TUI_FLOW_MAX_CONCURRENCY": "many"}, "$TUI_FLOW_MAX_CONCURRENCY must be a whole number"),
        ({"TUI_FLOW_SET": "[1]"}, "$TUI_FLOW_SET must be a JSON object (initial context values)"),
        ({"TUI_FLOW_SET": '{"n":'}, "$TUI_FLOW_SET must be a JSON object"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(
    cli: Any, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    (tmp_path / "flow.py").write_text(FLOW)
    p = cli("run", "flow.py", "--no-store", cwd=tmp_path, env=env)
    assert p.returncode == 2 and p.stderr.startswith(f"tui-flow: {message}"), p.stderr
    assert len(p.stderr.splitlines()) == 1


# -- where the run database goes when none is named ---------------------------------------------


def test_a_working_directory_that_cannot_hold_the_store_falls_back_to_the_state_directory(
    cli: Any, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "flow.py").write_text(FLOW)
    (work / ".tui-flow").write_text("a file in the way")
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    fallback = tmp_path / "state" / "tui-flow" / "runs.db"
    p = cli("run", "flow.py", "--json", cwd=work, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stderr == (
        f"tui-flow: note: {work / '.tui-flow'} is not a folder; runs are recorded in {fallback}\n"
    )  # once, though the store is opened by more than one part of the command
    p = cli("show", "last", "--json", cwd=work, env=env)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "completed"
    assert fallback.exists()
    # a database named explicitly is never moved
    p = cli("run", "flow.py", "--db", str(work / ".tui-flow"), cwd=work, env=env)
    assert p.returncode == 2 and "note:" not in p.stderr


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root writes to read-only folders"
)
def test_a_read_only_working_directory_falls_back_too(cli: Any, tmp_path: Path) -> None:
    work = tmp_path / "ro"
    work.mkdir()
    (work / "flow.py").write_text(FLOW)
    work.chmod(0o555)
    try:
        p = cli("run", "flow.py", cwd=work, env={"XDG_STATE_HOME": str(tmp_path / "s")})
    finally:
        work.chmod(0o755)
    assert p.returncode == 0 and "note: cannot create" in p.stderr
