"""The efficiency report, computed from a constructed timeline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_flow.engine.report import AttemptTiming, TaskTiming, compute_report


def t(id, deps, *attempts, status="completed"):
    return TaskTiming(
        id=id,
        status=status,
        dependencies=deps,
        attempts=[AttemptTiming(started_at=a, finished_at=b) for a, b in attempts],
    )


def test_report_figures_on_a_constructed_timeline():
    # root 0-1; a 1-4; b 1-2, retried 3-5 (1 s wait); join 5-6
    timings = [
        t("root", (), (0, 1)),
        t("a", ("root",), (1, 4)),
        t("b", ("root",), (1, 2), (3, 5)),
        t("join", ("a", "b"), (5, 6)),
    ]
    r = compute_report(timings, max_concurrency=2, started_at=0.0, finished_at=6.0)
    assert r.wall_s == 6.0
    assert r.total_task_s == 1 + 3 + (1 + 2) + 1  # 8 s of running bodies
    assert r.speedup == pytest.approx(8 / 6)
    assert r.slot_utilisation == pytest.approx(8 / 6 / 2)
    # b and a both did 3 s of work (b's 1 s retry wait is no work): a tie, a wins in order
    assert r.critical_path == ["root", "a", "join"]
    assert r.critical_path_s == pytest.approx(1 + 3 + 1)
    assert r.graph_speedup == pytest.approx(8 / 5)
    assert r.possible_speedup == pytest.approx(8 / 5)  # below the 2 slots
    assert r.of_possible == pytest.approx((8 / 6) / (8 / 5))
    assert r.speedup_line() == "1.33x of 1.60x possible (83%)"
    assert r.retry_wait_s == pytest.approx(1.0)
    # the run ended with join, which waited for b (ended 5), which waited between attempts
    b = r.breakdown
    assert b.running_s == pytest.approx(1 + 3 + 1)  # root, b's two attempts, join
    assert b.retry_wait_s == pytest.approx(1.0)
    assert b.total() == pytest.approx(r.wall_s)
    rows = {row.id: row for row in r.tasks}
    assert rows["b"].attempts == 2 and rows["b"].duration_s == 4 and rows["b"].run_s == 3
    assert [row.id for row in r.slowest(2)] == ["b", "a"]


def test_report_of_an_empty_or_unstarted_run_is_all_zeros():
    r = compute_report([t("x", (), status="skipped")], max_concurrency=4)
    assert (r.wall_s, r.total_task_s, r.speedup) == (0, 0, 0)
    assert r.possible_speedup == 1.0  # never below 1x
    assert r.critical_path == ["x"]


def test_summary_has_the_json_fields():
    r = compute_report([t("x", (), (0, 2))], max_concurrency=1, started_at=0, finished_at=2)
    assert set(r.summary()) >= {
        "wall_s",
        "total_task_s",
        "speedup",
        "possible_speedup",
        "of_possible",
        "slot_utilisation",
        "max_concurrency",
        "critical_path",
        "critical_path_s",
        "graph_speedup",
        "retry_wait_s",
        "breakdown",
    }


def test_a_map_over_task_weighs_its_longest_instance_on_the_critical_path():
    from tui_flow.engine.events import RunFinished, RunStarted, TaskInfo, TasksAdded
    from tui_flow.engine.events import TaskStateChanged as S
    from tui_flow.engine.state import RunView

    infos = [TaskInfo(id="split"), TaskInfo(id="work", dependencies=("split",), map_over="xs")]
    events = [
        RunStarted(run_id="r", at=0, workflow="w", max_concurrency=1, tasks=infos),
        S(run_id="r", at=0, task_id="split", state="running", attempt=1),
        S(run_id="r", at=1, task_id="split", state="completed", attempt=1),
        S(run_id="r", at=1, task_id="work", state="running"),
        TasksAdded(
            run_id="r",
            at=1,
            parent="work",
            tasks=[TaskInfo(id=f"work[{i}]", parent="work") for i in range(3)],
        ),
    ]
    for i in range(3):  # one at a time (concurrency 1): 2 s each
        events += [
            S(run_id="r", at=1 + 2 * i, task_id=f"work[{i}]", state="running", attempt=1),
            S(run_id="r", at=3 + 2 * i, task_id=f"work[{i}]", state="completed", attempt=1),
        ]
    events += [
        S(run_id="r", at=7, task_id="work", state="completed"),
        RunFinished(run_id="r", at=7, status="completed", report={}),
    ]
    report = RunView.from_events(events).compute_report()
    assert report.wall_s == 7
    assert report.total_task_s == 1 + 3 * 2  # the instances' time, not the group's again
    assert report.critical_path == ["split", "work"]
    assert report.critical_path_s == 1 + 2  # the longest instance, not the 6 s span
    assert report.graph_speedup == pytest.approx(7 / 3)
    assert report.possible_speedup == 1.0  # concurrency 1: the slots cap it
    rows = {r.id: r for r in report.tasks}
    assert rows["work"].duration_s == 6  # the table still shows the group's span


def test_a_skipped_task_never_stands_on_the_critical_path_in_place_of_one_that_ran():
    timings = [
        t("fetch", (), (0, 2)),
        t("convert", ("fetch",), (2, 2.5)),
        t("alert", ("fetch", "convert"), status="skipped"),  # one_failed: nothing failed
        t("cleanup", ("convert", "alert"), (2.5, 2.6)),
    ]
    r = compute_report(timings, max_concurrency=4, started_at=0, finished_at=2.6)
    assert r.critical_path == ["fetch", "convert", "cleanup"]
    assert r.critical_path_s == pytest.approx(2.6)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["completed", "failed", "skipped"]), st.floats(0, 100)),
        max_size=60,
    ),
    st.integers(1, 30),
)
def test_a_long_report_shows_the_failed_and_the_slowest_and_counts_the_rest(tasks, limit):
    from tui_flow.console import rows_to_show
    from tui_flow.engine.report import TaskRow

    rows = [TaskRow(f"t{i}", st_, 1, 0.0, d, d, d) for i, (st_, d) in enumerate(tasks)]
    shown, rest = rows_to_show(rows, limit)
    if len(rows) <= limit:
        assert shown == rows and rest == ""
        return
    assert len(shown) == limit
    assert [r.id for r in shown] == [r.id for r in rows if r in shown]  # run order kept
    failed = [r for r in rows if r.status == "failed"]
    assert all(r in shown for r in failed[:limit])
    if len(failed) < limit:  # the room left goes to the slowest of the others
        others = [r for r in rows if r not in shown]
        slowest_shown = min(r.duration_s for r in shown if r.status != "failed")
        assert all(r.duration_s <= slowest_shown for r in others)
    counted = sum(int(n.split()[0].replace(",", "")) for n in rest.split(": ", 1)[1].split(", "))
    assert counted == len(rows) - limit
    assert rest.startswith(f"... {len(rows) - limit:,} more tasks: ")


@st.composite
def simulated_runs(draw):
    """A random graph, run by a list scheduler with a slot cap: each task's attempts (with
    waits between them) and its wait for a worker process hold its slot."""
    n = draw(st.integers(1, 12))
    cap = draw(st.integers(1, 4))
    deps = [
        tuple(sorted(draw(st.sets(st.integers(0, i - 1), max_size=3)))) if i else ()
        for i in range(n)
    ]
    times = st.floats(0.0, 5.0, allow_nan=False)
    plan = [
        (draw(st.lists(times, min_size=1, max_size=3)), draw(times), draw(times)) for _ in range(n)
    ]  # (attempt durations, retry wait, worker wait)
    slots = [0.0] * cap  # when each slot is next free
    ends: list[float] = []
    timings = []
    for i in range(n):  # in index order (a valid topological order)
        ready = max((ends[d] for d in deps[i]), default=0.0)
        slot = min(range(cap), key=lambda s: slots[s])
        at = max(ready, slots[slot]) + plan[i][2]  # then the body starts
        attempts = []
        for k, d in enumerate(plan[i][0]):
            if k:
                at += plan[i][1]
            attempts.append(AttemptTiming(at, at + d))
            at += d
        slots[slot] = at
        ends.append(at)
        timing = t(f"t{i}", tuple(f"t{d}" for d in deps[i]))
        timing.attempts = attempts
        timing.worker_wait_s = plan[i][2]
        timings.append(timing)
    return timings, cap, max(ends) + draw(times)


@settings(max_examples=200, deadline=None)
@given(simulated_runs())
def test_the_reports_invariants_hold_for_any_graph_and_timing(run):
    timings, cap, end = run
    r = compute_report(timings, max_concurrency=cap, started_at=0.0, finished_at=end)
    assert 1.0 <= r.possible_speedup <= cap  # never a "best possible" below 1x
    assert r.critical_path_s <= r.total_task_s + 1e-9  # a path's work is part of all work
    assert r.total_task_s == pytest.approx(
        sum(a.finished_at - a.started_at for x in timings for a in x.attempts)
    )
    if r.wall_s > 0:
        # achieved never beats what the graph allows at this cap (a schedule can't)
        assert r.speedup <= r.possible_speedup * (1 + 1e-9) + 1e-9
        assert r.of_possible <= 1 + 1e-6
        assert r.slot_utilisation <= 1 + 1e-9
    parts = r.breakdown
    assert all(v >= -1e-9 for _, v in parts.lines())
    assert parts.total() == pytest.approx(r.wall_s, abs=1e-6)  # the breakdown sums to the wall
    assert parts.worker_wait_s <= sum(x.worker_wait_s for x in timings) + 1e-9


def test_a_wait_for_a_worker_process_is_its_own_line_and_the_tree_says_so():
    from tui_flow.engine.events import WAITS_FOR_WORKER, RunFinished, RunStarted, TaskInfo
    from tui_flow.engine.events import TaskStateChanged as S
    from tui_flow.engine.state import RunView
    from tui_flow.ui.widgets.dag_tree import task_label

    infos = [TaskInfo(id="crunch", runner="process")]
    events = [
        RunStarted(run_id="r", at=0, workflow="w", max_concurrency=4, tasks=infos),
        S(run_id="r", at=0.1, task_id="crunch", state="pending", reason=WAITS_FOR_WORKER),
    ]
    view = RunView.from_events(events)
    label = task_label(view.tasks["crunch"], view, now=1.0).plain
    assert "waits for a worker process" in label and "free slot" not in label
    assert view.running == 1  # the header's "slots 1/4": it holds its slot already
    view.apply(S(run_id="r", at=2.1, task_id="crunch", state="running", attempt=1))
    assert view.running == 1  # the same slot, not a second one
    view = RunView.from_events(
        [
            *events,
            S(run_id="r", at=2.1, task_id="crunch", state="running", attempt=1),
            S(run_id="r", at=3.1, task_id="crunch", state="completed", attempt=1),
            RunFinished(run_id="r", at=3.2, status="completed", report={}),
        ]
    )
    assert view.tasks["crunch"].worker_wait_s == pytest.approx(2.0)
    parts = view.compute_report().breakdown
    assert parts.worker_wait_s == pytest.approx(2.0)  # start-up, not "waiting for a slot"
    assert parts.slot_wait_s == pytest.approx(0.1)
    assert parts.running_s == pytest.approx(1.0)
    assert parts.other_s == pytest.approx(0.1)


def test_user_frames_are_picked_out_of_a_traceback(tmp_path):
    import runpy

    from tui_flow.engine.worker import describe_error
    from tui_flow.tracebacks import failure_lines, user_frames

    mine = tmp_path / "flow.py"
    mine.write_text("import json\n\ndef body():\n    json.loads('{')\n")
    body = runpy.run_path(str(mine))["body"]
    try:
        body()
    except ValueError as exc:
        error, tb = describe_error(exc)
    frames = user_frames(tb)
    # this test's frame and the flow's are the user's; json's (the stdlib) are not
    assert [f.file for f in frames] == [__file__, str(mine)]
    assert frames[-1].line == 4 and frames[-1].func == "body"
    assert frames[-1].code == "json.loads('{')"
    lines = failure_lines(error, tb)
    assert lines[0] == error and lines[1] == "your code (most recent call last):"
    assert lines.index("full traceback:") == 2 + 2 * len(frames)
    assert failure_lines("x", None) == ["x"]


def test_a_long_error_reads_whole_below_the_table_at_80_columns():
    import io

    from tui_flow.console import print_report

    error = "ValueError: row 12 of prices.csv has no price, and the currency column is empty"
    r = compute_report(
        [
            t("a_task_with_a_rather_long_name", (), (0, 1)),
            TaskTiming(
                "check",
                "failed",
                ("a_task_with_a_rather_long_name",),
                [AttemptTiming(1, 2)],
                error=error,
            ),
        ],
        max_concurrency=2,
        started_at=0,
        finished_at=2,
    )
    out = io.StringIO()
    print_report(r, "w", "failed", "r1", out=out, plain=True)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 120
    errors = text[text.index("\nerrors\n") :]
    assert f"✖ check: {error}" in errors  # one piece, not 5 characters a line


def test_a_wait_for_a_slot_held_by_a_task_starting_its_worker_is_worker_start_up():
    # 2 slots; i0 and i1 take them at 0.01 but their worker processes start until 0.5; i2
    # and i3 wait for those slots. The wall time went to worker start-up, not "slot waits".
    def timing(id, deps, start, end, worker=0.0):
        x = t(id, deps, (start, end))
        x.worker_wait_s = worker
        return x

    timings = [
        timing("split", (), 0.0, 0.01),
        timing("i0", ("split",), 0.5, 0.6, worker=0.49),
        timing("i1", ("split",), 0.5, 0.6, worker=0.49),
        timing("i2", ("split",), 0.6, 0.7),
        timing("i3", ("split",), 0.6, 0.7),
        timing("join", ("i0", "i1", "i2", "i3"), 0.7, 0.71),
    ]
    r = compute_report(timings, max_concurrency=2, started_at=0.0, finished_at=0.71)
    parts = r.breakdown
    assert parts.worker_wait_s == pytest.approx(0.49)
    assert parts.running_s == pytest.approx(0.01 + 0.1 + 0.1 + 0.01)
    assert parts.slot_wait_s == pytest.approx(0.0, abs=1e-9)
    assert parts.total() == pytest.approx(0.71)


def test_the_headline_figures_stack_in_a_narrow_pane():
    import io

    from rich.console import Console

    from tui_flow.console import report_head

    r = compute_report([t("x", (), (0, 2))], max_concurrency=2, started_at=0, finished_at=2)
    out = io.StringIO()
    console = Console(file=out, width=40, no_color=True)
    console.print(report_head(r, "w", "completed", "r1", width=40))
    lines = out.getvalue().splitlines()
    assert lines[0] == "run: r1  w  ✔ completed"
    assert "speedup: 1.00x of 1.00x possible (100%)" in out.getvalue().replace("\n", " ")
    assert max(len(line) for line in lines) <= 40
