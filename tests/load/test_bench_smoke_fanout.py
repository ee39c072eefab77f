"""bench/fanout.py, quick: a real server and job, watchers in processes of their own, and the raw
grpc.aio baseline; the result carries real, plausible figures and a computed verdict."""

from __future__ import annotations


def test_fanout_quick_measures_every_watcher_of_the_service_and_of_raw_grpc(bench_module, tmp_path):
    fanout = bench_module("fanout")
    [result] = fanout.run(tmp_path, quick=True)

    assert result["name"] == "fanout"
    for side in (result["measured"], result["baseline"]):
        assert side["watchers"] == fanout.QUICK_WATCHERS and side["client_processes"] == fanout.CLIENT_PROCESSES
        # A real job emits at least a few points a second; every watcher had every one of the window's.
        assert side["points"] >= 2 and 2 <= side["points_per_second"] < 1000
        assert side["deliveries"] == side["expected_deliveries"] == side["points"] * side["watchers"]
        assert side["missed_watchers"] == side["gaps"] == side["repeats"] == 0
        latency = side["latency_ms"]
        # Loopback on one machine: more than nothing, less than the drain allows.
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < fanout.DRAIN_SECONDS * 1000
        assert all(cores > 0 for cores in side["client_cpu_cores"])
    # The raw server pushes at the rate the job really emitted.
    assert abs(result["baseline"]["points_per_second"] - result["measured"]["points_per_second"]) \
        < 0.25 * result["measured"]["points_per_second"]
    p99 = result["measured"]["latency_ms"]["p99"]
    assert result["ratio"] == round(p99 / result["baseline"]["latency_ms"]["p99"], 4)
    assert result["met"] is (p99 <= fanout.TARGET_P99_MS and result["emission_rate_ok"])
