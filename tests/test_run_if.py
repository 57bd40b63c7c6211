"""`@task(run_if=...)`: data conditions, evaluated when the task is ready; false => skipped."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_flow import (
    Workflow,
    all_of,
    always,
    any_of,
    ctx,
    failed,
    none_of,
    skipped,
    succeeded,
    task,
)
from tui_flow.conditions import ConditionSyntaxError, parse
from tui_flow.engine import run
from tui_flow.errors import TaskDefinitionError, ValidationError

LIMIT = 10


async def run_wf(wf: Workflow, context=None):
    return await asyncio.wait_for(run(wf, context), LIMIT)


def reason(result, tid: str) -> str | None:
    return result.view.tasks[tid].reason


def make(name, deps=(), calls=None, fail=False, **kw):
    def body(context):
        if calls is not None:
            calls.append(name)
        if fail:
            raise RuntimeError("boom")

    body.__name__ = name
    return task(body, dependencies=deps, **kw)


async def test_false_condition_skips_the_task_with_its_reason_and_the_body_never_runs():
    calls: list[str] = []
    a = make("a", calls=calls)
    audit = make("audit", [a], calls=calls, run_if=ctx("do_audit"))
    result = await run_wf(Workflow("w", [a, audit]), {"do_audit": False})
    assert calls == ["a"]
    assert result.tasks["audit"].status == "skipped"
    assert reason(result, "audit") == "do_audit is false"
    assert result.status == "completed"  # a skip is not a failure


async def test_true_condition_runs_the_task():
    calls: list[str] = []
    audit = make("audit", calls=calls, run_if=ctx("mode") == "full")
    result = await run_wf(Workflow("w", [audit]), {"mode": "full"})
    assert calls == ["audit"] and result.tasks["audit"].status == "completed"


async def test_condition_sees_the_writes_of_the_tasks_ancestors():
    def decide(context):
        context.insert("n", 5)

    decide_t = task(decide)
    big = make("big", [decide_t], run_if=ctx("n") > 3)
    small = make("small", [decide_t], run_if=ctx("n") < 3)
    result = await run_wf(Workflow("w", [decide_t, big, small]))
    assert result.tasks["big"].status == "completed"
    assert result.tasks["small"].status == "skipped"
    assert reason(result, "small") == "n is 5, not < 3"


async def test_descendants_of_a_skipped_task_follow_their_own_trigger_rule():
    a = make("a", run_if=ctx("go"))
    strict = make("strict", [a])  # all_success: skipped too
    lenient = make("lenient", [a], trigger_rule="none_failed")  # runs
    result = await run_wf(Workflow("w", [a, strict, lenient]), {"go": False})
    assert result.tasks["strict"].status == "skipped"
    assert reason(result, "strict") == "upstream 'a' skipped"
    assert result.tasks["lenient"].status == "completed"


async def test_state_conditions_read_upstream_states():
    bad = make("bad", fail=True)
    good = make("good")
    on_fail = make("on_fail", [bad, good], trigger_rule="all_done", run_if=failed("bad"))
    on_ok = make("on_ok", [bad, good], trigger_rule="all_done", run_if=succeeded(bad))
    result = await run_wf(Workflow("w", [bad, good, on_fail, on_ok]))
    assert result.tasks["on_fail"].status == "completed"
    assert result.tasks["on_ok"].status == "skipped"
    assert reason(result, "on_ok") == "'bad' failed"


async def test_skipped_condition_and_groups():
    a = make("a", run_if=ctx("go"))
    b = make("b", [a], trigger_rule="all_done", run_if=all_of(skipped("a"), ctx("x") == 1))
    c = make("c", [a], trigger_rule="all_done", run_if=any_of(succeeded("a"), ctx("x") == 2))
    result = await run_wf(Workflow("w", [a, b, c]), {"go": False, "x": 1})
    assert result.tasks["b"].status == "completed"
    assert result.tasks["c"].status == "skipped"
    assert reason(result, "c") == "'a' skipped and x is 1"


def test_run_if_naming_a_task_that_is_not_upstream_is_a_validation_error():
    a = make("a")
    b = make("b", run_if=succeeded("a"))
    with pytest.raises(ValidationError, match="run_if reads the state of 'a', which is not"):
        Workflow("w", [a, b])
    c = make("c", [a], run_if=succeeded("aa"))
    with pytest.raises(ValidationError, match="which is not a task"):
        Workflow("w", [a, c])


def test_run_if_must_be_a_condition_or_condition_text():
    with pytest.raises(TaskDefinitionError, match="run_if"):
        make("a", run_if=lambda ctx: True)
    with pytest.raises(TaskDefinitionError, match="run_if"):
        make("a", run_if="do_audit ==")
    t = make("a", run_if="do_audit == true")
    assert str(t.spec.run_if) == "do_audit == true"


def test_a_condition_in_a_python_boolean_context_is_refused():
    with pytest.raises(TypeError, match="all_of"):
        bool(ctx("a") == 1)


def test_text_round_trip_of_the_helpers():
    cases = [
        ctx("do_audit") == True,  # noqa: E712
        ctx("n") >= 3,
        ctx("tags").contains("x"),
        ctx("tags").not_contains("x"),
        ctx("k").exists(),
        ctx("k").missing(),
        ctx("my key") != None,  # noqa: E711
        all_of(succeeded("a"), any_of(failed("b"), skipped("c"))),
        none_of(ctx("a"), ctx("b")),
        ~ctx("a"),
        always(),
        ctx("a") & ctx("b") | ctx("c"),
    ]
    for c in cases:
        assert parse(str(c)) == c, str(c)


def test_bad_condition_text_says_what_is_expected():
    with pytest.raises(ConditionSyntaxError, match="not a condition"):
        parse("3")
    with pytest.raises(ConditionSyntaxError, match="expected a value"):
        parse("a == b")


# -- for all inputs ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)
keys = st.sampled_from(["a", "b", "c"])
leaf = st.builds(
    lambda k, op, v: ctx(k) == v if op == "==" else ctx(k).contains(v) if op == "in" else ctx(k),
    keys,
    st.sampled_from(["==", "in", "truthy"]),
    json_values,
) | st.builds(lambda k: ctx(k).exists(), keys)
conditions = st.recursive(
    leaf,
    lambda inner: (
        st.builds(all_of, inner, inner)
        | st.builds(any_of, inner, inner)
        | st.builds(none_of, inner)
    ),
    max_leaves=6,
)
contexts = st.dictionaries(keys, json_values)


@given(conditions, contexts)
def test_conditions_never_raise_and_give_a_reason_exactly_when_false(cond, values):
    why = cond.why_not(values, {})
    assert why is None or (isinstance(why, str) and why)


@given(st.lists(conditions, min_size=1, max_size=3), contexts)
def test_groups_follow_boolean_algebra(parts, values):
    each = [p.holds(values) for p in parts]
    assert all_of(*parts).holds(values) == all(each)
    assert any_of(*parts).holds(values) == any(each)
    assert none_of(*parts).holds(values) == (not any(each))


@given(conditions, contexts)
def test_the_text_form_reads_back_to_the_same_condition(cond, values):
    back = parse(str(cond))
    assert back.holds(values) == cond.holds(values)


# -- the .flow DSL ------------------------------------------------------------------------------


def test_run_if_in_a_flow_file_runs_and_exports(write_flow, cli):
    write_flow(
        """
        def a(context): pass
        def audit(context): pass
        """,
        "f.py",
    )
    flow = write_flow(
        """
        flow f:
            task a
            task audit:
                run_if: "do_audit == true and succeeded(a)"
            a -> audit
        """,
        "f.flow",
    )
    from tui_flow import load
    from tui_flow.dsl.export import dump_flow

    wf = load(flow).workflow()
    assert str(wf.tasks["audit"].spec.run_if) == "do_audit == true and succeeded(a)"
    assert 'run_if: "do_audit == true and succeeded(a)"' in dump_flow(wf)
    r = cli("run", str(flow), "--set", "do_audit=false")
    assert r.returncode == 0, r.stderr
    assert "do_audit is false" in r.stdout + r.stderr


def test_bad_run_if_in_a_flow_file_is_one_located_error(write_flow, cli):
    write_flow("def a(context): pass\n", "g.py")
    flow = write_flow(
        """
        flow g:
            task a:
                run_if: "x =="
        """,
        "g.flow",
    )
    r = cli("validate", str(flow))
    assert r.returncode == 2
    assert "g.flow:3" in r.stderr and "run_if" in r.stderr
