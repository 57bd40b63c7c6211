"""Error handling: retries with backoff, a fallback, an all_done cleanup, a one_failed alert.

`fetch_rates` calls a flaky service that fails `failures` times (a context value) before it
answers. It retries 3 times with exponential backoff; when every attempt has failed, the
fallback `cached_rates` answers from a cache, unless `cache_available` is false.

    tui-flow run flows/error_handling.py                      # 2 failures, 3rd attempt works
    tui-flow run flows/error_handling.py --set failures=9     # retries run out: the fallback
    tui-flow run flows/error_handling.py --set failures=9 --set cache_available=false
                                                              # all fails: alert, then cleanup

`alert` runs only when an upstream task failed (trigger rule one_failed); `cleanup` runs
whatever happened upstream (all_done), so the session is always closed.
"""

from __future__ import annotations

import uuid

from tui_flow import Context, Workflow, task

# the flaky service's memory: calls seen per session (the session is opened by each run)
_calls: dict[str, int] = {}


@task
def open_session(context: Context) -> None:
    """Open a session with the rates service."""
    session = uuid.uuid4().hex[:8]
    _calls[session] = 0
    context.set("session", session)
    context.log(f"session {session} opened")


def cached_rates(context: Context) -> None:
    """The fallback: yesterday's rates from the cache."""
    if not context.get("cache_available", True):
        raise LookupError("no cached rates either")
    context.log("using cached rates")
    context.set("rates", {"EUR": 0.91, "GBP": 0.78, "source": "cache"})


@task(
    dependencies=[open_session],
    retry_attempts=3,
    retry_delay_ms=50,
    retry_backoff="exponential",
    retry_jitter=True,
    fallback=cached_rates,
)
def fetch_rates(context: Context) -> None:
    """Ask the flaky service for today's rates."""
    session = context.get("session")
    failures = int(context.get("failures", 2))
    _calls[session] = _calls.get(session, 0) + 1
    call = _calls[session]
    if call <= failures:
        raise ConnectionError(f"rates service unavailable (call {call}, fails {failures}x)")
    context.log(f"rates fetched on call {call}")
    context.set("rates", {"EUR": 0.92, "GBP": 0.79, "source": "live"})


@task(dependencies=[fetch_rates])
def convert(context: Context) -> None:
    """Convert the invoice total with the rates we got."""
    rates = context.get("rates")
    amount = float(context.get("amount", 100.0))
    context.set(
        "converted", {cur: round(amount * r, 2) for cur, r in rates.items() if cur != "source"}
    )
    context.log(f"converted {amount} USD with {rates['source']} rates")


@task(dependencies=[fetch_rates, convert], trigger_rule="one_failed")
def alert(context: Context) -> None:
    """Runs only when fetch_rates or convert failed: tell someone."""
    context.log("ALERT: no rates today; invoices were not converted", level="error")
    context.set("alerted", True)


@task(dependencies=[convert, alert], trigger_rule="all_done")
def cleanup(context: Context) -> None:
    """Runs whatever happened upstream: close the session."""
    session = context.get("session")
    calls = _calls.pop(session, 0)
    context.set("closed", {"session": session, "calls": calls})
    context.log(f"session {session} closed after {calls} call(s)")


workflow = Workflow(
    "error_handling",
    [open_session, fetch_rates, convert, alert, cleanup],
    description="Retries with backoff, a fallback, a one_failed alert and an all_done cleanup",
)
