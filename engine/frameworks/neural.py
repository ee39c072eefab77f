"""What the neural-network adapters (PyTorch, Keras) share: validation of TrainingConfig and
of the MLP hyperparameters, defaults, and class weights. No framework is imported here.
"""

from __future__ import annotations

import dataclasses

import math
from typing import Any

import numpy as np

from engine.callbacks import lr_schedule
from engine.callbacks.early_stopping import metric_key
from engine.errors import InvalidArgument
from engine.jobs.spec import TrainingSpec

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
_REGRESSION_LOSSES = ("mse", "mae", "huber")
LOSSES = {
    "classification": ("cross_entropy", "binary_cross_entropy"),
    "regression": _REGRESSION_LOSSES,
    "forecasting": _REGRESSION_LOSSES,
    "recommendation": _REGRESSION_LOSSES,
}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse", "forecasting": "mse",
                "recommendation": "mse"}
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


# Which optimizers each optimizer_config option applies to.
OPTION_OWNERS = {
    "momentum": ("sgd", "rmsprop"),
    "nesterov": ("sgd",),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "epsilon": ("adam", "adamw", "rmsprop"),
    "rho": ("rmsprop",),
}
TC = "training_config"


_POSITIVE_INTS = "a list of positive integers"
# Every network architecture the API names: the model types it trains, the input kind it
# reads (engine.frameworks.base.TrainingData), and its hyperparameters with what is valid.
NETWORKS: dict[str, dict[str, Any]] = {
    "mlp": {"model_types": ("classification", "regression"), "input_kind": "tabular",
            "hyperparameters": ("hidden_units", "activation", "class_weight")},
    "cnn": {"model_types": ("classification",), "input_kind": "tabular",
            "hyperparameters": ("filters", "kernel_size", "hidden_units", "activation", "class_weight")},
    "text_classifier": {"model_types": ("classification",), "input_kind": "text",
                        "hyperparameters": ("embedding_dim", "vocab_size", "max_length", "hidden_units",
                                            "activation", "class_weight")},
    "lstm": {"model_types": ("forecasting",), "input_kind": "sequence",
             "hyperparameters": ("hidden_size", "num_layers")},
    "matrix_factorization": {"model_types": ("recommendation",), "input_kind": "interactions",
                             "hyperparameters": ("embedding_dim",)},
}
HYPERPARAMETERS = {
    **MLP_HYPERPARAMETERS,
    "filters": f"{_POSITIVE_INTS} (convolution channels per layer), e.g. [16, 32]",
    "kernel_size": "an odd integer >= 1, e.g. 3",
    "embedding_dim": "an integer >= 1, e.g. 32",
    "vocab_size": "an integer >= 2 (words kept, most frequent first), e.g. 5000",
    "max_length": "an integer >= 1 (tokens per text), e.g. 64",
    "hidden_size": "an integer >= 1 (LSTM units), e.g. 32",
    "num_layers": "an integer between 1 and 4",
}
_NEEDS = {"text": "data_config.text_column", "interactions": "data_config.user_column and item_column",
          "sequence": "model_type FORECASTING with a numeric label column", "tabular": "numeric feature columns"}


# The hyperparameters that shape a network's layers: a fine-tuning job keeps its parent's.
NETWORK_HYPERPARAMETERS = ("hidden_units", "activation", "filters", "kernel_size", "embedding_dim", "vocab_size",
                           "max_length", "hidden_size", "num_layers")


def parent_network_spec(spec: TrainingSpec) -> TrainingSpec:
    """For a fine-tuning job, its spec with the parent's network: the layer-shaping
    hyperparameters, input shape, dropout and batch normalization the parent was trained with
    (recorded in spec.pretrained["network"]); the job's own spec otherwise."""
    network = (spec.pretrained or {}).get("network")
    if not network:
        return spec
    hyperparameters = {k: v for k, v in spec.hyperparameters.items() if k not in NETWORK_HYPERPARAMETERS}
    hyperparameters.update({k: v for k, v in network.get("hyperparameters", {}).items()
                            if k in NETWORK_HYPERPARAMETERS})
    regularization = dataclasses.replace(spec.regularization, dropout=network.get("dropout", 0.0),
                                         batch_norm=network.get("batch_norm", False))
    return dataclasses.replace(spec, hyperparameters=hyperparameters, regularization=regularization,
                              input_shape=list(network.get("input_shape") or spec.input_shape))


