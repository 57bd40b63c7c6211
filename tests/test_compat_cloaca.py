"""`import cloaca` in a workflow file: Cloacina's Python API with cloaca's semantics."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui_flow import load
from tui_flow.compat import cloaca
from tui_flow.engine import run
from tui_flow.errors import LoadError

ROOT = Path(__file__).resolve().parent.parent

ETL = """
import cloaca

with cloaca.WorkflowBuilder("etl") as builder:
    builder.description("Extract, transform, load")
    builder.tag("team", "data")

    @cloaca.task(id="extract")
    def extract(context):
        print("extracting")
        context.set("rows", [1, 2, 3])
        return context

    @cloaca.task(id="double", dependencies=["extract"])
    def double(context):
        context.set("doubled", [r * 2 for r in context.get("rows")])
        return context

    @cloaca.task(
        id="audit",
        dependencies=[double],
        trigger_rules=cloaca.context_value("do_audit", "Equals", True),
    )
    def audit(context):
        context.set("audited", True)
        return context

with cloaca.WorkflowBuilder("other") as builder:
    @cloaca.task(id="solo")
    def solo(context):
        context.set("solo", 1)
        return context

if __name__ == "__main__":
    runner = cloaca.DefaultRunner("sqlite:///:memory:")
    result = runner.execute("etl", cloaca.Context({"do_audit": False}))
    print(result.status, sorted(result.final_context.to_dict()), result.error_message)
    runner.shutdown()
