"""The headless console under a flood: `tui-flow run` of one task printing N lines.

    PYTHONPATH=. python benchmarks/bench_console.py [--lines 1000000] [--repeat 3]
        [--to devnull pipe tty] [--store]

Each case runs `python -m tui_flow.cli run flood.py` as a subprocess (this checkout's
tui_flow), its output going to:

- `devnull`: stdout is /dev/null (`> /dev/null`);
- `pipe`: stdout is a pipe into `cat > /dev/null` (`| cat > /dev/null`);
- `tty`: stdout is a pseudo-terminal this script drains (styled lines, task text through
  `visible()`; TERM=xterm-256color).

and is timed from start to exit (interpreter start-up and the report included). In the same
round, to the same target:

- `baseline`: a plain Python script printing N lines of the same length, one `print` each;
- `no-logs`: `tui-flow run --no-logs`: the engine capturing the same prints, without the
  console writing them (what the console itself costs is the difference).

Printed: lines a second of each, and `tui-flow run` as a ratio to the baseline and to
`no-logs`. The rounds alternate the cases; each case's best and median are shown. Figures
depend on the machine and on what else runs on it: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FLOOD = """
import os
from tui_flow import task, Context

N = int(os.environ["FLOOD_LINES"])

@task
def flood(ctx: Context) -> None:
    for i in range(N):
        print(f"line {i}")
"""

# what `tui-flow run` writes per line, so the baseline moves as many bytes
BASELINE = """
import os

N = int(os.environ["FLOOD_LINES"])
for i in range(N):
    print(f"12:00:00.000    │ flood: line {i}")
"""


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 1 << 16):
            pass
    except OSError:  # EIO once the child has closed the terminal
        pass


def run_once(argv: list[str], target: str, env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one run of `argv` with its stdout on `target`."""
    if target == "devnull":
        with open(os.devnull, "w") as null:
            t0 = time.perf_counter()
            code = subprocess.call(argv, stdout=null, env=env, cwd=cwd)
            wall = time.perf_counter() - t0
    elif target == "pipe":
        with open(os.devnull, "w") as null:
            t0 = time.perf_counter()
            producer = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=cwd)
            consumer = subprocess.Popen(["cat"], stdin=producer.stdout, stdout=null)
            assert producer.stdout is not None
            producer.stdout.close()
            code = producer.wait()
            consumer.wait()
            wall = time.perf_counter() - t0
    elif target == "tty":
        master, slave = pty.openpty()
        reader = threading.Thread(target=_drain, args=(master,), daemon=True)
        reader.start()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=slave, env=dict(env, TERM="xterm-256color"), cwd=cwd)
        os.close(slave)
        code = proc.wait()
        wall = time.perf_counter() - t0
        reader.join(10)
        os.close(master)
    else:
        raise ValueError(f"unknown target {target!r}")
    if code != 0:
        raise RuntimeError(f"{argv} exited with {code}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--to", nargs="+", default=["devnull", "pipe"], choices=["devnull", "pipe", "tty"]
    )
    ap.add_argument("--store", action="store_true", help="record the runs (default --no-store)")
    args = ap.parse_args()

    env = dict(os.environ, PYTHONPATH=str(ROOT), FLOOD_LINES=str(args.lines))
    env.pop("CI", None)
    env.pop("NO_COLOR", None)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        cwd = Path(tmp)
        (cwd / "flood.py").write_text(FLOOD)
        (cwd / "baseline.py").write_text(BASELINE)
        run = [sys.executable, "-m", "tui_flow.cli", "run", "flood.py"]
        run += ["--db", str(cwd / "runs.db")] if args.store else ["--no-store"]
        cases = {
            "baseline": [sys.executable, "baseline.py"],
            "tui-flow run": run,
            "no-logs": [*run, "--no-logs"],
        }
        print(f"{args.lines:,} lines, best / median of {args.repeat} rounds")
        for target in args.to:
            walls: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.repeat):
                for name, argv in cases.items():
                    walls[name].append(run_once(argv, target, env, cwd))
            best = {name: min(w) for name, w in walls.items()}
            median = {name: statistics.median(w) for name, w in walls.items()}
            print(f"\nto {target}:")
            for name in cases:
                print(
                    f"  {name:<14} {best[name]:7.2f} s  {args.lines / best[name]:>12,.0f} lines/s"
                    f"   (median {median[name]:.2f} s, {args.lines / median[name]:,.0f} lines/s)"
                )
            tf = "tui-flow run"
            print(
                f"  tui-flow run / baseline: {best[tf] / best['baseline']:.1f}x "
                f"(median {median[tf] / median['baseline']:.1f}x); "
                f"/ no-logs: {best[tf] / best['no-logs']:.2f}x "
                f"(median {median[tf] / median['no-logs']:.2f}x)"
            )


if __name__ == "__main__":
    main()
