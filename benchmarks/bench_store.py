"""What recording a run costs: the engine with the SQLite store against a bare asyncio scheduler.

A fan-out workflow (one root task, then N no-op tasks that depend on it) runs:

- bare:          graphlib.TopologicalSorter + asyncio tasks + a semaphore, writing the same
                 transitions (running, completed per task) to SQLite in batches (a background
                 writer, one transaction every 50 ms and at the end, WAL) - the floor;
- engine:        tui-flow's Execution, no store (to tell the engine's cost from the store's);
- engine+store:  tui-flow's Execution with `RunStore.recorder(execution.view)` subscribed (as
                 `tui-flow run` does), flushed at the end;
- (record only:  the same with a store whose flushes write nothing: the recorder's Python on
                 the loop, without SQLite; it tells the two parts of what the store adds).

The body does nothing, so wall time / N is the per-task overhead. Each case runs --repeat
times, alternating, each after a `gc.collect()` and on a new database file, and the best is
kept. The target: engine+store within 1.5x of bare. It also prints the longest the store went
without committing while a run went on (the window a crash could lose at that moment).
`--rows` also times SQLite alone on each kind of row.

    PYTHONPATH=. python benchmarks/bench_store.py [--n 1000 10000] [--repeat 3] [--rows] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import graphlib
import io
import itertools
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui_flow import Workflow, task
from tui_flow.engine import Execution
from tui_flow.store.sqlite import RunStore

FLUSH_S = 0.05
TARGET = 1.5


def fan_out(n: int, cap: int) -> Workflow:
    @task(id="root")
    async def root(context: Any) -> None:
        pass

    tasks = [root]
    for i in range(n):

        async def body(context: Any) -> None:
            pass

        body.__name__ = f"t{i}"
        tasks.append(task(id=f"t{i}", dependencies=["root"])(body))
    return Workflow("fan_out", tasks, max_concurrency=cap)


# -- the floor: a bare asyncio scheduler writing transitions in batches ---------------------------


async def bare(n: int, cap: int, db: Path) -> tuple[float, float]:
    conn = await aiosqlite.connect(str(db), isolation_level=None)
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS transitions (run_id TEXT, task_id TEXT, state TEXT, "
        "attempt INTEGER, at REAL)"
    )
    graph = {"root": ()} | {f"t{i}": ("root",) for i in range(n)}
    pending: list[tuple[str, str, str, int, float]] = []
    wake = asyncio.Event()

    async def write() -> None:
        nonlocal pending
        batch, pending = pending, []
        if batch:
            await conn.execute("BEGIN IMMEDIATE")
            await conn.executemany("INSERT INTO transitions VALUES (?, ?, ?, ?, ?)", batch)
            await conn.execute("COMMIT")

    async def writer() -> None:
        while True:
            await wake.wait()
            await asyncio.sleep(FLUSH_S)
            wake.clear()
            await write()

    async def noop() -> None:
        pass

    t0, c0 = time.perf_counter(), time.process_time()
    flusher = asyncio.create_task(writer())
    sem = asyncio.Semaphore(cap)
    done: asyncio.Queue[str] = asyncio.Queue()
    clock = time.time

    async def run_one(node: str) -> None:
        async with sem:
            pending.append(("bare", node, "running", 1, clock()))
            wake.set()
            await noop()
            pending.append(("bare", node, "completed", 1, clock()))
        done.put_nowait(node)

    ts = graphlib.TopologicalSorter(graph)
    ts.prepare()
    running: set[asyncio.Task[None]] = set()
    while ts.is_active():
        for node in ts.get_ready():
            t = asyncio.create_task(run_one(node))
            running.add(t)
            t.add_done_callback(running.discard)
        ts.done(await done.get())
    flusher.cancel()
    await write()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await conn.close()
    return elapsed, cpu


# -- tui-flow ---------------------------------------------------------------------------------


def _record_only(store: RunStore) -> None:
    """Make the store's flushes write nothing (what recording costs on the loop, SQLite aside)."""

    async def write(batch: Any) -> None:
        return None

    store._writer._write = write  # type: ignore[method-assign]