def validate_network(spec: TrainingSpec, framework: str, available: tuple[str, ...]) -> None:
    """Check `spec` for any network architecture: InvalidArgument names the field, Unimplemented
    says which architectures this framework builds."""
    from engine.data.training_data import input_kind
    from engine.errors import Unimplemented

    arch = spec.architecture
    if arch not in NETWORKS:
        raise InvalidArgument.field("model_config.architecture",
                                    f"unknown {framework} architecture {arch!r}: use one of {', '.join(available)}")
    if arch not in available:
        raise Unimplemented(f"{framework} architecture {arch!r} is not implemented yet; available: "
                            f"{', '.join(available)}")
    network = NETWORKS[arch]
    if spec.model_type not in network["model_types"]:
        raise InvalidArgument.field("model_type", f"{framework} {arch} trains "
                                                  f"{' or '.join(t.upper() for t in network['model_types'])} "
                                                  f"models; got {spec.model_type.upper() or 'none'}")
    kind = input_kind(spec)
    if kind != network["input_kind"]:
        raise InvalidArgument.field("model_config.architecture",
                                    f"{arch} reads {network['input_kind']} input ({_NEEDS[network['input_kind']]}) "
                                    f"but this job's data is {kind}")
    if arch == "cnn":
        shape = spec.input_shape
        if len(shape) not in (2, 3) or any(d < 1 for d in shape):
            raise InvalidArgument.field("model_config.input_shape",
                                        "cnn needs the image shape of the pixel columns: [height, width] or "
                                        "[channels, height, width], e.g. [1, 8, 8] for scikit-learn's digits",
                                        "REQUIRED")
    validate_training_config(spec, framework)
    for name, value in spec.hyperparameters.items():
        if name not in network["hyperparameters"]:
            raise InvalidArgument.field(f"model_config.hyperparameters.{name}",
                                        f"unknown hyperparameter for {arch}: use "
                                        f"{', '.join(network['hyperparameters'])}")
        if not _valid_hyperparameter(name, value):
            raise InvalidArgument.field(f"model_config.hyperparameters.{name}", f"must be {HYPERPARAMETERS[name]}")
    if spec.hyperparameters.get("class_weight") is not None and spec.model_type != "classification":
        raise InvalidArgument.field("model_config.hyperparameters.class_weight", "applies to classification only")


def int_hyperparameter(spec: TrainingSpec, name: str, default: int) -> int:
    return int(spec.hyperparameters.get(name, default))


def metric_names(task: str) -> list[str]:
    """The metrics an epoch of a neural-network `task` run reports."""
    common = ["training_loss", "validation_loss", "learning_rate", "gradient_norm"]
    if task == "classification":
        return common + ["accuracy", "precision", "recall", "f1_score"]
    return common + ["rmse", "mae", "r2"]


def validate_mlp(spec: TrainingSpec, framework: str) -> None:
    """Check everything of `spec` an MLP on tabular data can honour; InvalidArgument names the field."""
    validate_network(spec, framework, ("mlp",))


