"""EvaluateModel: a model's metrics on any dataset, through the SDK on a real server."""

from __future__ import annotations

import pytest

from forge.training import ForgeTrainingError, common_pb2


@pytest.fixture(scope="module")
def cancer_parts(client, breast_cancer_csv):
    ds = client.upload_dataset(breast_cancer_csv, dataset_id="bc-evaluate", label_column="target")
    return client.split_dataset(ds.name, [0.8, 0.2], seed=5, stratify_column="target")


def test_classifier_report_on_raw_rows_behind_a_data_pipeline(client, cancer_parts):
    train_raw, test_raw = cancer_parts
    pipeline = client.create_data_pipeline(train_raw.name, {"normalization": {"method": "standard"}})
    train = client.run_data_pipeline(pipeline.name, train_raw.name)
    job = client.wait(client.start_training({
        "modelType": "classification", "modelId": "evaluated",
        "modelConfig": {"framework": "sklearn", "architecture": "logistic_regression"},
        "trainingConfig": {"epochs": 3, "seed": 2},
        "dataConfig": {"trainDataset": train.name, "labelColumn": "target"},
    }).name, timeout=120)
    assert job.state == common_pb2.JOB_STATE_COMPLETED, job.error

    # Raw test rows: the pipeline's scaling is applied first; processed rows: it is not re-applied.
    raw = client.evaluate_model(job.name, test_raw.name)
    processed = client.evaluate_model(job.model_version, client.run_data_pipeline(pipeline.name, test_raw.name).name)
    assert raw.row_count == processed.row_count == test_raw.row_count
    assert raw.metrics["accuracy"] == pytest.approx(processed.metrics["accuracy"]) and raw.metrics["accuracy"] > 0.9
    assert {"precision", "recall", "f1_score", "roc_auc", "log_loss"} <= set(raw.metrics)
    assert list(raw.class_labels) == ["0", "1"]
    assert sum(sum(row.counts) for row in raw.confusion_matrix) == raw.row_count
    correct = sum(raw.confusion_matrix[i].counts[i] for i in range(2))
    assert correct / raw.row_count == pytest.approx(raw.metrics["accuracy"])
    assert [c.label for c in raw.per_class] == ["0", "1"] and sum(c.support for c in raw.per_class) == raw.row_count


def test_regression_report_and_errors(client, cancer_parts, breast_cancer_frame, tmp_path):
    train, test = cancer_parts
    job = client.wait(client.start_training({
        "modelType": "regression",
        "modelConfig": {"framework": "xgboost", "architecture": "regressor"},
        "trainingConfig": {"epochs": 5, "seed": 2},
        "dataConfig": {"trainDataset": train.name, "labelColumn": "mean_area",
                       "featureColumns": ["mean_radius", "mean_perimeter", "mean_texture"]},
    }).name, timeout=120)
    assert job.state == common_pb2.JOB_STATE_COMPLETED, job.error
    report = client.evaluate_model(job.name, test.name)
    assert {"rmse", "mae", "r2", "mape"} <= set(report.metrics) and report.metrics["r2"] > 0.8
    assert not report.confusion_matrix

    path = tmp_path / "narrow.csv"
    breast_cancer_frame.drop(columns=["mean_perimeter"]).head(20).to_csv(path, index=False)
    narrow = client.upload_dataset(path, dataset_id="bc-narrow", label_column="target")
    with pytest.raises(ForgeTrainingError) as err:
        client.evaluate_model(job.name, narrow.name)
    assert err.value.field_violations[0].field == "dataset" and "mean_perimeter" in err.value.message
    with pytest.raises(ForgeTrainingError) as err:
        client.evaluate_model(job.name, "no-such-dataset")
    assert err.value.code.name == "NOT_FOUND"
