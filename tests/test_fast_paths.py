"""The hot-path shortcuts build exactly what the validated, generic code builds."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_flow.engine.events import TaskStateChanged, event_from_json
from tui_flow.store.rows import event_from_row, state_extras

CASES = [
    {},
    {"attempt": 2, "max_attempts": 3},
    {"task_id": 'odd "name" \\ ä [0]'},
    {"state": "failed", "attempt": 1, "error": "ValueError: x", "traceback": "tb"},
    {"state": "skipped", "reason": "upstream 'a' failed"},
    {"state": "completed", "attempt": 1, "reason": "via fallback", "via_fallback": True},
]


@pytest.mark.parametrize("extra", CASES)
def test_trusted_event_equals_validated(extra: dict) -> None:
    kw = {"run_id": "r1", "at": 1700000000.123456, "task_id": "t", "state": "running", **extra}
    validated = TaskStateChanged(**kw)
    trusted = TaskStateChanged.trusted(**kw)
    assert trusted == validated
    assert hash(trusted) == hash(validated)
    assert trusted.model_dump_json() == validated.model_dump_json()
    assert event_from_json(trusted.model_dump_json()) == validated


@pytest.mark.parametrize("extra", CASES)
def test_a_task_state_row_round_trips(extra: dict) -> None:
    """A task_state event is stored as columns plus the JSON of its other non-default fields
    (hand-built on the hot path); reading the row back gives the same event."""
    kw = {"run_id": "r1", "at": 1700000000.5, "task_id": "t", "state": "running", **extra}
    e = TaskStateChanged(**kw)
    data = state_extras(e.__dict__)
    stored = json.loads(e.model_dump_json(exclude_defaults=True))
    for column in ("run_id", "at", "task_id", "state", "attempt"):
        stored.pop(column, None)
    assert json.loads(data) == stored
    assert event_from_row("r1", "task_state", e.at, e.task_id, e.state, e.attempt, data) == e


def test_trusted_event_converts_an_integer_clock() -> None:
    e = TaskStateChanged.trusted("r1", 5, "t", "running", 1)
    assert isinstance(e.at, float)
    assert e == TaskStateChanged(run_id="r1", at=5.0, task_id="t", state="running", attempt=1)


async def test_gc_hold_is_released_by_a_finished_or_dropped_execution() -> None:
    import gc

    from tui_flow import Workflow, task
    from tui_flow.engine import Execution, tuning

    @task(id="a")
    async def a(context: object) -> None:
        pass

    wf = Workflow("w", [a])
    assert tuning._gc_users == 0
    never_started = Execution(wf)
    assert tuning._gc_users == 1 and gc.get_freeze_count() > 0
    del never_started  # freed by reference counting: its finalizer releases the hold
    assert tuning._gc_users == 0 and gc.get_freeze_count() == 0
    ex = Execution(wf).start()
    await ex.wait()
    assert tuning._gc_users == 0 and gc.get_freeze_count() == 0
    ex._gc_unhold()  # already released: calling it again changes nothing
    assert tuning._gc_users == 0


@settings(max_examples=100, deadline=None)
@given(
    st.fixed_dictionaries(
        {"id": st.from_regex(r"[A-Za-z0-9_]([A-Za-z0-9_. -]*[A-Za-z0-9_])?", fullmatch=True)},
        optional={
            "dependencies": st.lists(st.sampled_from(["a", "b", "c"]), unique=True),
            "retry_attempts": st.integers(0, 5),
            "retry_delay_ms": st.one_of(st.integers(0, 10_000), st.floats(0, 1e4)),
            "timeout_s": st.one_of(st.none(), st.integers(1, 60), st.floats(0.01, 60)),
            "trigger_rule": st.sampled_from(["all_success", "all_done", "one_failed"]),
            "runner": st.sampled_from(["thread", "process"]),
            "map_over": st.sampled_from(["items", None]),
            "description": st.one_of(st.none(), st.text()),
        },
    )
)
def test_a_task_described_unchecked_equals_the_validated_description(options) -> None:
    from tui_flow import task
    from tui_flow.engine.events import TaskInfo, task_info

    t = task(lambda ctx: None, **options)
    fast = task_info(t)
    checked = TaskInfo.model_validate(fast.model_dump())
    assert fast == checked and hash(fast) == hash(checked)
    assert fast.model_dump_json() == checked.model_dump_json()


def test_models_built_without_validation_can_be_copied_with_changes() -> None:
    from tui_flow import task
    from tui_flow.engine.events import task_info

    info = task_info(task(lambda ctx: None, id="a")).model_copy(update={"id": "b"})
    event = TaskStateChanged.trusted("r", 1.0, "a", "running", 1).model_copy(update={"attempt": 2})
    assert (info.id, event.attempt) == ("b", 2)
