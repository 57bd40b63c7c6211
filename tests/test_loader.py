"""Loading workflow files: fresh isolated imports, broken files, helpers, several workflows."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tui_flow import Context, LoadedFile, LoadError, Task, TaskDefinitionError, Workflow, load

LineOf = Callable[[Path, str], int]
WriteFlow = Callable[..., Path]


def load_error(path: Path) -> LoadError:
    with pytest.raises(LoadError) as err:
        load(path)
    return err.value


# -- broken files ----------------------------------------------------------------------------


def test_syntax_error_gives_file_line_and_reason(write_flow: WriteFlow, line_of: LineOf) -> None:
    path = write_flow(
        """
        from tui_flow import task

        @task
        def ok(context):
            return (1 +   # broken
        """
    )
    err = load_error(path)
    assert err.file == str(path)
    assert err.line == line_of(path, "# broken")
    assert err.reason.startswith("syntax error:")
    assert str(err).startswith(f"{path}:{err.line}: syntax error")
    assert "Traceback" not in str(err)


def test_import_error_gives_the_line_of_the_import(write_flow: WriteFlow, line_of: LineOf) -> None:
    path = write_flow(
        """
        from tui_flow import task
        import no_such_module_for_tui_flow_tests  # here
        """
    )
    err = load_error(path)
    assert (err.file, err.line) == (str(path), line_of(path, "# here"))
    assert "import failed: ModuleNotFoundError" in err.reason
    assert "no_such_module_for_tui_flow_tests" in err.reason


def test_exception_at_import_gives_the_line_that_raised(
    write_flow: WriteFlow, line_of: LineOf
) -> None:
    path = write_flow(
        """
        from tui_flow import task

        def settings():
            return {}["missing"]  # raises

        SETTINGS = settings()
        """
    )
    err = load_error(path)
    assert (err.file, err.line) == (str(path), line_of(path, "# raises"))
    assert err.reason == "error while importing: KeyError: 'missing'"


def test_exception_in_a_helper_beside_the_flow_points_at_the_helper(
    write_flow: WriteFlow, line_of: LineOf
) -> None:
    helper = write_flow("VALUE = 1 / 0  # boom\n", name="helper_boom.py")
    path = write_flow("import helper_boom\n")
    err = load_error(path)
    assert (err.file, err.line) == (str(helper), line_of(helper, "# boom"))
    assert "ZeroDivisionError" in err.reason


def test_bad_task_option_at_import_gives_the_decorator_line(
    write_flow: WriteFlow, line_of: LineOf
) -> None:
    path = write_flow(
        """
        from tui_flow import task

        @task(retry_backof="linear")  # typo
        def fetch(context): ...
        """
    )
    err = load_error(path)
    assert err.line == line_of(path, "# typo")
    assert "unknown option 'retry_backof'" in err.reason
    assert "did you mean 'retry_backoff'?" in err.reason
    assert not isinstance(err, TaskDefinitionError)


def test_missing_folder_or_wrong_type(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.py").reason == "no such file"
    assert "is a folder" in load_error(tmp_path).reason
    text = tmp_path / "flow.txt"
    text.write_text("")
    assert "unsupported file type '.txt'" in load_error(text).reason


def test_a_file_without_tasks_is_refused(write_flow: WriteFlow) -> None:
    path = write_flow("X = 1\n")
    assert "no tasks found" in load_error(path).reason


# -- what a file holds -------------------------------------------------------------------------


def test_module_without_workflow_is_one_workflow_named_after_the_file(
    write_flow: WriteFlow,
) -> None:
    path = write_flow(
        """
        from tui_flow import task

        @task
        def second_by_name(context): ...

        @task(dependencies=["second_by_name"])
        def a_first_by_name(context): ...
        """,
        name="my_pipeline.py",
    )
    loaded = load(path)
    assert isinstance(loaded, LoadedFile)
    assert loaded.names == ["my_pipeline"]
    wf = loaded.workflow()
    assert wf.name == "my_pipeline"
    assert list(wf.tasks) == ["second_by_name", "a_first_by_name"]  # in file order
    assert wf.file == str(path) and wf.source_hash == loaded.source_hash


def test_module_with_several_workflows(write_flow: WriteFlow) -> None:
    path = write_flow(
        """
        from tui_flow import Workflow, task

        @task
        def extract(context): ...

        @task(dependencies=[extract])
        def load_rows(context): ...

        nightly = Workflow("nightly", [extract, load_rows], max_concurrency=2)
        quick = Workflow("quick", [extract])
        also_nightly = nightly  # the same object under another name is not a second workflow
        """
    )
    loaded = load(path)
    assert loaded.names == ["nightly", "quick"]
    assert len(loaded.workflow("nightly")) == 2
    assert loaded.workflow("quick").max_concurrency == 4
    assert loaded.workflow() is loaded.workflow("nightly")
    with pytest.raises(LoadError, match=r"no workflow named 'weekly' \(found: nightly, quick\)"):
        loaded.workflow("weekly")


def test_two_workflows_with_one_name_are_refused(write_flow: WriteFlow, line_of: LineOf) -> None:
    path = write_flow(
        """
        from tui_flow import Workflow, task

        @task
        def t(context): ...

        one = Workflow("same", [t])
        two = Workflow("same", [t])  # second
        """
    )
    err = load_error(path)
    assert err.line == line_of(path, "# second")
    assert "two workflows are named 'same'" in err.reason


# -- isolation and freshness -------------------------------------------------------------------


def test_two_loads_are_independent(write_flow: WriteFlow) -> None:
    path = write_flow(
        """
        from tui_flow import task

        SEEN = []

        @task
        def remember(context):
            SEEN.append(context.get("n"))
            return SEEN
        """
    )
    first, second = load(path), load(path)
    t1, t2 = first.workflow().tasks["remember"], second.workflow().tasks["remember"]
    assert first.workflow() is not second.workflow()
    assert t1 is not t2 and t1.fn is not t2.fn
    assert t1(Context({"n": 1})) == [1]
    assert t2(Context({"n": 2})) == [2]  # module state is not shared between loads
    assert not [m for m in sys.modules if m.startswith("tui_flow_user_")]


def test_an_edited_flow_and_helper_are_read_again(
    write_flow: WriteFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on a user's machine
    write_flow("LABEL = 'one'\n", name="labels.py")
    path = write_flow(
        """
        from labels import LABEL
        from tui_flow import Workflow, task

        @task
        def t(context): ...

        workflow = Workflow("w", [t], description=LABEL)
        """
    )
    before = load(path)
    assert before.workflow().description == "one"
    # same size, same second: a .pyc cache keyed on mtime would serve the old code
    write_flow("LABEL = 'two'\n", name="labels.py")
    after = load(path)
    assert after.workflow().description == "two"
    assert after.source_hash == before.source_hash  # the flow file itself did not change
    path.write_text(path.read_text().replace('"w"', '"v"'))
    again = load(path)
    assert again.names == ["v"] and again.source_hash != before.source_hash
    assert not (path.parent / "__pycache__").exists()


def test_a_helper_of_the_same_name_beside_another_flow_is_not_confused(
    tmp_path: Path,
) -> None:
    for name in ("alpha", "beta"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "common.py").write_text(f"NAME = {name!r}\n")
        (folder / "flow.py").write_text(
            "from common import NAME\n"
            "from tui_flow import Workflow, task\n"
            "@task\n"
            "def t(context): ...\n"
            "workflow = Workflow(NAME, [t])\n"
        )
    assert load(tmp_path / "alpha" / "flow.py").names == ["alpha"]
    assert load(tmp_path / "beta" / "flow.py").names == ["beta"]
    assert "common" not in sys.modules


def test_the_example_flows_load(flows_dir: Path) -> None:
    expected = {
        "catalog.py": ("catalog", 9),
        "parallel_processing.py": ("parallel_processing", 9),
        "parallel_tasks.py": ("parallel_tasks", 6),
    }
    for file, (name, count) in expected.items():
        loaded = load(flows_dir / file)
        wf = loaded.workflow()
        assert (wf.name, len(wf)) == (name, count)
        assert isinstance(wf, Workflow)
        assert all(isinstance(t, Task) for t in wf)
        assert loaded.watch_paths == [(flows_dir / file).resolve()]
