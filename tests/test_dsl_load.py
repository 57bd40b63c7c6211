"""Loading .flow files: bodies from the .py beside them, options, semantic errors located in the
.flow file, the process runner, hot reload paths, and the CLI."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tui_flow import load, run
from tui_flow.dsl import FlowError, load_flow
from tui_flow.errors import LoadError
from tui_flow.tasks import TaskSpec

ROOT = Path(__file__).resolve().parent.parent

BODIES = """
import os

def prepare(context):
    context.set("items", [1, 2, 3])

def square(context):
    return context.item * context.item

def total(context):
    context.set("total", sum(context.get("square")))

def where(context):
    context.set("pid", os.getpid())

def other_name(context):
    context.set("via", "other_name")

def rescue(context):
    context.set("rescued", True)

def boom(context):
    raise RuntimeError("boom")

def two_args(context, extra):
    pass
"""


def write(tmp_path: Path, flow: str, py: str | None = BODIES, name: str = "demo") -> Path:
    path = tmp_path / f"{name}.flow"
    path.write_text(textwrap.dedent(flow).lstrip("\n"))
    if py is not None:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(py).lstrip("\n"))
    return path


def problems(path: Path) -> list[tuple[int, int, str]]:
    with pytest.raises(FlowError) as info:
        load(path)
    return [(p.line, p.col, p.message) for p in info.value.problems]


MAPPED = """
flow Mapped:
    description: "the flow's own description"
    max_concurrency: 2
    task prepare:
        description: "make the list"
    task square:
        map_over: items
    task total
    prepare -> square -> total
"""


# -- bodies and options --------------------------------------------------------------------------


async def test_a_flow_runs_on_the_functions_of_the_py_beside_it(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, MAPPED))
    wf = loaded.workflow()
    assert wf.name == "Mapped" and wf.max_concurrency == 2
    assert wf.description == "the flow's own description"
    assert wf.tasks["prepare"].spec.description == "make the list"
    assert wf.tasks["square"].spec.dependencies == ("prepare",)
    result = await run(wf)
    assert result.status == "completed"
    assert result.context["square"] == [1, 4, 9]
    assert result.context["total"] == 14


def test_every_property_maps_to_its_task_option(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow F:
            task prepare:
                description: "d"
                retry_attempts: 3
                retry_delay_ms: 500
                retry_backoff: linear
                retry_max_delay_ms: 2000
                retry_jitter: true
                timeout_s: 10
                runner: thread
                trigger_rule: all_done
                map_over: items
                fallback: rescue
        """,
    )
    task = load(path).workflow().tasks["prepare"]
    assert task.spec == TaskSpec(
        id="prepare",
        description="d",
        retry_attempts=3,
        retry_delay_ms=500,
        retry_backoff="linear",
        retry_max_delay_ms=2000,
        retry_jitter=True,
        timeout_s=10,
        runner="thread",
        trigger_rule="all_done",
        map_over="items",
        fallback="rescue",
    )
    assert task.fallback_fn.__name__ == "rescue"
    assert task.source_file == str(tmp_path / "demo.py")


async def test_python_property_names_another_function_or_module(tmp_path: Path) -> None:
    (tmp_path / "helpers_mod.py").write_text("def helper(context):\n    context.set('h', 1)\n")
    path = write(
        tmp_path,
        """
        flow F:
            task a:
                python: other_name
            task b:
                python: helpers_mod:helper
            task c:
                python: "os.path:join"
        """,
    )
    loaded = load(path)
    tasks = loaded.workflow().tasks
    assert tasks["a"].fn.__name__ == "other_name"
    assert tasks["b"].fn.__name__ == "helper"
    assert tasks["c"].fn is os.path.join
    assert tmp_path / "helpers_mod.py" in loaded.watch_paths
    assert not any("posixpath" in str(p) for p in loaded.watch_paths)  # stdlib is not watched
    wf = loaded.workflow()
    result = await run(type(wf)("two", [tasks["a"], tasks["b"]]))
    assert result.context == {"via": "other_name", "h": 1}