def _timed(store: RunStore, commits: list[float]) -> None:
    """Note in `commits` when each of the store's flushes committed (to see how often it writes
    mid-run)."""
    write = store._writer._write

    async def timed(batch: Any) -> None:
        await write(batch)
        commits.append(time.perf_counter())

    store._writer._write = timed  # type: ignore[method-assign]


async def engine(
    wf: Workflow,
    db: Path | None,
    record_only: bool = False,
    gaps: list[float] | None = None,
) -> tuple[float, float]:
    """Wall and CPU time of one run (`record_only`: with a store whose flushes write nothing).
    `gaps`: gets the longest time the store went without committing while the run went on
    (from its first event to its last)."""
    store = await RunStore.open(db) if db is not None else None
    commits: list[float] = []
    first_event: float | None = None
    if store is not None:
        if record_only:
            _record_only(store)
        else:
            _timed(store, commits)
    t0, c0 = time.perf_counter(), time.process_time()
    ex = Execution(wf)
    if store is not None and record_only:
        ex.subscribe(store.recorder(ex.view))
    elif store is not None:
        record = store.recorder(ex.view)

        def recorder(event: Any) -> None:  # notes when the first event came
            nonlocal first_event
            if first_event is None:
                first_event = time.perf_counter()
            record(event)

        ex.subscribe(recorder)
    ex.start()
    result = await ex.wait()
    ended = time.perf_counter()
    if store is not None:
        await store.flush()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert result.status == "completed", result.status
    if store is not None and not record_only and gaps is not None:
        assert first_event is not None
        marks = [first_event, *(t for t in commits if t < ended), ended]
        gaps.append(max(b - a for a, b in itertools.pairwise(marks)))
    if store is not None:
        await store.close()
    return elapsed, cpu


def measure(
    n: int, cap: int, repeat: int, folder: Path
) -> tuple[dict[str, tuple[float, float]], float, float]:
    """Best (wall, cpu) of each case, as microseconds per task; the median of the
    engine+store / bare wall-time ratios of each round (a noisy moment hits both of a round);
    and the longest the store went without writing while a run went on (seconds, worst)."""
    wf = fan_out(n, cap)
    best = dict.fromkeys(
        ("bare", "engine", "record only", "engine+store"), (float("inf"), float("inf"))
    )
    ratios: list[float] = []
    gaps: list[float] = []

    def keep(name: str, got: tuple[float, float]) -> tuple[float, float]:
        best[name] = (min(best[name][0], got[0]), min(best[name][1], got[1]))
        return got

    for r in range(repeat):
        # each case starts from a collected heap: a full collection set off by the previous
        # case's garbage must not land in the next one's timing
        gc.collect()
        base = keep("bare", asyncio.run(bare(n, cap, folder / f"bare-{n}-{r}.db")))
        gc.collect()
        keep("engine", asyncio.run(engine(wf, None)))
        gc.collect()
        both = keep(
            "engine+store", asyncio.run(engine(wf, folder / f"store-{n}-{r}.db", gaps=gaps))
        )
        gc.collect()
        keep("record only", asyncio.run(engine(wf, folder / f"rec-{n}-{r}.db", record_only=True)))
        ratios.append(both[0] / base[0])
    per_task = {k: (w / (n + 1) * 1e6, c / (n + 1) * 1e6) for k, (w, c) in best.items()}
    return per_task, statistics.median(ratios), max(gaps)


