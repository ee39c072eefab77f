"""What a training job asks for, in engine terms (the server translates the proto into this).

Plain dataclasses, JSON-serializable with `to_dict`/`from_dict`, because the spec is
stored in the metadata database and sent to worker processes.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import InvalidArgument

MODEL_TYPES = ("classification", "regression", "anomaly_detection", "forecasting", "recommendation")


@dataclass
class RegularizationSpec:
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0
    batch_norm: bool = False
    weight_decay: float = 0.0
    gradient_clip_norm: float = 0.0


@dataclass
class EarlyStoppingSpec:
    enabled: bool = False
    patience: int = 5
    metric: str = "val_loss"
    mode: str = ""  # "min" | "max" | "" (inferred from the metric)
    min_delta: float = 0.0
    restore_best: bool = False


@dataclass
class LRSchedulerSpec:
    type: str = ""
    step_size: int = 0
    gamma: float = 0.0
    warmup_epochs: int = 0
    min_lr: float = 0.0
    patience: int = 0
    metric: str = ""


@dataclass
class CheckpointSpec:
    enabled: bool = False
    save_best: bool = False
    save_latest: bool = False
    every_n_epochs: int = 1
    keep_last: int = 3
    monitor_metric: str = "val_loss"
    path: str = ""


@dataclass
class DataSpec:
    train_dataset: str = ""
    validation_dataset: str = ""
    test_dataset: str = ""
    label_column: str = ""
    feature_columns: list[str] = field(default_factory=list)
    validation_fraction: float = 0.15
    no_validation: bool = False
    text_column: str = ""
    time_column: str = ""
    user_column: str = ""
    item_column: str = ""
    window_size: int = 0  # 0: the default, 12
    validation: dict[str, Any] = field(default_factory=dict)  # ValidationRules the training data must pass


@dataclass
class CrossValidationSpec:
    """validation.cross_validation (engine/jobs/cross_validation.py)."""

    enabled: bool = False
    folds: int = 5
    shuffle: bool = False
    seed: int = 0
    final_model: str = "all_data"  # or "best_fold"
    metric: str = ""  # what decides the best fold; "": the checkpoints' monitor metric


@dataclass
class WorkerRetrySpec:
    max_retries: int = 0  # how many times a worker that died (killed by a signal) is replaced


MAX_RETRIES = 10

# Kubernetes quantity suffixes, as resources.memory is documented to take them.
_MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|M|G|T)?\s*")
# A worker's interpreter and libraries alone take more (measured: about 250 MiB with pandas and
# scikit-learn, 380 MiB with PyTorch): a smaller limit is a unit left off ("512" meant "512Mi").
MIN_MEMORY_BYTES = 32 * 2**20


# Data-parallel workers one job may ask for (resources.workers).
MAX_WORKERS = 256


_DURATION = re.compile(r"^\s*(-?(?:\d+(?:\.\d*)?|\.\d+))\s*(ms|s|m|h|d)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any, field: str) -> float:
    """Seconds, from a number of seconds or a string such as "90s", "1.5s" (the proto's JSON form
    of a Duration), "30m", "6h" or "2d". A negative one is returned as it is: the caller says
    what range its field takes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    found = _DURATION.match(value) if isinstance(value, str) else None
    if not found:
        raise InvalidArgument.field(field, f"{value!r} is not a duration: use seconds, or a string such as 90s, "
                                           "30m or 6h")
    return float(found.group(1)) * _SECONDS[found.group(2)]


def parse_cpu(text: str, field: str = "resources.cpu") -> float:
    """A Kubernetes CPU quantity ("2", "1.5", "500m") in cores; 0 for ""."""
    text = text.strip()
    if not text:
        return 0.0
    try:
        cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        cores = -1.0
    if not (cores > 0 and math.isfinite(cores)):
        raise InvalidArgument.field(field, f"{text!r} is not a CPU quantity; use cores such as \"2\" or \"500m\"")
    return cores


def parse_memory(text: str, field: str = "resources.memory") -> int:
    """Bytes of a memory quantity such as "512Mi", "2Gi" or "1.5G"; 0 for "" (no limit)."""
    if not text.strip():
        return 0
    found = _MEMORY.fullmatch(text)
    if not found:
        raise InvalidArgument.field(field, f"{text!r} is not a memory quantity: write e.g. '512Mi' or '2Gi'")
    size = int(float(found.group(1)) * _MEMORY_UNITS[found.group(2) or ""])
    if size < MIN_MEMORY_BYTES:
        hint = "" if found.group(2) else f": did you mean '{found.group(1)}Mi'?"
        raise InvalidArgument.field(field, f"{text!r} is {size} bytes, less than a worker needs to start "
                                           f"(at least 32Mi){hint}")
    return size


@dataclass
class ResourceSpec:
    cpu: str = ""
    memory: str = ""  # a Kubernetes quantity ("512Mi"); "" means the server's default
    gpu: int = 0
    timeout_seconds: float = 0.0
    priority: int = 0
    # Data-parallel workers of one PyTorch or XGBoost job (Ray Train, --executor ray); 0 or 1: one.
    workers: int = 0


@dataclass
class TrainingSpec:
    """The whole request. Defaults are the documented defaults of the proto."""

    framework: str = ""
    architecture: str = ""
    model_type: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int] = field(default_factory=list)
    # Fine-tuning: the model this job starts from (a training job, a model version or a
    # checkpoint file; resolved to its full name when the job is created) and, for neural
    # networks, the layers whose weights stay as they are.
    pretrained_path: str = ""
    frozen_layers: list[str] = field(default_factory=list)
    # What pretrained_path resolved to when the job was created: {"source", "state": the state
    # file's {path, sha256, size_bytes, uri}, "features", "classes"} (ModelTrainer._pretrained).
    pretrained: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 0.0  # 0 means the framework's default
    optimizer: str = ""
    optimizer_config: dict[str, Any] = field(default_factory=dict)
    loss_function: str = ""
    seed: int = 0
    gradient_accumulation_steps: int = 0
    mixed_precision: bool = False
    regularization: RegularizationSpec = field(default_factory=RegularizationSpec)
    early_stopping: EarlyStoppingSpec = field(default_factory=EarlyStoppingSpec)
    lr_scheduler: LRSchedulerSpec = field(default_factory=LRSchedulerSpec)
    checkpoints: CheckpointSpec = field(default_factory=CheckpointSpec)
    retry_policy: WorkerRetrySpec = field(default_factory=WorkerRetrySpec)
    cross_validation: CrossValidationSpec = field(default_factory=CrossValidationSpec)
    data: DataSpec = field(default_factory=DataSpec)
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    # Callbacks run after each epoch, as {"name", "type", "config", "priority"} (engine/callbacks):
    # the request's, less "checkpoint" and "lr_schedule" ones, which are read into checkpoints
    # and lr_scheduler (one home for each setting).
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    # Alert rules (engine/alerts/rules.py), webhook secrets included: the API never returns them.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    model_id: str = ""  # the registered model this job's result becomes a version of; default the job id

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TrainingSpec":
        nested = {
            "regularization": RegularizationSpec,
            "early_stopping": EarlyStoppingSpec,
            "lr_scheduler": LRSchedulerSpec,
            "checkpoints": CheckpointSpec,
            "retry_policy": WorkerRetrySpec,
            "cross_validation": CrossValidationSpec,
            "data": DataSpec,
            "resources": ResourceSpec,
        }
        kwargs = dict(raw)
        for key, kind in nested.items():
            if key in kwargs and isinstance(kwargs[key], dict):
                kwargs[key] = kind(**kwargs[key])
        return cls(**kwargs)
