"""What the neural-network adapters (PyTorch, Keras) share: validation of TrainingConfig and
of the MLP hyperparameters, defaults, and class weights. No framework is imported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.callbacks import lr_schedule
from engine.errors import InvalidArgument
from engine.jobs.spec import TrainingSpec

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
OPTIMIZER_OPTIONS = {"momentum", "nesterov", "beta1", "beta2", "epsilon", "rho"}
LOSSES = {
    "classification": ("cross_entropy", "binary_cross_entropy"),
    "regression": ("mse", "mae", "huber"),
}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse"}
ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid")
# Hyperparameters of the "mlp" architecture: name -> (check, what a valid value is).
MLP_HYPERPARAMETERS = {
    "hidden_units": "a list of positive integers, e.g. [64, 32]",
    "activation": f"one of {', '.join(ACTIVATIONS)}",
    "class_weight": "'balanced' or a map from class label to weight",
}
DEFAULT_LEARNING_RATE = 0.001
MAX_EPOCHS = 10_000


def learning_rate(spec: TrainingSpec) -> float:
    return spec.learning_rate or DEFAULT_LEARNING_RATE


def optimizer_name(spec: TrainingSpec) -> str:
    return spec.optimizer or "adam"


def loss_name(spec: TrainingSpec) -> str:
    return spec.loss_function or DEFAULT_LOSS[spec.model_type]


def hidden_units(spec: TrainingSpec) -> list[int]:
    return [int(u) for u in spec.hyperparameters.get("hidden_units", [64, 32])]


def activation(spec: TrainingSpec) -> str:
    return str(spec.hyperparameters.get("activation", "relu"))


def validate_mlp(spec: TrainingSpec, framework: str) -> None:
    """Check everything of `spec` an MLP on tabular data can honour; InvalidArgument names the field."""
    if spec.architecture != "mlp":
        raise InvalidArgument.field("model_config.architecture",
                                    f"{framework} supports 'mlp' for tabular data; got {spec.architecture!r}")
    if spec.model_type not in LOSSES:
        raise InvalidArgument.field("model_type", f"{framework} mlp trains CLASSIFICATION or REGRESSION models; "
                                                  f"got {spec.model_type.upper()}")
    if not 1 <= spec.epochs <= MAX_EPOCHS:
        raise InvalidArgument.field("training_config.epochs", f"must be between 1 and {MAX_EPOCHS}")
    if spec.batch_size < 1:
        raise InvalidArgument.field("training_config.batch_size", "must be at least 1")
    if spec.optimizer and spec.optimizer not in OPTIMIZERS:
        raise InvalidArgument.field("training_config.optimizer",
                                    f"unknown optimizer {spec.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    unknown = set(spec.optimizer_config) - OPTIMIZER_OPTIONS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidArgument.field(f"training_config.optimizer_config.{name}",
                                    f"unknown option: use {', '.join(sorted(OPTIMIZER_OPTIONS))}")
    momentum = spec.optimizer_config.get("momentum", 0.0)
    if not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise InvalidArgument.field("training_config.optimizer_config.momentum", "must be in [0, 1)")
    if spec.loss_function and spec.loss_function not in LOSSES[spec.model_type]:
        raise InvalidArgument.field("training_config.loss_function",
                                    f"{spec.loss_function!r} does not fit {spec.model_type}: use one of "
                                    f"{', '.join(LOSSES[spec.model_type])}")
    reg = spec.regularization
    if not 0 <= reg.dropout < 1:
        raise InvalidArgument.field("training_config.regularization.dropout", "must be in [0, 1)")
    for name in ("l1", "l2", "weight_decay", "gradient_clip_norm"):
        if getattr(reg, name) < 0:
            raise InvalidArgument.field(f"training_config.regularization.{name}", "must be >= 0")
    if spec.gradient_accumulation_steps < 0:
        raise InvalidArgument.field("training_config.gradient_accumulation_steps", "must be >= 0")
    lr_schedule.validate(spec.lr_scheduler, spec.epochs)
    for name, value in spec.hyperparameters.items():
        if name not in MLP_HYPERPARAMETERS:
            raise InvalidArgument.field(f"model_config.hyperparameters.{name}",
                                        f"unknown hyperparameter for mlp: use {', '.join(MLP_HYPERPARAMETERS)}")
        if not _valid_hyperparameter(name, value):
            raise InvalidArgument.field(f"model_config.hyperparameters.{name}",
                                        f"must be {MLP_HYPERPARAMETERS[name]}")
    if spec.hyperparameters.get("class_weight") is not None and spec.model_type != "classification":
        raise InvalidArgument.field("model_config.hyperparameters.class_weight", "applies to classification only")


def _valid_hyperparameter(name: str, value: Any) -> bool:
    if name == "hidden_units":
        return (isinstance(value, list) and bool(value)
                and all(isinstance(u, (int, float)) and u >= 1 and float(u).is_integer() for u in value))
    if name == "activation":
        return value in ACTIVATIONS
    if name == "class_weight":
        return value == "balanced" or (isinstance(value, dict)
                                       and all(isinstance(w, (int, float)) and w > 0 for w in value.values()))
    return False


def class_weights(spec: TrainingSpec, y: np.ndarray, classes: list[Any]) -> np.ndarray | None:
    """Per-class loss weights in `classes` order, or None when not asked for.

    "balanced" weighs each class by n_samples / (n_classes * class_count), as scikit-learn does."""
    setting = spec.hyperparameters.get("class_weight")
    if setting is None:
        return None
    if setting == "balanced":
        counts = np.array([(y == c).sum() for c in classes], dtype=np.float64)
        return len(y) / (len(classes) * np.maximum(counts, 1))
    by_label = {str(k): float(v) for k, v in setting.items()}
    return np.array([by_label.get(str(c), 1.0) for c in classes], dtype=np.float64)
