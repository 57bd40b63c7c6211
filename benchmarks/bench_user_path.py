"""What a user pays: `tui-flow run FILE` as a process, against a bare asyncio floor measured in
the same run, as ratios.

    python benchmarks/bench_user_path.py [--n 10000] [--cap 4] [--repeat 3]

The workload: root -> N no-op async tasks -> join, in a workflow file. Each case is a whole
process, from start to exit, as the user runs it:

  floor        a script with the same graph: graphlib.TopologicalSorter + asyncio tasks + a
               semaphore (no persistence, no output); Python's start included, as for us
  json+store   tui-flow run FILE --json            (the store on: the default)
  json         tui-flow run FILE --json --no-store
  plain        tui-flow run FILE --no-store        (its lines into a pipe, read by this script)
  plain+store  tui-flow run FILE                   (the same, the store on)

Per-task figures are the process's wall time / N. The cases run interleaved, `--repeat` times
each (a noisy moment hits them all); the best and the median of each case's ratio to the
floor of the same round are printed. `--run-only` adds the run's own time (first event to
last, from --json) for the json cases, which leaves out start-up and loading.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOW = """
from tui_flow import Workflow, task

N, CAP = {n}, {cap}


async def noop(ctx):
    return None


root = task(noop, id="root")
mids = [task(noop, id=f"t{{i}}", dependencies=["root"]) for i in range(N)]
join = task(noop, id="join", dependencies=[f"t{{i}}" for i in range(N)])
workflow = Workflow("fan", [root, *mids, join], max_concurrency=CAP)
"""

FLOOR = """
import asyncio, sys
from graphlib import TopologicalSorter

N, CAP = {n}, {cap}


async def noop():
    return None


async def main():
    deps = {{"root": [], **{{f"t{{i}}": ["root"] for i in range(N)}}}}
    deps["join"] = [f"t{{i}}" for i in range(N)]
    ts = TopologicalSorter(deps)
    ts.prepare()
    sem = asyncio.Semaphore(CAP)
    finished = asyncio.Queue()

    async def one(node):
        async with sem:
            await noop()
        finished.put_nowait(node)

    running = set()
    while ts.is_active():
        for node in ts.get_ready():
            running.add(asyncio.ensure_future(one(node)))
        ts.done(await finished.get())
    await asyncio.gather(*running)


asyncio.run(main())
"""


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true")
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return took, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--cap", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-only", action="store_true")
    ap.add_argument("--cases", default="json+store,json,plain,plain+store")
    opts = ap.parse_args()
    n, cap = opts.n, opts.cap
    cli = [sys.executable, "-m", "tui_flow.cli", "run", "flow.py"]
    cases = {
        "json+store": [*cli, "--json", "--db", "runs.db"],
        "json": [*cli, "--json", "--no-store"],
        "plain": [*cli, "--no-store"],
        "plain+store": [*cli, "--db", "runs.db"],
    }
    chosen = [c.strip() for c in opts.cases.split(",") if c.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "flow.py").write_text(textwrap.dedent(FLOW.format(n=n, cap=cap)))
        (folder / "floor.py").write_text(textwrap.dedent(FLOOR.format(n=n, cap=cap)))
        floors: list[float] = []
        walls: dict[str, list[float]] = {c: [] for c in chosen}
        runs: dict[str, list[float]] = {c: [] for c in chosen}
        for _ in range(opts.repeat):
            floors.append(timed([sys.executable, "floor.py"], folder)[0])
            for case in chosen:
                (folder / "runs.db").unlink(missing_ok=True)
                took, out = timed(cases[case], folder)
                walls[case].append(took)
                if case.startswith("json"):
                    data = json.loads(out)
                    runs[case].append(data["finished_at"] - data["started_at"])
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {n:,} tasks, cap {cap}, "
        f"{opts.repeat} interleaved rounds; per task = process wall time / {n:,}"
    )
    print(f"{'case':<13}{'wall (best)':>12}{'us/task':>10}{'ratio best':>12}{'median':>9}")
    fb = min(floors)
    print(f"{'floor':<13}{fb:>11.3f}s{fb / n * 1e6:>10.1f}{'1.00x':>12}{'':>9}")
    for case in chosen:
        best = min(walls[case])
        ratios = [w / f for w, f in zip(walls[case], floors, strict=True)]
        line = (
            f"{case:<13}{best:>11.3f}s{best / n * 1e6:>10.1f}{best / fb:>11.2f}x"
            f"{statistics.median(ratios):>8.2f}x"
        )
        if opts.run_only and runs[case]:
            line += f"   run only: {min(runs[case]) / n * 1e6:.1f} us/task"
        print(line)


if __name__ == "__main__":
    main()
