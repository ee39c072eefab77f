"""bench/job_queue.py (the queue benchmark), quick: six jobs through a server that runs two at a
time, and the same fits in one process; every job completes and the figures are real."""

from __future__ import annotations


def test_queue_quick_completes_every_job_and_reports_the_overhead(bench_module, tmp_path):
    [result] = bench_module("job_queue").run(tmp_path, quick=True)

    assert result["name"] == "job_queue"
    measured, baseline = result["measured"], result["baseline"]["fits_back_to_back"]
    assert measured["jobs"] == measured["completed"] == 6 and measured["not_completed"] == []
    assert result["met"] is True
    assert 0 < baseline["fits_s"] < baseline["process_s"] and baseline["jobs"] == 6
    assert 0 < measured["worker_held"]["median_s"] <= measured["worker_held"]["max_s"] < measured["wall_s"]
    assert measured["queue_wait"]["max_s"] > 0  # six jobs, two slots: some waited
    assert result["ratio"] == round(measured["wall_s"] / baseline["fits_s"], 4)
    assert measured["overhead_per_job_s"] == round((measured["wall_s"] - baseline["fits_s"]) / 6, 4)
