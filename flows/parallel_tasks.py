"""CPU-bound chunks in worker processes: Taskinity's "parallel tasks" example in tui-flow.

    DataPreparation -> ProcessChunk1 ─┐
                    -> ProcessChunk2 ─┤
                    -> ProcessChunk3 ─┼-> AggregateResults
                    -> ProcessChunk4 ─┘

`DataPreparation` builds a dataset of `records` integer measurements (deterministic for a given
`seed`) and splits it into four chunks. Each `ProcessChunkN` does pure-Python, CPU-bound work
on its chunk (divisors by trial division, the Collatz sequence length and a digit sum per
record) on `runner="process"`, so the four chunks really run in parallel on several cores.
`AggregateResults` merges the four partial results; they equal a single pass over the dataset.

Each task body is a module-level function named like its task id, so other tools (the worker
processes, a `.flow` file) can find it by name.

Context inputs (all optional):
    records  how many measurements (default 10_000)
    seed     the dataset is generated from this seed (default 1)
    rounds   repeat the per-record work this many times, to make chunks heavier (default 1)
"""

from __future__ import annotations

import os
from typing import Any

from tui_flow import Context, Workflow, task

CHUNKS = 4
DEFAULT_RECORDS = 10_000
GROUPS = 8


def make_dataset(records: int, seed: int) -> list[dict[str, int]]:
    """`records` measurements from a small linear congruential generator (reproducible)."""
    state = seed % 2**31 or 1
    data = []
    for i in range(records):
        state = (1_103_515_245 * state + 12_345) % 2**31
        data.append({"id": i, "group": i % GROUPS, "value": 2 + state % 1_999_999})
    return data


def chunk_bounds(records: int, chunks: int = CHUNKS) -> list[list[int]]:
    """[start, end) of each chunk; sizes differ by at most one."""
    base, extra = divmod(records, chunks)
    bounds, start = [], 0
    for n in range(chunks):
        end = start + base + (1 if n < extra else 0)
        bounds.append([start, end])
        start = end
    return bounds


def divisor_count(n: int) -> int:
    """How many divisors `n` has, by trial division up to its square root (on purpose slow)."""
    count = 0
    f = 1
    while f * f < n:
        if n % f == 0:
            count += 2
        f += 1
    if f * f == n:
        count += 1
    return count


def collatz_steps(n: int) -> int:
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps


def digit_sum(n: int) -> int:
    total = 0
    while n:
        n, d = divmod(n, 10)
        total += d
    return total


def empty_result() -> dict[str, Any]:
    return {
        "records": 0,
        "primes": 0,
        "value_total": 0,
        "collatz_total": 0,
        "collatz_max": [-1, -1],  # [steps, id]; ties: the smaller id
        "digit_sum_total": 0,
        "divisor_total": 0,
        "primes_by_group": [0] * GROUPS,
    }


def analyse(records: list[dict[str, int]], rounds: int = 1, report: Any = None) -> dict[str, Any]:
    """The CPU-bound work: one pass over `records` (repeated `rounds` times)."""
    out = empty_result()
    step = max(1, len(records) // 10)
    for _ in range(max(1, rounds)):
        out = empty_result()
        for k, r in enumerate(records):
            value = r["value"]
            steps = collatz_steps(value)
            divisors = divisor_count(value)
            out["records"] += 1
            out["value_total"] += value
            out["collatz_total"] += steps
            out["digit_sum_total"] += digit_sum(value)
            out["divisor_total"] += divisors
            if divisors == 2:
                out["primes"] += 1
                out["primes_by_group"][r["group"]] += 1
            best_steps, best_id = out["collatz_max"]
            if steps > best_steps or (steps == best_steps and r["id"] < best_id):
                out["collatz_max"] = [steps, r["id"]]
            if report is not None and k % step == 0:
                report(k, len(records))
    return out


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine partial results; the same as `analyse` over the concatenated records."""
    out = empty_result()
    for r in results:
        for key in (
            "records",
            "primes",
            "value_total",
            "collatz_total",
            "digit_sum_total",
            "divisor_total",
        ):
            out[key] += r[key]
        out["primes_by_group"] = [
            a + b for a, b in zip(out["primes_by_group"], r["primes_by_group"], strict=True)
        ]
        steps, rid = r["collatz_max"]
        best_steps, best_id = out["collatz_max"]
        if steps > best_steps or (steps == best_steps and 0 <= rid < best_id):
            out["collatz_max"] = [steps, rid]
    return out


@task(id="DataPreparation")
def DataPreparation(context: Context) -> None:
    """Prepare data for processing: build the dataset and split it into four chunks."""
    records = context.get("records", DEFAULT_RECORDS, type=int)
    if records < 0:
        raise ValueError(f"context value 'records' must be >= 0, not {records}")
    seed = context.get("seed", 1, type=int)
    dataset = make_dataset(records, seed)
    bounds = chunk_bounds(records)
    # one key per chunk: a chunk's worker process then receives its own records only
    for n, (start, end) in enumerate(bounds, 1):
        context.insert(f"chunk_{n}_records", dataset[start:end])
    context.insert("chunk_bounds", bounds)
    print(f"prepared {records} records in {CHUNKS} chunks: {[e - s for s, e in bounds]}")


def _process_chunk(context: Context, n: int) -> None:
    start, end = context.get("chunk_bounds")[n - 1]
    records = context.get(f"chunk_{n}_records")
    rounds = context.get("rounds", 1, type=int)
    print(f"chunk {n}: records {start}..{end - 1} ({len(records)} records)")

    def report(done: int, total: int) -> None:
        context.progress(done, total, f"chunk {n}")

    result = analyse(records, rounds, report)
    context.progress(len(records), len(records), f"chunk {n}")
    context.insert(f"chunk_{n}", result)
    print(
        f"chunk {n}: {result['primes']} primes, longest Collatz run {result['collatz_max'][0]} "
        f"(worker pid {os.getpid()})"
    )


@task(id="ProcessChunk1", dependencies=["DataPreparation"], runner="process")
def ProcessChunk1(context: Context) -> None:
    """Process first chunk of data."""
    _process_chunk(context, 1)


@task(id="ProcessChunk2", dependencies=["DataPreparation"], runner="process")
def ProcessChunk2(context: Context) -> None:
    """Process second chunk of data."""
    _process_chunk(context, 2)


@task(id="ProcessChunk3", dependencies=["DataPreparation"], runner="process")
def ProcessChunk3(context: Context) -> None:
    """Process third chunk of data."""
    _process_chunk(context, 3)


@task(id="ProcessChunk4", dependencies=["DataPreparation"], runner="process")
def ProcessChunk4(context: Context) -> None:
    """Process fourth chunk of data."""
    _process_chunk(context, 4)


@task(
    id="AggregateResults",
    dependencies=["ProcessChunk1", "ProcessChunk2", "ProcessChunk3", "ProcessChunk4"],
)
def AggregateResults(context: Context) -> None:
    """Aggregate results from all chunks."""
    result = merge([context.get(f"chunk_{n}") for n in range(1, CHUNKS + 1)])
    context.insert("result", result)
    print(
        f"aggregated {result['records']} records: {result['primes']} primes, "
        f"mean Collatz length {result['collatz_total'] / max(1, result['records']):.1f}"
    )


workflow = Workflow(
    "parallel_tasks",
    tasks=[
        DataPreparation,
        ProcessChunk1,
        ProcessChunk2,
        ProcessChunk3,
        ProcessChunk4,
        AggregateResults,
    ],
    max_concurrency=4,
    description="Taskinity example: four CPU-bound chunks in worker processes, then aggregate",
)
