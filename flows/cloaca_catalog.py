"""Product catalog statistics written for Cloacina (`import cloaca`), run unchanged by tui-flow.

The same work as `catalog.py` (Cloacina's tutorial 03), in the style of cloaca's Python
tutorials: a `WorkflowBuilder` block, `@cloaca.task`, `context.set/get`, `return context`, and
a `DefaultRunner` under `__main__`. tui-flow provides `cloaca` to this file when it loads it
(a real cloaca, if installed, is used instead): docs/migrating.md.

Run it:  tui-flow flows/cloaca_catalog.py          (the app)
         tui-flow run flows/cloaca_catalog.py      (headless)
         python flows/cloaca_catalog.py            (cloaca's own way, with tui-flow installed)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import cloaca
from _data import time_scale
from catalog import (
    DEFAULT_PRODUCTS,
    DEFAULT_SEED,
    PROCESSING_MS,
    category_order,
    category_stats,
    make_products,
)

log = logging.getLogger("cloaca_catalog")


async def process_partition(context, n):
    products = context.get(f"partition_{n}")
    print(f"processing partition {n}: {len(products)} products")
    low, high = PROCESSING_MS[n]
    timing_seed = context.get("timing_seed")
    rng = random.Random(None if timing_seed is None else f"{timing_seed}-{n}")
    processing_ms = rng.randrange(low, high)
    await asyncio.sleep(processing_ms / 1000 * time_scale(context))  # simulated work
    context.set(f"stats_{n}", category_stats(products))
    context.set(f"processing_time_{n}", processing_ms)
    print(f"partition {n} complete: {len(products)} products in {processing_ms} ms (simulated)")
    return context


with cloaca.WorkflowBuilder("cloaca_catalog") as builder:
    builder.description("Cloacina tutorial 03 through cloaca's Python API")
    builder.tag("tutorial", "03")

    @cloaca.task(id="generate_data", retry_attempts=3)
    def generate_data(context):
        """Generate the product dataset."""
        count = context.get("product_count") or DEFAULT_PRODUCTS
        seed = context.get("seed") or DEFAULT_SEED
        log.info("generating %d products (seed %d)", count, seed)
        time.sleep(0.5 * time_scale(context))  # simulated load of a large dataset
        products = make_products(count, seed)
        context.set("total_products", count)
        context.set("products", products)
        print(f"generated {count} products")
        return context

    @cloaca.task(id="partition_data", dependencies=["generate_data"], retry_attempts=3)
    def partition_data(context):
        """Split the products into three partitions for parallel processing."""
        products = context.get("products")
        size = len(products) // 3
        for n, part in enumerate(
            [products[:size], products[size : 2 * size], products[2 * size :]], 1
        ):
            context.set(f"partition_{n}", part)
        return context

    @cloaca.task(id="process_partition_1", dependencies=["partition_data"], retry_attempts=4)
    async def process_partition_1(context):
        return await process_partition(context, 1)

    @cloaca.task(id="process_partition_2", dependencies=["partition_data"], retry_attempts=4)
    async def process_partition_2(context):
        return await process_partition(context, 2)

    @cloaca.task(id="process_partition_3", dependencies=["partition_data"], retry_attempts=4)
    async def process_partition_3(context):
        return await process_partition(context, 3)

    @cloaca.task(
        id="combine_results",
        dependencies=["process_partition_1", "process_partition_2", "process_partition_3"],
        trigger_rules=cloaca.all_of(
            cloaca.task_success("process_partition_1"),
            cloaca.task_success("process_partition_2"),
            cloaca.task_success("process_partition_3"),
        ),
    )
    async def combine_results(context):
        """Merge the three partial results into the final statistics."""
        merged = {}
        for n in (1, 2, 3):
            for category, s in context.get(f"stats_{n}").items():
                entry = merged.setdefault(
                    category, {"total_value_cents": 0, "total_stock": 0, "product_count": 0}
                )
                for field in entry:
                    entry[field] += s[field]
        final_stats = {
            c: {"total_value": merged[c]["total_value_cents"] / 100, **merged[c]}
            for c in sorted(merged, key=category_order)
        }
        times = [context.get(f"processing_time_{n}") for n in (1, 2, 3)]
        context.set("final_stats", final_stats)
        context.set("total_processing_time_ms", sum(times))
        context.set("actual_parallel_time_ms", max(times))
        context.set("parallel_efficiency_percent", round(sum(times) / max(times) * 100, 1))
        return context

    @cloaca.task(
        id="generate_report",
        dependencies=["combine_results"],
        trigger_rules=cloaca.task_success("combine_results"),
    )
    async def generate_report(context):
        lines = [
            f"{c}: {s['product_count']} products, {s['total_stock']} total stock, "
            f"${s['total_value']:,.2f} total value"
            for c, s in context.get("final_stats").items()
        ]
        for line in lines:
            print(line)
        context.set("report", "\n".join(lines))
        return context

    @cloaca.task(
        id="send_notifications",
        dependencies=["combine_results"],
        trigger_rules=cloaca.context_value("final_stats", "Exists"),
    )
    async def send_notifications(context):
        stats = context.get("final_stats").values()
        message = (
            f"processing complete: {sum(s['product_count'] for s in stats)} products, total "
            f"value ${sum(s['total_value_cents'] for s in stats) / 100:,.2f}"
        )
        log.info(message)
        context.set("notification", {"channel": "log", "message": message})
        return context

    @cloaca.task(id="cleanup", dependencies=["generate_report", "send_notifications"])
    async def cleanup(context):
        """Runs once both have ended, whatever happened (cloaca's default trigger rule)."""
        temporary = sorted(k for k in context.to_dict() if k.startswith(("partition_", "stats_")))
        context.set("cleaned_up", temporary)
        return context


if __name__ == "__main__":
    runner = cloaca.DefaultRunner("sqlite:///cloaca_catalog.db")
    result = runner.execute("cloaca_catalog", cloaca.Context({"seed": DEFAULT_SEED}))
    print(result.status, result.error_message or "")
    runner.shutdown()
