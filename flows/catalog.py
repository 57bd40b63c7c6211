"""Product catalog statistics: Cloacina's tutorial 03 ("parallel processing") in tui-flow.

    generate_data -> partition_data -> process_partition_1..3 (in parallel)
        -> combine_results -> generate_report and send_notifications (in parallel) -> cleanup

10,000 products across 10 categories (deterministic for a given `seed`) are split into three
partitions; each partition is summarised per category (total value, total stock, product
count) after a simulated processing time drawn from the tutorial's ranges (1000-3000,
1500-4000 and 800-2500 ms). The three partial results are merged into exact statistics: money
is summed in integer cents, so the merged totals equal a direct computation to the cent.

Context inputs (all optional):
    seed          products are generated from this seed (default 42)
    product_count how many products (default 10_000)
    time_scale    multiplies the simulated processing times; overrides the environment
                  variable TUI_FLOW_TIME_SCALE (default 1.0); tests use 0.001
    timing_seed   makes the simulated processing times reproducible

Run it:  tui-flow flows/catalog.py           (the app)
         tui-flow run flows/catalog.py       (headless)
         TUI_FLOW_TIME_SCALE=0.1 tui-flow run flows/catalog.py
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from _data import simulate_work, time_scale

from tui_flow import Context, Workflow, task

log = logging.getLogger("catalog")

CATEGORY_COUNT = 10
DEFAULT_PRODUCTS = 10_000
DEFAULT_SEED = 42
# the simulated processing time of each partition, in ms (low inclusive, high exclusive)
PROCESSING_MS = {1: (1000, 3000), 2: (1500, 4000), 3: (800, 2500)}


def make_products(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` products, ids 1..count, spread evenly over 10 categories; prices in cents."""
    rng = random.Random(seed)
    return [
        {
            "id": i,
            "name": f"Product {i}",
            "category": f"Category {(i % CATEGORY_COUNT) + 1}",
            "price": rng.randint(100, 9_999) / 100,  # 1.00 .. 99.99
            "stock": rng.randint(0, 999),
        }
        for i in range(1, count + 1)
    ]


def cents(price: float) -> int:
    """A price with two decimals as an exact integer number of cents."""
    return round(price * 100)


