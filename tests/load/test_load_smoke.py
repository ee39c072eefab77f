"""bench/load.py's core, small: a real server (SQLite, or PostgreSQL under make test-postgres), 5 clients and 10 watchers for 5 s.
Every call succeeds and every watcher sees each metric point once, in order."""

from __future__ import annotations


def test_a_short_load_has_no_errors_and_no_sequence_gaps(bench_module, tmp_path, servers_postgres_url):
    load = bench_module("load")
    plan = load.Plan(clients=5, watchers=10, duration=5.0, jobs=1, churn_interval=1.0, baseline=False)

    backend = "postgres" if servers_postgres_url else "sqlite"
    result = load.run_backend(backend, plan, tmp_path, postgres_url=servers_postgres_url)

    measured = result["measured"]
    watchers = measured["watchers"]
    assert measured["errors"] == 0, measured["error_samples"]
    assert watchers["streams_with_points"] == 10, watchers
    assert watchers["gaps"] == 0 and watchers["repeats"] == 0, watchers
    assert watchers["dropped"] == 0 and watchers["ended_early"] == 0, watchers
    # Every read of the mix ran, and the churn started and cancelled jobs.
    assert set(load.MIX) <= set(measured["latency"]), measured["latency"].keys()
    assert measured["latency"]["CancelTraining"]["count"] == measured["churn_jobs"] >= 1
    server = measured["server"]
    assert server["rss_peak_mib"] > 0 and measured["server_log_errors"] == []
    # Training yields the CPU to the server whose event loop every call waits on.
    assert server["workers_niceness"] and min(server["workers_niceness"]) > server["niceness"], server
    assert result["met"] is True
