"""Engine overhead against a bare asyncio scheduler, measured in the same process and run.

    python benchmarks/bench_engine.py [--quick]

Workloads (issue 3):
  W1  root -> N no-op tasks -> join   (N = 1,000 and 10,000)
  W2  a chain of 1,000 no-op tasks
  W3  four 1 s sleeps under max concurrency 4 (ideal wall time 1.0 s)
  W4  four CPU-bound ~0.5 s pure-Python tasks on runner="process" vs the same four in a row

The baseline is graphlib.TopologicalSorter + asyncio tasks + a semaphore, no persistence.
Per-task overhead = wall time / tasks for no-op workloads. Each figure is the best of R runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import textwrap
import time
from graphlib import TopologicalSorter
from pathlib import Path

from tui_flow import Workflow, load, task
from tui_flow.engine import Execution
from tui_flow.engine.runners import get_process_pool


async def _noop(ctx=None) -> None:
    return None


def fan_out(n: int) -> tuple[Workflow, dict[str, list[str]]]:
    root = task(_noop, id="root")
    mids = [task(_noop, id=f"t{i}", dependencies=["root"]) for i in range(n)]
    join = task(_noop, id="join", dependencies=[m.id for m in mids])
    deps = {"root": [], **{m.id: ["root"] for m in mids}, "join": [m.id for m in mids]}
    return Workflow(f"fan{n}", [root, *mids, join], max_concurrency=4), deps


def chain(n: int) -> tuple[Workflow, dict[str, list[str]]]:
    tasks = [task(_noop, id="c0")]
    for i in range(1, n):
        tasks.append(task(_noop, id=f"c{i}", dependencies=[f"c{i - 1}"]))
    deps = {t.id: list(t.spec.dependencies) for t in tasks}
    return Workflow(f"chain{n}", tasks, max_concurrency=4), deps


async def baseline(deps: dict[str, list[str]], body, cap: int) -> float:
    """The floor: a topological sorter feeding asyncio tasks through a semaphore."""
    t0 = time.perf_counter()
    ts = TopologicalSorter(deps)
    ts.prepare()
    sem = asyncio.Semaphore(cap)
    finished: asyncio.Queue[str] = asyncio.Queue()

    async def one(node: str) -> None:
        async with sem:
            await body()
        finished.put_nowait(node)

    running = set()
    while ts.is_active():
        for node in ts.get_ready():
            running.add(asyncio.ensure_future(one(node)))
        node = await finished.get()
        ts.done(node)
    await asyncio.gather(*running)
    return time.perf_counter() - t0


async def engine(wf: Workflow, cap: int | None = None) -> float:
    t0 = time.perf_counter()
    result = await Execution(wf, max_concurrency=cap).start().wait()
    assert result.status == "completed", result.status
    return time.perf_counter() - t0


async def interleaved(base_fn, ours_fn, repeat: int) -> tuple[float, float, float]:
    """Baseline and tui-flow alternately, `repeat` times each (a noisy moment hits both).
    Returns the best baseline, the best tui-flow time and the median of the per-pair ratios."""
    bases, ours = [], []
    for _ in range(repeat):
        bases.append(await base_fn())
        ours.append(await ours_fn())
    ratios = sorted(o / b for o, b in zip(ours, bases, strict=True))
    return min(bases), min(ours), ratios[len(ratios) // 2]


SLEEP_FLOW = textwrap.dedent("""
    import asyncio
    from tui_flow import task, Workflow

    @task
    async def s1(ctx): await asyncio.sleep(1)
    @task
    async def s2(ctx): await asyncio.sleep(1)
    @task
    async def s3(ctx): await asyncio.sleep(1)
    @task
    async def s4(ctx): await asyncio.sleep(1)

    workflow = Workflow("sleeps", [s1, s2, s3, s4], max_concurrency=4)
""")

CPU_FLOW = textwrap.dedent("""
    from tui_flow import task, Workflow

    def burn(n):
        total = 0
        for i in range(n):
            total += i * i % 7
        return total

    @task(runner="process")
    def c1(ctx): ctx.set("c1", burn(ctx.get("n")))
    @task(runner="process")
    def c2(ctx): ctx.set("c2", burn(ctx.get("n")))
    @task(runner="process")
    def c3(ctx): ctx.set("c3", burn(ctx.get("n")))
    @task(runner="process")
    def c4(ctx): ctx.set("c4", burn(ctx.get("n")))

    workflow = Workflow("cpu", [c1, c2, c3, c4], max_concurrency=4)
""")


def burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(target_s: float = 0.5) -> int:
    n = 200_000
    while True:
        t0 = time.perf_counter()
        burn(n)
        dt = time.perf_counter() - t0
        if dt > 0.1:
            return int(n * target_s / dt)
        n *= 2


async def main(quick: bool) -> None:
    repeat = 3 if quick else 5
    rows: list[tuple[str, str, str, str, str]] = []

    def overhead_row(name: str, n: int, base: float, ours: float, median: float) -> None:
        b_us, o_us = base / n * 1e6, ours / n * 1e6
        rows.append(
            (
                name,
                f"{base:.3f} s",
                f"{ours:.3f} s",
                f"{b_us:.1f} / {o_us:.1f} us",
                f"{o_us / b_us:.2f}x best, {median:.2f}x median",
            )
        )

    for n in (1_000, 10_000):
        wf, deps = fan_out(n)
        figures = await interleaved(
            lambda deps=deps: baseline(deps, _noop, 4), lambda wf=wf: engine(wf), repeat
        )
        overhead_row(f"W1 fan-out {n:,}", n + 2, *figures)
    wf, deps = chain(1_000)
    figures = await interleaved(lambda: baseline(deps, _noop, 4), lambda: engine(wf), repeat)
    overhead_row("W2 chain 1,000", 1_000, *figures)

    with tempfile.TemporaryDirectory() as d:
        sleeps = Path(d) / "sleeps.py"
        sleeps.write_text(SLEEP_FLOW)
        wf3 = load(sleeps).workflow()
        base3 = await baseline({f"s{i}": [] for i in range(1, 5)}, lambda: asyncio.sleep(1), 4)
        w3 = await engine(wf3)
        rows.append(
            (
                "W3 4 x 1 s sleep, cap 4",
                f"{base3:.3f} s",
                f"{w3:.3f} s",
                "ideal 1.000 s",
                f"{w3 / base3:.3f}x",
            )
        )

        n = calibrate(0.5)
        cpu = Path(d) / "cpu.py"
        cpu.write_text(CPU_FLOW)
        wf4 = load(cpu).workflow()
        await get_process_pool().warm(4)  # the pool is reused across runs: start it first
        pairs = []
        for _ in range(3):  # in a row, then on the pool; the median pair is reported
            t0 = time.perf_counter()
            for _ in range(4):
                burn(n)
            sequential = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = await Execution(wf4, {"n": n}).start().wait()
            w4 = time.perf_counter() - t0
            assert result.status == "completed"
            pairs.append((sequential / w4, sequential, w4))
        speedup, sequential, w4 = sorted(pairs)[1]
        rows.append(
            (
                "W4 4 x 0.5 s CPU, process",
                f"{sequential:.3f} s (in a row)",
                f"{w4:.3f} s",
                f"{os.cpu_count()} cores",
                f"speedup {speedup:.2f}x (median of 3)",
            )
        )

    header = ("workload", "baseline", "tui-flow", "per task (base / ours)", "ratio")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {repeat} interleaved runs")
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    asyncio.run(main(ap.parse_args().quick))