async def test_noop_tasks_need_no_body(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow F:
            task start:
                noop: true
            task where
            task end:
                noop: true
            start -> where -> end
        """,
    )
    wf = load(path).workflow()
    assert wf.tasks["start"].source_file == str(path.resolve())
    result = await run(wf)
    assert [result.tasks[t].status for t in ("start", "where", "end")] == ["completed"] * 3


async def test_a_decorated_body_gives_only_its_function(tmp_path: Path) -> None:
    py = """
    from tui_flow import task, Workflow

    @task(retry_attempts=5, runner="thread")
    def a(context):
        context.set("a", 1)

    @task(dependencies=[a])
    def b(context):
        context.set("b", context.get("a") + 1)

    workflow = Workflow("in_python", [a, b])
    """
    path = write(tmp_path, "flow F:\n    task a\n    task b\n", py)
    wf = load(path).workflow()
    assert wf.name == "F"  # the .py's own Workflow is not what the .flow loads
    assert wf.tasks["a"].spec.retry_attempts == 0  # the .flow is the whole definition
    assert wf.tasks["b"].spec.dependencies == ()
    result = await run(wf, {"a": 0})
    assert result.context["a"] == 1


def test_watch_paths_and_source_hash_cover_both_files(tmp_path: Path) -> None:
    path = write(tmp_path, MAPPED)
    first = load(path)
    assert first.watch_paths == [path.resolve(), (tmp_path / "demo.py").resolve()]
    assert first.workflow().file == str(path.resolve())
    assert first.workflow().source_hash == first.source_hash
    (tmp_path / "demo.py").write_text(BODIES + "\n# edited\n")
    assert load(path).source_hash != first.source_hash


async def test_reloading_picks_up_an_edited_py(tmp_path: Path) -> None:
    path = write(tmp_path, "flow F:\n    task prepare\n")
    assert (await run(load(path).workflow())).context["items"] == [1, 2, 3]
    (tmp_path / "demo.py").write_text("def prepare(context):\n    context.set('items', [9])\n")
    assert (await run(load(path).workflow())).context["items"] == [9]


def test_load_flow_reads_utf8_with_a_bom_and_rejects_other_encodings(tmp_path: Path) -> None:
    path = tmp_path / "bom.flow"
    path.write_bytes(b"\xef\xbb\xbfflow F:\n    task a:\n        noop: true\n")
    assert load_flow(path).names == ["F"]
    path.write_bytes(b'flow F:\n    description: "\xff"\n')
    with pytest.raises(LoadError, match="is not UTF-8"):
        load_flow(path)


# -- the process runner --------------------------------------------------------------------------


async def test_flow_tasks_run_in_worker_processes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow P:
            task prepare
            task square:
                map_over: items
                runner: process
            task where:
                runner: process
            task renamed:
                python: other_name
                runner: process
            task total
            prepare -> square -> total
        """,
    )
    result = await run(load(path).workflow())
    assert result.status == "completed", {k: v.error for k, v in result.tasks.items()}
    assert result.context["square"] == [1, 4, 9]
    assert result.context["total"] == 14
    assert result.context["pid"] != os.getpid()
    assert result.context["via"] == "other_name"


# -- semantic errors, located in the .flow file --------------------------------------------------


def test_an_edge_to_an_undeclared_task_is_an_error_at_its_name(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "flow F:\n    task prepare\n    prepare -> totl\n"))
    assert found == [
        (
            3,
            16,
            "edge uses task 'totl', which is not declared; declare it with 'task totl'",
        )
    ]
    found = problems(
        write(tmp_path, "flow F:\n    task prepare\n    task total\n    prepare -> totl\n")
    )
    assert "(did you mean 'total'?)" in found[0][2]


def test_a_duplicate_task_is_an_error_at_the_second(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "flow F:\n    task prepare\n    task prepare\n"))
    assert found == [(3, 10, "duplicate task 'prepare' (first declared on line 2)")]


def test_a_cycle_is_reported_at_the_edge_that_closes_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow F:
            task prepare
            task square
            task total
            prepare -> square -> total
            total -> prepare
        """,
    )
    assert problems(path) == [
        (6, 14, "dependency cycle: prepare -> square -> total -> prepare"),
    ]


def test_a_self_edge_is_an_error(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "flow F:\n    task prepare\n    prepare -> prepare\n"))
    assert found == [(3, 16, "task 'prepare' cannot depend on itself")]


def test_a_task_without_a_body_is_an_error_naming_it(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "flow F:\n    task prepare\n    task missing\n"))
    assert len(found) == 1
    line, col, msg = found[0]
    assert (line, col) == (3, 10)
    assert msg.startswith("task 'missing' has no body: demo.py has no function 'missing'")
    assert "noop: true" in msg


def test_without_a_py_file_every_bodiless_task_is_named(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "flow F:\n    task a\n    task b\n", py=None))
    assert [(line, msg.split(":")[0]) for line, _, msg in found] == [
        (2, "task 'a' has no body"),
        (3, "task 'b' has no body"),
    ]
    assert "demo.py does not exist beside demo.flow" in found[0][2]


def test_value_and_reference_errors_point_at_the_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow F:
            max_concurrency: 0
            task prepare:
                runner: proces
                timeout_s: -1
                retry_backoff: exponentail
            task square:
                python: no_such_module_xyz:fn
                fallback: nothere
            task total:
                python: helpers.fn
            task where:
                noop: true
                python: other_name
            task boom:
                noop: true
                runner: process
            task rescue:
                retry_attempts: 1
                retry_attempts: 2
        """,
    )
    found = problems(path)
    by_line = {line: (col, msg) for line, col, msg in found}
    assert by_line[2] == (22, "max_concurrency must be at least 1")
    assert by_line[4][0] == 17
    assert "runner: 'proces' is not allowed (did you mean 'process'?)" in by_line[4][1]
    assert by_line[5] == (20, "task 'prepare': timeout_s: input should be greater than 0 (got -1)")
    assert "(did you mean 'exponential'?)" in by_line[6][1]
    assert by_line[8][0] == 17 and "cannot import module 'no_such_module_xyz'" in by_line[8][1]
    assert by_line[9] == (19, "task 'square': fallback: demo.py has no function 'nothere'")
    assert "write 'helpers:fn'" in by_line[11][1]
    assert by_line[14][0] == 9 and "exclude each other" in by_line[14][1]
    assert by_line[17][0] == 17 and "noop task has no body to run in a process" in by_line[17][1]
    assert by_line[20] == (
        9,
        "task 'rescue': property 'retry_attempts' is set twice (first on line 19)",
    )
    assert len(found) == 10


