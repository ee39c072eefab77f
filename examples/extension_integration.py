"""Extension integration: the seed's extension_integration example ("Option 1"), where an
application turns training on inside itself (`ai.NewExtension(ai.WithEnableTraining(true),
...)`), starts and stops it with the app, resolves the trainer from its container and plugs in
its own code.

Here the application embeds the forge-training service in its own process:

| seed | here |
| --- | --- |
| `ai.WithTrainingConfig(ai.TrainingConfiguration{...})` | the same keys in YAML (`TRAINING_CONFIGURATION` below; `forge-training serve --config` reads the same file), loaded by `server.main.load_config` with the environment and flags over it |
| `Enabled` | `enabled` (false: datasets and models are served, training methods answer UNAVAILABLE, no worker starts) |
| `CheckpointPath`, `ModelPath`, `DataPath` | `checkpoint_path`, `model_path`, `data_path` |
| `MaxConcurrentJobs`, `DefaultResources{CPU, Memory, GPU, Timeout, Priority}` | `max_concurrent_jobs`, `default_resources` (for jobs whose request leaves them unset; recorded in each job) |
| `Storage{Type: "local", Local: {BasePath}}` | `storage` (local, s3, gcs or azure) |
| `app.Start(ctx)` / `app.Stop(ctx)` | `server.app.BackgroundServer(config)` / `.stop()`: running jobs checkpoint and pause (an asyncio application awaits `create_server(config)` on its own loop) |
| `forge.InjectType[ai.ModelTrainer](app.Container())` | a `Client` on the bound loopback port: `client.trainer`, `client.data`, `client.pipelines` are the ModelTrainer, DataManager and PipelineManager (in-process without gRPC: `engine.Engine`, see basic_training.py) |

The application's own code plugs in twice. As a custom pipeline stage: `release_gate` below is
a function of this process, registered in `ServerConfig.pipeline_functions` (a standalone
server takes `--pipeline-function NAME=MODULE:CALLABLE`). It reads the evaluation's metrics,
applies the application's release rule, writes to the application's audit log and decides
whether the deployment stage runs. And as a training callback (the seed's custom callbacks):
`ReleaseReady` below, registered in `ServerConfig.callbacks` as "release_ready" (a standalone
server takes `--callback NAME=MODULE:CLASS`), stops a job as soon as its validation metrics
meet the same rule; it runs in the job's worker process, imported from this module. Clients
only name such functions and callbacks; they never send code.

What is not supported, said plainly:
- Custom framework adapters from the application: training runs in worker processes, which
  know only the built-in frameworks (scikit-learn, XGBoost, PyTorch, TensorFlow).
- A dependency-injection container: the services are reached over gRPC, even from the same
  process (or called directly through `engine.Engine`).

    .venv/bin/python examples/extension_integration.py [--small] [--data-dir DIR]

It needs no running server: it starts one inside itself (on a free loopback port, with a
temporary data dir unless --data-dir is given) and stops it at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the server and engine packages

from sklearn.datasets import load_breast_cancer  # noqa: E402

from _common import upload_frame  # noqa: E402
from engine.callbacks.base import Callback  # noqa: E402
from forge.training import Client, ForgeTrainingError, common_pb2, model_pb2  # noqa: E402
from forge.training.v1 import pipeline_pb2  # noqa: E402


class ReleaseReady(Callback):
    """The application's training callback: stops the job once `patience` epochs in a row meet
    the release rule on the validation data (a model good enough to ship needs no more rounds)."""

    def __init__(self, *, min_recall: float, min_accuracy: float, patience: int = 2):
        self.min_recall, self.min_accuracy, self.patience = min_recall, min_accuracy, patience
        self.streak = 0
        self._reason = ""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        ready = metrics.get("recall", 0) >= self.min_recall and metrics.get("accuracy", 0) >= self.min_accuracy
        self.streak = self.streak + 1 if ready else 0
        if self.streak >= self.patience:
            self._reason = f"release rule met on validation for {self.streak} epochs (epoch {epoch})"
        return bool(self._reason)

    @property
    def stop_reason(self) -> str:
        return self._reason

    def state_dict(self) -> dict:
        return {"streak": self.streak}

    def load_state_dict(self, state: dict) -> None:
        self.streak = state.get("streak", 0)


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


# The seed's TrainingConfiguration, as the service's configuration file.
TRAINING_CONFIGURATION = """
enabled: true
data_path: {data_dir}
checkpoint_path: {data_dir}/checkpoints
model_path: {data_dir}/training-storage
max_concurrent_jobs: 5
default_resources:
  cpu: 8
  memory: 16Gi
  gpu: 1        # a framework that sees no GPU trains on the CPU, and the job's log says so
  timeout: 6h
  priority: 2