def validate_training_config(spec: TrainingSpec, framework: str) -> None:
    """TrainingConfig checks every neural network shares, whatever its architecture."""
    if not 1 <= spec.epochs <= MAX_EPOCHS:
        raise InvalidArgument.field(f"{TC}.epochs", f"must be between 1 and {MAX_EPOCHS}")
    if spec.batch_size < 1:
        raise InvalidArgument.field(f"{TC}.batch_size", "must be at least 1")
    lr = spec.learning_rate
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise InvalidArgument.field(f"{TC}.learning_rate", f"must be a positive number, or 0 for the default "
                                                           f"{DEFAULT_LEARNING_RATE}; got {lr!r}")
    if spec.optimizer and spec.optimizer not in OPTIMIZERS:
        raise InvalidArgument.field(f"{TC}.optimizer",
                                    f"unknown optimizer {spec.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    _check_optimizer_config(spec)
    losses = LOSSES.get(spec.model_type, LOSSES["regression"])
    if spec.loss_function and spec.loss_function not in losses:
        raise InvalidArgument.field(f"{TC}.loss_function",
                                    f"{spec.loss_function!r} does not fit {spec.model_type}: use one of "
                                    f"{', '.join(losses)}")
    reg = spec.regularization
    if not 0 <= reg.dropout < 1:
        raise InvalidArgument.field(f"{TC}.regularization.dropout", "must be in [0, 1)")
    for name in ("l1", "l2", "weight_decay", "gradient_clip_norm"):
        value = getattr(reg, name)
        if not math.isfinite(value) or value < 0:
            raise InvalidArgument.field(f"{TC}.regularization.{name}", "must be a finite number >= 0")
    if reg.batch_norm and spec.batch_size < 2:
        raise InvalidArgument.field(f"{TC}.batch_size", "batch normalization needs batches of at least 2 rows; "
                                    f"raise batch_size or turn {TC}.regularization.batch_norm off")
    if spec.gradient_accumulation_steps < 0:
        raise InvalidArgument.field(f"{TC}.gradient_accumulation_steps", "must be >= 0")
    lr_schedule.validate(spec.lr_scheduler, spec.epochs)
    if spec.lr_scheduler.type.strip().lower() == "reduce_on_plateau":
        watched = spec.lr_scheduler.metric or "val_loss"
        task = "classification" if spec.model_type == "classification" else "regression"
        if metric_key(watched) not in metric_names(task):
            raise InvalidArgument.field(f"{TC}.lr_scheduler.metric",
                                        f"{framework} {spec.model_type} runs report no metric {watched!r}, so the "
                                        f"schedule would never react; use one of {', '.join(metric_names(task))}")


def _check_optimizer_config(spec: TrainingSpec) -> None:
    optimizer = optimizer_name(spec)
    config = spec.optimizer_config
    for name, value in config.items():
        path = f"{TC}.optimizer_config.{name}"
        owners = OPTION_OWNERS.get(name)
        if owners is None:
            raise InvalidArgument.field(path, f"unknown option: use {', '.join(sorted(OPTION_OWNERS))}")
        if optimizer not in owners:
            raise InvalidArgument.field(path, f"applies to {' and '.join(owners)}, not {optimizer}; remove it or "
                                              f"change {TC}.optimizer")
        if name == "nesterov":
            if not isinstance(value, bool):
                raise InvalidArgument.field(path, f"must be true or false, got {value!r}")
            if value and not config.get("momentum"):
                raise InvalidArgument.field(path, "Nesterov momentum needs momentum > 0; set "
                                                  f"{TC}.optimizer_config.momentum, e.g. 0.9")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidArgument.field(path, f"must be a number, got {value!r}")
        if name == "epsilon" and value <= 0:
            raise InvalidArgument.field(path, f"must be > 0, got {value}")
        if name in ("beta1", "beta2", "rho", "momentum") and not 0 <= value < 1:
            raise InvalidArgument.field(path, f"must be in [0, 1), got {value}")


def _valid_hyperparameter(name: str, value: Any) -> bool:
    whole = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
    if name in ("embedding_dim", "max_length", "hidden_size"):
        return whole and value >= 1
    if name == "vocab_size":
        return whole and value >= 2
    if name == "num_layers":
        return whole and 1 <= value <= 4
    if name == "kernel_size":
        return whole and value >= 1 and int(value) % 2 == 1
    if name in ("hidden_units", "filters"):
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
