"""Retry delays: fixed, linear or exponential backoff, an optional cap, optional jitter."""

from __future__ import annotations

import random

from ..tasks import TaskSpec


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
