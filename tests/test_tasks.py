"""The `@task` decorator: defaults, options, validation of every option, plain-function use."""

from __future__ import annotations

import inspect

import pydantic
import pytest

from tui_flow import Context, Task, TaskDefinitionError, TaskSpec, task
from tui_flow.tasks import TASK_OPTIONS


def test_bare_decorator_uses_the_function_name_and_defaults() -> None:
    @task
    def load_rows(context: Context) -> None:
        context.insert("rows", [1, 2])

    assert isinstance(load_rows, Task)
    assert load_rows.id == "load_rows"
    spec = load_rows.spec
    assert spec.dependencies == ()
    assert (spec.retry_attempts, spec.retry_delay_ms, spec.retry_backoff) == (0, 0, "fixed")
    assert spec.retry_max_delay_ms is None and spec.retry_jitter is False
    assert spec.timeout_s is None and spec.trigger_rule == "all_success"
    assert spec.runner is None
    assert spec.max_attempts == 1


def test_decorator_with_empty_parentheses_is_the_same_as_bare() -> None:
    @task()
    def step(context: Context) -> None: ...

    assert step.id == "step" and step.spec == TaskSpec(id="step")


def test_decorated_function_stays_callable_as_a_plain_function() -> None:
    @task(retry_attempts=2)
    def double(context: Context) -> int:
        """Double n."""
        value = context.get("n") * 2
        context.insert("doubled", value)
        return value

    ctx = Context({"n": 21})
    assert double(ctx) == 42
    assert ctx.writes == {"doubled": 42}
    assert double.__name__ == "double"
    assert double.__doc__ == "Double n."
    assert inspect.signature(double) == inspect.signature(double.fn)


async def test_async_task_stays_awaitable() -> None:
    @task
    async def fetch(context: Context) -> str:
        context.set("fetched", True)
        return "ok"

    ctx = Context()
    assert fetch.is_async
    assert await fetch(ctx) == "ok"
    assert ctx.get("fetched") is True


def test_runner_defaults_by_kind_of_body() -> None:
    @task
    async def on_loop(context: Context) -> None: ...

    @task
    def in_thread(context: Context) -> None: ...

    @task(runner="process")
    def in_process(context: Context) -> None: ...

    assert (on_loop.runner, in_thread.runner, in_process.runner) == ("async", "thread", "process")


def test_explicit_id_and_dependencies_as_ids_or_functions() -> None:
    @task(id="first")
    def a(context: Context) -> None: ...

    @task(dependencies=[a, "other"])
    def b(context: Context) -> None: ...

    @task(dependencies="first")  # one id given as a string, not a list of characters
    def c(context: Context) -> None: ...

    assert a.id == "first"
    assert b.spec.dependencies == ("first", "other")
    assert c.spec.dependencies == ("first",)


def test_description_defaults_to_the_first_docstring_line() -> None:
    @task
    def documented(context: Context) -> None:
        """Load the rows.

        More detail that is not shown in the tree.
        """

    @task(description="explicit")
    def described(context: Context) -> None:
        """Ignored."""

    assert documented.spec.description == "Load the rows."
    assert described.spec.description == "explicit"


def test_every_documented_option_is_accepted() -> None:
    @task(
        id="all",
        dependencies=["x"],
        retry_attempts=3,
        retry_delay_ms=250,
        retry_backoff="exponential",
        retry_max_delay_ms=4000,
        retry_jitter=True,
        timeout_s=1.5,
        trigger_rule="all_done",
        runner="thread",
        description="everything",
    )
    def everything(context: Context) -> None: ...

    s = everything.spec
    assert (s.retry_attempts, s.retry_delay_ms, s.retry_backoff) == (3, 250, "exponential")
    assert (s.retry_max_delay_ms, s.retry_jitter, s.timeout_s) == (4000, True, 1.5)
    assert (s.trigger_rule, s.runner, s.max_attempts) == ("all_done", "thread", 4)


def test_misspelled_option_names_task_option_and_suggestion() -> None:
    with pytest.raises(TaskDefinitionError) as err:

        @task(retry_backof="linear")
        def fetch(context: Context) -> None: ...

    msg = str(err.value)
    assert "task 'fetch'" in msg
    assert "unknown option 'retry_backof'" in msg
    assert "did you mean 'retry_backoff'?" in msg
    assert "allowed options:" in msg and "trigger_rule" in msg


