"""Bad command-line values: one line naming the option and the value, exit code 2, no traceback.

The CLI runs in process (`tui_flow.cli.main`), so these tests stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_flow import Workflow, task
from tui_flow.cli import dispatch as main
from tui_flow.engine import Execution

FLOW = """
from tui_flow import Context, Workflow, task


@task()
async def a(context: Context) -> None:  # async: no thread left behind for main() to wait out
    context.set("seen", context.get("n", None))


workflow = Workflow("small", [a])
"""


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "small.py"
    path.write_text(FLOW)
    return path


def cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `tui-flow ARGV`; argparse's own exit counts too."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


# (argv after the file or the run, the option as the message names it, the bad value)
BAD_NUMBERS = [
    (["run", "FILE", "--max-concurrency", "-1"], "--max-concurrency/-j", "-1"),
    (["run", "FILE", "-j", "0"], "--max-concurrency/-j", "0"),
    (["run", "FILE", "-j", "2.5"], "--max-concurrency/-j", "2.5"),
    (["run", "FILE", "--max-concurrency=many"], "--max-concurrency/-j", "many"),
    (["FILE", "-j", "0"], "--max-concurrency/-j", "0"),  # the app's own options
    (["FILE", "--max-concurrency", "-3"], "--max-concurrency/-j", "-3"),
    (["history", "--limit", "0"], "--limit/-n", "0"),
    (["history", "-n", "-1"], "--limit/-n", "-1"),
    (["history", "-n", "ten"], "--limit/-n", "ten"),
    (["resume", "last", "-j", "0"], "--max-concurrency/-j", "0"),
    (["rerun", "last", "--failed", "-j", "-1"], "--max-concurrency/-j", "-1"),
    (["rerun", "last", "--from", "a", "--max-concurrency", "x"], "--max-concurrency/-j", "x"),
    (["compare", "FILE", "--repeat", "0"], "--repeat/-r", "0"),
    (["compare", "FILE", "-r", "-2"], "--repeat/-r", "-2"),
    (["compare", "FILE", "--concurrency", "0"], "--concurrency/-c", "0"),
    (["compare", "FILE", "-c", "1,x"], "--concurrency/-c", "x"),
    (["compare", "FILE", "-c", "1,,2"], "--concurrency/-c", ""),
    (["compare", "FILE", "-c", "2,-4"], "--concurrency/-c", "-4"),
]

BAD_SETS = [
    (["run", "FILE", "--set", "n"], "no '='"),
    (["run", "FILE", "--set", "=3"], "the key is empty"),
    (["FILE", "--set", "=3"], "the key is empty"),
    (["compare", "FILE", "--set", "n"], "no '='"),
]


def fill(argv: list[str], flow: Path) -> list[str]:
    db = str(flow.parent / "runs.db")
    argv = [str(flow) if a == "FILE" else a for a in argv]
    return [*argv, "--db", db] if argv[0] in ("run", "history", "resume", "rerun") else argv


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("argv", "option", "value"), BAD_NUMBERS)
def test_a_bad_number_is_one_line_naming_the_option_and_the_value(
    flow: Path, capsys: pytest.CaptureFixture[str], argv: list[str], option: str, value: str
) -> None:
    code, out, err = cli(capsys, fill(argv, flow))
    assert code == 2
    line = one_line(err)
    assert f"argument {option}: expected a whole number of at least 1, got {value!r}" in line
    assert out == ""
    assert not (flow.parent / "runs.db").exists()  # refused before anything ran


@pytest.mark.parametrize(("argv", "why"), BAD_SETS)
def test_a_bad_set_pair_is_one_line_naming_it(
    flow: Path, capsys: pytest.CaptureFixture[str], argv: list[str], why: str
) -> None:
    code, _, err = cli(capsys, fill(argv, flow))
    assert code == 2
    line = one_line(err)
    assert f"argument --set: expected KEY=JSON, got {argv[-1]!r} ({why})" in line


def test_good_values_still_pass(flow: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(flow), "-j", "1", "--set", "n=[1, 2]", "--set", "s=", "--no-store"]
    code, out, err = cli(capsys, [*argv, "--json"])
    assert code == 0, err
    context = json.loads(out)["context"]
    assert context["seen"] == [1, 2]  # JSON when it parses
    assert context["s"] == ""  # the text otherwise


@pytest.mark.parametrize("argv", [["run", "FILE"], ["FILE"], ["rerun", "last", "--from", "a"]])
def test_a_bad_executor_in_the_environment_is_one_line_and_exit_2(
    flow: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    if argv[0] == "rerun":  # a run to re-run first
        assert cli(capsys, fill(["run", "FILE"], flow))[0] == 0
    monkeypatch.setenv("TUI_FLOW_EXECUTOR", "dusk")  # was taken as "not local", so Dask
    code, _, err = cli(capsys, fill(argv, flow))
    assert code == 2
    assert one_line(err) == "tui-flow: $TUI_FLOW_EXECUTOR must be local or dask, not 'dusk'"


def bad_db(kind: str, folder: Path) -> Path:
    """A --db path that cannot be used."""
    if kind == "folder":
        return folder
    if kind == "not-sqlite":
        (folder / "junk.db").write_text("junk")
        return folder / "junk.db"
    (folder / "afile").write_text("")  # file-in-the-way: the database's folder is a file
    return folder / "afile" / "runs.db"


@pytest.mark.parametrize("command", ["run", "history", "app"])
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("folder", "is a folder; --db expects a database file"),
        ("not-sqlite", "not a SQLite database"),
        ("file-in-the-way", "cannot create the folder for the run database: a file is in the way"),
    ],
)
def test_a_database_that_cannot_be_used_is_one_line_and_exit_2(
    flow: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str, message: str
) -> None:
    db = str(bad_db(kind, flow.parent))
    argv = {"run": ["run", str(flow)], "history": ["history"], "app": [str(flow)]}[command]
    code, _, err = cli(capsys, [*argv, "--db", db])
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"tui-flow: {flow.parent}")  # the path at fault
    assert message in line


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_execution_refuses_a_bad_max_concurrency_naming_it(bad: object) -> None:
    @task()
    def a(context) -> None:
        pass

    wf = Workflow("w", [a])
    with pytest.raises(ValueError, match=rf"max_concurrency .* at least 1, not {bad!r}"):
        Execution(wf, {}, max_concurrency=bad)  # type: ignore[arg-type]
    assert Execution(wf, {}, max_concurrency=None).cap == wf.max_concurrency
