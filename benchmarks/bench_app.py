"""The app under load, headless (`run_test`), against the same runs without the app.

    PYTHONPATH=. python benchmarks/bench_app.py [--tasks 1000] [--lines 100000]
    PYTHONPATH=. python benchmarks/bench_app.py --scale [--scale-run 10000] [--scale-idle 100000]

1. A 1,000-task workflow (each task sleeps 5 ms and logs a line, max concurrency 16):
   wall time in the app vs the engine alone (no subscriber) and vs the engine with the
   console reporter writing to /dev/null. Target: app <= 1.5x the headless run.
2. One task printing 100,000 lines (plus a quiet task), run `--flood-repeat` times: while it
   runs (from its first line on), key presses (`t`, next panel), spaced 40-120 ms apart at
   random (seeded; from key repeat, 25 a second, to brisk typing; `--press-gap`), are timed
   from the press to the app's handler running. Target: every
   press < 100 ms; printed as p50 / p90 / p99 / max over all presses of all runs. Also the
   resident memory growth, the lines kept on screen (bounded), and the flood's wall time in
   the app vs headless.

3. `--scale` (only this): `j`/`k` in the task view timed the same way during a 10,000-task
   fan-out run (one root, 10,000 tasks after it, 1 ms each, max concurrency 16); then the
   app opened on a 100,000-step chain and on a 100,000-task fan-out (not run): the time to
   open and the key latency there.

Both baselines (the headless runs) are measured in the same run, interleaved with the app
runs; each run starts after a `gc.collect()`, so garbage left by an earlier run (several apps
live and die in this one process) is not collected on the clock of the next. Figures
depend on the machine (and on what else runs on it): read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui_flow.console import ConsoleReporter  # noqa: E402
from tui_flow.engine import Execution  # noqa: E402
from tui_flow.loader import load  # noqa: E402
from tui_flow.ui.app import make_app  # noqa: E402

MANY = """
import asyncio
from tui_flow import Workflow, task

tasks = []
for i in range({n}):
    deps = [tasks[i - k].id for k in (1, 7, 31) if i - k >= 0 and (i + k) % 3 == 0]

    async def body(context, i=i):
        await asyncio.sleep(0.005)  # workload, allowed
        context.log(f"task {{i}} done")

    tasks.append(task(id=f"t{{i:04d}}", dependencies=deps)(body))

workflow = Workflow("many", tasks=tasks, max_concurrency=16)
"""

FLOOD = """
from tui_flow import task

@task
def flood(context) -> None:
    for i in range({lines}):
        print(f"line {{i}} of the flood: some text to make it a realistic width")

@task
def quiet(context) -> None:
    print("quiet task")
"""


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


async def headless(path: Path, reporter: bool = False) -> float:
    wf = load(path).workflow()
    subs = []
    if reporter:
        subs.append(ConsoleReporter(open(os.devnull, "w"), plain=True))
    gc.collect()  # garbage of earlier runs is not collected on this run's clock
    t0 = time.perf_counter()
    ex = Execution(wf, subscribers=subs).start()
    await ex.wait()
    return time.perf_counter() - t0


async def in_app(path: Path) -> tuple[float, int]:
    app = make_app(path, no_store=True, watch_files=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        gc.collect()  # garbage of earlier runs is not collected on this run's clock
        t0 = time.perf_counter()
        app.start_run()
        assert app.execution is not None
        result = await app.execution.wait()
        wall = time.perf_counter() - t0
        await pilot.pause()
        done = sum(1 for t in result.tasks.values() if t.status == "completed")
    return wall, done


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def flood_in_app(
    path: Path, rng: random.Random, gap: tuple[float, float] = (0.04, 0.12)
) -> dict[str, Any]:
    app = make_app(path, no_store=True, watch_files=False)
    latencies: list[float] = []
    handled = asyncio.Event()
    stamp = {"t": 0.0}
    original = app.action_next_tab

    def timed_next_tab() -> None:
        stamp["t"] = time.perf_counter()
        handled.set()
        original()

    app.action_next_tab = timed_next_tab  # type: ignore[method-assign]
    before = rss_mb()
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        gc.collect()
        t0 = time.perf_counter()
        app.start_run()
        ex = app.execution
        assert ex is not None
        while not app.session.total_lines and not ex.is_done:  # the flood is under way
            await asyncio.sleep(0.005)  # workload, allowed: a benchmark waiting for its load
        while not ex.is_done:
            handled.clear()
            sent = time.perf_counter()
            app.post_message(_key("t"))
            await handled.wait()
            latencies.append(stamp["t"] - sent)
            # spread the presses over the flood, at uneven moments
            await asyncio.sleep(rng.uniform(*gap))  # workload, allowed
        await ex.wait()
        wall = time.perf_counter() - t0
        await pilot.pause()
        app._tick()
        kept = len(app.log_view.entries)
        merged = len(app.session.lines)
        total = app.session.total_lines
    after = rss_mb()
    return {
        "wall": wall,
        "latencies_ms": [x * 1000 for x in latencies],
        "rss_growth_mb": after - before,
        "kept_on_screen": kept,
        "kept_in_memory": merged,
        "total_lines": total,
    }


FAN_OUT = """
import asyncio
from tui_flow import Workflow, task

