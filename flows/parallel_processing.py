"""Fan-out / fan-in: Cloacina's "parallel processing" example in tui-flow.

    init_data -> process_batch_1 (records 0-3333)     ─┐
              -> process_batch_2 (records 3334-6666)  ─┤
              -> process_batch_3 (records 6667-10000) ─┼-> merge_results -> generate_report    ─┐
              -> process_metadata (schema check)      ─┘                 -> send_notifications ─┴->
                                                                            cleanup (all_done)

Four tasks run at once after `init_data` (max concurrency 4), each with its own simulated
processing time, and each with a different retry policy: fixed, linear or exponential backoff,
some with a cap and jitter. `merge_results` consolidates the batches and computes the parallel
efficiency (sum of the batch times / the slowest batch).

Context inputs (all optional):
    seed          the records are generated from this seed (default 7)
    time_scale    multiplies the simulated processing times; overrides the environment
                  variable TUI_FLOW_TIME_SCALE (default 1.0)
    failure_rate  chance that a batch attempt fails with a simulated transient error
                  (default 0), to watch the retry policies at work:
                  tui-flow flows/parallel_processing.py --set failure_rate=0.4
"""

from __future__ import annotations

import logging
import random
from typing import Any

from _data import simulate_work

from tui_flow import Context, Workflow, task

log = logging.getLogger("parallel_processing")

RECORD_COUNT = 10_001  # ids 0..10000
BATCHES = {1: (0, 3333), 2: (3334, 6666), 3: (6667, 10000)}  # inclusive id ranges
BATCH_MS = {1: (1000, 2000), 2: (1500, 2500), 3: (800, 1800)}  # simulated time, ms
REGIONS = ("north", "south", "east", "west", "central")
SCHEMA = {"id": "int", "region": "str", "amount": "int | None"}


class TransientError(RuntimeError):
    """A simulated failure that a retry is expected to cure."""


