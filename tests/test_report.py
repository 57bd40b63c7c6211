"""The efficiency report, computed from a constructed timeline."""

from __future__ import annotations

import pytest

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
    assert r.efficiency == pytest.approx(8 / 6 / 2)
    # b's span (1-5, 4 s) outweighs a (3 s): the retry puts b on the critical path
    assert r.critical_path == ["root", "b", "join"]
    assert r.critical_path_s == pytest.approx(1 + 4 + 1)
    assert r.max_speedup == pytest.approx(8 / 6)
    assert r.retry_wait_s == pytest.approx(1.0)
    rows = {row.id: row for row in r.tasks}
    assert rows["b"].attempts == 2 and rows["b"].duration_s == 4 and rows["b"].run_s == 3
    assert [row.id for row in r.slowest(2)] == ["b", "a"]


def test_report_of_an_empty_or_unstarted_run_is_all_zeros():
    r = compute_report([t("x", (), status="skipped")], max_concurrency=4)
    assert (r.wall_s, r.total_task_s, r.speedup, r.max_speedup) == (0, 0, 0, 0)
    assert r.critical_path == ["x"]


def test_summary_has_the_json_fields():
    r = compute_report([t("x", (), (0, 2))], max_concurrency=1, started_at=0, finished_at=2)
    assert set(r.summary()) >= {
        "wall_s",
        "total_task_s",
        "speedup",
        "efficiency",
        "max_concurrency",
        "critical_path",
        "critical_path_s",
        "max_speedup",
    }
