"""bench/replay.py, quick: a real job's history grown through the Journal, read back whole with
WatchTrainingMetrics and from the raw grpc.aio baseline; real figures and a computed verdict."""

from __future__ import annotations


def test_replay_quick_reads_the_whole_history_from_the_service_and_from_raw_grpc(bench_module, tmp_path):
    replay = bench_module("replay")
    [result] = replay.run(tmp_path, quick=True)

    assert result["name"] == "replay"
    measured, baseline = result["measured"], result["baseline"]
    for side in (measured, baseline):
        assert side["points"] == replay.QUICK_POINTS
        assert len(side["seconds"]) == replay.QUICK_RUNS and all(s > 0 for s in side["seconds"])
        # Every point arrived (Replay.read checks each sequence), in messages of up to a page.
        assert side["messages"] >= replay.QUICK_POINTS / side["largest_message_points"]
        assert 100 < side["points_per_second"] < 100_000_000
        assert side["server_cpu_seconds"] >= 0  # the server process's own CPU time (in clock ticks)
    # The baseline sends messages as large as the service's largest.
    assert baseline["largest_message_points"] == measured["largest_message_points"]
    assert measured["setup"]["journal_write_points_per_second"] > 0
    ratio = measured["points_per_second"] / baseline["points_per_second"]
    assert result["ratio"] == round(ratio, 4)
    assert result["met"] is (ratio >= replay.TARGET_RATIO)
    assert result["cpu_ratio"] is None or result["cpu_ratio"] > 0
