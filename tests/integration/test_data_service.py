"""The whole DataManager through DataService: sources, validation, processing fitted on one
split and applied to another, filter / merge / split lineage, Arrow record streams."""

from __future__ import annotations

import sqlite3

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from google.protobuf import json_format

from forge.training import ForgeTrainingError, common_pb2, data_service_pb2, dataset_pb2


def _call(client, method: str, request):
    response_cls = getattr(data_service_pb2, method + "Response")
    return client.channel.unary_unary(
        f"/forge.training.v1.DataService/{method}", request_serializer=type(request).SerializeToString,
        response_deserializer=response_cls.FromString)(request, timeout=60)


def _error(call):
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def test_sql_source_keeps_credentials_secret(client, tmp_path):
    db = tmp_path / "crm.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("create table customers (id integer, plan text, spend real)")
        conn.executemany("insert into customers values (?, ?, ?)",
                         [(i, ["basic", "premium"][i % 2], i * 1.5) for i in range(50)])
    source = dataset_pb2.DataSource(type=dataset_pb2.DATA_SOURCE_TYPE_SQL, uri=f"sqlite:///{db}",
                                    query="select * from customers", credentials={"password": "s3cret"})
    registered = _call(client, "RegisterDataSource", data_service_pb2.RegisterDataSourceRequest(
        data_source_id="crm", data_source=source)).data_source
    assert list(registered.credential_keys) == ["password"] and not registered.credentials
    fetched = _call(client, "GetDataSource", data_service_pb2.GetDataSourceRequest(name="crm")).data_source
    assert not fetched.credentials and "s3cret" not in str(fetched)
    listed = _call(client, "ListDataSources", data_service_pb2.ListDataSourcesRequest()).data_sources
    assert "s3cret" not in str(listed)
    ds = _call(client, "CreateDataset", data_service_pb2.CreateDatasetRequest(
        dataset_id="premium-customers",
        config=dataset_pb2.DatasetConfig(data_source="crm", query="select * from customers where plan = 'premium'"),
    )).dataset
    assert ds.row_count == 25 and ds.lineage.operation == "load"


def test_object_store_source_through_a_local_s3_endpoint(client, s3_endpoint, breast_cancer_frame):
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="x", aws_secret_access_key="y",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="training-data")
    s3.put_object(Bucket="training-data", Key="cancer.csv", Body=breast_cancer_frame.to_csv(index=False).encode())
    source = dataset_pb2.DataSource(type=dataset_pb2.DATA_SOURCE_TYPE_OBJECT_STORE,
                                    uri="s3://training-data/cancer.csv", options={"endpoint_url": s3_endpoint},
                                    credentials={"key": "x", "secret": "y"})
    _call(client, "RegisterDataSource", data_service_pb2.RegisterDataSourceRequest(data_source_id="lake",
                                                                                    data_source=source))
    ds = _call(client, "CreateDataset", data_service_pb2.CreateDatasetRequest(
        dataset_id="from-s3", config=dataset_pb2.DatasetConfig(data_source="lake", label_column="target"))).dataset
    assert ds.row_count == 569 and ds.source_uri.endswith("dataSources/lake")


def test_image_folder_becomes_an_image_dataset(client, tmp_path):
    from PIL import Image

    for label, value in (("cats", 30), ("dogs", 220)):
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (4, 4), value + i).save(tmp_path / "pets" / label / f"{i}.png")
    ds = _call(client, "CreateDataset", data_service_pb2.CreateDatasetRequest(
        dataset_id="pets", config=dataset_pb2.DatasetConfig(
            source_uri=str(tmp_path / "pets"), format=dataset_pb2.DATA_FORMAT_IMAGE_FOLDER, label_column="label"),
    )).dataset
    assert ds.type == dataset_pb2.DATASET_TYPE_IMAGE and ds.row_count == 6
    assert {v.value: v.count for v in ds.statistics.label_distribution} == {"cats": 3, "dogs": 3}


@pytest.fixture(scope="module")
def shop(client):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "customer": [f"c{i % 40}" for i in range(200)],
        "day": pd.date_range("2024-01-01", periods=200, freq="D"),
        "plan": rng.choice(["basic", "premium"], 200),
        "spend": np.where(rng.random(200) < 0.1, np.nan, rng.normal(100, 20, 200)),
        "visits": rng.integers(1, 10, 200),
        "churned": rng.integers(0, 2, 200),
    })
    frame.loc[3, "visits"] = -5
    return client.upload_dataset(frame.to_csv(index=False).encode(), format="csv", dataset_id="shop",
                                 label_column="churned")


def test_validation_reports_failed_rules_and_a_job_can_refuse_them(client, shop):
    rules = dataset_pb2.ValidationRules(
        required_columns=["spend", "missing_column"],
        constraints=[dataset_pb2.ColumnConstraint(column="visits", min=1, max=9),
                     dataset_pb2.ColumnConstraint(column="plan", allowed_values=["basic", "premium"])],
        conditions=["visits >= 0"],
    )
    report = _call(client, "ValidateDataset", data_service_pb2.ValidateDatasetRequest(name="shop", rules=rules)).report
    assert not report.valid
    by_rule = {(i.rule, i.column): i for i in report.issues}
    assert any(col == "visits" and issue.violation_count == 1 and list(issue.example_rows) == [3]
               for (rule, col), issue in by_rule.items())
    assert any("missing_column" in (col + issue.message) for (rule, col), issue in by_rule.items())
    with pytest.raises(ForgeTrainingError) as err:
        client.start_training({
            "modelType": "classification",
            "modelConfig": {"framework": "sklearn", "architecture": "random_forest"},
            "dataConfig": {"trainDataset": "shop", "labelColumn": "churned", "featureColumns": ["visits"],
                           "validation": json_format.MessageToDict(rules)},
        })
    assert err.value.code.name == "FAILED_PRECONDITION" and "data_config.validation" in err.value.message