storage:
  type: local
server:
  address: 127.0.0.1:0      # loopback only, a free port: nothing outside reaches it
  shutdown_grace: 15s
"""


def training_config(data_dir: Path, gate: ReleaseGate):
    """The server configuration from the YAML above, plus the application's own code."""
    from server.main import load_config

    path = data_dir / "forge.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(TRAINING_CONFIGURATION.format(data_dir=data_dir))
    config = load_config(path)
    # The worker imports the callback from this module by name, as it would an installed package.
    module = __name__ if __name__ != "__main__" else Path(__file__).stem
    return dataclasses.replace(config, pipeline_functions={"release_gate": gate},
                               callbacks={"release_ready": f"{module}:ReleaseReady"})


def run(small: bool = False, data_dir: Path | None = None) -> dict:
    from server.app import BackgroundServer

    gate = ReleaseGate(min_recall=0.8, min_accuracy=0.9)
    with tempfile.TemporaryDirectory() as tmp:
        config = training_config(Path(data_dir or tmp).resolve(), gate)
        with BackgroundServer(config) as server, Client(f"127.0.0.1:{server.port}") as client:
            results = use_training(client, gate, small)
        results["artifacts_under_model_path"] = any((Path(config.storage.base_path) / "artifacts").rglob("*.onnx"))
        results["release_under_model_path"] = any((Path(config.storage.base_path) / "models").rglob("*.onnx"))
        results["checkpoints_under_checkpoint_path"] = bool(list(Path(config.checkpoint_dir).rglob("*.ckpt")))
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
                                             "restoreBest": True},
                           "checkpoints": {"enabled": True, "saveLatest": True}},
        "dataConfig": {"trainDataset": train.name, "validationDataset": val.name, "testDataset": test.name,
                       "labelColumn": "target"},
    }
    job = client.start_training(request, training_job_id="my-model")
    resources = job.spec.resources  # the configuration's default_resources, recorded in the job
    print(f"default resources given to the job: cpu {resources.cpu}, gpu {resources.gpu}, "
          f"priority {resources.priority}")
    print(f"training started: {job.name}")
    job = client.wait(job.name, timeout=300)
    print(f"{job.name}: {common_pb2.JobState.Name(job.state)}, {job.state_message}")

    # The application's callback, by the name it registered: the job stops once the rule holds.
    rule = {"min_recall": gate.min_recall, "min_accuracy": gate.min_accuracy}
    ready = client.wait(client.start_training({
        **request, "trainingConfig": {"epochs": 200, "learningRate": 0.1, "seed": 3},
        "callbacks": [{"name": "ship-it", "type": "release_ready", "config": rule}]}).name, timeout=300)
    print(f"{ready.name}: {common_pb2.JobState.Name(ready.state)}, {ready.state_message}")
    # A callback the server does not know is refused, listing those it does; code is never sent.
    try:
        client.start_training({**request, "callbacks": [{"name": "notify", "type": "slack_notifier"}]})
        refused = ""
    except ForgeTrainingError as exc:
        refused = exc.code.name
        print(f"unknown callback refused: {refused}: {exc.message}")

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
    return {"job_resources": (resources.cpu, resources.gpu, resources.priority),
            "job_state": common_pb2.JobState.Name(job.state), "epochs_run": job.current_epoch,
            "epochs_asked": job.total_epochs, "early_stopping": job.state_message,
            "callback_job": (common_pb2.JobState.Name(ready.state), ready.current_epoch, ready.state_message),
            "unknown_callback_refused": refused, "execution_state": common_pb2.JobState.Name(done.state),
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
