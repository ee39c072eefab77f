"""bench/overhead.py at its quick sizes: a real server trains XGBoost and PyTorch models, the
direct baselines train the same models in processes of their own, and each result carries
both timings, their ratio and the same final validation loss on both sides."""

from __future__ import annotations

import json

import pytest


def test_quick_overhead_times_the_same_training_through_the_service_and_directly(bench_module, tmp_path):
    overhead = bench_module("overhead")
    results = overhead.run(tmp_path, quick=True)

    assert [r["name"] for r in results] == ["overhead-xgboost", "overhead-pytorch"]
    for res, epochs in zip(results, (overhead.QUICK.rounds, overhead.QUICK.epochs)):
        service, direct = res["measured"], res["baseline"]
        assert 0 < service["service_seconds"] < 300 and 0 < direct["direct_seconds"] < 300, res
        assert res["ratio"] == pytest.approx(service["service_seconds"] / direct["direct_seconds"], rel=1e-3)
        assert res["met"] == (res["ratio"] <= overhead.TARGET_RATIO and res["same_final_metric"])
        # The same data, hyperparameters and seed give the same model on both sides.
        assert service["final"]["epochs"] == epochs
        assert res["same_final_metric"], (service["final"], direct["final"])
        assert 0 < service["final"]["validation_loss"] < 1.0
        assert service["final"]["accuracy"] == pytest.approx(direct["final"]["accuracy"], abs=1e-3)
        # The service's timeline comes from its job log, in order, inside the measured span.
        timeline = service["timeline"]
        phases = ["worker_started", "data_loaded", "first_epoch_done", "last_epoch_done", "registered", "completed"]
        assert [timeline[p] for p in phases] == sorted(timeline[p] for p in phases), timeline
        assert 0 < timeline["completed"] <= service["service_seconds"] + 1.0
        assert service["worker_cpu_seconds"] > 0
        # The direct side paid for its imports, its data and its training.
        assert all(seconds > 0 for seconds in direct["phases"].values()), direct["phases"]
        assert res["data_registration"]["seconds"] > 0 and res["data_registration"]["bytes"] > 0
        json.dumps(res)  # what bench/run.py writes
