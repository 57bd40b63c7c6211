"""Dynamic fan-out: the number of chunks depends on the input size and the machine's cores.

    tui-flow run flows/dynamic_parallel.py --set size=2000000
    tui-flow compare flows/dynamic_parallel.py --concurrency 1,2 --set size=2000000

`partition` decides how many chunks to make at run time: one per MIN_CHUNK numbers, at most
two per core (fewer chunks than that leave cores idle at the end; more only add overhead).
`crunch` is a map_over task: the scheduler runs one instance per chunk, `crunch[0]`,
`crunch[1]`, ..., each in a worker process, and collects their return values, in chunk order,
into the context key `crunch` (a map_over task's results go under its own id).
With size=0 there are no chunks: `crunch` completes at once with an empty list.
"""

from __future__ import annotations

import itertools
import os

from tui_flow import Context, Workflow, task

MIN_CHUNK = 50_000
CORES = os.cpu_count() or 1


@task
def partition(context: Context) -> None:
    """Split the range 0..size into chunks, as many as the input and the cores justify."""
    size = int(context.get("size", 1_000_000))
    wanted = -(-size // MIN_CHUNK)  # ceil: one chunk per MIN_CHUNK numbers
    n = min(wanted, 2 * CORES)
    bounds = [size * i // n for i in range(n + 1)] if n else []
    chunks = [{"start": a, "stop": b} for a, b in itertools.pairwise(bounds)]
    context.set("chunks", chunks)
    context.log(f"{size:,} numbers in {n} chunk(s) for {CORES} core(s)")


@task(dependencies=[partition], map_over="chunks", runner="process", retry_attempts=1)
def crunch(context: Context) -> dict[str, int]:
    """CPU-bound work on one chunk: count the numbers whose square ends in 1 or 9."""
    chunk = context.item
    hits = 0
    for i in range(chunk["start"], chunk["stop"]):
        if (i * i) % 10 in (1, 9):
            hits += 1
    context.log(f"chunk {context.index}: {chunk['start']:,}..{chunk['stop']:,} -> {hits:,}")
    return {"count": chunk["stop"] - chunk["start"], "hits": hits}


@task(dependencies=[crunch])
def combine(context: Context) -> None:
    """Add the chunks' results (the list under the key 'crunch', one entry per chunk)."""
    parts = context.get("crunch")
    context.set("numbers", sum(p["count"] for p in parts))
    context.set("hits", sum(p["hits"] for p in parts))
    context.log(f"{len(parts)} chunk(s): {context.get('hits'):,} hits")


workflow = Workflow(
    "dynamic_parallel",
    [partition, crunch, combine],
    max_concurrency=CORES,
    description="Fan out over a number of chunks decided at run time",
)
