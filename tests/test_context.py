"""Context rules: insert / update / set / get, JSON-only values checked at write time."""

from __future__ import annotations

import enum

import pytest
from pydantic import BaseModel

from tui_flow import Context, ContextError, Workflow, run, task


class Point(BaseModel):
    x: int
    y: int


class Colour(enum.StrEnum):
    RED = "red"


def reader(values: dict[str, object]) -> Context:
    """A context as the engine builds it for task `reader`."""
    return Context.for_task("reader", values)


# -- insert / update / set ------------------------------------------------------------------


def test_insert_adds_a_new_key_and_refuses_an_existing_one() -> None:
    ctx = Context()
    ctx.insert("rows", [1, 2])
    assert ctx.get("rows") == [1, 2]
    with pytest.raises(ContextError) as err:
        ctx.insert("rows", [3])
    assert "'rows' already exists" in str(err.value)
    assert "update() or set()" in str(err.value)
    assert ctx.get("rows") == [1, 2]


def test_insert_refuses_a_key_visible_from_an_ancestor() -> None:
    ctx = Context.for_task("child", {"rows": [1]})
    with pytest.raises(ContextError, match="task 'child': context key 'rows' already exists"):
        ctx.insert("rows", [2])


def test_update_replaces_an_existing_key_and_refuses_a_missing_one() -> None:
    ctx = Context({"n": 1})
    ctx.update("n", 2)
    assert ctx.get("n") == 2
    with pytest.raises(ContextError) as err:
        ctx.update("missing", 1)
    assert "'missing' does not exist" in str(err.value)
    assert "insert() or set()" in str(err.value)
    assert "missing" not in ctx


def test_set_writes_whether_or_not_the_key_exists() -> None:
    ctx = Context({"n": 1})
    ctx.set("n", 2)
    ctx.set("m", 3)
    ctx["k"] = 4
    assert (ctx.get("n"), ctx.get("m"), ctx["k"]) == (2, 3, 4)


def test_writes_hold_only_what_the_task_wrote() -> None:
    ctx = Context({"given": 1})
    ctx.insert("made", 2)
    assert ctx.writes == {"made": 2}
    assert ctx.to_dict() == {"given": 1, "made": 2}


@pytest.mark.parametrize("key", ["", 3, None])
def test_keys_are_non_empty_strings(key: object) -> None:
    with pytest.raises(ContextError, match="non-empty strings"):
        Context().set(key, 1)  # type: ignore[arg-type]


# -- get --------------------------------------------------------------------------------------


def test_get_of_a_missing_key_names_the_key_and_the_reading_task() -> None:
    with pytest.raises(ContextError) as err:
        reader({"products": []}).get("prodcts")
    msg = str(err.value)
    assert "task 'reader'" in msg and "'prodcts'" in msg
    assert "did you mean 'products'?" in msg


def test_get_of_a_missing_key_in_an_empty_context_hints_at_dependencies() -> None:
    with pytest.raises(ContextError, match="is the writer a dependency of this task"):
        reader({}).get("rows")


def test_context_error_is_a_key_error_without_quoted_message() -> None:
    with pytest.raises(KeyError) as err:
        reader({}).get("rows")
    assert not str(err.value).startswith("'")


def test_get_returns_the_default_when_given() -> None:
    ctx = reader({"n": 0})
    assert ctx.get("missing", 5) == 5
    assert ctx.get("missing", None) is None
    assert ctx.get("n", 5) == 0  # a falsy value is still a value


def test_get_with_type_validates_into_the_type() -> None:
    ctx = reader({"p": {"x": 1, "y": 2}, "ids": ["1", 2]})
    assert ctx.get("p", type=Point) == Point(x=1, y=2)
    assert ctx.get("ids", type=list[int]) == [1, 2]
    assert ctx.get("missing", None, type=Point) is None


def test_get_with_a_type_that_does_not_fit_names_key_type_and_task() -> None:
    with pytest.raises(ContextError) as err:
        reader({"p": {"x": "one"}}).get("p", type=Point)
    msg = str(err.value)
    assert "task 'reader'" in msg and "'p'" in msg and "Point" in msg


# -- contains / keys / to_dict ------------------------------------------------------------------


def test_contains_keys_len_iter_and_to_dict() -> None:
    ctx = Context.for_task("t", {"a": 1, "b": 2})
    ctx.set("c", 3)
    ctx.set("a", 10)
    assert "a" in ctx and "c" in ctx and "z" not in ctx
    assert ctx.keys() == ["a", "b", "c"]
    assert list(ctx) == ["a", "b", "c"] and len(ctx) == 3
    snapshot = ctx.to_dict()
    assert snapshot == {"a": 10, "b": 2, "c": 3}
    snapshot["d"] = 4
    assert "d" not in ctx  # to_dict returns a new dict


# -- JSON-only values, checked at write time -----------------------------------------------------


