"""Large workflows through `tui-flow run`: per-task cost against the 1,000-task figure, peak
memory, and how long loading and validating the file takes.

    python benchmarks/bench_scale.py [--sizes 1000 10000 100000] [--shape fan chain]

Each case is a process: `tui-flow run FILE --json` with the store on (the default), and,
for the loading figure, a process that only loads the file (`tui_flow.load`). Per task:
the run's own time (first event to last, from --json) / N; the whole process / N beside it.
Peak memory is the process's maximum resident set size (ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHAPES = {
    "fan": """
        from tui_flow import Workflow, task
        N = {n}
        async def noop(ctx):
            return None
        root = task(noop, id="root")
        mids = [task(noop, id=f"t{{i}}", dependencies=["root"]) for i in range(N)]
        join = task(noop, id="join", dependencies=[f"t{{i}}" for i in range(N)])
        workflow = Workflow("fan", [root, *mids, join], max_concurrency=4)
    """,
    "chain": """
        from tui_flow import Workflow, task
        N = {n}
        async def noop(ctx):
            return None
        tasks = [task(noop, id="c0")]
        for i in range(1, N):
            tasks.append(task(noop, id=f"c{{i}}", dependencies=[f"c{{i - 1}}"]))
        workflow = Workflow("chain", tasks, max_concurrency=4)
    """,
}


def child(args: list[str], cwd: Path) -> tuple[float, int, str]:
    """Run a process; its wall time, its peak RSS (KB) and its stdout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true")
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # (reaped here, for its own ru_maxrss)
    took = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {proc.returncode}")
    return took, usage.ru_maxrss, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--shape", nargs="+", default=["fan", "chain"], choices=list(SHAPES))
    opts = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; tui-flow run FILE --json")
    print(
        f"{'shape':<6}{'tasks':>9}{'load':>9}{'us/task':>9}{'run':>9}{'us/task':>9}"
        f"{'process':>10}{'us/task':>9}{'peak RSS':>11}{'KB/task':>9}"
    )
    for shape in opts.shape:
        base = None
        for n in sorted(opts.sizes):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                (folder / "flow.py").write_text(textwrap.dedent(SHAPES[shape].format(n=n)))
                probe = "import time, tui_flow; t = time.perf_counter(); tui_flow.load('flow.py')"
                load_s, _, out = child(
                    [sys.executable, "-c", probe + "; print(time.perf_counter() - t)"], folder
                )
                load_s = float(out.strip())
                wall, rss, out = child(
                    [sys.executable, "-m", "tui_flow.cli", "run", "flow.py", "--json"], folder
                )
                data = json.loads(out)
                assert data["status"] == "completed", data["status"]
                tasks = len(data["tasks"])
                run_s = data["finished_at"] - data["started_at"]
                per = run_s / tasks * 1e6
                base = per if base is None else base
                print(
                    f"{shape:<6}{tasks:>9,}{load_s:>8.2f}s{load_s / tasks * 1e6:>9.1f}"
                    f"{run_s:>8.2f}s{per:>9.1f}{wall:>9.2f}s{wall / tasks * 1e6:>9.1f}"
                    f"{rss / 1024:>9.0f}MB{rss / tasks:>9.1f}"
                    + (f"   run per task {per / base:.2f}x the smallest" if per != base else "")
                )


if __name__ == "__main__":
    main()