"""


async def run_wf(wf, context=None):
    return await asyncio.wait_for(run(wf, context), 20)


def test_a_cloaca_file_loads_its_builders_as_workflows(write_flow):
    loaded = load(write_flow(ETL, "etl.py"))
    assert sorted(loaded.workflows) == ["etl", "other"]
    etl = loaded.workflow("etl")
    assert etl.description == "Extract, transform, load"
    assert etl.tags == {"team": "data"}
    assert list(etl.tasks) == ["extract", "double", "audit"]
    assert etl.fan_in == "merge"
    assert list(loaded.workflow("other").tasks) == ["solo"]
    assert "cloaca" not in sys.modules  # provided while the file loaded, gone after


def test_several_workflows_are_picked_with_dash_dash_workflow(write_flow, cli):
    path = write_flow(ETL, "etl.py")
    done = cli("run", str(path), "--workflow", "other", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["workflow"] == "other" and doc["context"] == {"solo": 1}


async def test_trigger_rules_skip_and_skipped_is_not_failed(write_flow):
    wf = load(write_flow(ETL, "etl.py")).workflow("etl")
    result = await run_wf(wf, {"do_audit": False})
    assert result.ok
    assert result.tasks["audit"].status == "skipped"
    assert result.view.tasks["audit"].reason == "do_audit is false"
    result = await run_wf(wf, {"do_audit": True})
    assert result.tasks["audit"].status == "completed" and result.context["audited"] is True


def test_retry_attempts_count_every_attempt_with_cloacas_defaults():
    @cloaca.task(id="d")
    def d(context):
        return context

    @cloaca.task(id="five", retry_attempts=5, retry_backoff="fixed", retry_jitter=False)
    def five(context):
        return context

    @cloaca.task(id="never", retry_attempts=5, retry_condition="never")
    def never(context):
        return context

    assert d.spec.max_attempts == 3
    assert (d.spec.retry_backoff, d.spec.retry_delay_ms, d.spec.retry_jitter) == (
        "exponential",
        1000,
        True,
    )
    assert five.spec.max_attempts == 5 and five.spec.retry_backoff == "fixed"
    assert never.spec.max_attempts == 1


async def test_by_default_a_task_runs_once_its_dependencies_ended_even_failed(write_flow):
    path = write_flow(
        """
        import cloaca

        @cloaca.task(id="bad", retry_attempts=1)
        def bad(context):
            raise RuntimeError("boom")

        @cloaca.task(id="after", dependencies=["bad"])
        def after(context):
            context.set("ran", True)
            return context

        @cloaca.task(id="only_ok", dependencies=["bad"],
                     trigger_rules=cloaca.task_success("bad"))
        def only_ok(context):
            return context
        """,
        "bare.py",
    )
    wf = load(path).workflow()
    assert wf.name == "bare"  # bare @cloaca.task: one workflow of all the tasks
    result = await run_wf(wf)
    assert result.tasks["bad"].status == "failed"
    assert result.tasks["after"].status == "completed" and result.context["ran"] is True
    assert result.tasks["only_ok"].status == "skipped"


def test_the_context_has_cloacas_methods_and_errors():
    ctx = cloaca.Context({"a": 1})
    assert ctx.get("missing") is None
    with pytest.raises(ValueError):
        ctx.insert("a", 2)
    with pytest.raises(KeyError):
        ctx.update("missing", 2)
    ctx.insert("b", 2)
    ctx.update("b", 3)
    ctx["c"] = 4
    assert ctx["c"] == 4 and "c" in ctx and len(ctx) == 3
    del ctx["c"]
    assert "c" not in ctx
    with pytest.raises(KeyError):
        ctx["c"]
    assert ctx.remove("b") == 3 and ctx.remove("b") is None
    ctx.update_from_dict({"x": 1, "a": 5})
    assert ctx.to_dict() == {"a": 5, "x": 1}


async def test_context_writes_reach_descendants_and_parallel_writes_merge(write_flow):
    path = write_flow(
        """
        import cloaca

        with cloaca.WorkflowBuilder("fan") as b:
            @cloaca.task(id="start")
            def start(context):
                context.set("items", [0])
                return context

            @cloaca.task(id="left", dependencies=["start"])
            def left(context):
                context.update("items", context.get("items") + [1])
                context.set("meta", {"left": True})
                return context

            @cloaca.task(id="right", dependencies=["start"])
            def right(context):
                context.update("items", context.get("items") + [2])
                context.set("meta", {"right": True})
                return context

            @cloaca.task(id="join", dependencies=["left", "right"])
            def join(context):
                context.set("seen", [context.get("items"), context.get("meta")])
                return context
        """,
        "fan.py",
    )
    result = await run_wf(load(path).workflow())
    assert result.ok, {k: v.error for k, v in result.tasks.items()}
    assert result.context["seen"] == [[0, 1, 2], {"left": True, "right": True}]


async def test_trigger_rule_helpers_map_onto_conditions(write_flow):
    path = write_flow(
        """
        import cloaca

        @cloaca.task(id="a")
        def a(context):
            context.set("n", 5)
            context.set("tags", ["x"])
            return context

        R = cloaca
        rules = {
            "gt": R.context_value("n", "GreaterThan", 3),
            "lt": R.context_value("n", "LessThan", 3),
            "has": R.context_value("tags", "Contains", "x"),
            "hasnt": R.context_value("tags", "NotContains", "x"),
            "ex": R.context_value("n", "Exists"),
            "nex": R.context_value("n", "NotExists"),
            "ne": R.context_value("n", "NotEquals", 5),
            "all": R.all_of(R.task_success("a"), R.context_value("n", "Equals", 5)),
            "any": R.any_of(R.task_failed("a"), R.task_skipped("a")),
            "none": R.none_of(R.task_failed("a")),
            "always": R.always(),
        }
        for name, rule in rules.items():
            def body(context):
                return context
            body.__name__ = name
            globals()[name] = R.task(id=name, dependencies=["a"], trigger_rules=rule)(body)
        """,
        "rules.py",
    )
    result = await run_wf(load(path).workflow())
    ran = {t for t, o in result.tasks.items() if o.status == "completed"} - {"a"}
    assert ran == {"gt", "has", "ex", "all", "none", "always"}


def test_an_unknown_operator_is_one_clear_error_at_the_file(write_flow, cli):
    path = write_flow(
        """
        import cloaca

        @cloaca.task(id="a", trigger_rules=cloaca.context_value("n", "Bigger", 3))
        def a(context):
            return context
        """,
        "op.py",
    )
    with pytest.raises(LoadError, match="unknown operator 'Bigger'"):
        load(path)
    done = cli("validate", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "op.py:3" in done.stderr


async def test_callbacks_are_called(write_flow):
    path = write_flow(
        """
        import cloaca

        calls = []

        def ok(task_id, context):
            calls.append(("ok", task_id))

        def ko(task_id, error, context):
            calls.append(("ko", task_id, error))

        @cloaca.task(id="good", on_success=ok)
        def good(context):
            return context

        @cloaca.task(id="bad", retry_attempts=1, on_failure=ko)
        def bad(context):
            raise ValueError("nope")

        @cloaca.task(id="report", dependencies=["good", "bad"])
        def report(context):
            context.set("calls", calls)
            return context
        """,
        "cb.py",
    )
    result = await run_wf(load(path).workflow())
    assert sorted(map(tuple, result.context["calls"])) == [("ko", "bad", "nope"), ("ok", "good")]


def test_add_task_and_register_workflow_constructor(write_flow):
    path = write_flow(
        """
        import cloaca

        @cloaca.task(id="extract")
        def extract(context):
            return context

        @cloaca.task(id="load", dependencies=[extract])
        def load_(context):
            return context

        def make():
            b = cloaca.WorkflowBuilder("built")
            b.add_task("extract")
            b.add_task(load_)
            return b.build()

        cloaca.register_workflow_constructor("built", make)
        """,
        "ctor.py",
    )
    wf = load(path).workflow("built")
    assert list(wf.tasks) == ["extract", "load"]


def test_cron_and_poll_triggers_load_and_validate_lists_them(write_flow, cli):
    path = write_flow(
        """
        import cloaca

        @cloaca.trigger(name="new_files", poll_interval="30s")
        def new_files():
            return None

        @cloaca.task(id="a")
        def a(context):
            return context

        runner = cloaca.DefaultRunner("sqlite:///:memory:")
        runner.register_cron_workflow("triggers", "0 * * * *", "UTC")
        tenant = cloaca.DefaultRunner.with_schema("postgresql://x/y", "tenant_acme")
        """,
        "triggers.py",
    )
    done = cli("validate", str(path))
    assert done.returncode == 0, done.stderr
    assert "not scheduled by tui-flow: trigger new_files (triggers.py:3)" in done.stdout
    assert "not scheduled by tui-flow: cron '0 * * * *' for 'triggers'" in done.stdout
    assert "not scheduled by tui-flow: tenant schema 'tenant_acme'" in done.stdout


def test_a_cloaca_name_tui_flow_does_not_provide_is_one_clear_error(write_flow):
    path = write_flow("import cloaca\n\nx = cloaca.PipelineSecrets()\n", "secrets.py")
    with pytest.raises(LoadError) as err:
        load(path)
    assert "tui-flow's cloaca does not provide 'PipelineSecrets'" in str(err.value)
    assert err.value.line == 3


def test_a_real_cloaca_is_never_shadowed(write_flow, tmp_path, monkeypatch):
    real = tmp_path / "site"
    real.mkdir()
    (real / "cloaca.py").write_text("REAL = True\n")
    monkeypatch.syspath_prepend(str(real))
    path = write_flow(
        """
        import cloaca
        from tui_flow import task

        assert getattr(cloaca, "REAL", False), "the compat module shadowed a real cloaca"

        @task
        def a(context):
            pass
        """,
        "real.py",
    )
    assert list(load(path).workflow().tasks) == ["a"]
    sys.modules.pop("cloaca", None)


def test_the_pth_is_silent_where_tui_flow_cannot_provide(tmp_path):
    # a left-over .pth, or another tui_flow first on the path: Python starts without a word
    site = tmp_path / "site"
    (tmp_path / "other" / "tui_flow").mkdir(parents=True)
    (tmp_path / "other" / "tui_flow" / "__init__.py").write_text("")
    site.mkdir()
    (site / "tui_flow_compat.pth").write_text(
        (ROOT / "tui_flow" / "compat" / "tui_flow_compat.pth").read_text()
    )
    code = f"import site, sys; site.addsitedir({str(site)!r}); print('cloaca' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(tmp_path / "other"), "PATH": "/usr/bin:/bin"},
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "False\n", "")


def test_python_file_py_runs_through_the_default_runner(write_flow, tmp_path):
    # what the wheel's tui_flow_compat.pth does at start-up, in a site folder of its own
    site = tmp_path / "site"
    site.mkdir()
    (site / "tui_flow_compat.pth").write_text(
        (ROOT / "tui_flow" / "compat" / "tui_flow_compat.pth").read_text()
    )
    path = write_flow(ETL, "etl.py")
    code = (
        f"import site, runpy; site.addsitedir({str(site)!r}); "
        f"runpy.run_path({str(path)!r}, run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    # what the bodies print reaches the terminal, as under cloaca
    assert done.stdout.splitlines() == [
        "extracting",
        "Completed ['do_audit', 'doubled', 'rows'] None",
    ]


# -- the example flows ---------------------------------------------------------------------------


async def test_the_cloaca_catalog_computes_what_the_native_catalog_does(flows_dir):
    inputs = {"time_scale": 0.001, "product_count": 600, "seed": 3}
    compat = await asyncio.wait_for(run(flows_dir / "cloaca_catalog.py", inputs), 30)
    native = await asyncio.wait_for(run(flows_dir / "catalog.py", inputs), 30)
    assert compat.ok and native.ok, {k: v.error for k, v in compat.tasks.items()}
    assert compat.context["final_stats"] == native.context["final_stats"]
    assert compat.context["report"] == native.context["report"]
    assert set(compat.tasks) == set(native.tasks)


async def test_the_taskinity_example_flow_runs(flows_dir):
    result = await asyncio.wait_for(run(flows_dir / "taskinity_pipeline.dsl", {"size": 10}), 30)
    assert result.ok, {k: v.error for k, v in result.tasks.items()}
    assert result.context["Summarise"]["count"] == 10
    assert result.context["Report"].startswith("10 measurements")


def test_hot_reload_sees_an_edited_cloaca_body(write_flow):
    from tui_flow.ui.reload import fingerprint

    source = "import cloaca\n\n@cloaca.task(id='a')\ndef a(context):\n    context.set('v', 1)\n"
    path = write_flow(source, "hot.py")
    before = fingerprint(load(path).workflow().tasks["a"])
    path.write_text(source.replace("1", "2"))
    after = fingerprint(load(path).workflow().tasks["a"])
    assert before != after
    spec = load(path).workflow().tasks["a"].spec
    assert spec == spec.model_copy()  # specs with conditions compare (and dump) as usual