def test_processing_is_fitted_on_train_and_applied_to_test(client, shop):
    train, test = client.split_dataset("shop", [0.5, 0.5], time_column="day", dataset_ids=["shop-early", "shop-late"])
    early, _ = client.get_records(train.name, limit=1000)
    late, _ = client.get_records(test.name, limit=1000)
    assert max(r["day"] for r in early) < min(r["day"] for r in late)  # time-ordered, oldest first
    processing = dataset_pb2.ProcessingConfig(
        imputation=dataset_pb2.ImputationConfig(strategy="mean", columns=["spend"], add_indicator=True),
        normalization=dataset_pb2.NormalizationConfig(method="standard", columns=["spend"]),
    )
    pipeline = _call(client, "CreateDataPipeline", data_service_pb2.CreateDataPipelineRequest(
        data_pipeline_id="spend-scaler",
        data_pipeline=dataset_pb2.DataPipeline(fit_dataset=train.name, processing=processing))).data_pipeline
    assert pipeline.fitted.fields  # the learned means and scales are stored with the pipeline
    out = _call(client, "RunDataPipeline", data_service_pb2.RunDataPipelineRequest(
        name="spend-scaler", dataset=test.name, output_dataset_id="shop-late-scaled")).dataset
    assert out.lineage.operation == "data_pipeline" and list(out.lineage.parents) == [test.name]
    rows, _ = client.get_records(out.name, limit=1000)
    spend = np.array([r["spend"] for r in rows])
    known = np.array([r["spend"] for r in early if r["spend"] is not None])
    # Imputation runs before normalization, so the scale is that of the imputed training column.
    train_spend = np.array([r["spend"] if r["spend"] is not None else known.mean() for r in early])
    late_spend = np.array([r["spend"] if r["spend"] is not None else known.mean() for r in late])
    expected = (late_spend - train_spend.mean()) / train_spend.std()
    assert np.allclose(spend, expected, atol=1e-6)  # train statistics, not the test's
    assert "spend_missing" in rows[0]


def test_filter_merge_group_split_and_arrow_stream(client, shop):
    premium = client.data.FilterDataset(data_service_pb2.FilterDatasetRequest(
        name="shop", expression="plan == 'premium' and visits > 2", dataset_id="shop-premium")).dataset
    assert 0 < premium.row_count < 200 and premium.lineage.operation == "filter"
    merged = _call(client, "MergeDatasets", data_service_pb2.MergeDatasetsRequest(
        datasets=["shop", "shop-premium"], dataset_id="shop-merged")).dataset
    assert merged.row_count == 200 + premium.row_count and list(merged.lineage.parents)[1].endswith("shop-premium")
    parts = client.data.SplitDataset(data_service_pb2.SplitDatasetRequest(
        name="shop", ratios=[0.75, 0.25], seed=1, group_column="customer", dataset_ids=["g-train", "g-test"])).datasets
    groups = [{r["customer"] for r in client.get_records(p.name, limit=1000)[0]} for p in parts]
    assert not groups[0] & groups[1] and sum(p.row_count for p in parts) == 200
    err = _error(lambda: client.data.SplitDataset(data_service_pb2.SplitDatasetRequest(
        name="shop", ratios=[0.5, 0.5], stratify_column="churned", group_column="customer")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    stream = client.data.StreamRecords(data_service_pb2.StreamRecordsRequest(
        name="shop", batch_size=64, format=dataset_pb2.RECORD_FORMAT_ARROW_IPC))
    tables = [pa.ipc.open_stream(message.arrow_ipc).read_all() for message in stream]
    assert sum(t.num_rows for t in tables) == 200 and tables[0].schema.field("visits").type == pa.int64()


def test_bad_input_names_the_field(client, shop):
    err = _error(lambda: client.data.FilterDataset(data_service_pb2.FilterDatasetRequest(
        name="shop", expression="__import__('os').system('true')")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = _error(lambda: client.data.TransformDataset(data_service_pb2.TransformDatasetRequest(
        name="shop", processing=dataset_pb2.ProcessingConfig(
            normalization=dataset_pb2.NormalizationConfig(method="zscore-ish")))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "normalization.method" in err.details()
    with pytest.raises(ForgeTrainingError) as e:
        client.upload_dataset(b"a,b\n1,2\n3\n", format="csv")
    assert e.value.code.name == "INVALID_ARGUMENT" and "line 3" in e.value.message


def test_a_job_records_the_processing_that_produced_its_inputs(client, shop, tmp_path):
    scaled = client.data.RunDataPipeline(data_service_pb2.RunDataPipelineRequest(
        name="spend-scaler", dataset="shop-early", output_dataset_id="shop-early-scaled")).dataset
    job = client.start_training({
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "random_forest"},
        "trainingConfig": {"epochs": 2, "seed": 1},
        "dataConfig": {"trainDataset": scaled.name, "labelColumn": "churned",
                       "featureColumns": ["spend", "spend_missing", "visits"]},
    })
    assert client.wait(job.name, timeout=60).state == common_pb2.JOB_STATE_COMPLETED
    meta = client.export_model(job.name, "onnx", tmp_path / "m.onnx")
    processing = json_format.MessageToDict(meta.preprocessing)
    assert processing["data_pipeline"] == "projects/default/dataPipelines/spend-scaler"