def make_records(seed: int) -> list[dict[str, Any]]:
    """Records 0..10000; about 1% have no amount (a missing measurement)."""
    rng = random.Random(seed)
    records = []
    for i in range(RECORD_COUNT):
        amount = None if rng.random() < 0.01 else rng.randint(0, 10_000)
        records.append({"id": i, "region": rng.choice(REGIONS), "amount": amount})
    return records


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Count, total, min and max of the amounts, and the share of records with an amount."""
    amounts = [r["amount"] for r in records if r["amount"] is not None]
    return {
        "records": len(records),
        "valid": len(amounts),
        "total_amount": sum(amounts),
        "min_amount": min(amounts, default=None),
        "max_amount": max(amounts, default=None),
        "validation_score": round(len(amounts) / len(records), 4) if records else 1.0,
    }


def _maybe_fail(context: Context, what: str) -> None:
    rate = context.get("failure_rate", 0.0, type=float)
    if rate > 0 and random.random() < rate:
        raise TransientError(f"{what}: simulated transient failure (failure_rate={rate})")


@task(retry_attempts=2, retry_delay_ms=500)
async def init_data(context: Context) -> None:
    """Load the records and describe the batches."""
    seed = context.get("seed", 7, type=int)
    await simulate_work(context, 300, "loading records", steps=3)
    records = make_records(seed)
    context.insert("records", records)
    context.insert("batches", {f"batch_{n}": list(r) for n, r in BATCHES.items()})
    print(f"initialised {len(records)} records in {len(BATCHES)} batches")


async def _process_batch(context: Context, n: int) -> None:
    first, last = BATCHES[n]
    records = [r for r in context.get("records") if first <= r["id"] <= last]
    print(f"batch {n}: processing records {first}-{last} ({len(records)} records)")
    _maybe_fail(context, f"batch {n}")
    processing_ms = random.randrange(*BATCH_MS[n])
    await simulate_work(context, processing_ms, f"batch {n}")
    result = summarise(records) | {"first_id": first, "last_id": last}
    context.insert(f"batch_{n}_result", result)
    context.insert(f"batch_{n}_time_ms", processing_ms)
    print(
        f"batch {n} done: {result['valid']}/{result['records']} valid, "
        f"validation score {result['validation_score']:.2%}, {processing_ms} ms (simulated)"
    )


@task(dependencies=[init_data], retry_attempts=3, retry_delay_ms=1000, retry_backoff="fixed")
async def process_batch_1(context: Context) -> None:
    """Records 0-3333; retries every second."""
    await _process_batch(context, 1)


@task(dependencies=[init_data], retry_attempts=3, retry_delay_ms=500, retry_backoff="linear")
async def process_batch_2(context: Context) -> None:
    """Records 3334-6666; retries after 0.5, 1, 1.5 s."""
    await _process_batch(context, 2)


@task(
    dependencies=[init_data],
    retry_attempts=4,
    retry_delay_ms=250,
    retry_backoff="exponential",
    retry_max_delay_ms=4000,
    retry_jitter=True,
)
async def process_batch_3(context: Context) -> None:
    """Records 6667-10000; exponential backoff with jitter."""
    await _process_batch(context, 3)


@task(dependencies=[init_data], retry_attempts=1, retry_delay_ms=200)
async def process_metadata(context: Context) -> None:
    """Check every record against the schema, in parallel with the batches."""
    records = context.get("records")
    await simulate_work(context, random.randrange(300, 600), "schema check", steps=4)
    problems = [
        r["id"]
        for r in records
        if set(r) != set(SCHEMA)
        or not isinstance(r["id"], int)
        or r["region"] not in REGIONS
        or not (r["amount"] is None or isinstance(r["amount"], int))
    ]
    missing = sum(1 for r in records if r["amount"] is None)
    metadata = {
        "schema": SCHEMA,
        "record_count": len(records),
        "schema_valid": not problems,
        "invalid_ids": problems[:20],
        "missing_amounts": missing,
    }
    context.insert("metadata", metadata)
    print(f"schema check: {len(records)} records, {len(problems)} invalid, {missing} missing")


@task(
    dependencies=[process_batch_1, process_batch_2, process_batch_3, process_metadata],
    retry_attempts=2,
    retry_delay_ms=1000,
    retry_backoff="exponential",
)
async def merge_results(context: Context) -> None:
    """Consolidate the batches and compute the parallel efficiency."""
    results = {f"batch_{n}": context.get(f"batch_{n}_result") for n in BATCHES}
    times = [context.get(f"batch_{n}_time_ms", type=int) for n in BATCHES]
    total_ms, parallel_ms = sum(times), max(times)
    processed = sum(r["records"] for r in results.values())
    valid = sum(r["valid"] for r in results.values())
    merged = {
        "records_processed": processed,
        "valid_records": valid,
        "total_amount": sum(r["total_amount"] for r in results.values()),
        "validation_scores": {k: r["validation_score"] for k, r in results.items()},
        "overall_validation_score": round(valid / processed, 4) if processed else 1.0,
        "schema_valid": context.get("metadata")["schema_valid"],
        "total_processing_time_ms": total_ms,
        "actual_parallel_time_ms": parallel_ms,
        "parallel_efficiency_percent": round(total_ms / parallel_ms * 100, 1),
    }
    context.insert("merged", merged)
    log.info(
        "merged %d records: %.1f%% parallel efficiency",
        processed,
        merged["parallel_efficiency_percent"],
    )


@task(dependencies=[merge_results], retry_attempts=1, retry_delay_ms=500, retry_backoff="linear")
async def generate_report(context: Context) -> None:
    """Summarise the run for people."""
    m = context.get("merged")
    lines = [
        f"records processed:   {m['records_processed']}",
        f"valid records:       {m['valid_records']} ({m['overall_validation_score']:.2%})",
        f"total amount:        {m['total_amount']}",
        f"sequential time:     {m['total_processing_time_ms']} ms",
        f"parallel time:       {m['actual_parallel_time_ms']} ms",
        f"parallel efficiency: {m['parallel_efficiency_percent']}%",
    ]
    for line in lines:
        print(line)
    context.insert("report", "\n".join(lines))


@task(
    dependencies=[merge_results],
    retry_attempts=5,
    retry_delay_ms=500,
    retry_backoff="exponential",
    retry_max_delay_ms=8000,
    retry_jitter=True,
)
async def send_notifications(context: Context) -> None:
    """Tell someone the run is done (here: the log)."""
    m = context.get("merged")
    message = f"parallel processing done: {m['records_processed']} records"
    log.info(message)
    context.insert("notification", message)


@task(dependencies=[generate_report, send_notifications], trigger_rule="all_done")
async def cleanup(context: Context) -> None:
    """Remove temporary results; runs whatever happened upstream."""
    temporary = sorted(k for k in context.keys() if k.startswith("batch_"))
    print(f"cleanup: {len(temporary)} temporary keys released")
    context.insert("cleaned_up", temporary)


workflow = Workflow(
    "parallel_processing",
    tasks=[
        init_data,
        process_batch_1,
        process_batch_2,
        process_batch_3,
        process_metadata,
        merge_results,
        generate_report,
        send_notifications,
        cleanup,
    ],
    max_concurrency=4,
    description="Cloacina example: fan-out over three batches and a schema check, then fan-in",
)
