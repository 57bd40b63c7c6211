"""`@task(run_if=...)`: data conditions, evaluated when the task is ready; false => skipped."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
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
    assert [r.error for r in result.report.tasks if r.id == "audit"] == ["do_audit is false"]
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
    # specs dump (hot reload fingerprints them) and compare, a bare ctx() included
    assert '"run_if":"do_audit == true"' in t.spec.model_dump_json()
    bare = make("b", run_if=ctx("k"))
    assert bare.spec == bare.spec.model_copy() and bare.spec != t.spec


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
    # the skip's line, and the report's error / note column
    assert r.stdout.count("do_audit is false") == 2, r.stdout


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


# -- the engine against a reference model, for random workflows ------------------------------

RULES = ["all_success", "all_done", "one_failed", "none_failed"]


@st.composite
def plans(draw):
    """Random DAGs: each task succeeds or fails, has a trigger rule and maybe a run_if on the
    context flag and on its dependencies' states (a nested tuple the model evaluates)."""
    n = draw(st.integers(1, 7))
    out = []
    for i in range(n):
        deps = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        ids = [f"t{d}" for d in deps]
        leaves = [st.just(("flag",)), st.just(("always",))]
        if ids:
            leaves.append(
                st.tuples(st.sampled_from(["succeeded", "failed", "skipped"]), st.sampled_from(ids))
            )
        cond = draw(
            st.none()
            | st.recursive(
                st.one_of(*leaves),
                lambda inner: st.tuples(
                    st.sampled_from(["all_of", "any_of", "none_of"]),
                    st.lists(inner, min_size=1, max_size=2).map(tuple),
                ),
                max_leaves=4,
            )
        )
        out.append((f"t{i}", ids, draw(st.booleans()), draw(st.sampled_from(RULES)), cond))
    return out


def to_condition(c):
    kind = c[0]
    if kind == "flag":
        return ctx("flag")
    if kind == "always":
        return always()
    if kind in ("succeeded", "failed", "skipped"):
        return {"succeeded": succeeded, "failed": failed, "skipped": skipped}[kind](c[1])
    return {"all_of": all_of, "any_of": any_of, "none_of": none_of}[kind](
        *[to_condition(p) for p in c[1]]
    )


def model_holds(c, flag, state) -> bool:
    kind = c[0]
    if kind == "flag":
        return flag
    if kind == "always":
        return True
    if kind in ("succeeded", "failed", "skipped"):
        return state[c[1]] == {"succeeded": "completed"}.get(kind, kind)
    each = [model_holds(p, flag, state) for p in c[1]]
    return {"all_of": all, "any_of": any, "none_of": lambda xs: not any(xs)}[kind](each)


def model_rule(rule, deps, state) -> bool:
    got = [state[d] for d in deps]
    if rule == "all_success":
        return all(s == "completed" for s in got)
    if rule == "one_failed":
        return "failed" in got
    if rule == "none_failed":
        return not any(s in ("failed", "cancelled") for s in got)
    return True


@settings(max_examples=60, deadline=None)  # each example is a run: no per-example deadline
@given(plans(), st.booleans())
def test_run_if_and_trigger_rules_end_every_task_as_the_model_says(plan, flag):
    state: dict[str, str] = {}
    for tid, deps, ok, rule, cond in plan:
        runs = model_rule(rule, deps, state) and (cond is None or model_holds(cond, flag, state))
        state[tid] = ("completed" if ok else "failed") if runs else "skipped"

    tasks = []
    for tid, deps, ok, rule, cond in plan:

        async def body(context, ok=ok):
            if not ok:
                raise RuntimeError("planned failure")

        body.__name__ = tid
        run_if = None if cond is None else to_condition(cond)
        tasks.append(task(body, dependencies=deps, trigger_rule=rule, run_if=run_if))
    result = asyncio.run(run_wf(Workflow("w", tasks), {"flag": flag}))
    assert {t: o.status for t, o in result.tasks.items()} == state
    for tid, *_ in plan:
        if state[tid] == "skipped":
            assert result.view.tasks[tid].reason  # every skip says why
