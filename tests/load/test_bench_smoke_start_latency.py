"""bench/start_latency.py, quick: a real server with warm workers, two timed starts and one
baseline process; the result carries real figures and a computed verdict."""

from __future__ import annotations


def test_start_latency_quick_measures_the_service_and_a_plain_process(bench_module, tmp_path):
    [result] = bench_module("start_latency").run(tmp_path, quick=True)

    assert result["name"] == "start_latency"
    measured, baseline = result["measured"], result["baseline"]["plain_process"]
    service = measured["service_warm"]
    assert service["runs"] == 2 and 0 < service["min_s"] <= service["median_s"] <= service["max_s"] < 60
    # A fresh Python importing scikit-learn takes far longer than a millisecond.
    assert baseline["runs"] == 1 and 0.05 < baseline["median_s"] < 120
    assert result["ratio"] == round(service["median_s"] / baseline["median_s"], 4)
    assert result["met"] is (service["median_s"] < 0.5)
    # The idle warm processes were found and measured: a template and the two idle forks.
    memory = measured["idle_warm_memory"]
    assert memory["template"]["rss_mib"] > 50 and len(memory["idle_workers"]) == 2
    assert all(0 < w["uss_mib"] <= w["rss_mib"] for w in memory["idle_workers"])