def category_stats(products: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per category: total value in cents, total stock and product count (all integers)."""
    stats: dict[str, dict[str, int]] = {}
    for p in products:
        entry = stats.setdefault(
            p["category"], {"total_value_cents": 0, "total_stock": 0, "product_count": 0}
        )
        entry["total_value_cents"] += cents(p["price"]) * p["stock"]
        entry["total_stock"] += p["stock"]
        entry["product_count"] += 1
    return stats


def category_order(name: str) -> tuple[int, str]:
    """Sort "Category 2" before "Category 10"."""
    head, _, number = name.rpartition(" ")
    return (int(number), head) if number.isdigit() else (0, name)


@task(retry_attempts=2)
def generate_data(context: Context) -> None:
    """Generate the product dataset."""
    count = context.get("product_count", DEFAULT_PRODUCTS, type=int)
    seed = context.get("seed", DEFAULT_SEED, type=int)
    log.info("generating %d products (seed %d)", count, seed)
    time.sleep(0.5 * time_scale(context))  # simulated load of a large dataset
    products = make_products(count, seed)
    context.insert("total_products", count)
    context.insert("products", products)
    categories = len({p["category"] for p in products})
    print(f"generated {count} products across {categories} categories")


@task(dependencies=[generate_data], retry_attempts=2)
def partition_data(context: Context) -> None:
    """Split the products into three partitions for parallel processing."""
    products = context.get("products")
    size = len(products) // 3
    parts = [products[:size], products[size : 2 * size], products[2 * size :]]
    for n, part in enumerate(parts, 1):
        context.insert(f"partition_{n}", part)
    print(f"partitioned into 3 chunks: {', '.join(str(len(p)) for p in parts)} products")


async def _process_partition(context: Context, n: int) -> None:
    products = context.get(f"partition_{n}")
    print(f"processing partition {n}: {len(products)} products")
    low, high = PROCESSING_MS[n]
    timing_seed = context.get("timing_seed", None)
    rng = random.Random(None if timing_seed is None else f"{timing_seed}-{n}")
    processing_ms = rng.randrange(low, high)
    await simulate_work(context, processing_ms, f"partition {n}")
    stats = category_stats(products)
    context.insert(f"stats_{n}", stats)
    context.insert(f"processing_time_{n}", processing_ms)
    print(f"partition {n} complete: {len(products)} products in {processing_ms} ms (simulated)")


@task(dependencies=[partition_data], retry_attempts=3, retry_delay_ms=1000)
async def process_partition_1(context: Context) -> None:
    """Summarise the first partition per category."""
    await _process_partition(context, 1)


@task(dependencies=[partition_data], retry_attempts=3, retry_delay_ms=1000)
async def process_partition_2(context: Context) -> None:
    """Summarise the second partition per category."""
    await _process_partition(context, 2)


@task(dependencies=[partition_data], retry_attempts=3, retry_delay_ms=1000)
async def process_partition_3(context: Context) -> None:
    """Summarise the third partition per category."""
    await _process_partition(context, 3)


@task(
    dependencies=[process_partition_1, process_partition_2, process_partition_3],
    retry_attempts=2,
)
async def combine_results(context: Context) -> None:
    """Merge the three partial results into the final statistics."""
    log.info("combining results from parallel processing")
    merged: dict[str, dict[str, int]] = {}
    for n in (1, 2, 3):
        for category, s in context.get(f"stats_{n}").items():
            entry = merged.setdefault(
                category, {"total_value_cents": 0, "total_stock": 0, "product_count": 0}
            )
            for field in entry:
                entry[field] += s[field]
    final_stats = {
        category: {
            "total_value": merged[category]["total_value_cents"] / 100,
            **merged[category],
        }
        for category in sorted(merged, key=category_order)
    }
    times = [context.get(f"processing_time_{n}", type=int) for n in (1, 2, 3)]
    total_ms, parallel_ms = sum(times), max(times)
    efficiency = total_ms / parallel_ms * 100 if parallel_ms else 0.0
    context.insert("final_stats", final_stats)
    context.insert("total_processing_time_ms", total_ms)
    context.insert("actual_parallel_time_ms", parallel_ms)
    context.insert("parallel_efficiency_percent", round(efficiency, 1))
    # (the speedup is the run report's: achieved against what this graph allows)
    print(f"results combined: {len(final_stats)} categories")


@task(dependencies=[combine_results], retry_attempts=2)
async def generate_report(context: Context) -> None:
    """Write a one-line summary per category."""
    final_stats = context.get("final_stats")
    lines = [
        f"{category}: {s['product_count']} products, {s['total_stock']} total stock, "
        f"${s['total_value']:,.2f} total value"
        for category, s in final_stats.items()
    ]
    for line in lines:
        print(line)
    context.insert("report", "\n".join(lines))


@task(dependencies=[combine_results], retry_attempts=2)
async def send_notifications(context: Context) -> None:
    """Announce the totals (to the log: this example sends nothing anywhere)."""
    final_stats = context.get("final_stats")
    products = sum(s["product_count"] for s in final_stats.values())
    value_cents = sum(s["total_value_cents"] for s in final_stats.values())
    message = f"processing complete: {products} products, total value ${value_cents / 100:,.2f}"
    log.info(message)
    context.insert("notification", {"channel": "log", "message": message})


@task(dependencies=[generate_report, send_notifications], retry_attempts=2, trigger_rule="all_done")
async def cleanup(context: Context) -> None:
    """Release temporary data; runs even when something upstream failed."""
    temporary = sorted(k for k in context.keys() if k.startswith(("partition_", "stats_")))
    print(f"cleaning up {len(temporary)} temporary keys: {', '.join(temporary)}")
    context.insert("cleaned_up", temporary)


workflow = Workflow(
    "catalog",
    tasks=[
        generate_data,
        partition_data,
        process_partition_1,
        process_partition_2,
        process_partition_3,
        combine_results,
        generate_report,
        send_notifications,
        cleanup,
    ],
    max_concurrency=4,
    description="Cloacina tutorial 03: product statistics over three parallel partitions",
)
