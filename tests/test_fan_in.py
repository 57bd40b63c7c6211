"""`Workflow(fan_in="merge")`: cloaca's fan-in merge; the native default stays the conflict."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_flow import Workflow, task
from tui_flow.engine import run
from tui_flow.engine.ledger import merge_values
from tui_flow.errors import ValidationError


def branches(values: dict[str, object]):
    seen = {}

    @task
    def start(context):
        pass

    made = []
    for name, value in values.items():

        def body(context, value=value):
            context.set("k", value)

        body.__name__ = name
        made.append(task(body, dependencies=[start]))

    @task(dependencies=made)
    def join(context):
        seen["k"] = context.get("k")

    return [start, *made, join], seen


async def run_merge(values):
    tasks, seen = branches(values)
    result = await asyncio.wait_for(run(Workflow("w", tasks, fan_in="merge")), 10)
    assert result.ok, {k: v.error for k, v in result.tasks.items()}
    return seen["k"], result.context["k"]


async def test_lists_are_concatenated_without_duplicates_in_task_name_order():
    seen, final = await run_merge({"b": [2, 3], "a": [1, 2], "c": [4]})
    assert seen == [1, 2, 3, 4] and final == [1, 2, 3, 4]


async def test_dicts_are_merged_key_by_key():
    seen, _ = await run_merge({"a": {"x": 1, "y": 1}, "b": {"y": 2, "z": 2}})
    assert seen == {"x": 1, "y": 2, "z": 2}


async def test_other_values_last_in_task_name_order_wins():
    seen, final = await run_merge({"zeta": 1, "alpha": 2, "mid": 3})
    assert seen == 1 and final == 1


async def test_native_default_is_still_the_conflict_error():
    tasks, _ = branches({"a": 1, "b": 2})
    result = await asyncio.wait_for(run(Workflow("w", tasks)), 10)
    assert result.status == "failed"
    assert any("ConflictError" in (o.error or "") for o in result.tasks.values())


def test_fan_in_must_be_error_or_merge():
    with pytest.raises(ValidationError, match="fan_in must be 'error' or 'merge'"):
        Workflow("w", [], fan_in="union")


@given(st.lists(st.integers(0, 5)), st.lists(st.integers(0, 5)))
def test_list_merge_keeps_every_item_once_and_does_not_depend_on_arrival(a, b):
    one = merge_values(a, "a", b, "b")
    other = merge_values(b, "b", a, "a")
    assert one == other
    assert set(one) == set(a) | set(b)
    assert one[: len(a)] == a
