"""ingest: a 1 GB CSV into a dataset (Parquet, schema, statistics), against pyarrow reading and writing it.

The file is generated here (seeded, about 7 million rows of a customer table: an id, ints,
14 floats with some missing values, two text categories and a 0/1 label) and deleted after.

- Service: `CreateDataset` from the file's path on a `forge-training serve` process of its own
  (a loopback server without --data-root reads any path outside its data dir). The call's time
  is what the server does: parse, check, convert to canonical types, write Parquet with its
  sha256, infer the schema and compute the statistics. Repeated (medians); the server's peak
  RSS during the calls is reported.
- Baseline: `pyarrow.csv.read_csv` then `pyarrow.parquet.write_table` of the same file in a
  plain Python process of its own (timed inside it, imports excluded), with its peak RSS.
- Also, once: `UploadDataset` of the same file through the SDK (the bytes over gRPC, then the
  same ingest), reported beside the target.

The target is on the medians: service seconds / baseline seconds <= 1.5.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ResourceSampler, result, serve_process  # noqa: E402

MIB = 1 << 20
CSV_BYTES = 1_000_000_000
QUICK_CSV_BYTES = 8 * MIB
BLOCK_ROWS = 250_000
QUICK_BLOCK_ROWS = 20_000
RUNS = 3
QUICK_RUNS = 1
TARGET_RATIO = 1.5
LABEL = "churned"
SEED = 9
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "NO", "DK",
             "PL", "PT", "IE", "BE", "AT", "CH", "CA", "AU", "JP", "BR")
PLANS = ("basic", "plus", "pro", "enterprise")


# ---------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------


def _block(rng, start: int, rows: int):
    """`rows` rows of the customer table, ids from `start`."""
    import numpy as np
    import pyarrow as pa

    def with_missing(values: np.ndarray, fraction: float) -> pa.Array:
        return pa.array(values, mask=rng.random(rows) < fraction)

    columns = {
        "customer_id": pa.array(np.arange(start, start + rows, dtype=np.int64) * 7 + 1_000_003),
        "age": pa.array(rng.integers(18, 91, rows)),
        "tenure_months": pa.array(rng.integers(0, 121, rows)),
        "purchases": pa.array(rng.poisson(4.0, rows)),
    }
    for i in range(12):
        columns[f"f{i:02d}"] = with_missing(np.round(rng.standard_normal(rows) * (i + 1), 4), 0.01)
    columns["income"] = with_missing(np.round(rng.lognormal(10.5, 0.6, rows), 2), 0.02)
    columns["score"] = pa.array(np.round(rng.random(rows), 4))
    columns["country"] = pa.array(np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), rows)])
    columns["plan"] = with_missing(np.array(PLANS)[rng.integers(0, len(PLANS), rows)], 0.005)
    columns[LABEL] = pa.array((rng.random(rows) < 0.2).astype(np.int64))
    return pa.table(columns)


def _rendered(index: int, block_rows: int) -> tuple[bytes, int]:
    """Block `index` of the file as CSV text (the header with the first), and its rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = _block(np.random.default_rng([SEED, index]), index * block_rows, block_rows)
    out = pa.BufferOutputStream()
    pa_csv.write_csv(table, out, write_options=pa_csv.WriteOptions(include_header=index == 0, quoting_style="none"))
    return out.getvalue().to_pybytes(), table.num_rows


def write_csv(path: Path, size: int, block_rows: int) -> int:
    """A seeded CSV of at least `size` bytes (at most one block more); returns its row count.
    Blocks are rendered on every core (pyarrow formats without the GIL) and written in order."""
    rows = written = 0
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool, open(path, "wb") as out:
        ahead = collections.deque(pool.submit(_rendered, i, block_rows) for i in range(2 * workers))
        index = len(ahead)
        while written < size:
            text, block = ahead.popleft().result()
            out.write(text)
            written, rows = written + len(text), rows + block
            ahead.append(pool.submit(_rendered, index, block_rows))
            index += 1
        for future in ahead:
            future.cancel()
    return rows


# ---------------------------------------------------------------------------
# The baseline: pyarrow alone, in a process of its own
# ---------------------------------------------------------------------------


def _peak_rss(pid: int | str = "self") -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def _rss(pid: int | str = "self") -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


def _baseline_main(csv_path: str, parquet_path: str) -> None:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    before = _rss()
    started = time.perf_counter()
    table = pa_csv.read_csv(csv_path)
    read = time.perf_counter() - started
    pq.write_table(table, parquet_path)
    total = time.perf_counter() - started
    print(json.dumps({"seconds": total, "read_seconds": read, "rows": table.num_rows,
                      "rss_before": before, "rss_peak": _peak_rss()}), flush=True)