def sqlite_rows(n: int, folder: Path, repeat: int = 5) -> dict[str, float]:
    """SQLite alone (no event loop, no Python scheduler): microseconds per task to insert, in
    one transaction, the rows the baseline writes for N tasks and the rows the store writes
    (in its own schema, with its own statements)."""
    from tui_flow.store.schema import SCHEMA_FILE, statements
    from tui_flow.store.writer import _INSERT_EVENTS

    rid = "r" * 12
    t0 = 1.7e9
    states = ("running", "completed")
    cases: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
        "baseline: 2 transition rows": (
            "INSERT INTO transitions VALUES (?, ?, ?, ?, ?)",
            [(rid, f"t{i}", s, 1, t0 + i) for i in range(n) for s in states],
        ),
        "store: 2 event rows": (
            _INSERT_EVENTS,
            [(rid, 0, "task_state", t0 + i, f"t{i}", s, 1, "{}") for i in range(n) for s in states],
        ),
    }
    out = {}
    for k, (name, (sql, rows)) in enumerate(cases.items()):
        best = float("inf")
        for r in range(repeat):
            con = sqlite3.connect(folder / f"rows-{n}-{k}-{r}.db", isolation_level=None)
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            for stmt in statements(SCHEMA_FILE.read_text()):
                con.execute(stmt)
            con.execute(
                "CREATE TABLE transitions (run_id TEXT, task_id TEXT, state TEXT, "
                "attempt INTEGER, at REAL)"
            )
            start = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            con.executemany(sql, rows)
            con.execute("COMMIT")
            best = min(best, time.perf_counter() - start)
            con.close()
        out[name] = best / n * 1e6
    return out


def profile(n: int, cap: int, folder: Path) -> str:
    wf = fan_out(n, cap)
    prof = cProfile.Profile()
    prof.enable()
    asyncio.run(engine(wf, folder / f"profile-{n}.db"))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--concurrency", "-j", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile engine+store at the last N")
    ap.add_argument(
        "--rows", action="store_true", help="also time SQLite alone on each kind of row written"
    )
    args = ap.parse_args()
    ok = True
    longest: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(
            f"fan-out of N no-op tasks, max concurrency {args.concurrency}, best of "
            f"{args.repeat}; per-task overhead in us (wall time / tasks)"
        )
        print(
            f"{'N':>7} {'':>4} {'bare':>8} {'engine':>8} {'eng+store':>10} {'store':>7} "
            f"{'record':>7} {'sqlite':>7} {'ratio':>6} {'median':>7}"
        )
        for n in args.n:
            r, median, gap = measure(n, args.concurrency, args.repeat, folder)
            longest[n] = gap
            for i, what in enumerate(("wall", "cpu")):
                bare_us, eng, both = r["bare"][i], r["engine"][i], r["engine+store"][i]
                rec = r["record only"][i]
                ratio = both / bare_us
                if what == "wall":
                    ok = ok and ratio <= TARGET
                print(
                    f"{n:>7} {what:>4} {bare_us:>8.1f} {eng:>8.1f} {both:>10.1f} "
                    f"{both - eng:>7.1f} {rec - eng:>7.1f} {both - rec:>7.1f} {ratio:>5.2f}x"
                    + (f" {median:>6.2f}x" if what == "wall" else " " * 8)
                    + f"   (engine alone {eng / bare_us:.2f}x)"
                )
        print(
            "wall: wall time / tasks; cpu: process CPU time (all threads) / tasks.\n"
            "ratio = engine+store / bare, best of each (target <= 1.5x); median = the median of "
            "the rounds' own ratios;\nstore = engine+store - engine "
            "(what recording adds per task),\nof which record = the recorder on the loop "
            "(a store that writes nothing) and sqlite = the writes."
        )
        print(
            "longest the store went without committing while a run went on (worst of the "
            "rounds; flushes are due every "
            f"{FLUSH_S * 1000:.0f} ms): "
            + ", ".join(f"{gap * 1000:.0f} ms at N = {n}" for n, gap in longest.items())
        )
        if args.rows:
            print("\nSQLite alone, one transaction, us per task:")
            for n in args.n:
                got = sqlite_rows(n, folder)
                print(f"{n:>7}  " + "  ".join(f"{k} {v:.1f}" for k, v in got.items()))
        if args.profile:
            print(profile(args.n[-1], args.concurrency, folder))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
