"""Basic training: the seed's basic_training workflow (its "Direct Instantiation" quick start
and "Workflow 1: Basic Supervised Learning"), step by step.

1. Prepare a dataset (the seed's customer-churn table, generated here) and look at the schema
   and statistics the service computed.
2. Split it 70/15/15, stratified on the label.
3. Start an XGBoost job with early stopping on val_loss and checkpoints (save best, save
   latest), as the seed's TrainingRequest does.
4. Monitor it the way the seed does, by polling the job's status and latest metrics, until it
   reaches a final state (COMPLETED, FAILED or CANCELLED: the seed's loop forgets the last).
   `client.watch_metrics` streams the same points without polling (see fraud_detection.py).
5. Read the job's log and its metrics on the test split, then save the model as a pickle on
   the server (the seed's SaveModel) and check it is byte for byte the model the job produced.
   (`client.evaluate_model` scores a model version on any other dataset.)

Differences from the seed, on purpose: XGBoost takes a learning rate (eta) but no batch size
or optimizer, so the request leaves those out (the service refuses, naming the field, settings
a framework cannot honour); SaveModel writes under the server's model directory, not a path
of the client's.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

from _common import main, upload_frame
from customer_churn import subscribers
from forge.training import FINAL_STATES, common_pb2
from forge.training.v1 import dataset_pb2

POLL_SECONDS = 0.5  # the seed polls every 5 s; a small job finishes in a few


def run(client, small: bool = False) -> dict:
    # 1. Prepare the dataset.
    data = upload_frame(client, subscribers(3000 if small else 20000, seed=5), "customer-churn",
                        label_column="churned")
    columns = ", ".join(f"{c.name} {dataset_pb2.DataType.Name(c.data_type).removeprefix('DATA_TYPE_').lower()}"
                        for c in data.schema.columns)
    print(f"{data.name}: {data.row_count} rows; schema {columns}")
    churn_rate = {v.value: v.count for v in data.statistics.label_distribution}["1"] / data.row_count

    # 2. Split into train / validation / test.
    train_part, val, test = client.split_dataset(data.name, [0.7, 0.15, 0.15], seed=5, stratify_column="churned")

    # 3. Configure and start training.
    job = client.start_training({
        "modelType": "classification",
        "modelId": "churn-model",
        "modelConfig": {"framework": "xgboost", "architecture": "classifier", "hyperparameters": {"max_depth": 3}},
        "trainingConfig": {
            "epochs": 100, "learningRate": 0.3 if small else 0.1, "seed": 5,
            "earlyStopping": {"enabled": True, "patience": 10, "metric": "val_loss"},
            "checkpoints": {"enabled": True, "saveBest": True, "saveLatest": True, "path": "churn-model"},
        },
        "dataConfig": {"trainDataset": train_part.name, "validationDataset": val.name, "testDataset": test.name,
                       "labelColumn": "churned"},
    })

    # 4. Monitor until it ends.
    shown = 0
    while True:
        status = client.get_job(job.name)
        metrics = status.latest_metrics
        if metrics.epoch > shown and not small:
            print(f"Epoch {metrics.epoch}/{metrics.total_epochs} - Loss: {metrics.training_loss:.4f} - "
                  f"Val loss: {metrics.validation_loss:.4f} - Accuracy: {metrics.accuracy:.4f} "
                  f"({status.progress:.0%})")
        shown = metrics.epoch
        if status.state in FINAL_STATES:
            break
        time.sleep(POLL_SECONDS)
    print(f"trained in {(status.end_time.ToDatetime() - status.start_time.ToDatetime()).total_seconds():.1f} s")
    if status.state != common_pb2.JOB_STATE_COMPLETED:
        raise RuntimeError(f"{status.name} ended {common_pb2.JobState.Name(status.state)}: {status.state_message}")
    print(f"{status.name}: {status.state_message}")

    # 5. Logs, SaveModel, and a check on held-out data.
    logs = client.get_logs(job.name)
    for entry in logs[-3:]:
        level = common_pb2.LogLevel.Name(entry.level).removeprefix("LOG_LEVEL_")
        print(f"[{entry.time.ToDatetime():%H:%M:%S}] {level}: {entry.message}")
    saved = client.save_model(job.name, "churn/churn_model.pkl")
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "churn_model.pkl"
        client.export_model(job.name, "pickle", exported)
        same_bytes = hashlib.sha256(exported.read_bytes()).hexdigest() == saved.sha256
    test_metrics = dict(status.test_metrics)  # the final model on the test split, which it never saw
    print(f"saved {saved.path} ({saved.size_bytes} bytes, sha256 {saved.sha256[:12]}...); "
          f"{status.model_version} on the test split: accuracy {test_metrics['accuracy']:.3f}, "
          f"F1 {test_metrics['f1_score']:.3f}")
    return {"churn_rate": churn_rate, "epochs_run": status.current_epoch, "epochs_asked": status.total_epochs,
            "log_entries": len(logs), "saved_path": saved.path, "saved_matches_export": same_bytes,
            "checkpoint_epoch": status.checkpoint_epoch,
            **{f"test_{k}": v for k, v in sorted(test_metrics.items())}}


if __name__ == "__main__":
    main(run, __doc__)
