"""Second review's findings on the data layer: each test pins one fix."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pandas as pd
import pytest

from forge.training import ForgeTrainingError, common_pb2, data_service_pb2, dataset_pb2


def _register(client, source_id: str, **fields):
    return client.data.RegisterDataSource(data_service_pb2.RegisterDataSourceRequest(
        data_source_id=source_id, data_source=dataset_pb2.DataSource(**fields)), timeout=30).data_source


def _code(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def _upload(client, frame: pd.DataFrame, dataset_id: str, label: str = ""):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return client.upload_dataset(buffer.getvalue(), format="parquet", dataset_id=dataset_id, label_column=label)


def test_no_source_can_read_the_data_directory(client, server):
    db = server.engine.settings.data_dir / "forge.db"
    err = _code(lambda: _register(client, "steal", type=dataset_pb2.DATA_SOURCE_TYPE_SQL, uri=f"sqlite:///{db}",
                                  query="select * from data_sources"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "data directory" in err.details()
    err = _code(lambda: _register(client, "steal2", type=dataset_pb2.DATA_SOURCE_TYPE_OBJECT_STORE,
                                  uri=f"local://{server.engine.settings.data_dir}/datasets/default/x/data.parquet"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_passwords_never_stay_in_uris_and_credentials_only_go_to_their_source(client, tmp_path):
    source = _register(client, "warehouse", type=dataset_pb2.DATA_SOURCE_TYPE_SQL,
                       uri="postgresql://admin:Sup3rS3cret@127.0.0.1:1/db?password=Other")
    assert "Sup3rS3cret" not in source.uri and "Other" not in source.uri
    assert "password" in source.credential_keys
    err = _code(lambda: client.data.CreateDataset(data_service_pb2.CreateDatasetRequest(
        config=dataset_pb2.DatasetConfig(data_source="warehouse", source_uri="postgresql://10.9.9.9/x")), timeout=30))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "config.source_uri" in err.details()
    err = _code(lambda: _register(client, "leaky", type=dataset_pb2.DATA_SOURCE_TYPE_OBJECT_STORE,
                                  uri="s3://key:hunter2-xyz@bucket/file.csv"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "hunter2-xyz" not in err.details()


def test_pipelines_leave_the_label_alone_and_sample_their_own_fitting_data(client):
    frame = pd.DataFrame({"x": np.arange(100.0), "label": [0, 1] * 50})
    data = _upload(client, frame, "pipe-data", label="label")
    pipeline = client.data.CreateDataPipeline(data_service_pb2.CreateDataPipelineRequest(
        data_pipeline_id="scale-and-sample", data_pipeline=dataset_pb2.DataPipeline(
            fit_dataset=data.name, processing=dataset_pb2.ProcessingConfig(
                normalization=dataset_pb2.NormalizationConfig(method="standard"),
                sampling=dataset_pb2.SamplingConfig(method="random", fraction=0.5)))), timeout=30).data_pipeline
    out = client.data.RunDataPipeline(data_service_pb2.RunDataPipelineRequest(
        name=pipeline.name, dataset=data.name, output_dataset_id="pipe-sampled"), timeout=30).dataset
    rows, total = client.get_records(out.name, limit=1000)
    assert total == 50  # sampled: it ran on the data it was fitted on
    assert {r["label"] for r in rows} == {0, 1}  # never scaled


def test_big_integers_and_constant_large_values_load(client):
    frame = pd.DataFrame({"id": [2**60 + i for i in range(5)], "big": [1e15] * 5, "y": [0, 1, 0, 1, 0]})
    ds = client.upload_dataset(frame.to_csv(index=False).encode(), format="csv", dataset_id="big-numbers")
    assert ds.row_count == 5
    big = next(c for c in ds.statistics.columns if c.name == "big")
    assert big.min == big.max == 1e15 and sum(big.histogram.counts) == 5


def test_a_refused_dataset_leaves_nothing_behind(client, server, breast_cancer_csv):
    staging = server.engine.settings.data_dir / "datasets" / ".staging"
    before = set(staging.iterdir()) if staging.exists() else set()
    rules = dataset_pb2.ValidationRules(min_rows=10_000, fail_on_violation=True)
    err = _code(lambda: client.data.CreateDataset(data_service_pb2.CreateDatasetRequest(
        dataset_id="refused", config=dataset_pb2.DatasetConfig(source_uri=str(breast_cancer_csv), validation=rules)),
        timeout=30))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (set(staging.iterdir()) if staging.exists() else set()) == before


@pytest.fixture(scope="module")
def mixed(client):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "num": rng.normal(size=60), "with_gap": np.where(np.arange(60) % 7 == 0, np.nan, 1.0),
        "note": [f"free text {i}" for i in range(60)], "uid": [f"u{i}" for i in range(60)],
        "kind": ["a", "b", "c"] * 20, "label": ["yes", "no"] * 30,
    })
    return _upload(client, frame, "mixed", label="label")


@pytest.mark.parametrize(("changes", "field"), [
    ({"dataConfig": {"textColumn": "note"}}, "model_config.framework"),
    ({"modelType": "regression"}, "data_config.label_column"),
    ({"dataConfig": {"featureColumns": ["num", "with_gap"]}}, "data_config.feature_columns"),
])
def test_start_training_refuses_what_the_worker_could_not_train(client, mixed, changes, field):
    spec = {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "random_forest"},
        "dataConfig": {"trainDataset": mixed.name, "labelColumn": "label", "featureColumns": ["num", "kind"]},
    }
    for key, value in changes.items():
        spec[key] = {**spec[key], **value} if isinstance(value, dict) else value
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training(spec)
    assert err.value.field_violations[0].field == field


def test_xgboost_accepts_missing_values(client, mixed):
    job = client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": "xgboost", "architecture": "classifier"},
        "trainingConfig": {"epochs": 3},
        "dataConfig": {"trainDataset": mixed.name, "labelColumn": "label", "featureColumns": ["num", "with_gap"]},
    })
    assert client.wait(job.name, timeout=60).state == common_pb2.JOB_STATE_COMPLETED


def test_a_bad_test_set_costs_only_its_metrics(client, mixed):
    odd = _upload(client, pd.DataFrame({"num": [0.1, 0.2], "kind": ["a", "b"], "label": ["maybe", "no"]}),
                  "odd-test", label="label")
    job = client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "random_forest"},
        "trainingConfig": {"epochs": 2},
        "dataConfig": {"trainDataset": mixed.name, "testDataset": odd.name, "labelColumn": "label",
                       "featureColumns": ["num", "kind"]},
    })
    done = client.wait(job.name, timeout=60)
    assert done.state == common_pb2.JOB_STATE_COMPLETED and not done.test_metrics
    assert any("test metrics not computed" in e.message for e in client.get_logs(job.name))
