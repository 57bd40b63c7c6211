"""The cost of the cloaca compat layer, on the user's path: `tui-flow run FILE --json` as a
process for `flows/cloaca_catalog.py` (Cloacina's tutorial 03 through `import cloaca`) against
the native `flows/catalog.py` (the same work), as ratios measured in the same run.

    python benchmarks/bench_compat.py [--rounds 7] [--products 10000] [--time-scale 0]

`--time-scale 0` (the default) removes the simulated sleeps, so what is left is loading, the
real work (making and summarising the products) and the engine: the layer's overhead shows
instead of being hidden under seconds of sleeping. The two cases run interleaved, `--rounds`
times each; per round the ratio compat / native of the process's wall time and of the run's
own time (first event to last, from --json) is taken; the best and the median are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {"native": ROOT / "flows" / "catalog.py", "compat": ROOT / "flows" / "cloaca_catalog.py"}


def once(path: Path, products: int, scale: float) -> tuple[float, float]:
    """(process wall time, the run's own time) of one `tui-flow run FILE --json`, seconds."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true", NO_COLOR="1")
    cmd = [sys.executable, "-m", "tui_flow", "run", str(path), "--json", "--no-store"]
    cmd += ["--set", f"product_count={products}", "--set", f"time_scale={scale}"]
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{path.name} failed ({done.returncode}):\n{done.stderr}")
    doc = json.loads(done.stdout)
    return wall, doc["finished_at"] - doc["started_at"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--products", type=int, default=10_000)
    ap.add_argument("--time-scale", type=float, default=0.0)
    args = ap.parse_args()
    walls: dict[str, list[float]] = {k: [] for k in CASES}
    runs: dict[str, list[float]] = {k: [] for k in CASES}
    for _ in range(args.rounds):
        for name, path in CASES.items():
            wall, own = once(path, args.products, args.time_scale)
            walls[name].append(wall)
            runs[name].append(own)
    print(
        f"cloaca compat vs native catalog: {args.rounds} rounds, {args.products} products, "
        f"time scale {args.time_scale:g}"
    )
    for label, table in (("process wall time", walls), ("run's own time", runs)):
        ratios = [c / n for c, n in zip(table["compat"], table["native"], strict=True)]
        for name in CASES:
            vals = table[name]
            print(
                f"  {label:18} {name:7} best {min(vals) * 1000:8.1f} ms  "
                f"median {statistics.median(vals) * 1000:8.1f} ms"
            )
        print(
            f"  {label:18} ratio compat/native: best {min(ratios):.3f}  "
            f"median {statistics.median(ratios):.3f}"
        )


if __name__ == "__main__":
    main()
