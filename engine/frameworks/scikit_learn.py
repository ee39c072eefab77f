"""scikit-learn behind the FrameworkAdapter contract.

What one epoch means depends on the estimator:
  logistic_regression   `max_iter` solver iterations, warm-started from the last coefficients;
                        the run finishes early once the solver converges
  sgd                   one shuffled pass of partial_fit over the training data
  random_forest,        warm-started ensembles that grow by n_estimators / epochs trees
  gradient_boosting,    (stages) per epoch; epochs are capped at the number of trees
  isolation_forest
  svm, linear_regression, ridge
                        fit in one pass: total_epochs is 1 and that epoch is `finished`
svm is CalibratedClassifierCV(SVC(), ensemble=False): SVC(probability=True) is deprecated
since scikit-learn 1.9 and this is its documented replacement.
isolation_forest (model_type anomaly_detection) is unsupervised: it fits X only. Its anomaly
score is score_samples negated, so higher = more anomalous (about 0.5 for ordinary rows, towards
1 for isolated ones); training_loss and validation_loss are the mean anomaly score of the
training and validation rows. A row is predicted an anomaly when predict() gives -1. The label
column is optional: when set, it marks known anomalies and must hold exactly two values in the
training + validation rows; the larger of the two when sorted is the anomaly (1 > 0,
True > False, "true" > "false"), unless exactly one of them names an anomaly ("anomaly",
"anomalous", "outlier", "fraud", "fault", "attack", "abnormal"), which then wins. With labels, epochs report precision, recall and f1_score of the predicted anomalies
and extra["roc_auc"] of the anomaly score; extra["anomaly_fraction"] (predicted anomalies among
the validation rows) is always reported. Its ONNX export has outputs "label" (int64 [n, 1]:
1 normal, -1 anomaly) and "scores" (float32 [n, 1], decision_function = score_samples - offset_,
so negative = anomaly and the anomaly score is -(scores + offset_)).
Linear, SGD and SVM models see standardized features: a StandardScaler fitted once on the
training data when the run is created. Exports are a Pipeline([scaler, model]) (trees:
Pipeline([model])), so they take raw features.

validate() runs in the server process, so everything up to create_run is plain Python:
sklearn, skl2onnx and onnxruntime are imported inside the functions that use them.
"""

from __future__ import annotations

import copy
import importlib
import math
import pickle
import platform
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from engine.errors import FailedPrecondition, InvalidArgument
from engine.frameworks.base import EpochResult, FrameworkAdapter, Prediction, TrainingData, TrainingRun
from engine.frameworks.metrics import anomaly_metrics, classification_metrics, regression_metrics
from engine.jobs.spec import TrainingSpec

_ANOMALY_WORDS = {"anomaly", "anomalous", "outlier", "fraud", "fault", "attack", "abnormal"}
HP = "model_config.hyperparameters"
TC = "training_config"
MAX_EPOCHS = 10_000
DEFAULT_TREES = 100
_STATE_FORMAT = 1


# --- hyperparameter checks -----------------------------------------------------------------
# Values arrive from a protobuf Struct, where every number is a float: counts such as
# max_depth=6 come in as 6.0 and are turned back into ints here, before sklearn sees them.


class _Bad(ValueError):
    """A hyperparameter value of the wrong type; the message says what is expected."""


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _Bad(f"must be a whole number, got {v!r}")
    return int(v)


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _Bad(f"must be a finite number, got {v!r}")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"must be true or false, got {v!r}")
    return v


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else check(v)


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise _Bad(f"must be one of {', '.join(options)}; got {v!r}")
        return v
    return check


def _count_or_fraction(one_is_count: bool) -> Callable[[Any], Any]:
    """sklearn reads an int as a count and a float as a fraction. Struct numbers are floats,
    so whole numbers above 1 become counts; 1.0 is whichever the parameter means by it."""
    def check(v: Any) -> Any:
        x = _float(v)
        if x.is_integer() and (x > 1 or (x == 1 and one_is_count)):
            return int(x)
        return x
    return check


def _max_features(v: Any) -> Any:
    if v is None or v in ("sqrt", "log2"):
        return v
    try:
        return _count_or_fraction(one_is_count=False)(v)
    except _Bad:
        raise _Bad(f"must be 'sqrt', 'log2', null, a feature count or a fraction of features; got {v!r}") from None


def _gamma(v: Any) -> Any:
    if v in ("scale", "auto"):
        return v
    try:
        return _float(v)
    except _Bad:
        raise _Bad(f"must be 'scale', 'auto' or a positive number; got {v!r}") from None


