"""Extension integration: the seed's extension_integration example, where an application turns
training on inside itself (`ai.NewExtension(ai.WithEnableTraining(true), ...)`), starts and
stops it with the app, resolves the trainer from its container and plugs in its own code.

Here the application embeds the forge-training server in its own process:

| seed | here |
| --- | --- |
| `ai.WithTrainingConfig(ai.TrainingConfiguration{...})` | `server.config.ServerConfig` (the same settings as `forge-training serve`'s flags) |
| `CheckpointPath`, `ModelPath`, `DataPath` | one `data_dir`, holding `checkpoints/`, `models/` and `datasets/` |
| `MaxConcurrentJobs` | `max_concurrent_jobs` |
| `DefaultResources.Timeout`, `.Memory` | `default_job_timeout_seconds`, `default_job_memory_bytes` |
| `Storage{Type: "local", Local: {BasePath}}` | `StorageConfig(type="local", base_path=...)` (s3 and gcs too) |
| `app.Start(ctx)` / `app.Stop(ctx)` | `server.app.create_server(config)` / `RunningServer.stop(grace)`: running jobs checkpoint and pause |
| `forge.InjectType[ai.ModelTrainer](app.Container())` | a `Client` on the loopback address: `client.trainer`, `client.data`, `client.pipelines` are the ModelTrainer, DataManager and PipelineManager |

The application's own code plugs in as a custom pipeline stage: `release_gate` below is a
function of this process, registered in `ServerConfig.pipeline_functions` (a standalone server
takes `--pipeline-function NAME=MODULE:CALLABLE`). It reads the evaluation's metrics, applies
the application's release rule, writes to the application's audit log and decides whether the
deployment stage runs. Clients only name such functions; they never send code.

What is not supported, said plainly:
- Custom training callbacks. `TrainingRequest.callbacks` is refused with UNIMPLEMENTED (this
  example shows the refusal); the built-in ones are configured in `training_config`: early
  stopping (used here), learning-rate schedules and checkpoints.
- Custom framework adapters from the application: training runs in freshly spawned worker
  processes, which know only the built-in frameworks (scikit-learn, XGBoost, PyTorch, TensorFlow).
- Server-wide default CPU, GPU or priority (`DefaultResources.CPU/GPU/Priority`): those are per
  job (`TrainingRequest.resources`); only the timeout and the memory limit have server defaults.
- Separate checkpoint, model and data paths, Azure storage, and a dependency-injection
  container: the services are reached over gRPC, even from the same process.

    .venv/bin/python examples/extension_integration.py [--small] [--data-dir DIR]

It needs no running server: it starts one inside itself (on a free loopback port, with a
temporary data dir unless --data-dir is given) and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the server and engine packages

from sklearn.datasets import load_breast_cancer  # noqa: E402

from _common import upload_frame  # noqa: E402
from forge.training import Client, ForgeTrainingError, common_pb2, model_pb2  # noqa: E402
from forge.training.v1 import pipeline_pb2  # noqa: E402


class EmbeddedTraining:
    """forge-training running inside this process, on its own event loop thread: started with
    the application, stopped with it (jobs still running checkpoint and pause, and resume when
    the application starts again on the same data dir)."""

    def __init__(self, config):
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="forge-training", daemon=True)
        self._running = None
        self.client: Client | None = None

    def __enter__(self) -> EmbeddedTraining:
        from server.app import create_server

        self._thread.start()
        self._running = asyncio.run_coroutine_threadsafe(create_server(self.config), self._loop).result(60)
        self.client = Client(f"127.0.0.1:{self._running.port}")
        return self

    def __exit__(self, *exc_info) -> None:
        self.client.close()
        stop = self._running.stop(self.config.shutdown_grace_seconds)
        asyncio.run_coroutine_threadsafe(stop, self._loop).result(self.config.shutdown_grace_seconds + 60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@dataclass
class ReleaseGate:
    """The application's release rule, run by the server as the pipeline stage `release_gate`:
    a model ships when it finds enough of the malignant cases and is accurate overall. Every
    decision goes to the application's audit log."""

    min_recall: float
    min_accuracy: float
    audit: list[str] = field(default_factory=list)

    def __call__(self, parameters: dict, context) -> dict:
        recall, accuracy = float(parameters["recall"]), float(parameters["accuracy"])
        approved = recall >= self.min_recall and accuracy >= self.min_accuracy
        reason = (f"recall {recall:.3f} (needs {self.min_recall}), accuracy {accuracy:.3f} "
                  f"(needs {self.min_accuracy})")
        self.audit.append(f"{parameters['model']}: {'approved' if approved else 'rejected'}, {reason}")
        context.log(f"release gate: {'approved' if approved else 'rejected'}: {reason}")  # into WatchExecution
        return {"approved": approved, "reason": reason}


