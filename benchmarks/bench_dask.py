"""Dask (LocalCluster) beside the local process runner, measured in one run.

    PYTHONPATH=. python benchmarks/bench_dask.py [--quick]

- W4: four CPU-bound pure-Python tasks of ~0.5 s each; baseline: the same four loops run
  one after another in this process (the serial time). Printed as speedup over serial.
- fan-out: one root task and a `map_over` of 1,000 no-op instances; the per-task overhead is
  wall time x concurrency / tasks (what each task costs a slot beyond its own work).
- sweep: 100 tasks of 1, 10, 50 and 200 ms on both runners, to show where Dask's overhead
  stops mattering (the crossover), next to the figure the measured overheads predict.

Both runners get the same concurrency cap (2 x the cores). The LocalCluster is sized to the
machine (workers x threads = cores), like `tui-flow run --executor dask` without --scheduler.
Timings depend on the machine and its load: read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui_flow.engine import Execution
from tui_flow.engine.dask_runner import make_dask_runner
from tui_flow.engine.runners import get_process_pool
from tui_flow.loader import load

FLOW = """
import time
from tui_flow import Context, Workflow, task


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def _cpu(ctx: Context) -> None:
    spin(ctx.get("spin"))


cpu = [task(id=f"cpu{i}", runner="process")(_cpu) for i in range(1, 5)]
w4 = Workflow("w4", tasks=cpu)


@task
def root(ctx: Context) -> None:
    ctx.insert("items", list(range(ctx.get("n"))))


@task(dependencies=[root], map_over="items", runner="process")
def work(ctx: Context) -> None:
    seconds = ctx.get("sleep_s")
    if seconds:
        time.sleep(seconds)  # workload, allowed


fan = Workflow("fan", tasks=[root, work])
"""


def spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def calibrate(target_s: float) -> int:
    n = 200_000
    while True:
        t0 = time.perf_counter()
        spin(n)
        dt = time.perf_counter() - t0
        if dt > 0.1:
            return int(n * target_s / dt)
        n *= 2


async def timed(wf: Any, context: dict[str, Any], remote: Any, cap: int) -> float:
    execution = Execution(wf, context, remote=remote, max_concurrency=cap)
    t0 = time.perf_counter()
    execution.start()
    result = await execution.wait()
    wall = time.perf_counter() - t0
    if result.status != "completed":
        bad = {k: t.error for k, t in result.tasks.items() if t.status != "completed"}
        raise SystemExit(f"{wf.name} on {result.executor} did not complete: {bad}")
    return wall


def _noop(payload: bytes) -> int:
    return len(payload)


async def raw_dask(runner: Any, n: int, cap: int) -> float:
    """The same number of no-op submissions straight through the Dask client."""
    client = runner._client
    gate = asyncio.Semaphore(cap)

    async def one() -> int:
        async with gate:
            return await client.submit(_noop, b"x" * 2048, pure=False)

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - t0


async def main(quick: bool) -> None:
    cores = os.cpu_count() or 1
    cap = 2 * cores
    fan_n = 200 if quick else 1000
    sweep_n = 40 if quick else 100
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_flow.py"
        path.write_text(FLOW)
        loaded = load(path)
        w4, fan = loaded.workflow("w4"), loaded.workflow("fan")

        n_spin = calibrate(0.5)
        t0 = time.perf_counter()
        for _ in range(4):
            spin(n_spin)
        serial = time.perf_counter() - t0

        pool = get_process_pool()
        await pool.warm()
        dask = make_dask_runner(None)
        t0 = time.perf_counter()
        await dask.start()
        startup = time.perf_counter() - t0

        print(f"machine: {cores} cores; concurrency cap {cap}; {dask.describe()}")
        print(f"LocalCluster start: {startup:.2f} s (once per run, before the first task)")
        print()

        # warm both (module import on every worker) so the figures are steady-state
        await timed(fan, {"n": 2 * cores, "sleep_s": 0}, None, cap)
        await timed(fan, {"n": 2 * cores, "sleep_s": 0}, dask, cap)

        print(f"W4: four CPU-bound tasks of ~{serial / 4:.2f} s; serial baseline {serial:.2f} s")
        for label, remote in (("process", None), ("dask", dask)):
            wall = await timed(w4, {"spin": n_spin}, remote, cap)
            print(f"  {label:<8} wall {wall:6.2f} s   speedup over serial {serial / wall:5.2f}x")
        print()

        print(f"fan-out: 1 root + {fan_n} no-op tasks (overhead = wall x cores / tasks)")
        overhead: dict[str, float] = {}
        for label, remote in (("process", None), ("dask", dask)):
            wall = await timed(fan, {"n": fan_n, "sleep_s": 0}, remote, cap)
            overhead[label] = wall * cores / fan_n
            print(
                f"  {label:<8} wall {wall:6.2f} s   {fan_n / wall:7.0f} tasks/s   "
                f"overhead {overhead[label] * 1000:6.2f} ms per task"
            )
        wall = await raw_dask(dask, fan_n, cap)
        print(
            f"  {'raw dask':<8} wall {wall:6.2f} s   {fan_n / wall:7.0f} tasks/s   "
            f"overhead {wall * cores / fan_n * 1000:6.2f} ms per task  "
            f"(client.submit of a no-op, {cap} in flight: Dask's own floor)"
        )
        ratio = overhead["dask"] / overhead["process"]
        print(f"  dask / process overhead: {ratio:.1f}x")
        print()

        print(f"sweep: {sweep_n} tasks of a given length (sleep), wall time dask / process")
        crossover = None
        for ms in (1, 10, 50, 200):
            ctx = {"n": sweep_n, "sleep_s": ms / 1000}
            p = await timed(fan, ctx, None, cap)
            d = await timed(fan, ctx, dask, cap)
            print(f"  {ms:4d} ms   process {p:6.2f} s   dask {d:6.2f} s   ratio {d / p:5.2f}x")
            if crossover is None and d / p <= 1.10:
                crossover = ms
        extra = overhead["dask"] - overhead["process"]
        bound = extra / 0.10 * 1000
        print()
        print(
            "crossover: within 10% of the process runner from tasks of "
            + (f"~{crossover} ms" if crossover else "more than 200 ms")
            + f" (upper bound from the no-op overhead, {extra * 1000:.1f} ms extra per task: "
            f"{bound:.0f} ms; Dask overlaps part of it with running tasks)"
        )
        print(
            "on one machine the process runner is never slower; Dask pays off when its "
            "cluster has more cores than this machine and tasks are past the crossover"
        )
        await dask.close()
        pool.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks (a smoke run)")
    asyncio.run(main(parser.parse_args().quick))
