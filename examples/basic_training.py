"""Basic training, in the application's own process: the seed's "Option 2: Direct
Instantiation" quick start and its "Workflow 1: Basic Supervised Learning", with no server.

The seed creates a DataManager and a ModelTrainer and calls them. Here one configuration
object, EngineSettings, builds the engine, whose `data` (DataManager), `trainer`
(ModelTrainer) and `pipelines` (PipelineManager) are the very objects the gRPC service calls:
jobs run in worker processes, their metadata, metrics and logs go to the same database (a
server started later on the same data dir serves them), and errors are the service's.

1. Prepare a dataset (the seed's customer-churn table, generated here and written as Parquet)
   and look at the schema and statistics the engine computed.
2. Split it 70/15/15, stratified on the label (the seed's dataset.Split).
3. Start an XGBoost job with early stopping on val_loss and checkpoints (save best, save
   latest), as the seed's TrainingRequest does; the request is the same dict the SDKs take.
4. Follow its metrics as a Python iterator until it ends (the seed polls its status).
5. Read its log and its metrics on the test split; save the model as a pickle under the model
   directory (the seed's SaveModel) and check it is byte for byte the model the job exported.

Differences from the seed, on purpose: XGBoost takes a learning rate (eta) but no batch size
or optimizer, so the request leaves those out (the engine refuses, naming the field, settings
a framework cannot honour).

    .venv/bin/python examples/basic_training.py [--small] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the engine package

from customer_churn import subscribers  # noqa: E402
from engine import Engine, EngineSettings  # noqa: E402
from engine.errors import ForgeError  # noqa: E402

PROJECT = "default"


def run(small: bool = False, data_dir: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = EngineSettings(data_dir=Path(data_dir or Path(tmp) / "forge-data"), max_concurrent_jobs=2)
        with Engine(settings) as forge:
            return train_churn_model(forge, Path(tmp), small)


def train_churn_model(forge: Engine, scratch: Path, small: bool) -> dict:
    # 1. Prepare the dataset: any file or URI the engine can read (CSV, Parquet, JSON Lines, s3://...).
    source = scratch / "customer-churn.parquet"
    subscribers(3000 if small else 20000, seed=5).to_parquet(source, index=False)
    _forget_earlier_run(forge)
    data = forge.data.create_dataset(PROJECT, "customer-churn", {
        "display_name": "Customer Churn Dataset", "type": "tabular", "source_uri": str(source),
        "label_column": "churned"})
    columns = ", ".join(f"{c['name']} {c['data_type']}" for c in data.schema["columns"])
    print(f"{data.name}: {data.row_count} rows; schema {columns}")
    counts = {v["value"]: v["count"] for v in data.statistics["label_distribution"]}
    churn_rate = counts["1"] / data.row_count

    # 2. Split into train / validation / test.
    train_part, val, test = forge.data.split(data.name, [0.7, 0.15, 0.15], seed=5, stratify_column="churned",
                                             shuffle=True, dataset_ids=[])

    # 3. Configure and start training.
    job = forge.start_training({
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
    }, job_id="churn-model-v1")
    print(f"Training started: {job.name}")

    # 4. Monitor: every metric point as it is recorded; the loop ends when the job does.
    epochs_seen = []
    for point in forge.watch_metrics(job.name):
        epochs_seen.append(point["epoch"])
        if not small:
            print(f"Epoch {point['epoch']}/{point['total_epochs']} - Loss: {point['training_loss']:.4f} - "
                  f"Val loss: {point['validation_loss']:.4f} - Accuracy: {point['accuracy']:.4f}")
    done = forge.wait(job.name)
    if done.state != "COMPLETED":
        raise RuntimeError(f"{done.name} ended {done.state}: {done.state_message}")
    print(f"{done.name}: {done.state_message}")

    # 5. Logs, SaveModel, and a check on held-out data.
    logs = list(forge.logs(job.name))
    for entry in logs[-3:]:
        print(f"[{entry['time']:%H:%M:%S}] {entry['level'].upper()}: {entry['message']}")
    saved_path, size, sha256 = forge.trainer.save_model(job.name, "churn/churn_model.pkl", "pickle")
    exported = forge.export_model(job.name, "pickle", scratch / "churn_model.pkl")
    same_bytes = hashlib.sha256((scratch / "churn_model.pkl").read_bytes()).hexdigest() == sha256 \
        == exported["sha256"]
    test_metrics = dict(done.test_metrics)  # the final model on the test split, which it never saw
    print(f"saved {saved_path} ({size} bytes, sha256 {sha256[:12]}...); {done.model_info.get('model_version')} on the test split: "
          f"accuracy {test_metrics['accuracy']:.3f}, F1 {test_metrics['f1_score']:.3f}")
    return {"churn_rate": churn_rate, "epochs_run": done.current_epoch, "epochs_asked": done.total_epochs,
            "epochs_streamed": epochs_seen, "log_entries": len(logs), "saved_path": saved_path,
            "saved_matches_export": same_bytes, "checkpoint_epoch": (done.checkpoint or {}).get("epoch", 0),
            **{f"test_{k}": v for k, v in sorted(test_metrics.items())}}


def _forget_earlier_run(forge: Engine) -> None:
    """An earlier run's job and datasets, when --data-dir is kept (ids are unique per project)."""
    try:
        forge.trainer.delete_job(f"projects/{PROJECT}/trainingJobs/churn-model-v1")
    except ForgeError:
        pass
    for old in ("customer-churn", "customer-churn-train", "customer-churn-validation", "customer-churn-test"):
        try:
            forge.data.delete(f"projects/{PROJECT}/datasets/{old}")
        except ForgeError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run on less data")
    parser.add_argument("--data-dir", type=Path, help="keep the engine's data here (default: temporary)")
    args = parser.parse_args()
    results = run(small=args.small, data_dir=args.data_dir)
    for key, value in results.items():
        if key != "epochs_streamed":
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
