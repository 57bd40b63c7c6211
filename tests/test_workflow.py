"""Workflow validation (every problem, at once, located) and the derived graph views."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tui_flow import Context, ValidationError, Workflow, load, task
from tui_flow.workflow import longest_path

LineOf = Callable[[Path, str], int]


def problems_of(path: Path) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        load(path)
    return err.value


# -- validation: each problem, with file and line --------------------------------------------


def test_cycle_is_reported_with_its_path(write_flow: Callable[..., Path], line_of: LineOf) -> None:
    path = write_flow(
        """
        from tui_flow import Workflow, task

        @task(dependencies=["b"])  # a
        def a(context): ...

        @task(dependencies=["a"])
        def b(context): ...

        workflow = Workflow("loop", [a, b])
        """
    )
    err = problems_of(path)
    assert len(err.problems) == 1
    problem = err.problems[0]
    assert problem.message == "dependency cycle: a -> b -> a"
    assert (problem.file, problem.line) == (str(path), line_of(path, "# a"))
    assert f"{path}:{line_of(path, '# a')}: dependency cycle: a -> b -> a" in str(err)


def test_longer_cycle_prints_every_step() -> None:
    @task(dependencies=["c"])
    def a(context: Context) -> None: ...

    @task(dependencies=[a])
    def b(context: Context) -> None: ...

    @task(dependencies=[b])
    def c(context: Context) -> None: ...

    @task
    def free(context: Context) -> None: ...

    with pytest.raises(ValidationError) as err:
        Workflow("loop3", [free, a, b, c])
    # arrows point the way work flows (c runs before a), as in the DSL's `c -> a`
    assert [p.message for p in err.value.problems] == ["dependency cycle: a -> b -> c -> a"]


def test_unknown_dependency_suggests_close_ids(
    write_flow: Callable[..., Path], line_of: LineOf
) -> None:
    path = write_flow(
        """
        from tui_flow import task

        @task
        def partition_data(context): ...

        @task(dependencies=["partition_dta"])  # here
        def process(context): ...
        """
    )
    (problem,) = problems_of(path).problems
    assert problem.message == (
        "task 'process' depends on unknown task 'partition_dta'; did you mean 'partition_data'?"
    )
    assert (problem.file, problem.line, problem.task_id) == (
        str(path),
        line_of(path, "# here"),
        "process",
    )


def test_unknown_dependency_without_a_close_match_lists_the_known_tasks() -> None:
    @task
    def extract(context: Context) -> None: ...

    @task(dependencies=["zzz"])
    def load_rows(context: Context) -> None: ...

    with pytest.raises(ValidationError) as err:
        Workflow("w", [extract, load_rows])
    assert "known tasks: extract, load_rows" in err.value.problems[0].message


def test_duplicate_id_names_both_places(write_flow: Callable[..., Path], line_of: LineOf) -> None:
    path = write_flow(
        """
        from tui_flow import Workflow, task

        @task(id="step")  # first
        def one(context): ...

        @task(id="step")  # second
        def two(context): ...

        workflow = Workflow("dupes", [one, two])
        """
    )
    (problem,) = problems_of(path).problems
    assert problem.line == line_of(path, "# second")
    assert f"duplicate task id 'step' (first defined at {path}:{line_of(path, '# first')})" in (
        problem.message
    )


def test_the_same_task_listed_twice_is_not_a_duplicate() -> None:
    @task
    def once(context: Context) -> None: ...

    assert list(Workflow("w", [once, once]).tasks) == ["once"]


def test_self_dependency(write_flow: Callable[..., Path], line_of: LineOf) -> None:
    path = write_flow(
        """
        from tui_flow import task

        @task(dependencies=["me"])  # self
        def me(context): ...
        """
    )
    (problem,) = problems_of(path).problems
    assert problem.message == "task 'me' depends on itself"
    assert (problem.file, problem.line) == (str(path), line_of(path, "# self"))


def test_wrong_signature(write_flow: Callable[..., Path], line_of: LineOf) -> None:
    path = write_flow(
        """
        from tui_flow import task

        @task  # none
        def no_args(): ...

        @task  # two
        def two_args(context, extra): ...
        """
    )
    first, second = problems_of(path).problems
    assert first.line == line_of(path, "# none") and "takes no arguments" in first.message
    assert second.line == line_of(path, "# two")
    assert "requires 2 arguments (context, extra)" in second.message


def test_every_problem_is_reported_at_once(
    write_flow: Callable[..., Path], line_of: LineOf
) -> None:
    path = write_flow(
        """
        from tui_flow import Workflow, task

        @task(dependencies=["b"])  # cycle
        def a(context): ...

        @task(dependencies=["a"])
        def b(context): ...

        @task(dependencies=["a", "bb_missing"])  # unknown
        def c(context): ...

        @task(id="c")  # duplicate
        def c_again(context): ...

        @task(dependencies=["d"])  # self
        def d(context): ...

        @task  # signature
        def e(): ...

        workflow = Workflow("broken", [a, b, c, c_again, d, e])
        """
    )
    err = problems_of(path)
    found = {p.line: p.message for p in err.problems}
    expected = {
        "# cycle": "dependency cycle: a -> b -> a",
        "# unknown": "depends on unknown task 'bb_missing'",
        "# duplicate": "duplicate task id 'c'",
        "# self": "task 'd' depends on itself",
        "# signature": "takes no arguments",
    }
    assert len(err.problems) == len(expected)
    for marker, text in expected.items():
        assert text in found[line_of(path, marker)]
    assert all(p.file == str(path) for p in err.problems)
    assert str(err).startswith("workflow 'broken' is invalid (5 problems):")


def test_non_task_in_the_list_and_bad_settings_are_problems_too(line_of: LineOf) -> None:
    def plain(context: Context) -> None: ...

    with pytest.raises(ValidationError) as err:
        Workflow("w", [plain, "step"], max_concurrency=0)  # type: ignore[list-item]  # the call
    call_line = line_of(Path(__file__), "# the call")
    by_message = {p.message: p for p in err.value.problems}
    assert set(by_message) == {
        "max_concurrency must be at least 1, not 0",
        "plain is not a task: decorate it with @task",
        "'step' is not a task: decorate it with @task",
    }
    # a function points at itself; the rest at the Workflow(...) call
    plain_line = plain.__code__.co_firstlineno
    assert (by_message["plain is not a task: decorate it with @task"].line) == plain_line
    for message in (
        "max_concurrency must be at least 1, not 0",
        "'step' is not a task: decorate it with @task",
    ):
        assert (by_message[message].file, by_message[message].line) == (__file__, call_line)


def test_a_workflow_needs_a_name() -> None:
    with pytest.raises(ValidationError, match="non-empty name") as err:
        Workflow(" ", [])
    assert err.value.problems[0].file == __file__


# -- derived views ---------------------------------------------------------------------------


def diamond() -> Workflow:
    """start -> (left, right) -> join -> end, plus a lone task."""

    @task
    def start(context: Context) -> None: ...

    @task(dependencies=[start])
    def left(context: Context) -> None: ...

    @task(dependencies=[start])
    def right(context: Context) -> None: ...

    @task(dependencies=[left, right])
    def join(context: Context) -> None: ...

    @task(dependencies=[join])
    def end(context: Context) -> None: ...

    @task
    def lone(context: Context) -> None: ...

    return Workflow("diamond", [end, join, right, left, start, lone], max_concurrency=2)


def test_graph_order_and_stages() -> None:
    wf = diamond()
    assert sorted(wf.graph.edges) == [
        ("join", "end"),
        ("left", "join"),
        ("right", "join"),
        ("start", "left"),
        ("start", "right"),
    ]
    assert wf.stages == [["lone", "start"], ["left", "right"], ["join"], ["end"]]
    order = wf.order
    assert sorted(order) == sorted(wf.tasks)
    for a, b in wf.graph.edges:
        assert order.index(a) < order.index(b)
    assert len(wf) == 6 and "join" in wf and "nope" not in wf
    assert wf.max_concurrency == 2


def test_ancestors_descendants_dependencies_dependents() -> None:
    wf = diamond()
    assert wf.ancestors("join") == {"start", "left", "right"}
    assert wf.ancestors("start") == set()
    assert wf.descendants("start") == {"left", "right", "join", "end"}
    assert wf.descendants("lone") == set()
    assert wf.dependencies("join") == ("left", "right")
    assert wf.dependents("start") == ["left", "right"]


def test_longest_path_is_weighted_by_durations() -> None:
    wf = diamond()
    path, total = wf.longest_path({"start": 1, "left": 5, "right": 2, "join": 1, "end": 1})
    assert (path, total) == (["start", "left", "join", "end"], 8)
    path, total = wf.longest_path({"start": 1, "left": 1, "right": 4, "join": 1, "lone": 2})
    assert (path, total) == (["start", "right", "join", "end"], 6)  # end missing = 0
    path, total = wf.longest_path({"lone": 10, "start": 1})
    assert (path, total) == (["lone"], 10)


def test_longest_path_without_an_order_ignores_unknown_dependencies() -> None:
    deps = {"a": [], "b": ["a", "ghost"], "c": ["a"]}
    assert longest_path(deps, {"a": 1.0, "b": 2.0, "c": 0.5}) == (["a", "b"], 3.0)
    assert longest_path({}, {}) == ([], 0.0)
