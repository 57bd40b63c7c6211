"""CPU-bound work on worker processes, as a user runs it, worker start-up included.

    python benchmarks/bench_cpu_path.py [--tasks 4] [--seconds 0.5] [--repeat 5]

Both cases are whole processes, from `exec` to exit:

  in a row     a script that imports nothing of ours and runs the same pure-Python loop
               `--tasks` times, one after the other
  tui-flow     `tui-flow run FILE` (store and console on, the defaults): the same loops as
               `--tasks` independent tasks with `runner="process"`; the worker processes are
               started by the run (nothing is warmed beforehand)

The loop size is calibrated so that one loop takes `--seconds` here. The cases alternate
`--repeat` times; printed: best and median wall time, and the speedup (in a row / tui-flow)
of the median pair. Target (issue 15): four tasks on 2 cores at least 1.8x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BURN = """
def burn(n):
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x
"""

FLOW = (
    """
from tui_flow import Workflow, task
"""
    + BURN
    + """

N, TASKS = {n}, {tasks}


def body(ctx):
    burn(N)


tasks = [task(body, id=f"cpu{{i}}", runner="process") for i in range(TASKS)]
workflow = Workflow("cpu", tasks, max_concurrency=TASKS)
"""
)

IN_A_ROW = (
    BURN
    + """
for _ in range({tasks}):
    burn({n})
"""
)


def calibrate(seconds: float) -> int:
    exec(BURN, namespace := {})
    burn = namespace["burn"]
    n = 100_000
    while True:
        t0 = time.perf_counter()
        burn(n)
        took = time.perf_counter() - t0
        if took > 0.05:
            return int(n * seconds / took)
        n *= 2


def timed(argv: list[str], cwd: Path, db: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true")
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=5)
    opts = ap.parse_args()
    n = calibrate(opts.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "cpu.py").write_text(textwrap.dedent(FLOW.format(n=n, tasks=opts.tasks)))
        (folder / "row.py").write_text(textwrap.dedent(IN_A_ROW.format(n=n, tasks=opts.tasks)))
        db = folder / "runs.db"
        ours = [sys.executable, "-m", "tui_flow", "run", "cpu.py", "--db", str(db)]
        pairs = []
        for _ in range(opts.repeat):
            row = timed([sys.executable, "row.py"], folder, db)
            flow = timed(ours, folder, db)
            pairs.append((row / flow, row, flow))
    rows = [p[1] for p in pairs]
    flows = [p[2] for p in pairs]
    speedup, row, flow = sorted(pairs)[len(pairs) // 2]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {opts.repeat} rounds")
    print(f"in a row   best {min(rows):.3f} s  median {statistics.median(rows):.3f} s")
    print(f"tui-flow   best {min(flows):.3f} s  median {statistics.median(flows):.3f} s")
    print(
        f"{opts.tasks} x {opts.seconds} s CPU: speedup {speedup:.2f}x "
        f"(median pair: {row:.3f} s in a row / {flow:.3f} s)"
    )


if __name__ == "__main__":
    main()
