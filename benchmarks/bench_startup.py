"""Start-up as a user meets it: `tui-flow --version`, `--help`, and the app's first frame.

    python benchmarks/bench_startup.py [--repeat 7] [--flow flows/catalog.py]

Each case is a whole process, from `exec` to what the user waits for:

  python -c pass     the interpreter alone (the baseline, measured in the same rounds)
  --version          `python -m tui_flow --version` until it exits
  --help             `python -m tui_flow --help` until it exits
  app first frame    `python -m tui_flow FLOW` in a pseudo-terminal (80x24), the store on,
                     until the screen shows the workflow's name and its first task; then `q`

The cases run interleaved `--repeat` times; best and median wall time are printed, with the
ratio to the bare interpreter. Targets (issue 15): --version and --help < 0.3 s, the first
frame < 1 s.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLUMNS="80", LINES="24")


def timed_exit(argv: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=_env(), capture_output=True, check=False)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr[-500:]!r}")
    return took


def first_frame(flow: Path, marks: list[bytes], db: Path, timeout: float = 30.0) -> float:
    """Seconds until every mark is on the app's screen (escape codes stripped)."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = _env()
    env.pop("CI", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui_flow", str(flow), "--db", str(db)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    took = None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            seen += ANSI.sub(b"", chunk)
            if all(m in seen for m in marks):
                took = time.perf_counter() - t0
                break
        os.write(master, b"q")
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    finally:
        os.close(master)
    if took is None:
        raise SystemExit(f"the app did not show {marks} within {timeout:.0f} s")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--flow", type=Path, default=ROOT / "flows" / "catalog.py")
    ap.add_argument("--mark", action="append", default=None, help="text the first frame shows")
    opts = ap.parse_args()
    marks = [m.encode() for m in (opts.mark or ["catalog", "generate_data"])]
    py = sys.executable
    db = Path(tempfile.mkdtemp()) / "runs.db"  # the store on, as by default
    cases = {
        "python -c pass": lambda: timed_exit([py, "-c", "pass"]),
        "--version": lambda: timed_exit([py, "-m", "tui_flow", "--version"]),
        "--help": lambda: timed_exit([py, "-m", "tui_flow", "--help"]),
        "app first frame": lambda: first_frame(opts.flow, marks, db),
    }
    times: dict[str, list[float]] = {c: [] for c in cases}
    for _ in range(opts.repeat):
        for name, case in cases.items():
            times[name].append(case())
    base = min(times["python -c pass"])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {opts.repeat} rounds")
    print(f"{'case':<18}{'best':>9}{'median':>9}{'best / python':>15}")
    for name, ts in times.items():
        best, med = min(ts), statistics.median(ts)
        print(f"{name:<18}{best:>8.3f}s{med:>8.3f}s{best / base:>14.1f}x")


if __name__ == "__main__":
    main()
