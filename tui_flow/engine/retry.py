"""Retries: which errors are retried (`retry_refusal`, the task's `retry_on`), and the delays
(fixed, linear or exponential backoff, an optional cap, optional jitter)."""

from __future__ import annotations

import random
from typing import Any

from ..tasks import TaskSpec

#: the attribute a worker process (or Dask worker) notes its `retry_refusal` on, so that the
#: answer it sends says why the error is not retried (`worker.retryable_error`)
REFUSAL_ATTR = "_tui_flow_not_retried"


def retry_refusal(task: Any, exc: BaseException) -> str | None:
    """Why `exc` is not retried under the task's `retry_on` (None: it may be). A timeout is
    judged as a `TimeoutError`. A predicate that raises refuses, saying so."""
    retry_on = getattr(task, "retry_on", None)
    if retry_on is None:
        return None
    what = type(exc).__name__
    if isinstance(retry_on, tuple):
        if isinstance(exc, retry_on):
            return None
        return f"not retried: {what} is not in retry_on ({task.spec.retry_on})"
    try:
        if retry_on(exc):
            return None
    except Exception as failure:
        return (
            f"not retried: retry_on {task.spec.retry_on} raised "
            f"{type(failure).__name__}: {failure} on {what}"
        )
    return f"not retried: retry_on {task.spec.retry_on} returned false for {what}"


def retry_delay_s(spec: TaskSpec, retry_number: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry `retry_number` (1 = the first retry, i.e. attempt 2).

    fixed: d, d, d ...   linear: d, 2d, 3d ...   exponential: d, 2d, 4d ...
    capped at `retry_max_delay_ms`; with `retry_jitter` a uniform draw in [delay/2, delay].
    """
    base = spec.retry_delay_ms / 1000.0
    n = max(1, retry_number)
    if spec.retry_backoff == "linear":
        delay = base * n
    elif spec.retry_backoff == "exponential":
        delay = base * (2 ** (n - 1))
    else:
        delay = base
    if spec.retry_max_delay_ms is not None:
        delay = min(delay, spec.retry_max_delay_ms / 1000.0)
    if spec.retry_jitter and delay > 0:
        delay = (rng or random).uniform(delay / 2, delay)
    return delay
