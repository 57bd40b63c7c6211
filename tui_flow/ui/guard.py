"""`guarded`: an error in one of the app's handlers is shown, and the app lives on."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Run a handler so that an error in it is shown and the app stays alive."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except Exception as exc:
                self.app.report_error(fn.__name__, exc)
                return None

        return run_async  # type: ignore[return-value]

    @functools.wraps(fn)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            self.app.report_error(fn.__name__, exc)
            return None

    return run  # type: ignore[return-value]