def test_flow_level_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        flow F:
            description: "one"
            description: "two"
            task prepare
        flow F:
            task total
        flow Empty:
            max_concurrency: 2
        """,
    )
    assert problems(path) == [
        (3, 5, "flow property 'description' is set twice (first on line 2)"),
        (5, 1, "two flows are named 'F' (first on line 1)"),
        (7, 1, "flow 'Empty' has no tasks"),
    ]


def test_a_bad_body_signature_points_at_the_task_and_the_body(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "flow F:\n    task two_args\n"))
    ((line, col, msg),) = found
    assert (line, col) == (2, 10)
    assert "task 'two_args': function requires 2 arguments" in msg
    assert f"(body at {tmp_path / 'demo.py'}:" in msg


def test_an_error_importing_the_py_points_into_the_py(tmp_path: Path) -> None:
    path = write(tmp_path, "flow F:\n    task a\n", py="x = 1\ny = undefined_name\n")
    with pytest.raises(LoadError) as info:
        load(path)
    assert info.value.file == str(tmp_path / "demo.py")
    assert info.value.line == 2
    assert "NameError" in str(info.value)


def test_the_python_body_must_be_a_function(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "flow F:\n    task a\n", py="a = 3\n"))
    assert found == [
        (
            2,
            10,
            "task 'a' has no body: demo.py: 'a' is a int, not a function; "
            "write 'def a(context)' there, point at one with 'python: "
            "module.path:function', or mark the task 'noop: true'",
        )
    ]


# -- the command line ----------------------------------------------------------------------------


def test_cli_run_validate_and_open_accept_flow_files(tmp_path: Path, cli) -> None:
    path = write(tmp_path, MAPPED)
    done = cli("run", str(path), "--no-store", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["workflow"] == "Mapped" and data["status"] == "completed"
    assert data["context"]["square"] == [1, 4, 9]

    checked = cli("validate", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "workflow 'Mapped': 3 tasks" in checked.stdout
    assert "square <- prepare" in checked.stdout

    opened = cli(str(path), "--no-store")  # no terminal here: the app falls back to a run
    assert opened.returncode == 0, opened.stderr
    assert "Mapped" in opened.stdout


def test_cli_reports_flow_errors_with_position_and_no_traceback(tmp_path: Path, cli) -> None:
    path = write(tmp_path, "flow F:\n    task prepare:\n        retries: 1\n    prepare -> x\n")
    done = cli("validate", str(path))
    assert done.returncode == 2
    assert f"{path}:3:9: unknown task property 'retries'" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("run", str(write(tmp_path, "flow F:\n    task prepare\n    prepare -> x\n")))
    assert done.returncode == 2
    assert ":3:16: edge uses task 'x', which is not declared" in done.stderr


# -- the example ---------------------------------------------------------------------------------

EXAMPLE = ROOT / "flows" / "parallel_tasks.flow"


def test_the_example_flow_parses_to_taskinitys_graph() -> None:
    from tui_flow.dsl import parse

    (f,) = parse(EXAMPLE.read_text(), str(EXAMPLE))
    chunks = [f"ProcessChunk{i}" for i in range(1, 5)]
    assert [t.name for t in f.tasks] == ["DataPreparation", *chunks, "AggregateResults"]
    pairs = {(e.src, e.dst) for e in f.edges}
    assert pairs == {("DataPreparation", c) for c in chunks} | {
        (c, "AggregateResults") for c in chunks
    }


@pytest.mark.skipif(
    not (ROOT / "flows" / "parallel_tasks.py").exists(), reason="parallel_tasks.py not merged yet"
)
async def test_the_example_flow_runs_on_parallel_tasks_py() -> None:
    wf = load(EXAMPLE).workflow()
    assert {t.runner for t in wf if t.id.startswith("ProcessChunk")} == {"process"}
    result = await run(wf, {"records": 2000})
    assert result.status == "completed", {k: v.error for k, v in result.tasks.items()}
