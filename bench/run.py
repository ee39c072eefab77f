"""`make bench`: every speed benchmark of issue 9, one after the other, then a summary table.

Each benchmark is a module of bench/ with `run(scratch: Path, quick: bool) -> list[dict]`
returning results made by benchlib.result (measured, same-run baseline, ratio, target, met);
each is written to bench/results/<name>.json. `--quick` runs tiny sizes (a smoke test of the
benchmark code, not a measurement); `--only NAME` runs some. Exit status 0 when every target
was met, 1 otherwise. The full run is sized to take under 15 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RESULTS, result, write_result  # noqa: E402

# In the order they run: the module of bench/ that measures each.
BENCHMARKS = ("overhead", "start_latency", "fanout", "replay", "export", "ingest", "job_queue")
# (job_queue, not queue: bench/ is on sys.path, and a module named queue would shadow the standard one.)


def run_one(module_name: str, quick: bool) -> list[dict]:
    module = importlib.import_module(module_name)
    with tempfile.TemporaryDirectory(prefix=f"forge-bench-{module_name}-") as scratch:
        return module.run(Path(scratch), quick)


def summary(results: list[dict], seconds: dict[str, float]) -> str:
    rows = [("benchmark", "ratio", "target", "met")]
    for res in results:
        ratio = "-" if res.get("ratio") is None else f"{res['ratio']:.3g}"
        rows.append((res["name"], ratio, res["target"], "yes" if res["met"] else "NO"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    lines.append("seconds per module: " + ", ".join(f"{name} {s:.0f}" for name, s in seconds.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the benchmarks run, measures nothing")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this module (repeatable)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where <name>.json go (default bench/results)")
    args = parser.parse_args(argv)
    results: list[dict] = []
    seconds: dict[str, float] = {}
    for name in args.only or BENCHMARKS:
        started = time.monotonic()
        try:
            produced = run_one(name, args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            produced = [result(name, {"error": f"{type(exc).__name__}: {exc}"}, None, None, "runs", False)]
        seconds[name] = time.monotonic() - started
        for res in produced:
            if args.quick:
                res["quick"] = True  # tiny sizes: not a measurement
            print(f"wrote {write_result(res, args.results)}", flush=True)
            results.append(res)
    print(summary(results, seconds))
    return 0 if all(res["met"] for res in results) else 1


if __name__ == "__main__":
    sys.exit(main())