def test_bad_backoff_value_names_task_option_and_allowed_values() -> None:
    with pytest.raises(TaskDefinitionError) as err:

        @task(retry_backoff="expo")
        def fetch(context: Context) -> None: ...

    msg = str(err.value)
    assert "task 'fetch'" in msg and "option 'retry_backoff'" in msg
    assert "'fixed' | 'linear' | 'exponential'" in msg
    assert "'expo'" in msg


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("trigger_rule", "always", "'all_success' | 'all_done' | 'one_failed' | 'none_failed'"),
        ("runner", "gpu", "None | 'async' | 'thread' | 'process'"),
        ("retry_attempts", -1, "greater than or equal to 0"),
        ("retry_attempts", 1.5, "integer"),
        ("retry_attempts", True, "must be a number, not True"),
        ("retry_delay_ms", -5, "greater than or equal to 0"),
        ("timeout_s", 0, "greater than 0"),
        ("timeout_s", float("inf"), "finite number"),
        ("retry_delay_ms", float("inf"), "finite number"),
        ("retry_max_delay_ms", float("nan"), "finite number"),
        ("id", "", "at least 1 character"),
        ("id", "bad\nid", "newlines"),
    ],
)
def test_bad_option_values_are_refused_when_the_decorator_runs(
    option: str, value: object, expected: str
) -> None:
    with pytest.raises(TaskDefinitionError) as err:
        task(**{option: value})(lambda context: None)
    msg = str(err.value)
    assert f"option {option!r}" in msg
    assert expected in msg


def test_several_bad_options_are_reported_together() -> None:
    with pytest.raises(TaskDefinitionError) as err:

        @task(retry_attempts=-1, trigger_rule="never")
        def t(context: Context) -> None: ...

    msg = str(err.value)
    assert "option 'retry_attempts'" in msg and "option 'trigger_rule'" in msg


def test_dependency_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TaskDefinitionError, match=r"option 'dependencies'.*not int"):

        @task(dependencies=[3])
        def t(context: Context) -> None: ...


def test_decorating_twice_or_a_non_function_is_refused() -> None:
    @task
    def once(context: Context) -> None: ...

    with pytest.raises(TaskDefinitionError, match="decorated with @task twice"):
        task(once)
    with pytest.raises(TaskDefinitionError, match="must decorate a function, not int"):
        task(42)


def test_spec_is_immutable_and_with_spec_makes_a_changed_copy() -> None:
    @task(retry_attempts=1)
    def t(context: Context) -> None: ...

    with pytest.raises(pydantic.ValidationError):
        t.spec.retry_attempts = 5  # type: ignore[misc]
    copy = t.with_spec(retry_attempts=5)
    assert copy.spec.retry_attempts == 5 and t.spec.retry_attempts == 1
    assert (copy.source_file, copy.source_line) == (t.source_file, t.source_line)
    assert copy.fn is t.fn


def test_task_knows_the_file_and_line_of_its_decorator() -> None:
    here = inspect.currentframe()
    assert here is not None
    decorator_line = here.f_lineno + 2

    @task
    def located(context: Context) -> None: ...

    assert located.source_file == __file__
    assert located.source_line == decorator_line
    assert f"{__file__}:{decorator_line}" in repr(located)


def test_signature_problems_are_recorded_not_raised() -> None:
    @task
    def no_args() -> None: ...

    @task
    def two_args(context: Context, extra: int) -> None: ...

    @task
    def fine_with_default(context: Context, extra: int = 1) -> None: ...

    @task
    def fine_varargs(*args: object) -> None: ...

    assert no_args.signature_problem and "takes no arguments" in no_args.signature_problem
    assert two_args.signature_problem and "(context, extra)" in two_args.signature_problem
    assert fine_with_default.signature_problem is None
    assert fine_varargs.signature_problem is None


def test_task_options_list_matches_the_spec() -> None:
    assert set(TASK_OPTIONS) == set(TaskSpec.model_fields)
    assert {"retry_backoff", "trigger_rule", "runner", "timeout_s"} <= set(TASK_OPTIONS)


def test_the_package_exports_exactly_its_lazy_names() -> None:
    import tui_flow

    assert sorted(tui_flow.__all__) == sorted([*tui_flow._EXPORTS, "__version__"])
    for name in tui_flow._EXPORTS:
        assert getattr(tui_flow, name) is not None
