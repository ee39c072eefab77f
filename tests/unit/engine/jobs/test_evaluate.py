"""engine/jobs/evaluate.py: a stored model evaluated on a parquet dataset.

Each test trains a tiny run the way the worker does (build_training_data, create_run, epochs,
checkpoint.pack of the final state, model_info's classes and preprocessing) and calls
run_evaluation in this process; one test goes through evaluate_in_process (a spawned child)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data.training_data import arrays_from_prep, build_training_data
from engine.errors import DataLoss, DeadlineExceeded, InvalidArgument
from engine.frameworks.registry import get_adapter
from engine.jobs.evaluate import evaluate_in_process, run_evaluation
from engine.jobs.spec import TrainingSpec
from engine.storage import checkpoint
from engine.storage.files import write_atomic, write_bytes_atomic

CLASSIFICATION_KEYS = {"accuracy", "precision", "recall", "f1_score", "roc_auc", "log_loss", "class_labels",
                       "confusion_matrix", "per_class", "row_count"}
REGRESSION_KEYS = {"rmse", "mae", "r2", "mape", "row_count"}


def _parquet(tmp_path, name, frame):
    path = tmp_path / f"{name}.parquet"
    _, digest = write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return {"path": str(path), "sha256": digest}


def _train(tmp_path, frame, **spec_fields):
    """(run, payload without "dataset") of a run trained on `frame` as the worker trains jobs."""
    spec = TrainingSpec.from_dict({"seed": 3, **spec_fields})
    data = build_training_data(spec, _parquet(tmp_path, "train", frame)["path"])
    run = get_adapter(spec.framework).create_run(spec, data)
    for epoch in range(1, run.total_epochs + 1):
        if run.train_epoch(epoch).finished:
            break
    blob = checkpoint.pack(run.state_bytes(), {"framework": spec.framework, "epoch": run.epoch})
    path = tmp_path / "model.state"
    _, digest = write_bytes_atomic(path, blob)
    payload = {
        "spec": spec.to_dict(),
        "state": {"path": str(path), "sha256": digest},
        "preprocessing": {**data.preprocessing, **getattr(run, "input_preprocessing", {})},
        "classes": [str(c) for c in getattr(run, "class_labels", None) or data.classes or []],
    }
    return run, payload


def _check_classification(report, run, spec, payload, frame):
    assert set(report) == CLASSIFICATION_KEYS
    X, y = arrays_from_prep(TrainingSpec.from_dict(spec), payload["preprocessing"], frame)
    from sklearn.metrics import accuracy_score

    assert report["accuracy"] == pytest.approx(accuracy_score(y, run.predict(X).values))
    assert report["row_count"] == len(frame)
    assert sum(map(sum, report["confusion_matrix"])) == len(frame)
    assert sum(c["support"] for c in report["per_class"]) == len(frame)
    assert [c["label"] for c in report["per_class"]] == report["class_labels"]
    assert len(report["confusion_matrix"]) == len(report["class_labels"])


@pytest.fixture(scope="module")
def iris_frame():
    from sklearn.datasets import load_iris

    raw = load_iris(as_frame=True)
    frame = raw.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = np.asarray(raw.target_names)[raw.target]
    frame = frame.drop(columns="target")
    frame["site"] = np.where(np.arange(len(frame)) % 3 == 0, "north", "south")  # one-hot encoded
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def cancer_frame(breast_cancer_frame):
    return breast_cancer_frame.iloc[:240].reset_index(drop=True)


def test_sklearn_classifier_with_string_labels(tmp_path, iris_frame):
    train, test = iris_frame.iloc[:110], iris_frame.iloc[110:].reset_index(drop=True)
    run, payload = _train(tmp_path, train, framework="sklearn", architecture="logistic_regression",
                          model_type="classification", epochs=5, data={"label_column": "species"})
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", test)})
    _check_classification(report, run, payload["spec"], payload, test)
    assert report["class_labels"] == ["setosa", "versicolor", "virginica"]
    assert report["accuracy"] > 0.8 and 0 < report["log_loss"] < 1 and report["roc_auc"] > 0.9


def test_labels_the_model_never_saw_are_errors_with_their_own_row(tmp_path, iris_frame):
    train = iris_frame[iris_frame.species != "virginica"].iloc[:70]
    test = iris_frame.iloc[100:].reset_index(drop=True)
    run, payload = _train(tmp_path, train, framework="sklearn", architecture="random_forest",
                          model_type="classification", epochs=1, data={"label_column": "species"},
                          hyperparameters={"n_estimators": 10})
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", test)})
    _check_classification(report, run, payload["spec"], payload, test)
    virginica = int((test.species == "virginica").sum())
    assert report["class_labels"] == ["setosa", "versicolor", "virginica"]
    assert report["confusion_matrix"][2] == [*report["confusion_matrix"][2][:2], 0]
    assert sum(report["confusion_matrix"][2]) == virginica
    assert [row[2] for row in report["confusion_matrix"]] == [0, 0, 0]  # never predicted
    assert report["per_class"][2] == {"label": "virginica", "precision": 0.0, "recall": 0.0, "f1_score": 0.0,
                                      "support": virginica}
    assert report["accuracy"] <= 1 - virginica / len(test)


def test_sklearn_regression(tmp_path):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.iloc[:200]
    train, test = frame.iloc[:150], frame.iloc[150:].reset_index(drop=True)
    run, payload = _train(tmp_path, train, framework="sklearn", architecture="ridge", model_type="regression",
                          epochs=1, data={"label_column": "target"})
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", test)})
    assert set(report) == REGRESSION_KEYS and report["row_count"] == 50
    X, y = arrays_from_prep(TrainingSpec.from_dict(payload["spec"]), payload["preprocessing"], test)
    predicted = run.predict(X).values
    assert report["rmse"] == pytest.approx(float(np.sqrt(np.mean((predicted - y) ** 2))))
    assert report["mape"] == pytest.approx(float(np.mean(np.abs(predicted - y) / np.abs(y))))


def test_xgboost_classifier_on_integer_labels(tmp_path, cancer_frame):
    train, test = cancer_frame.iloc[:180], cancer_frame.iloc[180:].reset_index(drop=True)
    run, payload = _train(tmp_path, train, framework="xgboost", architecture="classifier",
                          model_type="classification", epochs=5, data={"label_column": "target"})
    assert payload["classes"] == ["0", "1"]  # model_info keeps them as text
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", test)})
    _check_classification(report, run, payload["spec"], payload, test)
    assert report["class_labels"] == ["0", "1"] and report["accuracy"] > 0.85


def test_pytorch_mlp_classifier(tmp_path, cancer_frame):
    train, test = cancer_frame.iloc[:180], cancer_frame.iloc[180:].reset_index(drop=True)
    run, payload = _train(tmp_path, train, framework="pytorch", architecture="mlp", model_type="classification",
                          epochs=3, learning_rate=0.01, hyperparameters={"hidden_units": [8]},
                          data={"label_column": "target"})
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", test)})
    _check_classification(report, run, payload["spec"], payload, test)
    assert report["accuracy"] > 0.8


def test_tensorflow_mlp_regression(tmp_path):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.iloc[:120]
    train, test = frame.iloc[:90], frame.iloc[90:].reset_index(drop=True)
    run, payload = _train(tmp_path, train, framework="tensorflow", architecture="mlp", model_type="regression",
                          epochs=1, hyperparameters={"hidden_units": [4]}, data={"label_column": "target"})
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", test)})
    assert set(report) == REGRESSION_KEYS and report["row_count"] == 30
    X, y = arrays_from_prep(TrainingSpec.from_dict(payload["spec"]), payload["preprocessing"], test)
    predicted = run.predict(X).values
    assert report["rmse"] == pytest.approx(float(np.sqrt(np.mean((predicted - y) ** 2))), rel=1e-5)


def test_isolation_forest_with_anomaly_labels(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    frame["kind"] = "normal"
    frame.loc[:9, ["a", "b"]] = 8.0 + rng.normal(size=(10, 2))
    frame.loc[:9, "kind"] = "anomaly"
    frame = frame.sample(frac=1, random_state=1).reset_index(drop=True)
    run, payload = _train(tmp_path, frame, framework="sklearn", architecture="isolation_forest",
                          model_type="anomaly_detection", epochs=1, hyperparameters={"n_estimators": 20},
                          data={"label_column": "kind"})
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", frame)})
    assert set(report) == {"anomaly_rate", "precision", "recall", "f1_score", "roc_auc", "row_count"}
    assert report["recall"] == 1.0 and report["roc_auc"] > 0.95
    unlabelled = run_evaluation({**payload, "dataset": _parquet(tmp_path, "x", frame.drop(columns="kind"))})
    assert set(unlabelled) == {"anomaly_rate", "row_count"}
    assert unlabelled["anomaly_rate"] == report["anomaly_rate"]


def test_a_dataset_without_the_models_columns_names_them(tmp_path, iris_frame):
    run, payload = _train(tmp_path, iris_frame, framework="sklearn", architecture="logistic_regression",
                          model_type="classification", epochs=2, data={"label_column": "species"})
    bad = iris_frame.drop(columns=["petal_width", "species"])
    with pytest.raises(InvalidArgument) as caught:
        run_evaluation({**payload, "dataset": _parquet(tmp_path, "bad", bad)})
    assert caught.value.violations[0].field == "dataset"
    assert "'petal_width' (feature)" in caught.value.message and "'species' (label)" in caught.value.message
    with pytest.raises(DataLoss):
        run_evaluation({**payload, "dataset": {**_parquet(tmp_path, "ok", iris_frame), "sha256": "0" * 64}})


def test_evaluate_in_process(tmp_path, iris_frame):
    run, payload = _train(tmp_path, iris_frame, framework="sklearn", architecture="logistic_regression",
                          model_type="classification", epochs=3, data={"label_column": "species"})
    dataset = _parquet(tmp_path, "test", iris_frame)
    report = evaluate_in_process({**payload, "dataset": dataset}, timeout=120)
    assert report == run_evaluation({**payload, "dataset": dataset})
    bad = _parquet(tmp_path, "bad", iris_frame.drop(columns="species"))
    with pytest.raises(InvalidArgument) as caught:
        evaluate_in_process({**payload, "dataset": bad}, timeout=120)
    assert caught.value.violations[0].field == "dataset" and "'species' (label)" in caught.value.message
    with pytest.raises(DeadlineExceeded):
        evaluate_in_process({**payload, "dataset": dataset}, timeout=0.05)


@pytest.mark.parametrize("architecture", ["lstm", "matrix_factorization"])
def test_pytorch_forecasts_and_recommendations_load_from_the_state_alone(tmp_path, architecture):
    # The lstm's windows continue the recorded history; the id maps come from the checkpoint.
    rng = np.random.default_rng(0)
    if architecture == "lstm":
        frame = pd.DataFrame({"t": np.arange(70), "v": np.sin(np.arange(70) / 5) * 10 + 20})
        train, test = frame.iloc[:50], frame.iloc[50:].reset_index(drop=True)
        fields = dict(model_type="forecasting", data={"label_column": "v", "time_column": "t", "window_size": 4})
    else:
        frame = pd.DataFrame({"user": [f"u{i % 7}" for i in range(120)], "item": [i % 11 for i in range(120)],
                              "rating": rng.uniform(1, 5, 120)})
        train, test = frame.iloc[:100], frame.iloc[100:].reset_index(drop=True)
        test.loc[0, "user"] = "stranger"  # an id the model never saw: index 0
        fields = dict(model_type="recommendation",
                      data={"label_column": "rating", "user_column": "user", "item_column": "item"})
    run, payload = _train(tmp_path, train, framework="pytorch", architecture=architecture, epochs=2, **fields)
    report = run_evaluation({**payload, "dataset": _parquet(tmp_path, "test", test)})
    judged = {"smape", "mase"} if architecture == "lstm" else {"ndcg_at_10", "map_at_10", "precision_at_10"}
    assert set(report) == REGRESSION_KEYS | judged and report["row_count"] == len(test)
    X, y = arrays_from_prep(TrainingSpec.from_dict(payload["spec"]), payload["preprocessing"], test)
    predicted = run.predict(X).values
    assert report["rmse"] == pytest.approx(float(np.sqrt(np.mean((predicted - y) ** 2))), rel=1e-6)


def test_the_server_side_imports_no_framework():
    code = ("import sys, engine.jobs.evaluate; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'xgboost', 'torch', 'tensorflow', "
            "'keras', 'pandas', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[4], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
