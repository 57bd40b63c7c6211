"""The readiness machine on its own: no loop, no events, no bodies."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_flow import Workflow, task
from tui_flow.engine.progress import Progress


def noop(ctx) -> None:
    return None


def dag(edges: dict[str, list[str]], **options) -> Workflow:
    tasks = [task(noop, id=t, dependencies=deps, **options.get(t, {})) for t, deps in edges.items()]
    return Workflow("w", tasks)


@st.composite
def random_dags(draw) -> dict[str, list[str]]:
    n = draw(st.integers(1, 25))
    ids = [f"t{i}" for i in range(n)]
    return {
        t: sorted(draw(st.sets(st.sampled_from(ids[:i]), max_size=3))) if i else []
        for i, t in enumerate(ids)
    }


@settings(max_examples=60, deadline=None)
@given(random_dags(), st.randoms(use_true_random=False))
def test_each_task_becomes_decidable_once_and_only_after_all_its_dependencies(edges, rnd):
    p = Progress(dag(edges))
    ended: set[str] = set()
    decidable = list(p.roots())
    assert set(decidable) == {t for t, deps in edges.items() if not deps}
    seen = set(decidable)
    while decidable:
        tid = decidable.pop(rnd.randrange(len(decidable)))  # tasks end in any order
        p.state[tid] = rnd.choice(["completed", "failed", "skipped", "cancelled"])
        ended.add(tid)
        for child in p.ended(tid):
            assert set(edges[child]) <= ended and child not in seen
            seen.add(child)
            decidable.append(child)
    assert seen == set(edges) and p.finished


RULES = {
    # rule: {states of the two dependencies: runs?}
    "all_success": {("completed", "completed"): True, ("completed", "skipped"): False},
    "all_done": {("failed", "cancelled"): True, ("completed", "skipped"): True},
    "one_failed": {("failed", "completed"): True, ("completed", "skipped"): False},
    "none_failed": {
        ("completed", "skipped"): True,
        ("completed", "failed"): False,
        ("cancelled", "completed"): False,
    },
}


@pytest.mark.parametrize(
    ("rule", "states", "runs"),
    [(rule, s, runs) for rule, cases in RULES.items() for s, runs in cases.items()],
)
def test_trigger_rules(rule, states, runs):
    p = Progress(dag({"a": [], "b": [], "c": ["a", "b"]}, c={"trigger_rule": rule}))
    p.state["a"], p.state["b"] = states
    why = p.verdict("c")
    assert (why is None) == runs
    if not runs and rule != "one_failed":
        assert why.startswith("upstream ")


def test_a_group_ends_with_its_last_instance_and_says_how():
    p = Progress(dag({"m": []}))
    p.expand("m", ["m[0]", "m[1]", "m[2]"])
    p.state.update({"m[0]": "completed", "m[1]": "cancelled", "m[2]": "failed"})
    assert [p.instance_ended("m") for _ in range(3)] == [False, False, True]
    assert p.group_outcome("m") == ("failed", ["m[2]", "m[1]"])  # a failed one first
    p.state["m[2]"] = "cancelled"
    assert p.group_outcome("m") == ("cancelled", ["m[1]", "m[2]"])
    p.state.update({"m[1]": "completed", "m[2]": "completed"})
    assert p.group_outcome("m") == ("completed", [])


@settings(max_examples=60, deadline=None)
@given(random_dags())
def test_the_graph_questions_agree_with_networkx(edges):
    import networkx as nx

    wf = dag(edges)
    g = wf.graph  # built with networkx, on demand
    assert wf.stages == [sorted(gen) for gen in nx.topological_generations(g)]
    for tid in edges:
        assert wf.ancestors(tid) == nx.ancestors(g, tid)
        assert wf.descendants(tid) == nx.descendants(g, tid)
        assert wf.dependents(tid) == sorted(g.successors(tid))


@settings(max_examples=60, deadline=None)
@given(random_dags(), st.data())
def test_every_cycle_is_found_and_reported_as_a_real_one(edges, data):
    import networkx as nx

    from tui_flow.errors import ValidationError

    # add a few edges backwards: cycles, maybe several, maybe none
    ids = list(edges)
    for _ in range(data.draw(st.integers(0, 3))):
        a, b = data.draw(st.sampled_from(ids)), data.draw(st.sampled_from(ids))
        if a != b and a not in edges[b]:
            edges[b] = [*edges[b], a]
    g = nx.DiGraph([(d, t) for t, deps in edges.items() for d in deps])
    g.add_nodes_from(ids)
    cyclic = [c for c in nx.strongly_connected_components(g) if len(c) > 1]
    if not cyclic:
        dag(edges)  # builds
        return
    with pytest.raises(ValidationError) as err:
        dag(edges)
    paths = [p.message.removeprefix("dependency cycle: ").split(" -> ") for p in err.value.problems]
    assert len(paths) == len(cyclic)
    for path in paths:
        assert path[0] == path[-1]
        assert all(g.has_edge(a, b) for a, b in itertools.pairwise(path))
