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
    assert 0 < results["test_map_at_10"] <= 1 and 0 < results["test_precision_at_10"] <= 1
    # The rankings improved as it trained: epoch 1's embeddings rank about at random.
    assert results["evaluated_ndcg"] == pytest.approx(results["test_ndcg_at_10"])
    assert results["test_ndcg_at_10"] > 0.9 and max(results["validation_ndcg"]) > results["validation_ndcg"][0]


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
    assert 0 < results["test_mase"] < 0.8 and 0 < results["test_smape"] < 0.2 and 0 < results["test_mape"] < 0.2
    # Measured on the validation rows every epoch: the forecasts got better than the first epoch's.
    assert min(results["validation_mase"]) < results["validation_mase"][0]


def test_train_to_inference(client, examples):
    results = examples("train_to_inference").run(client, small=True)
    assert results["onnx_accuracy"] > 0.9 and results["raw_columns"]
    assert results["batches"] < results["requests"]  # concurrent requests shared onnxruntime runs


def test_basic_training(examples, tmp_path):
    results = examples("basic_training").run(small=True, data_dir=tmp_path / "engine")  # in-process, no server
    assert results["epochs_streamed"] == list(range(1, results["epochs_run"] + 1))  # every point, once, in order
    # Early stopping ended the job well before the 100 epochs asked, with the checkpoint of its
    # last epoch written (save_latest); the model SaveModel wrote is the one the job exported.
    assert results["epochs_run"] < results["epochs_asked"] == 100
    assert results["checkpoint_epoch"] == results["epochs_run"]
    assert results["saved_path"] == "churn/churn_model.pkl" and results["saved_matches_export"]
    assert results["log_entries"] >= results["epochs_run"]
    # About 36% of subscribers churn: always answering "stays" scores 0.64.
    assert results["test_accuracy"] > 0.7 and results["test_f1_score"] > 0.5


def test_dataset_management(client, examples):
    results = examples("dataset_management").run(client, small=True)
    assert results["raw_rows"] == 1000
    # Every kind of dirt the raw table carries is reported with its row count.
    assert results["broken_rules"] == {"not_null amount": 5, "min amount": 7, "allowed_values country": 4,
                                       "condition": 3}
    assert results["clean_valid"] and 1000 - 19 <= results["clean_rows"] < 1000
    assert results["merged_rows"] == results["clean_rows"] + results["batch_rows"] == results["clean_rows"] + 250
    assert {"country=NL", "country=DE", "country=FR"} <= set(results["feature_columns"])
    assert "order_id" not in results["feature_columns"] and "country" not in results["feature_columns"]
    assert sum(results["split_rows"]) == results["merged_rows"]
    assert results["streamed_rows"] == results["split_rows"][0] and results["page_rows"] == 5
    assert results["arrow_test_rows"] == results["split_rows"][2]
    assert results["lineage"] == ["split", "transform", "merge", "filter", "load"]


def test_training_pipeline(client, examples):
    results = examples("training_pipeline").run(client, small=True)
    assert results["stages"] == ["prepare", "validate", "features", "train", "evaluate", "deploy"]
    assert results["valid"] and results["rows_after_filter"] < 2000
    # Better than always guessing the majority class, on a test split the model never saw.
    assert results["test_accuracy"] > results["majority_rate"] + 0.1
    assert results["deployed_stage"] == "production" and results["deployed_uri"].endswith("model.onnx")
    assert {"stage_started", "stage_metrics", "stage_completed", "execution_state"} <= set(results["event_kinds"])
    assert results["cached_on_rerun"] == sorted(results["stages"])


def test_extension_integration(examples, tmp_path):
    results = examples("extension_integration").run(small=True, data_dir=tmp_path / "embedded")
    # The seed's TrainingConfiguration, from YAML: default resources, checkpoint and model paths.
    assert results["job_resources"] == ("8", 1, 2)
    assert results["artifacts_under_model_path"] and results["checkpoints_under_checkpoint_path"]
    assert results["job_state"] == "JOB_STATE_COMPLETED" and results["epochs_run"] < results["epochs_asked"]
    assert "early stopping" in results["early_stopping"]
    # The application's own callback, registered by name, stopped its job once its rule held.
    state, epochs, message = results["callback_job"]
    assert state == "JOB_STATE_COMPLETED" and epochs < 200 and "release rule met on validation" in message
    assert results["unknown_callback_refused"] == "INVALID_ARGUMENT"
    # The application's own function decided, by its rule, and deployment followed its decision.
    approved = results["test_recall"] >= 0.8 and results["test_accuracy"] >= 0.9
    assert results["audit"] and results["audit"][0].split(": ")[1].startswith("approved" if approved else "rejected")
    assert results["stages"] == {"evaluate": "succeeded", "gate": "succeeded",
                                 "deploy": "succeeded" if approved else "skipped"}
    assert results["model_stage"] == ("MODEL_STAGE_PRODUCTION" if approved else "MODEL_STAGE_UNSPECIFIED")
    assert results["release_under_model_path"] == approved  # the configured model path holds the release
