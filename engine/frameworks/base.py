"""The contract every framework adapter meets.

An adapter (one module per framework, registered by name in registry.py) validates a
spec cheaply in the server process, without importing its framework, and builds a
TrainingRun inside a worker process, where the framework is imported. The worker
drives the run one epoch at a time, so pause, cancel, checkpoints and metrics work
the same way for every framework.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.errors import FailedPrecondition, InvalidArgument, Unimplemented
from engine.export.formats import parse_format
from engine.jobs.spec import TrainingSpec


INPUT_KINDS = ("tabular", "text", "interactions", "sequence")


@dataclass
class TrainingData:
    """Arrays a run trains on, built by engine/data/training_data.py.

    How X is laid out depends on `input_kind`:
    - "tabular": float64 [n, features] in `feature_names` order (categorical columns arrive
      one-hot encoded, as `preprocessing["onehot"]` records; images arrive as pixel columns,
      reshaped by the adapter with model_config.input_shape);
    - "text": object [n] of strings (data_config.text_column);
    - "interactions": object [n, 2] of (user id, item id) as strings; y is the rating;
    - "sequence": float64 [n, window] of past values of the series, oldest first; y is the
      next value (forecasting).
    """

    task: str  # one of engine.jobs.spec.MODEL_TYPES
    feature_names: list[str]
    label_name: str
    X_train: np.ndarray
    y_train: np.ndarray | None  # None only for anomaly detection without a label column
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    # Sorted distinct labels of train + validation (+ test) for classification; None otherwise.
    classes: list[Any] | None = None
    input_kind: str = "tabular"
    # How raw columns became X, for whoever feeds the exported model (recorded in model_info).
    preprocessing: dict[str, Any] = field(default_factory=dict)
    # No training rows: built from a trained model's recorded preprocessing, only to load that
    # model with FrameworkAdapter.load_run and predict (engine/jobs/evaluate.py). X_train and
    # y_train are then empty arrays of the input kind's layout (tabular [0, n_features],
    # sequence [0, window]), and runs take everything they learned from the training rows
    # (statistics, vocabularies, id maps, classes, anomaly labels) from the checkpoint.
    inference_only: bool = False


@dataclass
class Prediction:
    """What a trained model says about rows X (TrainingRun.predict).

    - values [n]: the predicted class label for classifiers (a value of `class_labels`, in the
      type of the training labels); the predicted value for regression, forecasting and
      recommendation; for anomaly detection 1 (anomaly) or 0 (normal).
    - probabilities [n, n_classes]: class probabilities in `class_labels` order (classifiers only);
      `values` is the class of the largest probability in each row.
    - scores [n]: anomaly scores, higher = more anomalous (anomaly detection only).
    """

    values: np.ndarray
    probabilities: np.ndarray | None = None
    scores: np.ndarray | None = None


@dataclass
class EpochResult:
    """What one epoch measured. Keys of `metrics` are TrainingMetrics field names
    (training_loss, validation_loss, accuracy, precision, recall, f1_score, rmse, mae, r2,
    learning_rate, gradient_norm); anything else goes to `extra`."""

    metrics: dict[str, float]
    extra: dict[str, float] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    # Set by runs that converge before the planned epochs (e.g. an estimator fit in one pass).
    finished: bool = False


class TrainingRun(abc.ABC):
    """One model being trained. Created by an adapter inside a worker process."""

    def data_parallel(self) -> None:
        """Train together with the other workers of an initialised collective (resources.workers;
        FrameworkAdapter.data_parallel says which). Only adapters that support it override this."""
        raise NotImplementedError(f"{type(self).__name__} does not train on several workers")

    def leave_data_parallel(self) -> None:
        """Training is over on every worker: what follows (the primary's export) is this
        worker's alone, so nothing of it may wait on the others."""

    #: The number of epochs this run will take; may be less than spec.epochs
    #: for estimators that fit in one pass (then 1).
    total_epochs: int
    #: The last epoch trained; 0 before the first.
    _epoch: int = 0

    def _require_trained(self) -> None:
        if self._epoch == 0:
            raise FailedPrecondition("the model has not been trained yet; train at least one epoch first")

    def _export_name(self, fmt: str, framework: str) -> str:
        """The canonical name of export format `fmt`, refused on field `format` when this run
        does not offer it."""
        name = parse_format(fmt)
        if name not in self.export_formats:
            raise InvalidArgument.field("format", f"{framework} models export as "
                                                  f"{' or '.join(self.export_formats)}, not {name}")
        return name

    @abc.abstractmethod
    def train_epoch(self, epoch: int) -> EpochResult:
        """Train epoch `epoch` (from 1) and measure it on the validation data."""

    @abc.abstractmethod
    def state_bytes(self) -> bytes:
        """Serialize everything needed to continue after the last trained epoch."""

    @abc.abstractmethod
    def restore(self, state: bytes) -> None:
        """Load what state_bytes returned, so the next train_epoch continues."""

    @abc.abstractmethod
    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Metrics of the current model on (X, y), same names as EpochResult.metrics."""

    @abc.abstractmethod
    def predict(self, X: np.ndarray) -> Prediction:
        """The current model's predictions on rows X, laid out as TrainingData documents for
        the run's input kind."""

    @abc.abstractmethod
    def export(self, fmt: str) -> bytes:
        """The model in export format `fmt` ("onnx", "pickle", "savedmodel", "torch")."""

    @property
    @abc.abstractmethod
    def export_formats(self) -> list[str]:
        """Formats export() accepts for this run."""


class FrameworkAdapter(abc.ABC):
    """One framework behind the common interface."""

    #: Registry key, e.g. "sklearn".
    name: ClassVar[str]
    #: The TrainingData input kinds this framework trains on (see INPUT_KINDS).
    input_kinds: ClassVar[tuple[str, ...]] = ("tabular",)
    #: Whether missing feature values are fine (XGBoost learns a direction for them).
    accepts_missing_values: ClassVar[bool] = False
    #: How one job trains on several data-parallel workers (resources.workers, on Ray): "torch"
    #: (torch.distributed, Ray Train's TorchTrainer) or "xgboost" (XGBoost's collective, Ray
    #: Train's XGBoostTrainer); None: not at all.
    data_parallel: ClassVar[str | None] = None
    #: Whether a run can start from an earlier model of this framework (fine_tune_run), and
    #: whether it can keep some of that model's layers frozen (model_config.frozen_layers).
    fine_tuning: ClassVar[bool] = False
    freezes_layers: ClassVar[bool] = False

    def worker_share(self, data: TrainingData, rank: int, world: int) -> TrainingData:
        """The data worker `rank` of `world` data-parallel workers trains on: all of it unless
        the framework shares rows out up front (the run may share them out per epoch instead)."""
        return data

    @abc.abstractmethod
    def validate(self, spec: TrainingSpec) -> None:
        """Raise engine.errors.InvalidArgument naming the field path (e.g.
        `model_config.architecture`) for anything this framework cannot honour.
        Must not import the framework: it runs in the server process."""

    @abc.abstractmethod
    def create_run(self, spec: TrainingSpec, data: TrainingData) -> TrainingRun:
        """Build a fresh run. Imports the framework. Runs in the worker process."""

    @abc.abstractmethod
    def load_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> TrainingRun:
        """Rebuild a run from a checkpoint (for resume and for export after completion)."""

    def fine_tune_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> TrainingRun:
        """A fresh run (its own epochs, optimizer and schedule) of the model whose state (what a
        run's state_bytes wrote) it starts from, on `data`, with spec.frozen_layers frozen. Only
        adapters with `fine_tuning` override it."""
        raise Unimplemented(f"model_config.pretrained_path: {self.name} models cannot be fine-tuned")

    def planned_epochs(self, spec: TrainingSpec) -> int:
        """The total_epochs a run of `spec` will have, known without importing the framework
        (estimators that fit in one pass have 1). Server side."""
        return spec.epochs

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Library versions, e.g. {"scikit-learn": "1.9.0"}; imports the framework."""