def _class_weight(*presets: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v is None or v in presets:
            return v
        if isinstance(v, dict):
            return {k: _float(w) for k, w in v.items()}
        raise _Bad(f"must be {', '.join(repr(p) for p in presets)} or a map from class label to weight; got {v!r}")
    return check


def _max_samples(v: Any) -> Any:
    if v == "auto":
        return v
    try:
        return _count_or_fraction(one_is_count=False)(v)
    except _Bad:
        raise _Bad(f"must be 'auto', a row count or a fraction of rows in (0, 1]; got {v!r}") from None


def _feature_share(v: Any) -> Any:
    try:
        return _count_or_fraction(one_is_count=False)(v)
    except _Bad:
        raise _Bad(f"must be a feature count or a fraction of features in (0, 1]; got {v!r}") from None


def _contamination(v: Any) -> Any:
    if v == "auto":
        return v
    try:
        x = _float(v)
    except _Bad:
        x = math.nan
    if not 0 < x <= 0.5:
        raise _Bad(f"must be 'auto' or the expected share of anomalies, a number in (0, 0.5]; got {v!r}")
    return x


def _bool_or_count(v: Any) -> Any:
    return v if isinstance(v, bool) else _int(v)


def _lr_solver(v: Any) -> str:
    if v == "liblinear":
        raise _Bad("liblinear cannot continue from the previous coefficients, so epochs would not build on "
                   "each other; use lbfgs, newton-cg, newton-cholesky, sag or saga")
    return _choice("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")(v)


_TREE = {
    "max_depth": _optional(_int),
    "min_samples_split": _count_or_fraction(one_is_count=False),
    "min_samples_leaf": _count_or_fraction(one_is_count=True),
    "min_weight_fraction_leaf": _float,
    "max_features": _max_features,
    "max_leaf_nodes": _optional(_int),
    "min_impurity_decrease": _float,
    "ccp_alpha": _float,
}
_GROWING = {"n_estimators": _int, "n_estimators_per_epoch": _int}
_FOREST = {**_GROWING, **_TREE, "bootstrap": _bool, "oob_score": _bool,
           "max_samples": _optional(_count_or_fraction(one_is_count=False))}
_BOOSTING = {**_GROWING, **_TREE, "subsample": _float}

# Names the adapter sets itself, and where the user sets them instead.
_CONTROLLED = {
    "warm_start": "the adapter (each epoch continues the previous one)",
    "random_state": "training_config.seed",
    "verbose": "the adapter (progress is reported per epoch)",
    "loss": "training_config.loss_function",
    "learning_rate": "training_config.learning_rate",
    "eta0": "training_config.learning_rate",
    "penalty": "training_config.regularization.l1 and .l2",
    "max_iter": "training_config.epochs (one epoch is one pass)",
    "early_stopping": "training_config.early_stopping",
    "n_iter_no_change": "training_config.early_stopping",
    "validation_fraction": "data_config.validation_fraction (validation data is held out for every model)",
    "probability": "the adapter (svm always estimates class probabilities)",
}


# --- architectures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arch:
    name: str
    task: str
    style: str  # "warm_start" | "partial_fit" | "grow" | "one_pass"
    build: str  # name of the builder function below, resolved in the worker
    scaled: bool
    hyperparameters: dict[str, Callable[[Any], Any]]
    # The learning-rate setting training_config.learning_rate maps to, if the estimator has one.
    learning_rate_param: str | None = None
    losses: tuple[str, ...] = ()


_CLS_LOSSES = ("cross_entropy", "binary_cross_entropy")

_ARCHS: dict[tuple[str, str], _Arch] = {(a.task, a.name): a for a in (
    _Arch("logistic_regression", "classification", "warm_start", "LogisticRegression", True, {
        "C": _float, "l1_ratio": _float, "tol": _float, "max_iter": _int, "solver": _lr_solver,
        "fit_intercept": _bool, "class_weight": _class_weight("balanced")}, losses=_CLS_LOSSES),
    _Arch("sgd", "classification", "partial_fit", "SGDClassifier", True, {
        "alpha": _float, "l1_ratio": _float, "fit_intercept": _bool, "shuffle": _bool,
        "average": _bool_or_count, "class_weight": _class_weight()}, "eta0", _CLS_LOSSES),
    _Arch("random_forest", "classification", "grow", "RandomForestClassifier", False, {
        **_FOREST, "criterion": _choice("gini", "entropy", "log_loss"),
        "class_weight": _class_weight("balanced", "balanced_subsample")}, losses=_CLS_LOSSES),
    _Arch("gradient_boosting", "classification", "grow", "GradientBoostingClassifier", False,
          _BOOSTING, "learning_rate", _CLS_LOSSES),
    _Arch("svm", "classification", "one_pass", "SVC", True, {
        "C": _float, "kernel": _choice("linear", "poly", "rbf", "sigmoid"), "degree": _int, "gamma": _gamma,
        "coef0": _float, "shrinking": _bool, "tol": _float, "cache_size": _float,
        "class_weight": _class_weight("balanced"), "max_iter": _int}, losses=_CLS_LOSSES),
    _Arch("linear_regression", "regression", "one_pass", "LinearRegression", True, {
        "fit_intercept": _bool, "positive": _bool, "tol": _float}, losses=("mse",)),
    _Arch("ridge", "regression", "one_pass", "Ridge", True, {
        "alpha": _float, "fit_intercept": _bool, "positive": _bool, "tol": _float, "max_iter": _optional(_int),
        "solver": _choice("auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga", "lbfgs")},
        losses=("mse",)),
    _Arch("sgd", "regression", "partial_fit", "SGDRegressor", True, {
        "alpha": _float, "l1_ratio": _float, "fit_intercept": _bool, "shuffle": _bool,
        "average": _bool_or_count, "power_t": _float, "epsilon": _float}, "eta0", ("mse", "huber")),
    _Arch("random_forest", "regression", "grow", "RandomForestRegressor", False, {
        **_FOREST, "criterion": _choice("squared_error", "absolute_error", "friedman_mse", "poisson")},
        losses=("mse",)),
    _Arch("gradient_boosting", "regression", "grow", "GradientBoostingRegressor", False,
          _BOOSTING, "learning_rate", ("mse",)),
    _Arch("isolation_forest", "anomaly_detection", "grow", "IsolationForest", False, {
        "n_estimators": _int, "max_samples": _max_samples, "contamination": _contamination,
        "max_features": _feature_share, "bootstrap": _bool}),
)}

SUPPORTED_MODEL_TYPES = ("classification", "regression", "anomaly_detection")


def _architectures(task: str) -> list[str]:
    return sorted(name for t, name in _ARCHS if t == task)


@dataclass
class _Plan:
    """What a validated spec resolves to: the estimator and its constructor arguments."""

    arch: _Arch
    params: dict[str, Any]
    total_epochs: int
    trees: int = 0  # total trees/stages for "grow" estimators
    notes: list[str] = field(default_factory=list)


def _resolve_architecture(spec: TrainingSpec) -> _Arch:
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if spec.model_type not in SUPPORTED_MODEL_TYPES:
        what = "is required" if not spec.model_type else f"{spec.model_type!r} is not supported by sklearn"
        raise InvalidArgument.field("model_type", f"model type {what}; sklearn supports: {supported}")
    arch = _ARCHS.get((spec.model_type, spec.architecture))
    if arch is None:
        choices = ", ".join(_architectures(spec.model_type))
        if not spec.architecture:
            problem = "architecture is required"
        elif any(name == spec.architecture for _, name in _ARCHS):
            problem = f"{spec.architecture!r} is not a {spec.model_type} architecture"
        else:
            problem = f"unknown sklearn architecture {spec.architecture!r}"
        raise InvalidArgument.field("model_config.architecture",
                                    f"{problem}; for {spec.model_type} use one of: {choices}")
    return arch


def _check_hyperparameters(arch: _Arch, raw: dict[str, Any] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        path = f"{HP}.{name}"
        if name not in arch.hyperparameters:
            if name in _CONTROLLED:
                raise InvalidArgument.field(path, f"{name} is set from {_CONTROLLED[name]}; remove it here")
            valid = ", ".join(sorted(arch.hyperparameters))
            raise InvalidArgument.field(path, f"sklearn's {arch.name} has no hyperparameter {name!r}; valid: {valid}")
        try:
            values[name] = arch.hyperparameters[name](value)
        except _Bad as exc:
            raise InvalidArgument.field(path, str(exc)) from None
    return values


def _not_both(hps: dict[str, Any], name: str, config_field: str) -> None:
    if name in hps:
        raise InvalidArgument.field(f"{HP}.{name}", f"{name} conflicts with {config_field}; set only one of them")


def _no_penalty(arch: _Arch, spec: TrainingSpec, advice: dict[str, str]) -> None:
    for kind in ("l1", "l2"):
        if getattr(spec.regularization, kind):
            raise InvalidArgument.field(f"{TC}.regularization.{kind}",
                                        f"sklearn's {arch.name} has no {kind.upper()} penalty; {advice[kind]}")


def _configure_penalty(arch: _Arch, spec: TrainingSpec, hps: dict[str, Any]) -> dict[str, Any]:
    """training_config.regularization as estimator arguments."""
    l1, l2 = spec.regularization.l1, spec.regularization.l2
    if arch.name == "logistic_regression":
        params: dict[str, Any] = {}
        if l1 or l2:
            # sklearn minimizes C * loss + l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|^2.
            _not_both(hps, "C", f"{TC}.regularization")
            _not_both(hps, "l1_ratio", f"{TC}.regularization")
            params = {"C": 1.0 / (l1 + l2), "l1_ratio": l1 / (l1 + l2)}
        if params.get("l1_ratio", hps.get("l1_ratio")):
            # Of the solvers that warm-start, only saga handles an L1 term.
            solver = hps.get("solver", "saga")
            if solver != "saga":
                raise InvalidArgument.field(f"{HP}.solver", f"solver {solver!r} has no L1 penalty; use saga, or "
                                            f"drop {TC}.regularization.l1 and {HP}.l1_ratio")
            params["solver"] = "saga"
        return params
    if arch.name == "sgd":
        if l1 or l2:
            # sklearn's penalty is alpha * (l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|^2).
            _not_both(hps, "alpha", f"{TC}.regularization")
            _not_both(hps, "l1_ratio", f"{TC}.regularization")
            penalty = "elasticnet" if l1 and l2 else ("l1" if l1 else "l2")
            return {"penalty": penalty, "alpha": l1 + l2, "l1_ratio": l1 / (l1 + l2)}
        return {}
    if arch.name == "ridge":
        _no_penalty(arch, spec, {"l1": "use sgd for an L1 or elastic-net penalty"})
        if l2:
            _not_both(hps, "alpha", f"{TC}.regularization.l2")
            return {"alpha": l2}
        return {}
    if arch.name == "svm":
        _no_penalty(arch, spec, {"l1": "set it to 0; l2 maps to C = 1 / l2"})
        if l2:
            _not_both(hps, "C", f"{TC}.regularization.l2")
            return {"C": 1.0 / l2}
        return {}
    if arch.name == "linear_regression":
        _no_penalty(arch, spec, {"l1": "use sgd for an L1 penalty", "l2": "use ridge for an L2 penalty"})
        return {}
    if arch.name == "isolation_forest":
        advice = "set it to 0; max_samples and max_features in model_config.hyperparameters shape the trees"
        _no_penalty(arch, spec, {"l1": advice, "l2": advice})
        return {}
    advice = "trees are regularized by max_depth, min_samples_leaf or ccp_alpha in model_config.hyperparameters"
    _no_penalty(arch, spec, {"l1": advice, "l2": advice})
    return {}


def _check_training_config(arch: _Arch, spec: TrainingSpec) -> None:
    if isinstance(spec.epochs, bool) or not isinstance(spec.epochs, int) or not 1 <= spec.epochs <= MAX_EPOCHS:
        raise InvalidArgument.field(f"{TC}.epochs", f"epochs must be between 1 and {MAX_EPOCHS}; got {spec.epochs!r}")
    if not 0 <= spec.seed <= 2**32 - 1:
        raise InvalidArgument.field(f"{TC}.seed", f"sklearn seeds must be between 0 and {2**32 - 1}; got {spec.seed}")
    lr = spec.learning_rate
    if not math.isfinite(lr) or lr < 0:
        raise InvalidArgument.field(f"{TC}.learning_rate",
                                    f"learning rate must be positive, or 0 for the default; got {lr}")
    if lr and arch.learning_rate_param is None:
        raise InvalidArgument.field(f"{TC}.learning_rate", f"sklearn's {arch.name} has no learning rate; leave it 0")
    if spec.optimizer and not (arch.name == "sgd" and spec.optimizer == "sgd"):
        only = "'sgd' or empty" if arch.name == "sgd" else "empty"
        raise InvalidArgument.field(f"{TC}.optimizer", f"sklearn's {arch.name} fits with its own solver; "
                                    f"optimizer must be {only}, got {spec.optimizer!r}")
    if spec.optimizer_config:
        raise InvalidArgument.field(f"{TC}.optimizer_config", "sklearn estimators take no optimizer settings; "
                                    "put estimator settings in model_config.hyperparameters")
    if spec.loss_function and not arch.losses:
        raise InvalidArgument.field(f"{TC}.loss_function", f"sklearn's {arch.name} minimizes no loss function; "
                                    f"leave it empty, got {spec.loss_function!r}")
    if spec.loss_function and spec.loss_function not in arch.losses:
        raise InvalidArgument.field(f"{TC}.loss_function", f"sklearn's {arch.task} {arch.name} trains with "
                                    f"{' or '.join(arch.losses)}; got {spec.loss_function!r} (or leave it empty)")
    reg = spec.regularization
    for kind in ("l1", "l2"):
        value = getattr(reg, kind)
        if not math.isfinite(value) or value < 0:
            raise InvalidArgument.field(f"{TC}.regularization.{kind}", f"{kind} must be 0 or positive; got {value}")
    for name, is_set in (("dropout", reg.dropout), ("batch_norm", reg.batch_norm)):
        if is_set:
            raise InvalidArgument.field(f"{TC}.regularization.{name}",
                                        f"{name} applies to neural networks; sklearn's {arch.name} has none")
    for name, is_set in (("weight_decay", reg.weight_decay), ("gradient_clip_norm", reg.gradient_clip_norm)):
        if is_set:
            raise InvalidArgument.field(f"{TC}.regularization.{name}", f"{name} is a neural-network optimizer "
                                        f"setting; sklearn's {arch.name} has none (use l2 for weight penalties)")
    if spec.mixed_precision:
        raise InvalidArgument.field(f"{TC}.mixed_precision", "sklearn trains in float64 only; set it to false")
    if spec.gradient_accumulation_steps > 1:
        raise InvalidArgument.field(f"{TC}.gradient_accumulation_steps",
                                    "sklearn estimators do not accumulate gradients; leave it 0")
    if spec.lr_scheduler.type not in ("", "constant"):
        raise InvalidArgument.field(f"{TC}.lr_scheduler.type", "sklearn estimators keep their own step-size "
                                    "schedule; leave the scheduler empty or 'constant'")


def _plan(spec: TrainingSpec) -> _Plan:
    """Validate `spec` for sklearn and resolve it; pure Python, safe in the server process."""
    arch = _resolve_architecture(spec)
    hps = _check_hyperparameters(arch, spec.hyperparameters)
    _check_training_config(arch, spec)
    params = {k: v for k, v in hps.items() if k not in _GROWING}
    params.update(_configure_penalty(arch, spec, hps))
    if spec.learning_rate:
        params[arch.learning_rate_param] = spec.learning_rate
        if arch.style == "partial_fit":
            params["learning_rate"] = "constant"
    if arch.name == "sgd":
        if arch.task == "classification":
            params["loss"] = "log_loss"
        else:
            params["loss"] = "huber" if spec.loss_function == "huber" else "squared_error"
    if arch.name in ("logistic_regression", "sgd", "random_forest", "gradient_boosting", "ridge",
                     "isolation_forest"):
        params["random_state"] = spec.seed
    if arch.style in ("warm_start", "grow"):
        params["warm_start"] = True

    plan = _Plan(arch, params, total_epochs=1 if arch.style == "one_pass" else spec.epochs)
    if arch.style == "grow":
        _plan_trees(plan, spec, hps)
    if arch.name == "sgd" and params["loss"] == "huber":
        plan.notes.append("sgd minimizes the huber loss; training_loss and validation_loss are mean squared error")
    return plan


def _plan_trees(plan: _Plan, spec: TrainingSpec, hps: dict[str, Any]) -> None:
    if "n_estimators" in hps and "n_estimators_per_epoch" in hps:
        raise InvalidArgument.field(f"{HP}.n_estimators_per_epoch", "set n_estimators (the total, spread over "
                                    "the epochs) or n_estimators_per_epoch, not both")
    for name in _GROWING:
        if name in hps and hps[name] < 1:
            raise InvalidArgument.field(f"{HP}.{name}", f"{name} must be at least 1; got {hps[name]}")
    if "n_estimators_per_epoch" in hps:
        plan.trees = hps["n_estimators_per_epoch"] * spec.epochs
    else:
        plan.trees = hps.get("n_estimators", DEFAULT_TREES)
    # Every epoch must add at least one tree, so there are never more epochs than trees.
    plan.total_epochs = min(spec.epochs, plan.trees)
    unit = "boosting stages" if plan.arch.name == "gradient_boosting" else "trees"
    plan.notes.append(f"{plan.trees} {unit} over {plan.total_epochs} epochs")
    if plan.total_epochs < spec.epochs:
        plan.notes.append(f"epochs reduced from {spec.epochs} to {plan.total_epochs}: each epoch adds at least one")


def _trees_after(plan: _Plan, epoch: int) -> int:
    return plan.trees * epoch // plan.total_epochs


# --- estimators (imported in the worker only) ------------------------------------------------


def _build_estimator(arch: _Arch, params: dict[str, Any]) -> Any:
    if arch.build == "SVC":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        # SVC(probability=True) is deprecated since scikit-learn 1.9; this is its documented
        # replacement: Platt scaling fitted by cross-validation, one SVC refitted on all data.
        return CalibratedClassifierCV(SVC(**params), ensemble=False)
    module = "sklearn.ensemble" if arch.style == "grow" else "sklearn.linear_model"
    cls = getattr(importlib.import_module(module), arch.build)
    if arch.build == "LogisticRegression":
        params = _logistic_penalty_compat(cls, params)
    return cls(**params)


def _logistic_penalty_compat(cls: Any, params: dict[str, Any]) -> dict[str, Any]:
    """scikit-learn < 1.8 reads l1_ratio only with penalty='elasticnet' (1.8 deprecated `penalty`)."""
    if cls().get_params().get("penalty") == "deprecated" or not params.get("l1_ratio"):
        return params
    return {**params, "penalty": "l1" if params["l1_ratio"] == 1 else "elasticnet"}


def _sgd_learning_rate(est: Any) -> float:
    """The step size of the last update of the epoch, from sklearn's documented schedules."""
    t = est.t_ - 1  # t_ starts at 1 and counts updates
    if est.learning_rate == "constant":
        return float(est.eta0)
    if est.learning_rate == "invscaling":
        return float(est.eta0 / t**est.power_t)
    # "optimal": eta = 1 / (alpha * (t0 + t - 1)) with Bottou's t0 = 1 / (eta_init * alpha),
    # eta_init = sqrt(1 / sqrt(alpha)) because the log-loss gradient is below 1 in magnitude.
    eta_init = math.sqrt(1.0 / math.sqrt(est.alpha))
    return float(1.0 / (est.alpha * (1.0 / (eta_init * est.alpha) + t - 1)))


def _epoch_seed(seed: int, epoch: int) -> int:
    # partial_fit re-creates its shuffling generator from random_state on every call, so a
    # fixed random_state would replay one order each epoch. A seed derived from (seed, epoch)
    # gives every epoch its own order and leaves no generator state to checkpoint.
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    lines: list[str] = []
    for w in caught:
        line = f"{w.category.__name__}: {str(w.message).strip()}"
        if line not in lines:
            lines.append(line)
    return lines


class SklearnRun(TrainingRun):
    """One sklearn estimator trained epoch by epoch; see the module docstring."""

    def __init__(self, spec: TrainingSpec, data: TrainingData, *, fit_scaler: bool = True):
        if data.task != spec.model_type:
            raise ValueError(f"data prepared for {data.task!r}, spec trains {spec.model_type!r}")
        self._spec = spec
        self._data = data
        self._plan = _plan(spec)
        self.total_epochs = self._plan.total_epochs
        self._classifier = spec.model_type == "classification"
        self._classes = list(data.classes) if self._classifier and data.classes is not None else None
        # Without training rows (data.inference_only) the checks of the training labels are
        # skipped: restore() takes the classes and the anomaly labels from the checkpoint.
        if self._classifier and not data.inference_only:
            self._check_classes()
        self._anomaly = spec.model_type == "anomaly_detection"
        # The two label values (normal, anomaly) when anomaly labels are given; see _check_anomaly_labels.
        self._normal: Any = None
        self._positive: Any = None
        if self._anomaly and not data.inference_only:
            self._check_anomaly_labels()
        self._epoch = 0
        self._finished = False
        self._announced_no_validation = False
        self._estimator = _build_estimator(self._plan.arch, self._estimator_params())
        self._scaler = None
        if self._plan.arch.scaled and fit_scaler:
            from sklearn.preprocessing import StandardScaler

            self._scaler = StandardScaler().fit(data.X_train)

    # -- setup --

    def _check_classes(self) -> None:
        if self._classes is None:
            raise ValueError("classification data must list its classes (TrainingData.classes)")
        present = np.unique(self._data.y_train)
        if len(present) < 2:
            raise InvalidArgument.field(
                "data_config.label_column",
                f"label column {self._data.label_name!r} has a single class in the training data "
                f"({present.tolist()}); classification needs at least two")
        if self._spec.loss_function == "binary_cross_entropy" and len(self._classes) > 2:
            raise InvalidArgument.field(f"{TC}.loss_function", f"binary_cross_entropy needs two classes, the "
                                        f"label has {len(self._classes)}; use cross_entropy")

    def _check_anomaly_labels(self) -> None:
        """Known anomalies: the label column (optional for anomaly detection) must hold exactly two
        values over the training and validation rows; the larger when sorted marks anomalies."""
        data = self._data
        if not self._spec.data.label_column or data.y_train is None:
            return
        import pandas as pd

        parts = [data.y_train] + ([data.y_val] if data.y_val is not None else [])
        values = pd.unique(np.concatenate([np.asarray(part, dtype=object).ravel() for part in parts]))
        name = f"label column {data.label_name!r}"
        if any(pd.isna(v) for v in values):
            raise InvalidArgument.field("data_config.label_column", f"{name} has missing values; label every row "
                                        "(normal or anomaly), or leave data_config.label_column empty to train "
                                        "without labels")
        try:
            distinct = sorted(values.tolist())
        except TypeError:
            raise InvalidArgument.field("data_config.label_column", f"{name} mixes value types "
                                        f"({sorted({type(v).__name__ for v in values})}); anomaly labels need two "
                                        "comparable values, e.g. 0 and 1") from None
        if len(distinct) != 2:
            shown = ", ".join(repr(v) for v in distinct[:5]) + (", ..." if len(distinct) > 5 else "")
            problem = (f"has {len(distinct)} distinct values ({shown}); anomaly labels need exactly two"
                       if len(distinct) > 2 else
                       f"holds the single value {distinct[0]!r} in the training and validation rows, so it marks "
                       "no anomalies to measure against; anomaly labels need two values")
            raise InvalidArgument.field("data_config.label_column", f"{name} {problem}: normal rows and anomalies "
                                        "(the larger value when sorted, e.g. 1 or true), or leave "
                                        "data_config.label_column empty to train without labels")
        # A value that names an anomaly wins over sort order ("anomaly" sorts before "normal").
        named = [v for v in distinct if str(v).strip().lower() in _ANOMALY_WORDS]
        if len(named) == 1:
            self._positive = named[0]
            self._normal = distinct[0] if distinct[1] == named[0] else distinct[1]
        else:
            self._normal, self._positive = distinct

    def _is_anomaly(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(y, dtype=object).ravel() == self._positive, dtype=bool)

    def _estimator_params(self) -> dict[str, Any]:
        params = dict(self._plan.params)
        weights = params.get("class_weight")
        if isinstance(weights, dict):
            # Struct keys are strings; sklearn matches class_weight keys against the labels.
            by_text = {str(c): c for c in self._classes or []}
            unknown = [k for k in weights if k not in by_text]
            if unknown:
                raise InvalidArgument.field(f"{HP}.class_weight", f"no class {unknown[0]!r} in the label column; "
                                            f"classes are {', '.join(by_text)}")
            params["class_weight"] = {by_text[k]: w for k, w in weights.items()}
        return params

    # -- predictions --

    def _features(self, X: np.ndarray) -> np.ndarray:
        return self._scaler.transform(X) if self._scaler is not None else X

    def _learned_proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities with one column per class_labels entry (the classes seen in training)."""
        return self._estimator.predict_proba(self._features(X))

    def _proba(self, X: np.ndarray) -> np.ndarray:
        """Probabilities with one column per data.classes entry. Classes absent from the
        training data (present only in validation or test) get probability 0."""
        proba = self._learned_proba(X)
        learned = list(self._estimator.classes_)
        if learned == self._classes:
            return proba
        column = {c: i for i, c in enumerate(self._classes)}
        full = np.zeros((proba.shape[0], len(self._classes)))
        full[:, [column[c] for c in learned]] = proba
        return full

    def _measure_anomalies(self, X: np.ndarray, y: np.ndarray | None) -> tuple[dict[str, float], dict[str, float]]:
        """(metrics, extra) of an isolation forest on rows X: "loss" is the mean anomaly score
        (score_samples negated: higher = more anomalous); with labels y, precision, recall and
        f1_score of the predicted anomalies, and extra roc_auc of the anomaly score."""
        normality, predicted = self._normality(X)
        metrics = {"loss": float(-np.mean(normality))}
        extra = {"anomaly_fraction": float(np.mean(predicted))}
        if self._positive is not None and y is not None:
            measured = anomaly_metrics(self._is_anomaly(y), predicted, -normality)
            if "roc_auc" in measured:  # undefined with a single class among the rows
                extra["roc_auc"] = measured.pop("roc_auc")
            metrics.update(measured)
        return metrics, extra

    def _normality(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score_samples, lower = more anomalous; whether predict() marks the row -1) of an
        isolation forest on rows X."""
        est = self._estimator
        normality = est.score_samples(X)
        return normality, (normality - est.offset_) < 0

    def _measure(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        if self._classifier:
            return classification_metrics(y, self._proba(X), self._classes)
        return regression_metrics(y, self._estimator.predict(self._features(X)))

    # -- TrainingRun --

    def train_epoch(self, epoch: int) -> EpochResult:
        if epoch != self._epoch + 1:
            raise ValueError(f"epoch {epoch} requested; the run is at epoch {self._epoch}, "
                             f"so the next is {self._epoch + 1}")
        if self._finished or epoch > self.total_epochs:
            raise ValueError(f"the run is complete after epoch {self._epoch}; there is no epoch {epoch}")
        logs = list(self._plan.notes) if epoch == 1 else []
        data = self._data
        X = self._features(data.X_train)
        est = self._estimator
        style = self._plan.arch.style
        extra: dict[str, float] = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if style == "partial_fit":
                    est.random_state = _epoch_seed(self._spec.seed, epoch)
                    if self._classifier and not hasattr(est, "classes_"):
                        est.partial_fit(X, data.y_train, classes=np.asarray(self._classes))
                    else:
                        est.partial_fit(X, data.y_train)
                else:
                    if style == "grow":
                        est.n_estimators = _trees_after(self._plan, epoch)
                    est.fit(X, None if self._anomaly else data.y_train)
            except (TypeError, ValueError) as exc:
                raise self._as_invalid_argument(exc) from exc
        logs += _warning_lines(caught)

        # `finished` marks an end before total_epochs is reached by counting (one pass, convergence).
        finished = style == "one_pass"
        if style == "warm_start":
            iterations = int(np.max(est.n_iter_))
            extra["iterations"] = float(iterations)
            converged = iterations < est.max_iter and not any(
                w.category.__name__ == "ConvergenceWarning" for w in caught)
            if converged and epoch < self.total_epochs:
                logs.append(f"converged after {iterations} iterations in epoch {epoch}; "
                            "later epochs would not change the model")
                finished = True
        elif style == "grow":
            extra["n_estimators"] = float(est.n_estimators)
            if getattr(est, "oob_score_", None) is not None:
                extra["oob_score"] = float(est.oob_score_)
        if self._classifier and epoch == 1:
            missing = [c for c in self._classes if c not in set(est.classes_.tolist())]
            if missing:
                logs.append(f"classes {missing} are not in the training data; the model gives them probability 0")

        if self._anomaly and epoch == 1:
            if self._positive is None:
                logs.append("no anomaly labels: only the anomaly score and the share of rows predicted "
                            "anomalous are measured")
            else:
                logs.append(f"label {self._positive!r} marks known anomalies, {self._normal!r} normal rows")

        X_val, y_val = data.X_val, data.y_val
        labelled = not self._anomaly or self._positive is not None
        if X_val is None or len(X_val) == 0 or (labelled and y_val is None):
            X_val, y_val = data.X_train, data.y_train
            if not self._announced_no_validation:
                logs.append("no validation data: validation metrics are computed on the training data")
                self._announced_no_validation = True
        if self._anomaly:
            metrics = {"training_loss": self._measure_anomalies(data.X_train, None)[0]["loss"]}
            validation, measured = self._measure_anomalies(X_val, y_val)
            extra.update(measured)
        else:
            metrics = {"training_loss": self._measure(data.X_train, data.y_train)["loss"]}
            validation = self._measure(X_val, y_val)
        metrics["validation_loss"] = validation.pop("loss")
        metrics.update(validation)
        if style == "partial_fit":
            metrics["learning_rate"] = _sgd_learning_rate(est)
        elif self._plan.arch.learning_rate_param == "learning_rate":
            metrics["learning_rate"] = float(est.learning_rate)

        self._epoch = epoch
        self._finished = finished
        return EpochResult(metrics=metrics, extra=extra, logs=logs, finished=finished)

    def _as_invalid_argument(self, exc: Exception) -> Exception:
        """Estimator errors caused by a hyperparameter become InvalidArgument on that field;
        anything else (e.g. bad data) is returned unchanged for the caller to re-raise."""
        text = str(exc)
        for name in self._spec.hyperparameters or {}:
            # Case-insensitive ("Solver lbfgs supports ..."), except one-letter names such as C.
            flags = re.IGNORECASE if len(name) > 1 else 0
            if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=flags):
                return InvalidArgument.field(f"{HP}.{name}", f"sklearn rejected it: {text}")
        if any(cls.__name__ == "InvalidParameterError" for cls in type(exc).__mro__):
            return InvalidArgument.field(HP, f"sklearn rejected the settings: {text}")
        return exc

    def state_bytes(self) -> bytes:
        return pickle.dumps({
            "format": _STATE_FORMAT,
            "architecture": self._plan.arch.name,
            "model_type": self._plan.arch.task,
            "scaler": self._scaler,
            "estimator": self._estimator,
            "epoch": self._epoch,
            "finished": self._finished,
            # (normal, anomaly) label values of a labelled anomaly detector, for runs loaded
            # without the training rows that define them.
            "anomaly_labels": (self._normal, self._positive) if self._positive is not None else None,
        }, protocol=5)

    def restore(self, state: bytes) -> None:
        saved = pickle.loads(state)
        if not isinstance(saved, dict) or saved.get("format") != _STATE_FORMAT:
            raise FailedPrecondition("the checkpoint was not written by this version of the sklearn adapter")
        wanted = (self._plan.arch.task, self._plan.arch.name)
        if (saved["model_type"], saved["architecture"]) != wanted:
            raise FailedPrecondition(f"the checkpoint holds a {saved['model_type']} {saved['architecture']}, "
                                     f"the job trains a {wanted[0]} {wanted[1]}")
        self._scaler = saved["scaler"]
        self._estimator = saved["estimator"]
        self._epoch = saved["epoch"]
        self._finished = saved["finished"]
        if self._data.inference_only:
            # Nothing to check the checkpoint against: its classes and anomaly labels hold.
            if self._classifier:
                self._classes = self._estimator.classes_.tolist()
            if self._anomaly and saved.get("anomaly_labels") is not None:
                self._normal, self._positive = saved["anomaly_labels"]

    @property
    def epoch(self) -> int:
        """The last trained epoch (0 before the first)."""
        return self._epoch

    @property
    def class_labels(self) -> list[Any] | None:
        """Class labels in the order of the exported model's probability columns (the classes
        seen in training); None for regressors."""
        self._require_trained()
        return self._estimator.classes_.tolist() if self._classifier else None

    @property
    def anomaly_labels(self) -> tuple[Any, Any] | None:
        """(normal, anomaly) label values of an isolation forest trained with anomaly labels;
        None otherwise (and for a checkpoint written before they were saved, loaded without
        its training rows)."""
        return (self._normal, self._positive) if self._positive is not None else None

    def predict(self, X: np.ndarray) -> Prediction:
        """Classifiers: the class of the largest probability of predict_proba (the exported
        pipeline's), probabilities with one column per class_labels entry (the classes seen in
        training; the model cannot predict others). Regressors:
        estimator.predict. isolation_forest: 1 where predict() gives -1 (anomaly), else 0, and
        the anomaly score (score_samples negated, higher = more anomalous)."""
        self._require_trained()
        if self._anomaly:
            normality, predicted = self._normality(X)
            return Prediction(predicted.astype(np.int64), scores=-normality)
        if self._classifier:
            proba = self._learned_proba(X)
            return Prediction(self._estimator.classes_[np.argmax(proba, axis=1)], proba)
        return Prediction(np.asarray(self._estimator.predict(self._features(X)), dtype=np.float64))

    def evaluate(self, X: np.ndarray, y: np.ndarray | None) -> dict[str, float]:
        """The epoch metrics on (X, y), the loss named validation_loss. Anomaly detection adds its
        extras (anomaly_fraction, roc_auc) and takes y None when there are no labels."""
        self._require_trained()
        if self._anomaly:
            if y is not None and self._positive is not None:
                import pandas as pd

                unknown = [v for v in pd.unique(np.asarray(y, dtype=object).ravel()).tolist()
                           if v != self._positive and v != self._normal]
                if unknown:
                    raise InvalidArgument.field("data_config.label_column", f"labels {unknown[:5]} were not in the "
                                                f"training data, where {self._positive!r} marks anomalies and "
                                                f"{self._normal!r} normal rows")
            metrics, extra = self._measure_anomalies(X, y)
            metrics["validation_loss"] = metrics.pop("loss")
            return {**metrics, **extra}
        metrics = self._measure(X, y)
        metrics["validation_loss"] = metrics.pop("loss")
        return metrics

    def pipeline(self) -> Any:
        """The fitted model as a sklearn Pipeline taking raw features: [scaler,] model."""
        from sklearn.pipeline import Pipeline

        self._require_trained()
        steps = [("scaler", self._scaler)] if self._scaler is not None else []
        return Pipeline(steps + [("model", self._estimator)])

    @property
    def export_formats(self) -> list[str]:
        return ["onnx", "pickle"]

    def export(self, fmt: str) -> bytes:
        name = self._export_name(fmt, "sklearn")
        pipeline = self.pipeline()
        if name == "pickle":
            return pickle.dumps(pipeline, protocol=5)
        if self._anomaly:
            return self._isolation_forest_onnx()
        data = _to_onnx(pipeline, self._estimator, len(self._data.feature_names), self._classifier,
                        f"{self._plan.arch.task}_{self._plan.arch.name}")
        self._check_onnx(data, pipeline)
        return data

    def _check_onnx(self, data: bytes, pipeline: Any) -> None:
        """The ONNX model must reproduce the pipeline on held-out rows: probabilities within 1e-4,
        or regression predictions within 1e-4 relative."""
        from engine.export.parity import check_parity

        rows = self._data.X_val if self._data.X_val is not None and len(self._data.X_val) else self._data.X_train
        rows = rows[:_PARITY_ROWS]
        if self._classifier:
            reference, atol, rtol = pipeline.predict_proba(rows), 1e-4, 0.0
        else:
            reference, atol, rtol = pipeline.predict(rows), 1e-6, 1e-4
        try:
            check_parity(data, reference, rows, atol=atol, rtol=rtol)
        except ValueError as exc:
            raise RuntimeError(f"ONNX export check failed: {exc}") from None

    def _isolation_forest_onnx(self) -> bytes:
        """ONNX with outputs "label" (1 normal, -1 anomaly) and "scores" (decision_function),
        checked against decision_function on the validation rows (training rows without them)."""
        from sklearn.pipeline import Pipeline

        from engine.export.parity import onnx_predict

        n_features = len(self._data.feature_names)
        # skl2onnx refuses an IsolationForest whose trees see a subset of the features
        # (max_features < 1), although its graph gathers each tree's own features
        # (estimators_features_) before walking it; a shallow copy that claims all features
        # converts correctly, which the parity check below confirms.
        estimator = copy.copy(self._estimator)
        estimator._max_features = n_features
        data = _to_onnx(Pipeline([("model", estimator)]), estimator, n_features, False,
                        f"{self._plan.arch.task}_{self._plan.arch.name}", ml_opset=_ONNX_ML_OPSET)
        rows = self._data.X_val if self._data.X_val is not None and len(self._data.X_val) else self._data.X_train
        rows = rows[:_PARITY_ROWS]
        got = np.asarray(onnx_predict(data, rows)["scores"], dtype=np.float64).ravel()
        want = self._estimator.decision_function(rows)
        worst = float(np.max(np.abs(got - want))) if len(rows) else 0.0
        if not worst <= _SCORE_TOLERANCE:
            raise RuntimeError(f"ONNX export check failed: max difference {worst:.3g} > tolerance "
                               f"{_SCORE_TOLERANCE:g} in the anomaly scores of {len(rows)} held-out rows")
        return data


# skl2onnx's IsolationForest converter needs domain ai.onnx.ml >= 2 and supports up to 3.
_ONNX_ML_OPSET = 3
_SCORE_TOLERANCE = 1e-4
_PARITY_ROWS = 2000


def _to_onnx(pipeline: Any, estimator: Any, n_features: int, classifier: bool, name: str,
             ml_opset: int | None = None) -> bytes:
    import onnx
    import onnxruntime
    import skl2onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    # zipmap off: probabilities come out as one [n, n_classes] tensor instead of a list of maps.
    options = {id(estimator): {"zipmap": False}} if classifier else None
    # The newest opset both the converter was tested with and onnx knows; onnxruntime may lag
    # behind both, so each candidate is loaded into a session and a lower one tried if it fails.
    newest = min(skl2onnx.get_latest_tested_opset_version(), onnx.defs.onnx_opset_version())
    failure: Exception | None = None
    for opset in range(newest, newest - 4, -1):
        with warnings.catch_warnings():
            # skl2onnx's SVC converter reads probA_/probB_, deprecated in scikit-learn 1.9
            # (and empty without probability=True, which the converter handles).
            warnings.filterwarnings("ignore", message=r"Attribute `prob[AB]_` was deprecated", category=FutureWarning)
            target = {"": opset, "ai.onnx.ml": ml_opset} if ml_opset else opset
            model = convert_sklearn(pipeline, name=name, options=options, target_opset=target,
                                    initial_types=[("input", FloatTensorType([None, n_features]))])
        data = model.SerializeToString()
        try:
            onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime names the unsupported opset in its message
            failure = exc
            continue
        return data
    raise RuntimeError(f"onnxruntime {onnxruntime.__version__} loads none of opsets {newest - 3}..{newest}: {failure}")


class SklearnAdapter(FrameworkAdapter):
    name = "sklearn"

    def validate(self, spec: TrainingSpec) -> None:
        _plan(spec)

    def planned_epochs(self, spec: TrainingSpec) -> int:
        """The total_epochs a run of `spec` will have; no sklearn import (server side)."""
        return _plan(spec).total_epochs

    def create_run(self, spec: TrainingSpec, data: TrainingData) -> SklearnRun:
        return SklearnRun(spec, data)

    def load_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> SklearnRun:
        run = SklearnRun(spec, data, fit_scaler=False)
        run.restore(state)
        return run

    def versions(self) -> dict[str, str]:
        import onnx
        import skl2onnx
        import sklearn

        return {
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "python": platform.python_version(),
        }
