"""Taskinity's forms: tasks declared by edges, .dsl/.taskinity files, `code: |` refused,
bodies written for Taskinity (`from taskinity import task`)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tui_flow import load
from tui_flow.dsl import FlowError
from tui_flow.engine import run

BODIES = """
from taskinity import task


@task(name="Prepare", description="Prepare data for processing")
def DataPreparation(size=10):
    return list(range(size))


@task(name="Chunk 1")
def ProcessChunk1(DataPreparation_result):
    return sum(DataPreparation_result[::2])


@task(name="Chunk 2")
def ProcessChunk2(DataPreparation_result):
    return sum(DataPreparation_result[1::2])


@task(name="Aggregate")
def AggregateResults(ProcessChunk1_result, ProcessChunk2_result, scale=1):
    return (ProcessChunk1_result + ProcessChunk2_result) * scale
"""

EDGES_ONLY = """
flow ParallelProcessingDemo:
    description: "Flow for parallel processing demonstration"

    DataPreparation -> [ProcessChunk1, ProcessChunk2] -> AggregateResults
"""


@pytest.mark.parametrize("suffix", [".dsl", ".taskinity", ".flow"])
async def test_a_taskinity_flow_of_edges_only_runs_unchanged(write_flow, suffix):
    write_flow(BODIES, "demo.py")
    path = write_flow(EDGES_ONLY, f"demo{suffix}")
    wf = load(path).workflow()
    assert set(wf.tasks) == {
        "DataPreparation",
        "ProcessChunk1",
        "ProcessChunk2",
        "AggregateResults",
    }
    assert wf.tasks["AggregateResults"].spec.dependencies == ("ProcessChunk1", "ProcessChunk2")
    assert wf.tasks["DataPreparation"].spec.description == "Prepare data for processing"
    result = await asyncio.wait_for(run(wf, {"size": 6, "scale": 2}), 10)
    assert result.ok, {k: v.error for k, v in result.tasks.items()}
    assert result.context["ProcessChunk1"] == 0 + 2 + 4
    assert result.context["AggregateResults"] == 30


def test_chains_and_separate_edges_build_the_same_graph(write_flow):
    write_flow(BODIES, "a.py")
    write_flow(BODIES, "b.py")
    chained = load(write_flow(EDGES_ONLY, "a.dsl")).workflow()
    separate = load(
        write_flow(
            """
            flow ParallelProcessingDemo:
                DataPreparation -> ProcessChunk1
                DataPreparation -> ProcessChunk2
                ProcessChunk1 -> AggregateResults
                ProcessChunk2 -> AggregateResults
            """,
            "b.dsl",
        )
    ).workflow()
    assert {t: s.spec.dependencies for t, s in chained.tasks.items()} == {
        t: s.spec.dependencies for t, s in separate.tasks.items()
    }


def test_a_typo_in_an_edge_is_still_an_error_not_a_new_task(write_flow):
    write_flow(
        "def prepare(context): pass\ndef total(context): pass\ndef totl(context): pass\n", "t.py"
    )
    path = write_flow("flow F:\n    task prepare\n    task total\n    prepare -> totl\n", "t.flow")
    with pytest.raises(
        FlowError, match=r"'totl', which is not declared \(did you mean 'total'\?\)"
    ):
        load(path)


def test_an_edge_task_without_a_body_is_an_error_at_the_edge(write_flow):
    write_flow("def a(context): pass\n", "n.py")
    path = write_flow("flow F:\n    a -> nobody\n", "n.dsl")
    with pytest.raises(FlowError) as err:
        load(path)
    assert err.value.problems[0].line == 2
    assert "'nobody', which is not declared" in str(err.value)


def test_code_blocks_are_refused_with_one_error_each_and_exit_2(write_flow, cli):
    path = write_flow(
        """
        flow F:
            task A:
                description: "x"
                code: |
                    x = 1
                    print(x)  # -> not a token problem

            task B:
                code: |
                    import os
            A -> B
        """,
        "c.taskinity",
    )
    with pytest.raises(FlowError) as err:
        load(path)
    problems = err.value.problems
    assert [(p.line, p.col) for p in problems] == [(4, 9), (9, 9)]
    assert "task 'A': inline code is not run" in problems[0].message
    assert "'def A(context)' in c.py" in problems[0].message
    done = cli("validate", str(path))
    assert done.returncode == 2
    assert done.stderr.count("inline code is not run") == 2
    assert "Traceback" not in done.stderr


def test_a_missing_input_names_the_parameter(write_flow):
    write_flow(
        "from taskinity import task\n\n@task(name='x')\ndef needs(url):\n    return url\n", "m.py"
    )
    wf = load(write_flow("flow F:\n    task needs\n", "m.dsl")).workflow()
    result = asyncio.run(run(wf))
    assert result.tasks["needs"].status == "failed"
    assert "needs() needs 'url'" in result.tasks["needs"].error


def test_the_decorated_function_is_still_the_function():
    from tui_flow.compat.taskinity import task

    @task(name="Add")
    def add(a, b):
        return a + b

    assert add(1, 2) == 3


def test_taskinity_is_provided_only_while_a_workflow_file_loads(write_flow):
    write_flow(BODIES, "demo.py")
    load(write_flow(EDGES_ONLY, "demo.dsl"))
    assert "taskinity" not in sys.modules
    with pytest.raises(ImportError):
        import taskinity  # noqa: F401


async def test_taskinity_bodies_run_in_worker_processes(write_flow):
    write_flow(BODIES, "p.py")
    path = write_flow(
        """
        flow P:
            task DataPreparation:
                runner: process
            DataPreparation -> ProcessChunk1
        """,
        "p.dsl",
    )
    result = await asyncio.wait_for(run(load(path).workflow(), {"size": 4}), 30)
    assert result.ok, {k: v.error for k, v in result.tasks.items()}
    assert result.context["ProcessChunk1"] == 2
