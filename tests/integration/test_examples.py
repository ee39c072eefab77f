"""Every example runs end to end at small size against a real server, with a quality a user
would accept."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def examples():
    sys.path.insert(0, str(EXAMPLES))
    yield lambda name: importlib.import_module(name)
    sys.path.remove(str(EXAMPLES))


def test_fraud_detection(client, examples):
    results = examples("fraud_detection").run(client, small=True)
    # About 3.7% of transactions are fraud; catching half of them at this size is what a
    # weighted gradient-boosted model reaches (a plain model flags almost none).
    assert results["test_recall"] > 0.45 and results["test_accuracy"] > 0.9


def test_customer_churn(client, examples):
    results = examples("customer_churn").run(client, small=True)
    assert results["test_accuracy"] > 0.7 and results["test_f1_score"] > 0.6


def test_recommendation(client, examples):
    results = examples("recommendation").run(client, small=True)
    assert results["test_rmse"] < 0.8 * results["baseline_rmse"]


def test_text_classification(client, examples):
    assert examples("text_classification").run(client, small=True)["test_accuracy"] > 0.9


def test_image_recognition(client, examples):
    assert examples("image_recognition").run(client, small=True)["test_accuracy"] > 0.9


def test_anomaly_detection(client, examples):
    results = examples("anomaly_detection").run(client, small=True)
    assert results["test_f1_score"] > 0.6


def test_time_series_forecasting(client, examples):
    results = examples("time_series_forecasting").run(client, small=True)
    assert results["test_rmse"] < results["naive_rmse"]


def test_train_to_inference(client, examples):
    results = examples("train_to_inference").run(client, small=True)
    assert results["onnx_accuracy"] > 0.9 and results["raw_columns"]
    assert results["batches"] < results["requests"]  # concurrent requests shared onnxruntime runs
