"""`Context`: the shared data tasks read and write.

Values are JSON data. A value is converted and checked when it is written (`insert`, `update`,
`set`), so a value the store cannot keep is refused at once, naming the key and the type:
pydantic models are dumped to JSON, tuples come back as lists, mapping keys must be strings.

Inside a run each task gets its own Context: it sees the initial context plus the writes of
its ancestors, and its own writes; the engine merges the writes when the task completes.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, overload

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from .errors import ContextError

T = TypeVar("T")
_MISSING: Any = object()
_SCALARS = (str, int, float, bool, type(None))


class NotSerialisable(ContextError):
    """A value that cannot be stored as JSON."""


def _json_default(key: str) -> Callable[[Any], Any]:
    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        raise NotSerialisable(
            f"context key {key!r}: a value of type {type(obj).__module__}.{type(obj).__qualname__}"
            f" is not JSON-serialisable (store str, int, float, bool, None, lists, dicts with "
            f"string keys, or pydantic models)"
        )

    return default


def _non_string_key(value: Any) -> tuple[Any, Any] | None:
    """The first mapping key that is not a string, with its mapping (json would coerce it)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for k in item:
                if type(k) is not str:
                    return k, item
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, dict):
            for k in item:
                if not isinstance(k, str):
                    return k, item
            stack.extend(item.values())
    return None


def to_json_value(key: str, value: Any) -> Any:
    """Return `value` as plain JSON data (a fresh copy), or raise `NotSerialisable`."""
    kind = type(value)
    if kind in _SCALARS:  # exact types: a str/int/float subclass (an enum) becomes plain data
        if kind is float and not math.isfinite(value):
            raise NotSerialisable(
                f"context key {key!r}: {value!r} is not valid JSON (NaN and infinity are refused)"
            )
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        text = json.dumps(value, default=_json_default(key), allow_nan=False)
    except NotSerialisable:
        raise
    except ValueError as exc:  # NaN / infinity, circular reference
        reason = str(exc)
        if "Out of range float" in reason:
            reason = "contains NaN or infinity, which are not valid JSON"
        raise NotSerialisable(f"context key {key!r}: {reason}") from None
    except TypeError as exc:  # e.g. non-string dict keys of an unsupported type
        raise NotSerialisable(f"context key {key!r}: {exc}") from None
    bad = _non_string_key(value)
    if bad is not None:
        k = bad[0]
        raise NotSerialisable(
            f"context key {key!r}: a mapping key {k!r} of type {type(k).__name__} is not a "
            f"string; JSON object keys are strings (convert it, e.g. str(key))"
        )
    return json.loads(text)


def returned_value(task_id: str, value: Any) -> Any:
    """What a body returned, as the context keeps it under the task's id: None (nothing kept)
    for None or a Context (bodies written `return context`), else its JSON value."""
    if value is None or isinstance(value, Context):
        return None
    return to_json_value(f"result of {task_id}", value)


@functools.lru_cache(maxsize=256)
def _cached_adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def _adapter(kind: Any) -> TypeAdapter[Any]:
    """A (cached) pydantic TypeAdapter for `get(..., type=kind)`."""
    try:
        return _cached_adapter(kind)
    except TypeError:  # an unhashable type expression
        return TypeAdapter(kind)


