"""Graceful shutdown leaves truthful, resumable jobs; the queue honours its limit and priority."""

from __future__ import annotations

import pytest

from forge.training import Client, common_pb2


def _long_sgd(dataset: str, priority: int = 0) -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": 5000, "seed": 1},
        "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
        "resources": {"priority": priority},
    }


def test_shutdown_pauses_running_jobs_and_a_restart_resumes_them(start_server, tmp_path, breast_cancer_csv):
    data_dir = tmp_path / "restart"
    first = start_server(data_dir)
    with Client(first.target) as c:
        ds = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")
        job = c.start_training(_long_sgd(ds.name), training_job_id="survives-restart")
        seen = 0
        for _ in c.watch_metrics(job.name):
            seen += 1
            if seen == 3:
                break
    first.stop()

    second = start_server(data_dir)
    with Client(second.target) as c:
        job = c.get_job("survives-restart")
        assert job.state == common_pb2.JOB_STATE_PAUSED
        assert job.checkpoint_epoch >= 3
        assert "shutting down" in job.state_message or "ResumeTraining" in job.state_message
        history = c.metric_history(job.name)
        assert [p.epoch for p in history] == list(range(1, job.checkpoint_epoch + 1))

        c.resume(job.name)
        nxt = next(iter(c.watch_metrics(job.name, from_sequence=history[-1].sequence)))
        assert nxt.epoch == job.checkpoint_epoch + 1
        assert nxt.sequence == history[-1].sequence + 1
        assert c.cancel(job.name, wait=True, timeout=60).state == common_pb2.JOB_STATE_CANCELLED
        assert c.get_job(job.name).attempt_count == 2


def test_queue_runs_higher_priority_first(start_server, tmp_path, breast_cancer_csv):
    one_slot = start_server(tmp_path / "queue", max_concurrent_jobs=1)
    with Client(one_slot.target) as c:
        ds = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")
        blocker = c.start_training(_long_sgd(ds.name), training_job_id="blocker")
        c.wait(blocker.name, states=[common_pb2.JOB_STATE_RUNNING], timeout=30)
        low = c.start_training(_long_sgd(ds.name, priority=0), training_job_id="low")
        high = c.start_training(_long_sgd(ds.name, priority=5), training_job_id="high")
        assert c.get_job(low.name).state == common_pb2.JOB_STATE_PENDING
        c.cancel(blocker.name, wait=True, timeout=60)
        c.wait(high.name, states=[common_pb2.JOB_STATE_RUNNING], timeout=30)
        assert c.get_job(low.name).state == common_pb2.JOB_STATE_PENDING
        c.cancel(low.name)
        assert c.cancel(high.name, wait=True, timeout=60).state == common_pb2.JOB_STATE_CANCELLED
        listed = {j.name.rsplit("/", 1)[-1] for j in c.list_jobs(filter="state=CANCELLED")}
        assert listed == {"blocker", "low", "high"}


@pytest.mark.parametrize("bad_filter", ["color=red", "state"])
def test_list_filter_errors_name_the_field(client, bad_filter):
    from forge.training import ForgeTrainingError

    with pytest.raises(ForgeTrainingError) as err:
        list(client.list_jobs(filter=bad_filter))
    assert err.value.field_violations[0].field == "filter"