def training_config(data_dir: Path, gate: ReleaseGate):
    """The seed's TrainingConfiguration, as this service's server configuration."""
    from engine.storage.artifacts import StorageConfig
    from server.config import ServerConfig

    return ServerConfig(
        address="127.0.0.1:0",                      # loopback only, a free port: nothing outside reaches it
        data_dir=data_dir,                           # CheckpointPath, ModelPath and DataPath in one
        max_concurrent_jobs=5,                       # MaxConcurrentJobs
        default_job_timeout_seconds=6 * 3600,        # DefaultResources.Timeout
        default_job_memory_bytes=16 * 1024 ** 3,     # DefaultResources.Memory: 16Gi
        storage=StorageConfig(type="local", base_path=str(data_dir / "training-storage")),  # Storage
        pipeline_functions={"release_gate": gate},  # the application's own code
        shutdown_grace_seconds=15.0,
    )


def run(small: bool = False, data_dir: Path | None = None) -> dict:
    gate = ReleaseGate(min_recall=0.8, min_accuracy=0.9)
    with tempfile.TemporaryDirectory() as tmp:
        config = training_config(Path(data_dir or tmp), gate)
        with EmbeddedTraining(config) as training:
            results = use_training(training.client, gate, small)
        results["artifacts_under_storage_path"] = any((Path(config.storage.base_path) / "models").rglob("*.onnx"))
    results["audit"] = gate.audit
    return results


def use_training(client: Client, gate: ReleaseGate, small: bool) -> dict:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["target"] = 1 - frame["target"]  # 1: malignant, the class the release rule is about
    data = upload_frame(client, frame, "tumours", label_column="target")
    train, val, test = client.split_dataset(data.name, [0.7, 0.15, 0.15], seed=3, stratify_column="target")

    # The seed's trainer.StartTraining, with its early stopping (a built-in callback).
    request = {
        "modelType": "classification",
        "modelConfig": {"framework": "xgboost", "architecture": "classifier", "hyperparameters": {"max_depth": 3}},
        "trainingConfig": {"epochs": 200, "learningRate": 0.3 if small else 0.1, "seed": 3,
                           "earlyStopping": {"enabled": True, "metric": "val_loss", "patience": 5,
                                             "restoreBest": True}},
        "dataConfig": {"trainDataset": train.name, "validationDataset": val.name, "testDataset": test.name,
                       "labelColumn": "target"},
    }
    job = client.start_training(request, training_job_id="my-model")
    print(f"training started: {job.name}")
    job = client.wait(job.name, timeout=300)
    print(f"{job.name}: {common_pb2.JobState.Name(job.state)}, {job.state_message}")

    # A custom callback is not something this service runs: the request says so.
    try:
        client.start_training({**request, "callbacks": [{"name": "notify", "type": "slack_notifier"}]})
        refused = ""
    except ForgeTrainingError as exc:
        refused = exc.code.name
        print(f"custom callback refused: {refused}: {exc.message}")

    # The application's release gate between evaluation and deployment.
    pipeline = client.create_pipeline({"displayName": "gated release", "stages": [
        {"id": "evaluate", "type": "model_evaluation",
         "parameters": {"model": job.model_version, "dataset": test.name}},
        {"id": "gate", "type": "custom", "custom_function": "release_gate", "dependencies": ["evaluate"],
         "parameters": {"model": job.model_version, "recall": "${evaluate.recall}",
                        "accuracy": "${evaluate.accuracy}"}},
        {"id": "deploy", "type": "model_deployment", "dependencies": ["gate"], "condition": "gate.approved == True",
         "parameters": {"model": job.model_version, "stage": "production", "destination": "released/"}},
    ]}, pipeline_id="gated-release")
    execution = client.execute_pipeline(pipeline.name)
    for event in client.watch_execution(execution.name):
        if event.type == pipeline_pb2.EXECUTION_EVENT_TYPE_STAGE_LOG:
            print(f"  {event.stage_id}: {event.message}")
    done = client.get_execution(execution.name)
    stages = {s.stage_id: pipeline_pb2.StageState.Name(s.state).removeprefix("STAGE_STATE_").lower()
              for s in done.stages}
    version = client.get_model(job.model_version)
    return {"job_state": common_pb2.JobState.Name(job.state), "epochs_run": job.current_epoch,
            "epochs_asked": job.total_epochs, "early_stopping": job.state_message,
            "custom_callback_refused": refused, "execution_state": common_pb2.JobState.Name(done.state),
            "stages": stages, "model_stage": model_pb2.ModelStage.Name(version.stage),
            **{f"test_{k}": v for k, v in sorted(job.test_metrics.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick run")
    parser.add_argument("--data-dir", type=Path, help="keep the embedded server's data here (default: temporary)")
    args = parser.parse_args()
    results = run(small=args.small, data_dir=args.data_dir)
    for key, value in results.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