def _copy(value: Any) -> Any:
    """A private copy of JSON data, so a reader changing it in place changes nobody else's."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) if type(v) in (dict, list) else v for k, v in value.items()}
    if kind is list:
        return [_copy(v) if type(v) in (dict, list) else v for v in value]
    return value


class ContextSink(Protocol):
    """Where `context.log` and `context.progress` go (the engine supplies one per attempt)."""

    def log(self, level: str, text: str) -> None: ...

    def progress(self, done: float, total: float | None, message: str | None) -> None: ...


class _MemorySink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.progress_updates: list[tuple[float, float | None, str | None]] = []

    def log(self, level: str, text: str) -> None:
        self.lines.append((level, text))

    def progress(self, done: float, total: float | None, message: str | None) -> None:
        self.progress_updates.append((done, total, message))


class Context:
    """Key/value data shared by the tasks of a run.

    `Context({"n": 3})` makes a stand-alone context, handy for calling a task in a unit test:
    the given values are what the task can read, `writes` holds what it wrote.
    """

    __slots__ = ("_index", "_item", "_sink", "_task_id", "_visible", "_writes")

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._visible: Mapping[str, Any] = {}
        self._writes: dict[str, Any] = {}
        self._task_id: str | None = None
        self._sink: ContextSink = _MemorySink()
        self._item: Any = _MISSING
        self._index: int | None = None
        if values:
            initial: dict[str, Any] = {}
            for key, value in values.items():
                self._check_key(key)
                initial[key] = to_json_value(key, value)
            self._visible = initial

    @classmethod
    def for_task(
        cls,
        task_id: str,
        visible: Mapping[str, Any],
        sink: ContextSink | None = None,
        *,
        item: Any = _MISSING,
        index: int | None = None,
    ) -> Context:
        """The engine's constructor: a task's view of the run's data (values already JSON)."""
        ctx = cls.__new__(cls)
        ctx._visible = visible
        ctx._writes = {}
        ctx._task_id = task_id
        ctx._sink = sink if sink is not None else _MemorySink()
        ctx._item = item
        ctx._index = index
        return ctx

    # -- reading -------------------------------------------------------------------------------

    @property
    def task_id(self) -> str | None:
        """The id of the task this context belongs to (None when stand-alone)."""
        return self._task_id

    def _lookup(self, key: str) -> Any:
        if key in self._writes:
            return self._writes[key]
        return self._visible.get(key, _MISSING)

    @overload
    def get(self, key: str) -> Any: ...
    @overload
    def get(self, key: str, default: Any) -> Any: ...
    @overload
    def get(self, key: str, *, type: type[T]) -> T: ...
    @overload
    def get(self, key: str, default: Any, *, type: type[T]) -> T: ...

    def get(self, key: str, default: Any = _MISSING, *, type: Any = None) -> Any:
        """The value of `key`. Missing: `default` if given, else a `ContextError`.

        `type=` validates the value into a type (a pydantic model, `list[int]`, ...).
        """
        value = self._lookup(key)
        if value is _MISSING:
            if default is not _MISSING:
                return default
            raise ContextError(self._missing_message(key))
        if type is None:
            return _copy(value)
        try:
            return _adapter(type).validate_python(value)
        except PydanticValidationError as exc:
            who = f"task {self._task_id!r} " if self._task_id else ""
            raise ContextError(
                f"{who}read context key {key!r} as {getattr(type, '__name__', type)}: "
                f"{exc.error_count()} validation error(s): {exc.errors()[0]['msg']}"
            ) from None

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def _missing_message(self, key: str) -> str:
        who = f"task {self._task_id!r}" if self._task_id else "a task"
        known = sorted(self.keys())
        msg = f"{who} read context key {key!r}, which is not set"
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        elif known:
            shown = ", ".join(repr(k) for k in known[:10]) + (", ..." if len(known) > 10 else "")
            msg += f"; keys available to it: {shown}"
        else:
            msg += "; the context is empty here (is the writer a dependency of this task?)"
        return msg

    def __contains__(self, key: object) -> bool:
        return key in self._writes or key in self._visible

    def keys(self) -> list[str]:
        seen = dict.fromkeys(self._visible)
        seen.update(dict.fromkeys(self._writes))
        return list(seen)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def to_dict(self) -> dict[str, Any]:
        """Everything this context can see, as a new dict (values copied, like `get`)."""
        merged = dict(self._visible)
        merged.update(self._writes)
        return _copy(merged)

    @property
    def writes(self) -> dict[str, Any]:
        """The keys written through this context (what the engine merges back)."""
        return self._writes

    # -- writing -------------------------------------------------------------------------------

    def insert(self, key: str, value: Any) -> None:
        """Add a new key; a `ContextError` if it already exists."""
        self._check_key(key)
        if key in self:
            who = f"task {self._task_id!r}" if self._task_id else "insert"
            raise ContextError(
                f"{who}: context key {key!r} already exists; use update() or set() to replace it"
            )
        self._writes[key] = to_json_value(key, value)

    def update(self, key: str, value: Any) -> None:
        """Replace an existing key; a `ContextError` if it is missing."""
        self._check_key(key)
        if key not in self:
            who = f"task {self._task_id!r}" if self._task_id else "update"
            raise ContextError(
                f"{who}: context key {key!r} does not exist; use insert() or set() to add it"
            )
        self._writes[key] = to_json_value(key, value)

    def set(self, key: str, value: Any) -> None:
        """Write `key` whether or not it exists."""
        self._check_key(key)
        self._writes[key] = to_json_value(key, value)

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    @staticmethod
    def _check_key(key: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ContextError(f"context keys are non-empty strings, not {key!r}")

    # -- dynamic fan-out -----------------------------------------------------------------------

    @property
    def item(self) -> Any:
        """The item this instance of a `map_over` task works on."""
        if self._item is _MISSING:
            raise ContextError(
                f"task {self._task_id!r} read context.item, but it is not a map_over task"
            )
        return self._item

    @property
    def index(self) -> int:
        """The position of `item` in the mapped list."""
        if self._index is None:
            raise ContextError(
                f"task {self._task_id!r} read context.index, but it is not a map_over task"
            )
        return self._index

    # -- reporting -----------------------------------------------------------------------------

    def log(self, message: Any, level: str = "info") -> None:
        """Write a line to this task's log."""
        self._sink.log(level.lower(), str(message))

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report progress of a long task (shown as a bar in the app)."""
        self._sink.progress(done, total, message)

    def __repr__(self) -> str:
        who = f" task={self._task_id!r}" if self._task_id else ""
        return f"<Context{who} keys={self.keys()!r}>"
