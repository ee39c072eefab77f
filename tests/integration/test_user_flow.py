"""The Foundation user flow, through a real server on port 0 and the Python SDK:
upload / register data, split it, train a scikit-learn classifier, watch it live,
pause / resume / cancel it, and export it as ONNX and pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from forge.training import ForgeTrainingError, common_pb2

FEATURES = 30


@pytest.fixture(scope="module")
def splits(client, breast_cancer_csv):
    uploaded = client.upload_dataset(breast_cancer_csv, dataset_id="bc-upload", label_column="target")
    return client.split_dataset(uploaded.name, [0.7, 0.15, 0.15], seed=42, stratify_column="target")


def _spec(splits, architecture="logistic_regression", epochs=5, **training):
    # A few lbfgs iterations per epoch, so logistic regression improves over several epochs
    # instead of converging (and finishing early) in the first one.
    hyperparameters = {"max_iter": 3} if architecture == "logistic_regression" else {}
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": architecture, "hyperparameters": hyperparameters},
        "trainingConfig": {"epochs": epochs, "seed": 7, **training},
        "dataConfig": {
            "trainDataset": splits[0].name,
            "validationDataset": splits[1].name,
            "testDataset": splits[2].name,
            "labelColumn": "target",
        },
    }


def test_upload_gives_schema_and_statistics(client, breast_cancer_csv, breast_cancer_frame):
    ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-stats", label_column="target")
    assert ds.name == "projects/default/datasets/bc-stats"
    assert ds.row_count == 569
    assert [c.name for c in ds.schema.columns] == list(breast_cancer_frame.columns)
    assert ds.lineage.operation == "upload"
    assert len(ds.content_sha256) == 64
    labels = {v.value: v.count for v in ds.statistics.label_distribution}
    assert labels == {"1": 357, "0": 212}
    radius = next(c for c in ds.statistics.columns if c.name == "mean_radius")
    assert radius.min == pytest.approx(breast_cancer_frame["mean_radius"].min())
    assert radius.mean == pytest.approx(breast_cancer_frame["mean_radius"].mean())


def test_create_dataset_by_path_csv_and_parquet(client, breast_cancer_csv, breast_cancer_frame, tmp_path):
    parquet = tmp_path / "bc.parquet"
    breast_cancer_frame.to_parquet(parquet)
    from_csv = client.create_dataset(str(breast_cancer_csv), dataset_id="bc-csv", label_column="target")
    from_parquet = client.create_dataset(f"file://{parquet}", dataset_id="bc-parquet", label_column="target")
    assert from_csv.row_count == from_parquet.row_count == 569
    rows, total = client.get_records(from_parquet.name, offset=10, limit=3)
    assert total == 569 and len(rows) == 3
    assert rows[0]["mean_radius"] == pytest.approx(breast_cancer_frame["mean_radius"][10])


def test_split_is_stratified_and_seeded(client, splits):
    assert [s.row_count for s in splits] == [398, 86, 85]
    whole = 357 / 569
    for part in splits:
        counts = {v.value: v.count for v in part.statistics.label_distribution}
        assert abs(counts["1"] / part.row_count - whole) < 0.02
        assert list(part.lineage.parents) == ["projects/default/datasets/bc-upload"]
        assert part.lineage.operation == "split"
    assert splits[0].name.endswith("bc-upload-train")


def test_train_watch_and_export(client, splits, tmp_path):
    job = client.start_training(_spec(splits, epochs=5), training_job_id="flow-logreg")
    assert job.name == "projects/default/trainingJobs/flow-logreg"
    points = list(client.watch_metrics(job.name))
    assert [p.epoch for p in points] == [1, 2, 3, 4, 5]
    assert [p.sequence for p in points] == [1, 2, 3, 4, 5]
    for p in points:
        assert p.total_epochs == 5
        assert 0 < p.training_loss < 1 and 0 < p.validation_loss < 1
        assert 0.8 < p.accuracy <= 1 and 0 < p.f1_score <= 1
        assert p.resource_usage.memory_usage > 10_000_000
        assert p.resource_usage.gpu_present or not p.resource_usage.HasField("gpu_usage")
        assert not p.HasField("rmse")
    assert points[-1].accuracy > 0.9
    assert points[-1].best_epoch >= 1
    assert points[-1].progress == pytest.approx(1.0)

    done = client.wait(job.name, timeout=60)
    assert done.state == common_pb2.JOB_STATE_COMPLETED
    assert done.test_metrics["accuracy"] > 0.9
    assert "scikit-learn" in done.framework_versions
    assert set(done.export_formats) == {common_pb2.EXPORT_FORMAT_ONNX, common_pb2.EXPORT_FORMAT_PICKLE}

    logs = [e.message for e in client.stream_logs(job.name)]
    assert any(m.startswith("epoch 5/5:") for m in logs)
    assert logs[-1] == "completed after epoch 5"

    onnx_meta = client.export_model(job.name, "onnx", tmp_path / "model.onnx")
    pickle_meta = client.export_model(job.name, "pickle", tmp_path / "model.pkl")
    assert onnx_meta.size_bytes == (tmp_path / "model.onnx").stat().st_size
    assert list(onnx_meta.input_features)[:2] == ["mean_radius", "mean_texture"]
    assert list(onnx_meta.class_labels) == ["0", "1"]
    assert pickle_meta.sha256 != onnx_meta.sha256

    rows, _ = client.get_records(splits[2].name, limit=100)
    X = pd.DataFrame(rows)[list(onnx_meta.input_features)].to_numpy(dtype=np.float64)
    model = pickle.loads((tmp_path / "model.pkl").read_bytes())
    expected = model.predict_proba(X)
    # The ONNX graph takes the raw columns, one input each, as the export's signature says.
    assert onnx_meta.raw_columns and [i.name for i in onnx_meta.inputs] == list(onnx_meta.input_features)
    assert {i.dtype for i in onnx_meta.inputs} == {"float64"} and list(onnx_meta.inputs[0].shape) == [-1, 1]
    assert [o.name for o in onnx_meta.outputs] == ["label", "probabilities"]
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    outputs = session.run(["probabilities"], {name: X[:, [i]] for i, name in enumerate(onnx_meta.input_features)})
    assert np.max(np.abs(outputs[0] - expected)) < 1e-5
    assert (model.predict(X) == pd.DataFrame(rows)["target"].to_numpy()).mean() > 0.9


def test_pause_resume_continues_at_next_epoch_then_cancel(client, splits, server):
    job = client.start_training(_spec(splits, architecture="sgd", epochs=3000), training_job_id="flow-pause")
    seen = []
    for point in client.watch_metrics(job.name):
        seen.append(point)
        if len(seen) == 3:
            break
    paused = client.pause(job.name, wait=True, timeout=60)
    assert paused.state == common_pb2.JOB_STATE_PAUSED
    k = paused.checkpoint_epoch
    assert k >= 3 and paused.current_epoch == k
    assert job.name not in server.engine.trainer.running_jobs()  # the worker really stopped
    history = client.metric_history(job.name)
    assert [p.epoch for p in history] == list(range(1, k + 1))

    # A watcher that reconnects with the last sequence it saw misses nothing and sees nothing twice.
    client.resume(job.name)
    after = []
    for point in client.watch_metrics(job.name, from_sequence=history[-1].sequence):
        after.append(point)
        if len(after) == 3:
            break
    assert [p.epoch for p in after] == [k + 1, k + 2, k + 3]
    assert [p.sequence for p in after] == [history[-1].sequence + i for i in (1, 2, 3)]

    cancelled = client.cancel(job.name, wait=True, timeout=60)
    assert cancelled.state == common_pb2.JOB_STATE_CANCELLED
    kept = client.metric_history(job.name)
    assert len(kept) >= k + 3
    assert [p.sequence for p in kept] == list(range(1, len(kept) + 1))
    with pytest.raises(ForgeTrainingError) as err:
        client.resume(job.name)
    assert err.value.code.name == "FAILED_PRECONDITION"


def test_state_errors_and_bad_input(client, splits):
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training(_spec(splits, epochs=-1))
    assert err.value.code.name == "INVALID_ARGUMENT"
    assert [v.field for v in err.value.field_violations] == ["training_config.epochs"]

    bad = _spec(splits)
    bad["dataConfig"]["labelColumn"] = "no_such_column"
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training(bad)
    assert err.value.field_violations[0].field == "data_config.label_column"

    bad = _spec(splits)
    bad["modelConfig"]["framework"] = "caffe"
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training(bad)
    assert err.value.field_violations[0].field == "model_config.framework"

    bad = _spec(splits)
    bad["dataConfig"]["trainDataset"] = "missing-dataset"
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training(bad)
    assert err.value.code.name == "NOT_FOUND"

    with pytest.raises(ForgeTrainingError) as err:
        client.get_job("never-started")
    assert err.value.code.name == "NOT_FOUND"

    with pytest.raises(ForgeTrainingError) as err:
        client.split_dataset(splits[0].name, [0.5, 0.6])
    assert err.value.field_violations[0].field == "ratios"


def test_completed_job_cannot_resume_and_save_model_stays_in_model_dir(client, splits, server):
    job = client.start_training(_spec(splits, epochs=2), training_job_id="flow-save")
    client.wait(job.name, timeout=60)
    with pytest.raises(ForgeTrainingError) as err:
        client.resume(job.name)
    assert err.value.code.name == "FAILED_PRECONDITION"
    with pytest.raises(ForgeTrainingError) as err:
        client.save_model(job.name, "../../outside.pkl")
    assert err.value.field_violations[0].field == "path"
    saved = client.save_model(job.name, "flow/model.pkl")
    stored = Path(server.engine.storage.uri("models/flow/model.pkl"))
    assert saved.path == "flow/model.pkl" and stored.stat().st_size == saved.size_bytes


def test_pending_jobs_pause_and_cancel_without_a_worker(client, splits, start_server, tmp_path):
    from forge.training import Client

    one_slot = start_server(tmp_path / "one-slot", max_concurrent_jobs=1)
    with Client(one_slot.target) as c:
        ds = c.upload_dataset(_csv_bytes(client, splits[0].name), format="csv",
                              dataset_id="small", label_column="target")
        spec = _spec(splits, architecture="sgd", epochs=3000)
        spec["dataConfig"] = {"trainDataset": ds.name, "labelColumn": "target"}
        first = c.start_training(spec, training_job_id="first")
        second = c.start_training(spec, training_job_id="second")
        c.wait(first.name, states=[common_pb2.JOB_STATE_RUNNING], timeout=30)
        assert c.get_job(second.name).state == common_pb2.JOB_STATE_PENDING
        assert c.pause(second.name).state == common_pb2.JOB_STATE_PAUSED
        assert c.cancel(second.name).state == common_pb2.JOB_STATE_CANCELLED
        assert c.cancel(first.name, wait=True, timeout=60).state == common_pb2.JOB_STATE_CANCELLED
        assert c.get_job(second.name).attempt_count == 0


def _csv_bytes(client, dataset: str) -> bytes:
    rows, _ = client.get_records(dataset, limit=10_000)
    return pd.DataFrame(rows).to_csv(index=False).encode()
