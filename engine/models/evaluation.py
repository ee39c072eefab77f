"""EvaluateModel: a trained model's metrics on any dataset, computed in a process of its own.

The dataset is fed to the model the way its training data was: when the training data came
out of a data pipeline or a transform, that fitted processing is applied first, unless the
dataset came out of the very same processing (then it is applied already).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import names
from engine.data.manager import DataManager
from engine.errors import FailedPrecondition, InvalidArgument
from engine.jobs import states
from engine.jobs.evaluate import evaluate_in_process
from engine.jobs.trainer import ModelTrainer
from engine.models.registry import ModelRegistry
from engine.storage.artifacts import ArtifactStore

DEFAULT_TIMEOUT_SECONDS = 600.0


class ModelEvaluator:
    def __init__(self, trainer: ModelTrainer, models: ModelRegistry, data: DataManager, store: ArtifactStore,
                 scratch_dir: Path, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        self._trainer, self._models, self._data, self._store = trainer, models, data, store
        self._scratch_dir = Path(scratch_dir)
        self.timeout_seconds = timeout_seconds

    def evaluate(self, name: str, dataset: str) -> dict[str, Any]:
        """The evaluation report (engine.frameworks.metrics.evaluation_report, plus row_count) of a
        completed job's or a model version's model on `dataset`."""
        if "/models/" in name:
            version = self._models.get(name)
            if "state" not in (version.artifacts or {}) or not version.training_job:
                return self._evaluate_artifact(version, dataset)
        job, state, model_info = self._model(name)
        ds = self._data.get(names.resolve(dataset, "datasets", "dataset", job.project), field="dataset")
        local = self._store.fetch(state, self._scratch_dir / f".evaluate-{state['sha256']}.state")
        try:
            return evaluate_in_process({
                "spec": job.spec,
                "state": {"path": str(local), "sha256": state["sha256"]},
                "preprocessing": model_info.get("preprocessing") or {},
                "classes": model_info.get("classes") or [],
                "metric_reference": model_info.get("metric_reference") or {},
                "dataset": {"path": self._data.local_file(ds), "sha256": ds.sha256},
                "fitted_processing": self._processing_to_apply(model_info, ds),
            }, self.timeout_seconds)
        finally:
            if not self._store.local:
                local.unlink(missing_ok=True)

    def _evaluate_artifact(self, version, dataset: str) -> dict[str, Any]:
        """A version LoadModel registered from a file without a job behind it: run the file itself
        with its own library (ONNX in onnxruntime, a pickle or XGBoost JSON), labels from the
        dataset's label column."""
        ds = self._data.get(names.resolve(dataset, "datasets", "dataset", version.project), field="dataset")
        if not ds.label_column:
            raise InvalidArgument.field("dataset", f"{ds.name} has no label column, and {version.name} came from a "
                                                   "file that does not say its label: give the dataset a label column")
        fmt = next((f for f in ("onnx", "pickle", "xgboost_json") if f in (version.artifacts or {})), None)
        if fmt is None:
            raise FailedPrecondition(f"{version.name} offers no format the service can run for an evaluation")
        info = version.artifacts[fmt]
        local = self._store.fetch(info, self._scratch_dir / f".evaluate-{info['sha256']}.{fmt}")
        model_info = version.model_info or {}
        try:
            return evaluate_in_process({
                "artifact": {"path": str(local), "sha256": info["sha256"], "format": fmt},
                "task": version.model_type or model_info.get("task", ""),
                "features": model_info.get("features") or [], "classes": model_info.get("classes") or [],
                "raw_columns": bool(info.get("raw_columns")), "label_column": ds.label_column,
                "dataset": {"path": self._data.local_file(ds), "sha256": ds.sha256},
            }, self.timeout_seconds)
        finally:
            if not self._store.local:
                local.unlink(missing_ok=True)

    def _model(self, name: str):
        """(the job that trained it, its state artifact, its model info)."""
        if "/models/" in name:
            version = self._models.get(name)
            return self._trainer.get_job(version.training_job), version.artifacts["state"], version.model_info or {}
        job = self._trainer.get_job(names.resolve(name, "trainingJobs", "name"))
        if job.state != states.COMPLETED:
            raise FailedPrecondition(f"job {job.name} is {job.state}: only COMPLETED jobs have a model to evaluate")
        return job, job.artifacts["state"], job.model_info or {}

    def _processing_to_apply(self, model_info: dict[str, Any], dataset) -> dict[str, Any] | None:
        trained_on = ((model_info.get("datasets") or {}).get("train") or {}).get("processed_by") or {}
        if not trained_on:
            return None
        made_by = self._trainer.processed_by(dataset)
        if (made_by.get("operation"), made_by.get("parameters")) == \
                (trained_on.get("operation"), trained_on.get("parameters")):
            return None  # the dataset came out of the same fitted processing
        if "fitted" in trained_on:
            return trained_on["fitted"]
        # Jobs recorded before the fitted processing was kept with them: look it up.
        return self._trainer.fitted_processing_of(trained_on)