@pytest.mark.parametrize("method", ["insert", "set", "update"])
def test_a_value_that_is_not_json_is_refused_at_write_time(method: str) -> None:
    ctx = Context({"existing": 1}) if method == "update" else Context()
    key = "existing" if method == "update" else "new"
    with pytest.raises(ContextError) as err:
        getattr(ctx, method)(key, {1, 2, 3})
    msg = str(err.value)
    assert repr(key) in msg and "builtins.set" in msg and "not JSON-serialisable" in msg
    assert key not in ctx.writes


def test_a_nested_unserialisable_value_names_the_key_and_the_type() -> None:
    class Handle:
        pass

    with pytest.raises(ContextError) as err:
        Context().set("config", {"db": [Handle()]})
    assert "'config'" in str(err.value) and "Handle" in str(err.value)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), [1.0, float("-inf")], {"a": [float("nan")]}]
)
def test_nan_and_infinity_are_refused(value: object) -> None:
    with pytest.raises(ContextError) as err:
        Context().set("score", value)
    assert "'score'" in str(err.value) and "NaN" in str(err.value)


def test_a_circular_value_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ContextError, match=r"'loop'.*[Cc]ircular"):
        Context().set("loop", loop)


def test_a_non_string_mapping_key_is_refused_not_silently_converted() -> None:
    with pytest.raises(ContextError) as err:
        Context().set("counts", {"ok": {1: "one"}})
    assert "'counts'" in str(err.value) and "key 1 of type int" in str(err.value)


def test_pydantic_models_are_dumped_to_json() -> None:
    ctx = Context()
    ctx.set("p", Point(x=1, y=2))
    ctx.set("ps", [Point(x=3, y=4)])
    assert ctx.get("p") == {"x": 1, "y": 2}
    assert ctx.get("ps") == [{"x": 3, "y": 4}]
    assert ctx.get("p", type=Point) == Point(x=1, y=2)


def test_values_are_stored_as_plain_json_copies() -> None:
    rows = [{"id": 1, "tags": ("a", "b")}]
    ctx = Context()
    ctx.set("rows", rows)
    ctx.set("colour", Colour.RED)
    rows[0]["id"] = 99  # changing the original afterwards does not reach the context
    assert ctx.get("rows") == [{"id": 1, "tags": ["a", "b"]}]  # tuples come back as lists
    assert type(ctx.get("colour")) is str


def test_initial_values_are_checked_too() -> None:
    with pytest.raises(ContextError, match=r"'bad'.*builtins\.set"):
        Context({"bad": {1}})


# -- map_over helpers and reporting ------------------------------------------------------------


def test_item_and_index_outside_map_over_raise_a_clear_error() -> None:
    ctx = reader({})
    with pytest.raises(ContextError, match="not a map_over task"):
        _ = ctx.item
    with pytest.raises(ContextError, match="not a map_over task"):
        _ = ctx.index


def test_log_and_progress_reach_the_sink() -> None:
    class Sink:
        def __init__(self) -> None:
            self.lines: list[tuple[str, str]] = []
            self.updates: list[tuple[float, float | None, str | None]] = []

        def log(self, level: str, text: str) -> None:
            self.lines.append((level, text))

        def progress(self, done: float, total: float | None, message: str | None) -> None:
            self.updates.append((done, total, message))

    sink = Sink()
    ctx = Context.for_task("t", {}, sink)
    ctx.log("hello", level="WARNING")
    ctx.progress(3, 10, "rows")
    assert sink.lines == [("warning", "hello")]
    assert sink.updates == [(3, 10, "rows")]


# -- in a run -----------------------------------------------------------------------------------


async def test_in_a_run_a_missing_key_fails_the_task_naming_key_and_task() -> None:
    @task
    def writer(context: Context) -> None:
        context.insert("rows", [1])

    @task(dependencies=[writer])
    def consumer(context: Context) -> None:
        context.insert("total", sum(context.get("rows")))
        context.get("rowz")

    result = await run(Workflow("ctx", [writer, consumer]), {})
    assert result.status == "failed"
    error = result.tasks["consumer"].error or ""
    assert "task 'consumer'" in error and "'rowz'" in error and "did you mean 'rows'" in error
    assert "total" not in result.context  # a failed task's writes are dropped


async def test_in_a_run_a_task_sees_its_ancestors_writes_but_not_its_siblings() -> None:
    @task
    def root(context: Context) -> None:
        context.insert("base", 1)

    @task(dependencies=[root])
    def left(context: Context) -> None:
        context.insert("left", context.get("base") + 1)

    @task(dependencies=[root])
    def right(context: Context) -> None:
        context.insert("right_saw", sorted(context.keys()))

    @task(dependencies=[left, right])
    def join(context: Context) -> None:
        context.insert("sum", context.get("left") + context.get("base"))

    result = await run(Workflow("vis", [root, left, right, join], max_concurrency=1), {"n": 0})
    assert result.ok
    assert result.context["right_saw"] == ["base", "n"]
    assert result.context["sum"] == 3
