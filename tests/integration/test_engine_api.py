"""The engine as a Python library (the seed's "Direct Instantiation"): an application trains in
its own process without a gRPC server, with the service's behaviour: worker processes, the
metadata store, metrics and logs as iterators, the same errors. A server started later on
the same data dir sees the same jobs."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import onnxruntime as ort
import psutil
import pytest

from engine import Engine, EngineSettings
from engine.errors import DataLoss, InvalidArgument, NotFound, Unavailable
from forge.training import Client, common_pb2

REQUEST = {
    "modelType": "classification",
    "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
    "trainingConfig": {"epochs": 6, "seed": 3, "checkpoints": {"enabled": True, "saveLatest": True}},
}


def test_an_application_trains_in_process_with_the_services_behaviour(tmp_path, breast_cancer_csv, start_server,
                                                                      engine_settings):
    data_dir = tmp_path / "forge-data"
    with Engine(engine_settings(data_dir, max_concurrent_jobs=1, warm_workers=0)) as forge:
        data = forge.data.create_dataset("default", "tumours", {"source_uri": str(breast_cancer_csv),
                                                                "label_column": "target"})
        train, test = forge.data.split(data.name, [0.8, 0.2], seed=3, stratify_column="target", shuffle=True,
                                       dataset_ids=[])
        request = {**REQUEST, "dataConfig": {"trainDataset": train.name, "testDataset": test.name,
                                             "labelColumn": "target"}}
        job = forge.start_training(request, job_id="in-process")
        assert job.name == "projects/default/trainingJobs/in-process" and job.spec["epochs"] == 6

        # Metrics as an iterator: every epoch once, in order, ending when the job does.
        points = list(forge.watch_metrics("in-process"))
        assert [p["epoch"] for p in points] == [1, 2, 3, 4, 5, 6]
        assert [p["sequence"] for p in points] == list(range(1, 7))
        done = forge.wait(job.name, timeout=60)
        assert done.state == "COMPLETED" and done.test_metrics["accuracy"] > 0.85
        logs = [entry["message"] for entry in forge.logs(job.name)]
        started = next(m for m in logs if m.startswith("worker "))
        assert int(started.split()[1]) != os.getpid()  # trained in a worker process, as the service does
        assert [e["message"] for e in forge.logs(job.name, min_level="warning", contains="worker")] == []

        exported = forge.export_model(job.name, "onnx", tmp_path / "model.onnx")
        assert hashlib.sha256((tmp_path / "model.onnx").read_bytes()).hexdigest() == exported["sha256"]
        session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
        assert session.get_inputs()

        # The service's errors, naming the field.
        with pytest.raises(InvalidArgument) as err:
            forge.start_training({**request, "trainingConfig": {"epochs": "many"}})
        assert err.value.violations[0].field == "trainingConfig.epochs"
        with pytest.raises(NotFound):
            forge.job("no-such-job")

        # A pipeline with a training stage runs in-process too (no server supplies anything).
        pipeline = forge.pipelines.create("default", "retrain", {"stages": [
            {"id": "train", "type": "model_training", "parameters": {"request": request}}]})
        execution = forge.pipelines.execute(pipeline.name, {})
        deadline = time.monotonic() + 120
        while forge.pipelines.get_execution(execution.name).state not in ("COMPLETED", "FAILED", "CANCELLED"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert forge.pipelines.get_execution(execution.name).state == "COMPLETED"

    # The same data dir served over gRPC: the jobs, metrics and model are the ones trained above.
    server = start_server(data_dir)
    with Client(server.target) as client:
        seen = client.get_job("in-process")
        assert seen.state == common_pb2.JOB_STATE_COMPLETED and seen.test_metrics["accuracy"] == \
            pytest.approx(done.test_metrics["accuracy"])
        assert [p.epoch for p in client.metric_history("in-process")] == [1, 2, 3, 4, 5, 6]
        meta = client.export_model("in-process", "onnx", tmp_path / "served.onnx")
        assert meta.sha256 == exported["sha256"]


def test_metrics_arrive_while_the_job_runs_and_training_can_be_turned_off(tmp_path, breast_cancer_csv,
                                                                         engine_settings):
    with Engine(engine_settings(tmp_path / "a", warm_workers=0)) as forge:
        data = forge.data.create_dataset("default", "bc", {"source_uri": str(breast_cancer_csv), "label_column": "target"})
        job = forge.start_training({**REQUEST, "trainingConfig": {"epochs": 400, "seed": 1},
                                    "dataConfig": {"trainDataset": data.name, "labelColumn": "target"}})
        first = []
        for point in forge.watch_metrics(job.name):
            first.append(point)
            if len(first) == 3:
                break
        assert forge.job(job.name).state == "RUNNING"  # read live, not after the fact
        forge.trainer.cancel(job.name)
        assert forge.wait(job.name, timeout=60).state == "CANCELLED"
        rest = list(forge.watch_metrics(job.name, from_sequence=first[-1]["sequence"]))
        assert all(p["sequence"] > first[-1]["sequence"] for p in rest)

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with Engine(engine_settings(tmp_path / "b", training_enabled=False)) as reader:
        with pytest.raises(Unavailable, match="training is disabled"):
            reader.start_training(REQUEST)
        assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()  # no worker


def test_export_refuses_changed_bytes_and_writes_nothing(tmp_path, breast_cancer_csv, engine_settings):
    with Engine(engine_settings(tmp_path / "d", warm_workers=0)) as forge:
        data = forge.data.create_dataset("default", "bc", {"source_uri": str(breast_cancer_csv), "label_column": "target"})
        job = forge.wait(forge.start_training({**REQUEST, "dataConfig": {"trainDataset": data.name,
                                                                          "labelColumn": "target"}}).name, 60)
        info = forge.export_model(job.name, "pickle", tmp_path / "ok.pkl")
        with open(info["uri"], "r+b") as f:
            f.write(b"\0")
        with pytest.raises(DataLoss):
            forge.export_model(job.name, "pickle", tmp_path / "bad.pkl")
        assert not (tmp_path / "bad.pkl").exists()


def test_programs_that_cannot_host_workers_are_told_what_to_change(tmp_path):
    """Workers import the program's main script again (multiprocessing's spawn): an Engine built
    at a script's top level would start jobs from inside each worker, and a program read from
    standard input has no script to import. Both are refused with what to change."""
    program = (f"import sys\nsys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
               "from engine import Engine, EngineSettings\n"
               f"Engine(EngineSettings(data_dir={str(tmp_path / 'data')!r}))\n")
    refused = subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert "worker processes cannot start from a program read from <stdin>: save it to a file" in refused.stderr

    me = multiprocessing.current_process()
    me._inheriting = True  # what multiprocessing sets while a new process imports its parent's main script
    try:
        with pytest.raises(RuntimeError, match='keep the code that creates it under `if __name__ == "__main__":`'):
            Engine(EngineSettings(data_dir=tmp_path / "x"))
    finally:
        del me._inheriting
