"""bench/ingest.py at its quick size: a generated CSV becomes a dataset through CreateDataset and
UploadDataset on a real server, pyarrow reads and writes the same file in a process of its own, and
the result holds both timings, the peak memory of each, their ratio and whether it met the target."""

from __future__ import annotations

import pyarrow.csv as pa_csv


def test_the_generated_csv_is_seeded_and_has_the_rows_it_reports(bench_module, tmp_path):
    ingest = bench_module("ingest")
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    rows = ingest.write_csv(first, 1 << 20, 5_000)
    assert ingest.write_csv(second, 1 << 20, 5_000) == rows
    assert first.read_bytes() == second.read_bytes()  # the same file every run
    table = pa_csv.read_csv(first)
    assert table.num_rows == rows and first.stat().st_size >= 1 << 20
    labels = table.column(ingest.LABEL).to_pylist()
    assert table.num_columns == 21 and set(labels) == {0, 1} and 0.15 < sum(labels) / rows < 0.25
    assert table.column("income").null_count > 0  # missing values, as real data has


def test_the_quick_ingest_benchmark_measures_the_service_and_the_baseline(bench_module, tmp_path):
    ingest = bench_module("ingest")
    [res] = ingest.run(tmp_path, quick=True)

    measured, baseline = res["measured"], res["baseline"]
    assert res["name"] == "ingest" and "read_csv" in res["target"]
    assert measured["rows"] > 0 and measured["csv_bytes"] >= ingest.QUICK_CSV_BYTES
    assert len(measured["seconds"]) == len(baseline["seconds"]) == ingest.QUICK_RUNS
    assert 0 < measured["median_seconds"] < 60 and 0 < baseline["median_seconds"] < 60
    # The ratio is of the unrounded medians; the reported ones are rounded to the millisecond,
    # which at quick sizes (a tenth of a second) moves their ratio by a few percent.
    service, direct, half = measured["median_seconds"], baseline["median_seconds"], 0.0005
    assert (service - half) / (direct + half) * 0.999 <= res["ratio"] <= (service + half) / (direct - half) * 1.001
    assert res["met"] == (res["ratio"] <= ingest.TARGET_RATIO)
    # Peak memory of both sides, each at least what it held before (an interpreter with pyarrow).
    assert measured["server_rss_peak_mib"] >= measured["server_rss_before_mib"] > 0
    assert baseline["rss_peak_mib"] >= baseline["rss_peak_growth_mib"] > 0
    assert measured["upload"]["seconds"] > 0
    assert not list(tmp_path.glob("*.csv"))  # the generated file is deleted