def baseline_once(csv_path: Path, scratch: Path) -> dict:
    out = scratch / "baseline.parquet"
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--baseline", str(csv_path), str(out)],
                          capture_output=True, text=True, check=True)
    out.unlink()
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def _summary(seconds: list[float]) -> dict:
    return {"median_seconds": round(statistics.median(seconds), 3), "seconds": [round(s, 3) for s in seconds]}


def run(scratch: Path, quick: bool) -> list[dict]:
    from forge.training import Client

    runs = QUICK_RUNS if quick else RUNS
    csv_path = scratch / "customers.csv"
    started = time.monotonic()
    rows = write_csv(csv_path, QUICK_CSV_BYTES if quick else CSV_BYTES, QUICK_BLOCK_ROWS if quick else BLOCK_ROWS)
    csv_bytes = csv_path.stat().st_size
    setup = {"write_csv_seconds": round(time.monotonic() - started, 1)}
    service: list[float] = []
    base: list[dict] = []
    try:
        with serve_process(scratch / "data", scratch / "server.log", []) as (process, port), \
                Client(f"127.0.0.1:{port}", timeout=None) as client:
            rss_before = _rss(process.pid)
            with ResourceSampler(process.pid, interval=0.2) as sampler:
                for i in range(runs):
                    base.append(baseline_once(csv_path, scratch))
                    started = time.perf_counter()
                    dataset = client.create_dataset(str(csv_path), dataset_id=f"bench-{i}", label_column=LABEL)
                    service.append(time.perf_counter() - started)
                    client.delete_dataset(dataset.name)
                    if dataset.row_count != rows or len(dataset.statistics.columns) != 21:
                        raise RuntimeError(f"the dataset has {dataset.row_count} rows and "
                                           f"{len(dataset.statistics.columns)} column statistics; the file "
                                           f"has {rows} rows and 21 columns")
            peak = _peak_rss(process.pid)
            resources = sampler.report()
            started = time.perf_counter()
            uploaded = client.upload_dataset(csv_path, dataset_id="bench-upload", label_column=LABEL)
            upload_seconds = time.perf_counter() - started
            client.delete_dataset(uploaded.name)
    finally:
        csv_path.unlink(missing_ok=True)
    base_seconds = [b["seconds"] for b in base]
    ratio = statistics.median(service) / statistics.median(base_seconds)
    measured = {
        "what": f"CreateDataset from a {csv_bytes / 1e9:.2f} GB CSV path ({rows} rows, 21 columns) on a "
                "`forge-training serve` process: Parquet, sha256, schema and statistics",
        "csv_bytes": csv_bytes, "rows": rows, **_summary(service),
        "mb_per_s": round(csv_bytes / 1e6 / statistics.median(service), 1),
        "server_rss_before_mib": round(rss_before / MIB, 1),
        "server_rss_peak_mib": round(peak / MIB, 1),
        "server_rss_peak_growth_mib": round((peak - rss_before) / MIB, 1),
        "upload": {"what": "UploadDataset of the same file through the SDK (1 MiB chunks), then the same ingest",
                   "seconds": round(upload_seconds, 2),
                   "ratio_to_baseline": round(upload_seconds / statistics.median(base_seconds), 3)},
        "server": resources["server"], "machine": resources["machine"], "setup": setup,
    }
    baseline = {
        "what": "pyarrow.csv.read_csv + pyarrow.parquet.write_table of the same file in a plain Python process "
                "(default options: all cores, snappy)",
        **_summary(base_seconds),
        "read_median_seconds": round(statistics.median(b["read_seconds"] for b in base), 2),
        "mb_per_s": round(csv_bytes / 1e6 / statistics.median(base_seconds), 1),
        "rss_peak_mib": round(max(b["rss_peak"] for b in base) / MIB, 1),
        "rss_peak_growth_mib": round(max(b["rss_peak"] - b["rss_before"] for b in base) / MIB, 1),
    }
    return [result("ingest", measured, baseline, ratio, f"seconds <= {TARGET_RATIO} x pyarrow read_csv + write_table",
                   ratio <= TARGET_RATIO, runs=runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", nargs=2, metavar=("CSV", "PARQUET"), help="run the baseline once (internal)")
    args = parser.parse_args(argv)
    if args.baseline:
        _baseline_main(*args.baseline)
        return 0
    parser.error("run it through bench/run.py --only ingest")
    return 2


if __name__ == "__main__":
    sys.exit(main())
