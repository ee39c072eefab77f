"""bench/export.py at its quick size: a real server exports a real (16 MiB) model, the raw grpc.aio
baseline streams as many bytes, and the result holds both, their ratio and whether it met the target."""

from __future__ import annotations

import pytest


def test_the_quick_export_benchmark_measures_the_service_and_the_baseline(bench_module, tmp_path):
    export = bench_module("export")
    [res] = export.run(tmp_path, quick=True)

    measured, baseline = res["measured"], res["baseline"]
    assert res["name"] == "export" and "raw grpc.aio" in res["target"]
    assert measured["model_bytes"] >= export.QUICK_MODEL_BYTES and baseline["bytes"] == export.QUICK_MODEL_BYTES
    for side in (measured, baseline):
        for way in ("stream", "sdk"):
            figures = side[way]
            assert len(figures["seconds"]) == export.QUICK_RUNS and figures["median_seconds"] > 0
            # Plausible for loopback gRPC on any machine: more than 1 MB/s, less than 100 GB/s.
            assert 1 < figures["mb_per_s"] < 100_000, figures
    assert res["ratio"] == pytest.approx(measured["stream"]["mb_per_s"] / baseline["stream"]["mb_per_s"], rel=1e-3)
    assert res["sdk_ratio"] == pytest.approx(measured["sdk"]["mb_per_s"] / baseline["sdk"]["mb_per_s"], rel=1e-3)
    # A 16 MiB export never needs the server to hold it: a few chunks in flight at most.
    assert 0 <= measured["server_rss_peak_growth_mib"] < export.EXPORT_RSS_GROWTH_LIMIT >> 20
    assert measured["server"]["rss_peak_mib"] > 0 and res["memory_bounded"] is True
    assert res["met"] == (res["ratio"] >= export.TARGET_RATIO)
    assert not list(tmp_path.glob("*.onnx"))  # the SDK's downloads were removed
