"""Helpers shared by the example flows: the time scale and a simulated piece of slow work.

Simulated work sleeps (`asyncio.sleep`), so several tasks overlap on the event loop. Its length
is multiplied by a time scale: the context value `time_scale` if set, else the environment
variable `TUI_FLOW_TIME_SCALE`, else 1.0. Tests use a tiny scale such as 0.001.
"""

from __future__ import annotations

import asyncio
import os

from tui_flow import Context

ENV_TIME_SCALE = "TUI_FLOW_TIME_SCALE"


def time_scale(context: Context) -> float:
    """How much to stretch simulated work: context `time_scale`, then the env var, then 1.0."""
    raw = context.get("time_scale", None)
    source = "context value 'time_scale'"
    if raw is None:
        raw = os.environ.get(ENV_TIME_SCALE)
        source = f"environment variable {ENV_TIME_SCALE}"
    if raw is None or raw == "":
        return 1.0
    try:
        scale = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a number, not {raw!r}") from None
    if not scale >= 0:  # also refuses NaN
        raise ValueError(f"{source} must be >= 0, not {raw!r}")
    return scale


async def simulate_work(context: Context, ms: float, label: str, steps: int = 10) -> float:
    """Sleep `ms` milliseconds times the time scale, reporting progress; return seconds slept."""
    seconds = ms / 1000.0 * time_scale(context)
    steps = max(1, steps)
    for i in range(steps):
        context.progress(i, steps, label)
        await asyncio.sleep(seconds / steps)  # workload, allowed
    context.progress(steps, steps, label)
    return seconds