@task(id="root")
async def root(context):
    pass

tasks = [root]
for i in range({n}):
    async def body(context):
        await asyncio.sleep(0.001)  # workload, allowed

    tasks.append(task(id=f"f{{i:05d}}", dependencies=["root"])(body))

workflow = Workflow("fan_out", tasks=tasks, max_concurrency=16)
"""

CHAIN = """
from tui_flow import Workflow, task

tasks = []
for i in range({n}):
    def body(context):
        pass

    deps = [tasks[-1].id] if tasks else []
    tasks.append(task(id=f"c{{i:06d}}", dependencies=deps, runner="async")(body))

workflow = Workflow("chain", tasks=tasks, max_concurrency=4)
"""


async def keys_in_app(
    path: Path, rng: random.Random, presses: int, run: bool, gap: tuple[float, float]
) -> dict[str, Any]:
    """Open the app on `path` (a big workflow), optionally run it, and time `j`/`k` presses
    (the task view's cursor) from the press to the handler; also the time to open."""
    t0 = time.perf_counter()
    app = make_app(path, no_store=True, watch_files=False)
    latencies: list[float] = []
    handled = asyncio.Event()
    stamp = {"t": 0.0}
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        opened = time.perf_counter() - t0
        tree = app.tree
        for name in ("action_cursor_down", "action_cursor_up"):
            original = getattr(tree, name)

            def timed(original: Any = original) -> None:
                stamp["t"] = time.perf_counter()
                handled.set()
                original()

            setattr(tree, name, timed)
        gc.collect()
        ex = None
        if run:
            app.start_run()
            ex = app.execution
        for i in range(presses):
            if ex is not None and ex.is_done:
                break
            handled.clear()
            sent = time.perf_counter()
            app.post_message(_key("j" if i % 3 else "k"))
            await handled.wait()
            latencies.append(stamp["t"] - sent)
            await asyncio.sleep(rng.uniform(*gap))  # workload, allowed
        if ex is not None:
            await ex.wait()
        await pilot.pause()
    return {"open_s": opened, "latencies_ms": [x * 1000 for x in latencies]}


def _lat_line(lat: list[float]) -> str:
    slow = sum(1 for x in lat if x >= 100)
    return (
        f"p50 {percentile(lat, 50):.1f} ms, p90 {percentile(lat, 90):.1f} ms, "
        f"p99 {percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms over {len(lat)} presses; "
        f"{slow} at or over 100 ms (target: none)"
    )


async def scale(args: argparse.Namespace, tmp: str) -> None:
    """The task view at scale: keys during a 10,000-task fan-out run; the app open on a
    100,000-step chain and a 100,000-task fan-out (idle), keys on them."""
    rng = random.Random(args.seed)
    fan = Path(tmp) / "fan.py"
    fan.write_text(FAN_OUT.format(n=args.scale_run))
    lat: list[float] = []
    for _ in range(args.scale_repeat):
        stats = await keys_in_app(fan, rng, 100_000, True, tuple(args.press_gap))
        lat += stats["latencies_ms"]
    print(f"{args.scale_run:,}-task fan-out, run in the app, j/k in the task view:")
    print(f"  key press latency   {_lat_line(lat)}")
    for name, text in (("chain", CHAIN), ("fan-out", FAN_OUT)):
        big = Path(tmp) / f"big_{name}.py"
        big.write_text(text.format(n=args.scale_idle))
        stats = await keys_in_app(big, rng, 60, False, (0.0, 0.01))
        print(f"{args.scale_idle:,}-task {name}, idle app:")
        print(f"  open (load + first screen) {stats['open_s']:.2f} s")
        print(f"  key press latency   {_lat_line(stats['latencies_ms'])}")


def _key(key: str):  # type: ignore[no-untyped-def]
    from textual import events

    return events.Key(key, key)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--flood-repeat", type=int, default=6)
    ap.add_argument(
        "--press-gap",
        type=float,
        nargs=2,
        default=(0.04, 0.12),
        metavar=("MIN", "MAX"),
        help="seconds between key presses, drawn at random in [MIN, MAX]",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", action="store_true", help="only the task view at scale")
    ap.add_argument("--scale-run", type=int, default=10_000)
    ap.add_argument("--scale-idle", type=int, default=100_000)
    ap.add_argument("--scale-repeat", type=int, default=2)
    args = ap.parse_args()
    if args.scale:
        with tempfile.TemporaryDirectory() as tmp:
            await scale(args, tmp)
        return
    with tempfile.TemporaryDirectory() as tmp:
        many = Path(tmp) / "many.py"
        many.write_text(MANY.format(n=args.tasks))
        flood = Path(tmp) / "flood.py"
        flood.write_text(FLOOD.format(lines=args.lines))

        await headless(many)  # warm up imports and the loader
        bare, console, app = [], [], []
        for _ in range(args.repeat):
            bare.append(await headless(many))
            console.append(await headless(many, reporter=True))
            wall, done = await in_app(many)
            assert done == args.tasks, f"only {done} tasks completed"
            app.append(wall)
        b, c, a = min(bare), min(console), min(app)
        print(f"{args.tasks}-task workflow (best of {args.repeat}; median in brackets):")
        med = statistics.median
        print(f"  engine alone        {b:7.3f} s  ({med(bare):.3f})")
        print(f"  engine + console    {c:7.3f} s  ({med(console):.3f})")
        print(f"  in the app          {a:7.3f} s  ({med(app):.3f})")
        print(
            f"  app / engine alone  {a / b:7.2f}x  ({med(app) / med(bare):.2f}x)   (target <= 1.5x)"
        )
        print(f"  app / console run   {a / c:7.2f}x  ({med(app) / med(console):.2f}x)")

        rng = random.Random(args.seed)
        heads, walls, lat, growth = [], [], [], []
        rss0 = rss_mb()
        for _ in range(args.flood_repeat):
            heads.append(await headless(flood))
            stats = await flood_in_app(flood, rng, tuple(args.press_gap))
            walls.append(stats["wall"])
            lat += stats["latencies_ms"]
            growth.append(stats["rss_growth_mb"])
        head, wall = med(heads), med(walls)
        print(f"{args.lines:,} log lines from one task (median of {args.flood_repeat} runs):")
        print(f"  headless            {head:7.3f} s")
        print(f"  in the app          {wall:7.3f} s   ({wall / head:.2f}x)")
        slow = sum(1 for x in lat if x >= 100)
        print(
            f"  key press latency   p50 {percentile(lat, 50):.1f} ms, "
            f"p90 {percentile(lat, 90):.1f} ms, p99 {percentile(lat, 99):.1f} ms, "
            f"max {max(lat):.1f} ms over {len(lat)} presses; "
            f"{slow} at or over 100 ms (target: none)"
        )
        print(
            f"  lines kept          {stats['kept_on_screen']:,.0f} on screen, "
            f"{stats['kept_in_memory']:,.0f} in memory, of {stats['total_lines']:,.0f}"
        )
        print(
            f"  memory growth       {max(growth):.1f} MB resident in one run at most, "
            f"{rss_mb() - rss0:.1f} MB over all {args.flood_repeat}"
        )


if __name__ == "__main__":
    asyncio.run(main())
