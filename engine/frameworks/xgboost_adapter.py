"""XGBoost behind the FrameworkAdapter contract.

Architectures: "classifier" (binary:logistic for two classes, multi:softprob for more) and
"regressor" (reg:squarederror); "gradient_boosting" names whichever fits the model type.

One epoch is one boosting round: Booster.update(dtrain, iteration=epoch - 1) on one Booster
kept for the whole run, the loop body of xgb.train (without row or column sampling, N epochs
build exactly the model xgb.train(params, dtrain, num_boost_round=N) builds). A fresh
xgb.train(num_boost_round=1, xgb_model=booster) per round would copy the whole model and
re-predict every tree on the training data each round: quadratic in the rounds (~100 s for
2000 rounds on 400 rows, against 0.2 s here).

Losses are XGBoost's own eval metrics on the training and validation DMatrix: logloss
(binary), mlogloss (multi-class) or rmse (regression). The other metrics come from
engine/frameworks/metrics.py on the validation rows.

Checkpoints hold the booster (save_raw("ubj")) and the epoch counter, and a resumed run
equals an uninterrupted one, sampling included: every round is seeded from (seed, round)
(seed_per_iteration) and, when it samples rows or columns (subsample or colsample_* below
1), starts from freshly configured tree updaters, so no random state lives outside the
checkpoint. (The tree updaters otherwise keep random state, their samplers, from round to
round. Without sampling they draw nothing, and keeping them saves ~10% of a round on 200,000
rows.) One exception: a regressor with tree_method "approx" and subsample < 1. Its objective
has a constant hessian, so XGBoost sketches the feature quantiles once, from the first
round's sampled rows, and caches them with the training data; a resumed run re-sketches from
its first round's sample and grows different trees from there (the resumed run says so in
its log).

Labels of any type are encoded as their index in TrainingData.classes (sorted); the model
outputs one probability per class in that order (class_labels), including classes seen only
in the validation data.

Exports:
  onnx          onnxmltools.convert_xgboost of the sklearn-API model below; input "input"
                (float32 [n, n_features]). Classifiers output "label" (int64 [n], the index
                into class_labels) and "probabilities" (float32 [n, n_classes], class_labels
                order; no zipmap); regressors output "variable" (float32 [n, 1]). Checked
                against the booster on the validation rows: 1e-4 absolute for
                probabilities, 1e-4 relative for regression predictions.
  pickle        an xgboost.XGBClassifier / XGBRegressor holding the trained booster, so
                predict_proba / predict work after unpickling (XGBClassifier.predict returns
                class indices, as XGBoost's sklearn API does).
  xgboost_json  XGBoost's JSON model (what Booster.save_model writes to a .json file).

validate() runs in the server process: xgboost, sklearn and the ONNX packages are imported
only inside the functions that use them.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import re
import struct
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from engine.errors import FailedPrecondition, InvalidArgument
from engine.frameworks.base import EpochResult, FrameworkAdapter, Prediction, TrainingData, TrainingRun
from engine.frameworks.metrics import (binary_metrics_of_codes, class_codes, classification_metrics,
                                      classification_metrics_of_codes, regression_metrics)
from engine.jobs.spec import TrainingSpec

HP = "model_config.hyperparameters"
TC = "training_config"
MAX_EPOCHS = 10_000
DEFAULT_ETA = 0.3
MAX_SEED = 2**63 - 1  # XGBoost's seed is a signed 64-bit integer
SUPPORTED_MODEL_TYPES = ("classification", "regression")
ARCHITECTURES = {"classification": "classifier", "regression": "regressor"}
ALIAS = "gradient_boosting"
# ONNX parity on held-out rows: float32 trees against XGBoost's float32 sums.
PROBABILITY_ATOL = 1e-4
REGRESSION_RTOL = 1e-4
PARITY_ROWS = 10_000
_STATE_MAGIC = b"forge-xgboost\x00"
_STATE_FORMAT = 1


# --- hyperparameter checks -----------------------------------------------------------------
# Values arrive from a protobuf Struct, where every number is a float: counts such as
# max_depth=6 come in as 6.0 and are turned back into ints here, before XGBoost sees them.


class _Bad(ValueError):
    """A hyperparameter value out of type or range; the message says what is expected."""


def _number(*, whole: bool = False, low: float = -math.inf, high: float = math.inf,
            low_open: bool = False) -> Callable[[Any], Any]:
    if low_open:
        where = f"above {low:g}" + (f" and at most {high:g}" if high < math.inf else "")
    elif high < math.inf:
        where = f"between {low:g} and {high:g}"
    else:
        where = f"{low:g} or more"
    kind = "a whole number" if whole else "a number"

    def check(v: Any) -> Any:
        ok_type = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
        if not ok_type or (whole and not float(v).is_integer()):
            raise _Bad(f"must be {kind} {where}; got {v!r}")
        if v > high or v < low or (low_open and v == low):
            raise _Bad(f"must be {kind} {where}; got {v!r}")
        return int(v) if whole else float(v)
    return check


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise _Bad(f"must be one of {', '.join(options)}; got {v!r}")
        return v
    return check


_FRACTION = _number(low=0.0, high=1.0, low_open=True)
TREE_METHODS = ("hist", "approx", "exact")

# The booster parameters a spec may set, with their checks (XGBoost's documented ranges).
HYPERPARAMETERS: dict[str, Callable[[Any], Any]] = {
    "max_depth": _number(whole=True, low=0),
    "min_child_weight": _number(low=0.0),
    "subsample": _FRACTION,
    "colsample_bytree": _FRACTION,
    "colsample_bylevel": _FRACTION,
    "gamma": _number(low=0.0),
    "max_bin": _number(whole=True, low=2),
    "tree_method": _choice(*TREE_METHODS),
    "scale_pos_weight": _number(low=0.0, low_open=True),
    "max_delta_step": _number(low=0.0),
    "grow_policy": _choice("depthwise", "lossguide"),
    "max_leaves": _number(whole=True, low=0),
    "device": _choice("cpu", "cuda"),
}

# Names the adapter sets itself, and where the user sets them instead.
_CONTROLLED = {
    "eta": "training_config.learning_rate",
    "learning_rate": "training_config.learning_rate",
    "alpha": "training_config.regularization.l1",
    "reg_alpha": "training_config.regularization.l1",
    "lambda": "training_config.regularization.l2",
    "reg_lambda": "training_config.regularization.l2",
    "seed": "training_config.seed",
    "random_state": "training_config.seed",
    "seed_per_iteration": "the adapter (every round is seeded from training_config.seed and its number)",
    "nthread": "the adapter (all CPUs available to the worker)",
    "n_jobs": "the adapter (all CPUs available to the worker)",
    "objective": "model_type (and training_config.loss_function)",
    "num_class": "the adapter (the number of classes in the label column)",
    "eval_metric": "the adapter (logloss, mlogloss or rmse by model type)",
    "n_estimators": "training_config.epochs (one epoch is one boosting round)",
    "num_boost_round": "training_config.epochs (one epoch is one boosting round)",
    "early_stopping_rounds": "training_config.early_stopping",
    "verbosity": "the adapter (progress is reported per epoch)",
}

_LOSSES = {"classification": ("cross_entropy", "binary_cross_entropy"), "regression": ("mse",)}


@dataclass
class _Plan:
    """What a validated spec resolves to."""

    architecture: str  # "classifier" | "regressor"
    task: str
    params: dict[str, Any]  # booster parameters known without the data
    eta: float
    total_epochs: int
    notes: list[str] = field(default_factory=list)


def _resolve_architecture(spec: TrainingSpec) -> str:
    supported = ", ".join(SUPPORTED_MODEL_TYPES)
    if spec.model_type not in SUPPORTED_MODEL_TYPES:
        what = "is required" if not spec.model_type else f"{spec.model_type!r} is not supported by xgboost"
        raise InvalidArgument.field("model_type", f"model type {what}; xgboost supports: {supported}")
    natural = ARCHITECTURES[spec.model_type]
    if spec.architecture in (natural, ALIAS):
        return natural
    choices = f"{natural} or {ALIAS}"
    if not spec.architecture:
        problem = "architecture is required"
    elif spec.architecture in ARCHITECTURES.values():
        problem = f"{spec.architecture!r} is not a {spec.model_type} architecture"
    else:
        problem = f"unknown xgboost architecture {spec.architecture!r}"
    raise InvalidArgument.field("model_config.architecture",
                                f"{problem}; for {spec.model_type} use {choices}")


def _check_hyperparameters(task: str, raw: dict[str, Any] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        path = f"{HP}.{name}"
        if name not in HYPERPARAMETERS:
            if name in _CONTROLLED:
                raise InvalidArgument.field(path, f"{name} is set from {_CONTROLLED[name]}; remove it here")
            valid = ", ".join(sorted(HYPERPARAMETERS))
            raise InvalidArgument.field(path, f"xgboost has no hyperparameter {name!r} here; valid: {valid}")
        try:
            values[name] = HYPERPARAMETERS[name](value)
        except _Bad as exc:
            raise InvalidArgument.field(path, str(exc)) from None
    method = values.get("tree_method", "hist")
    if method == "exact":
        # XGBoost silently ignores these under the exact method; say so instead.
        for name in ("grow_policy", "max_leaves", "max_bin"):
            if name in values:
                raise InvalidArgument.field(f"{HP}.{name}", f"{name} applies to tree_method hist or approx, "
                                            "not exact; change tree_method or remove it")
        if values.get("max_depth") == 0:
            raise InvalidArgument.field(f"{HP}.max_depth", "max_depth 0 (unlimited depth) needs tree_method hist "
                                        "or approx; exact trees need a depth of 1 or more")
        if values.get("device") == "cuda":
            raise InvalidArgument.field(f"{HP}.tree_method", "exact has no CUDA implementation; use hist "
                                        "with device cuda")
    if "scale_pos_weight" in values and task != "classification":
        raise InvalidArgument.field(f"{HP}.scale_pos_weight", "scale_pos_weight weighs the positive class of a "
                                    "binary classifier; a regressor has none")
    return values


def _check_training_config(task: str, spec: TrainingSpec) -> None:
    if isinstance(spec.epochs, bool) or not isinstance(spec.epochs, int) or not 1 <= spec.epochs <= MAX_EPOCHS:
        raise InvalidArgument.field(f"{TC}.epochs", f"epochs (boosting rounds) must be between 1 and "
                                    f"{MAX_EPOCHS}; got {spec.epochs!r}")
    if not 0 <= spec.seed <= MAX_SEED:
        raise InvalidArgument.field(f"{TC}.seed", f"xgboost seeds must be between 0 and {MAX_SEED}; got {spec.seed}")
    lr = spec.learning_rate
    if not math.isfinite(lr) or lr < 0:
        raise InvalidArgument.field(f"{TC}.learning_rate",
                                    f"learning rate (eta) must be positive, or 0 for the default {DEFAULT_ETA}; "
                                    f"got {lr}")
    if spec.optimizer:
        raise InvalidArgument.field(f"{TC}.optimizer", "xgboost builds trees by its second-order boosting "
                                    f"algorithm, not an optimizer; leave it empty (got {spec.optimizer!r})")
    if spec.optimizer_config:
        raise InvalidArgument.field(f"{TC}.optimizer_config", "xgboost takes no optimizer settings; put booster "
                                    "settings in model_config.hyperparameters")
    losses = _LOSSES[task]
    if spec.loss_function and spec.loss_function not in losses:
        raise InvalidArgument.field(f"{TC}.loss_function", f"xgboost's {ARCHITECTURES[task]} trains with "
                                    f"{' or '.join(losses)}; got {spec.loss_function!r} (or leave it empty)")
    reg = spec.regularization
    for kind, param in (("l1", "alpha"), ("l2", "lambda")):
        value = getattr(reg, kind)
        if not math.isfinite(value) or value < 0:
            raise InvalidArgument.field(f"{TC}.regularization.{kind}",
                                        f"{kind} (xgboost's {param}) must be 0 or positive; got {value}")
    for name, is_set in (("dropout", reg.dropout), ("batch_norm", reg.batch_norm)):
        if is_set:
            raise InvalidArgument.field(f"{TC}.regularization.{name}",
                                        f"{name} applies to neural networks; xgboost's trees have none")
    if reg.weight_decay:
        raise InvalidArgument.field(f"{TC}.regularization.weight_decay", "weight_decay is a neural-network "
                                    "optimizer setting; for xgboost use l2 (lambda) or l1 (alpha)")
    if reg.gradient_clip_norm:
        raise InvalidArgument.field(f"{TC}.regularization.gradient_clip_norm", "xgboost does not clip "
                                    "gradients; leave it 0 (max_delta_step in model_config.hyperparameters "
                                    "bounds each leaf's step instead)")
    if spec.mixed_precision:
        raise InvalidArgument.field(f"{TC}.mixed_precision", "xgboost picks its own precision for histograms "
                                    "and predictions; set it to false")
    if spec.gradient_accumulation_steps not in (0, 1):
        raise InvalidArgument.field(f"{TC}.gradient_accumulation_steps", "xgboost computes gradients over the "
                                    "whole training set every round; leave it 0")
    if spec.lr_scheduler.type not in ("", "constant"):
        raise InvalidArgument.field(f"{TC}.lr_scheduler.type", "xgboost keeps eta constant across rounds; "
                                    "leave the scheduler empty or 'constant'")


def _plan(spec: TrainingSpec) -> _Plan:
    """Validate `spec` for xgboost and resolve it; pure Python, safe in the server process."""
    architecture = _resolve_architecture(spec)
    task = spec.model_type
    hps = _check_hyperparameters(task, spec.hyperparameters)
    _check_training_config(task, spec)
    eta = spec.learning_rate or DEFAULT_ETA
    params: dict[str, Any] = {
        "eta": eta,
        "seed": spec.seed,
        # XGBoost reseeds its generator from (seed, round number) before every round, so a
        # round's row and column draws do not depend on what ran before it in the process.
        "seed_per_iteration": True,
        "verbosity": 1,  # warnings only; they are forwarded to the job log
        **hps,
    }
    # Proto numbers have no "unset": 0 keeps XGBoost's default (alpha 0, lambda 1).
    if spec.regularization.l1:
        params["alpha"] = spec.regularization.l1
    if spec.regularization.l2:
        params["lambda"] = spec.regularization.l2
    plan = _Plan(architecture, task, params, eta, total_epochs=spec.epochs)
    plan.notes.append(f"{spec.epochs} boosting rounds (one per epoch), eta {eta:g}")
    return plan


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# "[06:30:05] WARNING: /workspace/src/context.cc:207: " before XGBoost's native messages.
_LOG_PREFIX = re.compile(r"^\s*\[\d\d:\d\d:\d\d\]\s*(WARNING:\s*)?\S+:\d+:\s*")


def _warning_lines(caught: list[warnings.WarningMessage]) -> list[str]:
    """XGBoost's native warnings (delivered as UserWarning) as log lines, source paths removed."""
    lines: list[str] = []
    for w in caught:
        text = _LOG_PREFIX.sub("", str(w.message)).strip()
        line = f"xgboost: {text}" if text != str(w.message).strip() else f"{w.category.__name__}: {text}"
        if line not in lines:
            lines.append(line)
    return lines


def _parse_eval(text: str) -> list[float]:
    """The metric values of Booster.eval / eval_set output ("[3]\\ttrain-logloss:0.1\\t...")."""
    return [float(part.rpartition(":")[2]) for part in text.strip().split("\t")[1:]]


class XGBoostRun(TrainingRun):
    """One XGBoost booster trained a round per epoch; see the module docstring."""

    def __init__(self, spec: TrainingSpec, data: TrainingData, *, state: bytes | None = None,
                 fine_tune: bool = False):
        import xgboost as xgb

        if data.task != spec.model_type:
            raise ValueError(f"data prepared for {data.task!r}, spec trains {spec.model_type!r}")
        self._spec = spec
        self._data = data
        self._plan = _plan(spec)
        self.total_epochs = self._plan.total_epochs
        self._classifier = spec.model_type == "classification"
        self._classes = list(data.classes) if self._classifier else None
        self._index = {c: i for i, c in enumerate(self._classes)} if self._classifier else {}
        if self._classifier:
            self._check_classes()
        self._nthread = _available_cpus()
        self._params = self._booster_params()
        self._sampling = any(self._params.get(name, 1.0) < 1.0
                             for name in ("subsample", "colsample_bytree", "colsample_bylevel"))
        self._epoch = 0
        # Rounds of a parent model this run continues (fine-tuning): its epochs add rounds after them.
        self._base_rounds = 0
        self._logs: list[str] = list(self._plan.notes)
        if self._params.get("device") == "cuda" and not xgb.build_info().get("USE_CUDA"):
            self._logs.append("this xgboost build has no CUDA support: training runs on the CPU")
        if self._classifier and not data.inference_only:
            seen = set(np.asarray(data.y_train).tolist())
            missing = [c for c in self._classes if c not in seen]
            if missing:
                self._logs.append(f"classes {missing} are not in the training data; the model still gives "
                                  "them a (small) probability")

        self._dtrain = self._dmatrix(data.X_train, data.y_train)
        self._has_validation = data.X_val is not None and data.y_val is not None and len(data.y_val) > 0
        if self._has_validation:
            self._dval = self._dmatrix(data.X_val, data.y_val)
            self._X_val, self._y_val = data.X_val, data.y_val
        else:
            self._dval = self._dtrain
            self._X_val, self._y_val = data.X_train, data.y_train
            self._logs.append("no validation data: validation metrics are computed on the training data")
        self._val_codes = class_codes(self._y_val, self._classes) if self._classifier else None
        cache = [self._dtrain] + ([self._dval] if self._has_validation else [])
        # Both DMatrix are the booster's cache: XGBoost keeps their predictions up to date
        # round by round instead of re-predicting every tree for each metric.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if state is None:
                self._booster = xgb.Booster(self._params, cache)
            else:
                self._booster = self._load_state(state, cache)
                if fine_tune:  # the parent's rounds are this run's starting point
                    self._base_rounds, self._epoch = self._booster.num_boosted_rounds(), 0
                    self._logs.append(f"continuing the {self._base_rounds} boosting rounds of the model it "
                                      f"fine-tunes with {self.total_epochs} more")
        self._logs += _warning_lines(caught)

    # -- setup --

    def _check_classes(self) -> None:
        if self._classes is None:
            raise ValueError("classification data must list its classes (TrainingData.classes)")
        present = np.unique(np.asarray(self._data.y_train))
        # Without training rows (data.inference_only: loading a model to predict) there are none to check.
        if len(present) < 2 and not self._data.inference_only:
            raise InvalidArgument.field(
                "data_config.label_column",
                f"label column {self._data.label_name!r} has a single class in the training data "
                f"({present.tolist()}); classification needs at least two")
        if self._spec.loss_function == "binary_cross_entropy" and len(self._classes) > 2:
            raise InvalidArgument.field(f"{TC}.loss_function", f"binary_cross_entropy needs two classes, the "
                                        f"label has {len(self._classes)}; use cross_entropy")
        if "scale_pos_weight" in self._plan.params and len(self._classes) > 2:
            raise InvalidArgument.field(f"{HP}.scale_pos_weight", f"scale_pos_weight weighs the positive class "
                                        f"of a binary classifier; the label has {len(self._classes)} classes")

    def _booster_params(self) -> dict[str, Any]:
        params = dict(self._plan.params)
        params["nthread"] = self._nthread
        if not self._classifier:
            params.update(objective="reg:squarederror", eval_metric="rmse")
        elif len(self._classes) == 2:
            params.update(objective="binary:logistic", eval_metric="logloss")
        else:
            params.update(objective="multi:softprob", eval_metric="mlogloss", num_class=len(self._classes))
        return params

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Labels as XGBoost wants them: class indices for classifiers, float64 targets otherwise."""
        if not self._classifier:
            return np.asarray(y, dtype=np.float64)
        codes = class_codes(y, self._classes)
        if codes is None:
            unknown = sorted({v for v in np.asarray(y).tolist() if v not in self._index}, key=str)
            raise InvalidArgument.field(
                "data_config.label_column",
                f"labels {unknown[:5]} do not occur in the training or validation data the model was trained "
                f"on; it knows {self._classes}")
        return codes.astype(np.float64)

    def _dmatrix(self, X: np.ndarray, y: np.ndarray | None) -> Any:
        import xgboost as xgb

        label = None if y is None else self._encode(y)
        return xgb.DMatrix(np.asarray(X, dtype=np.float64), label=label, nthread=self._nthread)

    # -- predictions --

    def _proba(self, dmatrix: Any, predicted: np.ndarray | None = None) -> np.ndarray:
        """Probabilities with one column per class, in self._classes order (of `predicted`, the
        booster's output on dmatrix, when it is at hand)."""
        p = np.asarray(self._booster.predict(dmatrix) if predicted is None else predicted, dtype=np.float64)
        if p.ndim == 1:  # binary:logistic gives P(classes[1])
            return np.column_stack([1.0 - p, p])
        return p

    def _normalized_proba(self, dmatrix: Any, predicted: np.ndarray | None = None) -> np.ndarray:
        # softprob rows are float32 and may sum to 1 +- 1e-7, which sklearn's log loss
        # warns about; metrics and predictions see them rescaled in float64.
        proba = self._proba(dmatrix, predicted)
        return proba / proba.sum(axis=1, keepdims=True)

    def _predictions(self, dmatrix: Any) -> np.ndarray:
        """What the ONNX export is checked against: probabilities, or regression predictions."""
        if self._classifier:
            return self._proba(dmatrix)
        return np.asarray(self._booster.predict(dmatrix), dtype=np.float64)

    def _measure(self, dmatrix: Any, y: np.ndarray, loss: float, codes: np.ndarray | None = None) -> dict[str, float]:
        """Metrics of the booster on `dmatrix` (labels y); `codes`, y's class indices when known,
        spare classifiers encoding the labels again (every round measures the same rows)."""
        if self._classifier:
            predicted = np.asarray(self._booster.predict(dmatrix), dtype=np.float64)
            known = codes is not None and len(codes) > 0
            if known and predicted.ndim == 1 and np.isfinite(predicted).all():
                # binary:logistic gives P(classes[1]) alone: measured as it comes (every round, so
                # no two-column copy of it; [1 - p, p] rows sum to 1 without rescaling).
                metrics = binary_metrics_of_codes(codes, predicted)
            else:
                proba = self._normalized_proba(dmatrix, predicted)
                if known and np.isfinite(proba).all():
                    metrics = classification_metrics_of_codes(codes, proba)
                else:
                    metrics = classification_metrics(y, proba, self._classes)
        else:
            metrics = regression_metrics(y, self._booster.predict(dmatrix))
        # XGBoost's own eval metric (logloss, mlogloss, rmse) is the loss it reports.
        metrics.pop("loss")
        return {"validation_loss": loss, **metrics}

    # -- TrainingRun --

    def train_epoch(self, epoch: int) -> EpochResult:
        from xgboost.core import XGBoostError

        if epoch != self._epoch + 1:
            raise ValueError(f"epoch {epoch} requested; the run is at epoch {self._epoch}, "
                             f"so the next is {self._epoch + 1}")
        if epoch > self.total_epochs:
            raise ValueError(f"the run is complete after epoch {self._epoch}; there is no epoch {epoch}")
        logs, self._logs = self._logs, []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if self._sampling:
                    # Reloading the booster's own configuration rebuilds its tree updaters, so this
                    # round draws its samples exactly as the first round after a restore would (see
                    # the module docstring). Without sampling the updaters hold no random state,
                    # and rebuilding them would make the round ~10% slower (200,000 rows).
                    self._booster.load_config(self._booster.save_config())
                self._booster.update(self._dtrain, iteration=self._base_rounds + epoch - 1)
            except XGBoostError as exc:
                raise self._as_invalid_argument(exc) from exc
            evals = [(self._dtrain, "train")] + ([(self._dval, "validation")] if self._has_validation else [])
            losses = _parse_eval(self._booster.eval_set(evals, self._base_rounds + epoch))
        logs += _warning_lines(caught)
        training_loss = losses[0]
        validation_loss = losses[1] if self._has_validation else training_loss
        metrics = {"training_loss": training_loss,
                   **self._measure(self._dval, self._y_val, validation_loss, self._val_codes),
                   "learning_rate": self._plan.eta}
        self._epoch = epoch
        return EpochResult(metrics=metrics, logs=logs)

    def _as_invalid_argument(self, exc: Exception) -> Exception:
        """XGBoost errors caused by a hyperparameter become InvalidArgument on that field;
        anything else is returned unchanged for the caller to re-raise."""
        text = str(exc).splitlines()[0] if str(exc) else repr(exc)
        for name in self._spec.hyperparameters or {}:
            if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text):
                return InvalidArgument.field(f"{HP}.{name}", f"xgboost rejected it: {_LOG_PREFIX.sub('', text)}")
        return exc

    def data_parallel(self) -> None:
        """Nothing to wrap: in XGBoost's collective (Ray Train's XGBoostTrainer) every update
        and eval_set already works with the other workers; the rows were shared out up front
        (XGBoostAdapter.worker_share)."""
        import xgboost.collective

        if not xgboost.collective.is_distributed():
            raise RuntimeError("data_parallel needs XGBoost's collective (Ray Train's XGBoostTrainer)")

    def leave_data_parallel(self) -> None:
        # Every DMatrix made in the collective waits for the other workers' (the primary's
        # export makes some for its parity check): the workers leave it together here.
        # Finalizing again when Ray Train's CommunicatorContext exits is harmless.
        import xgboost.collective

        xgboost.collective.finalize()

    def state_bytes(self) -> bytes:
        header = json.dumps({
            "format": _STATE_FORMAT,
            "architecture": self._plan.architecture,
            "model_type": self._plan.task,
            "n_classes": len(self._classes) if self._classifier else 0,
            "epoch": self._epoch,
            "base_rounds": self._base_rounds,
        }).encode()
        raw = bytes(self._booster.save_raw("ubj"))
        return _STATE_MAGIC + struct.pack("<I", len(header)) + header + raw

    def _load_state(self, state: bytes, cache: list[Any]) -> Any:
        import xgboost as xgb

        header, raw = _split_state(state)
        wanted = {"architecture": self._plan.architecture, "model_type": self._plan.task,
                  "n_classes": len(self._classes) if self._classifier else 0}
        saved = {k: header.get(k) for k in wanted}
        if saved != wanted:
            raise FailedPrecondition(f"the checkpoint holds a {saved['model_type']} {saved['architecture']} with "
                                     f"{saved['n_classes']} classes, the job trains a {wanted['model_type']} "
                                     f"{wanted['architecture']} with {wanted['n_classes']} classes")
        # The saved model carries the trees and the objective but not the training parameters
        # (depth, sampling, seed, ...): the Booster sets them again after loading.
        booster = xgb.Booster(self._params, cache, model_file=bytearray(raw))
        epoch, base = int(header["epoch"]), int(header.get("base_rounds", 0))
        if booster.num_boosted_rounds() != base + epoch:
            raise FailedPrecondition(f"the checkpoint says epoch {epoch} after {base} rounds but holds "
                                     f"{booster.num_boosted_rounds()} boosting rounds")
        self._epoch, self._base_rounds = epoch, base
        if (not self._classifier and self._params.get("tree_method") == "approx"
                and self._params.get("subsample", 1.0) < 1.0):
            self._logs.append("resumed an approx regressor with subsample < 1: XGBoost re-sketches the feature "
                              "quantiles from this round's sampled rows, so the remaining rounds differ from an "
                              "uninterrupted run's (use tree_method hist for exact resumes)")
        return booster

    def restore(self, state: bytes) -> None:
        cache = [self._dtrain] + ([self._dval] if self._has_validation else [])
        self._booster = self._load_state(state, cache)

    @property
    def epoch(self) -> int:
        """The last trained epoch (0 before the first)."""
        return self._epoch

    @property
    def booster(self) -> Any:
        """The trained xgboost.Booster."""
        self._require_trained()
        return self._booster

    @property
    def class_labels(self) -> list[Any] | None:
        """Class labels in the order of the model's probability columns (every class of the
        label column, including any absent from the training rows); None for regressors."""
        self._require_trained()
        return list(self._classes) if self._classifier else None

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        self._require_trained()
        dmatrix = self._dmatrix(X, y)
        (loss,) = _parse_eval(self._booster.eval(dmatrix, "data", self._epoch))
        return self._measure(dmatrix, y, loss)

    def predict(self, X: np.ndarray) -> Prediction:
        """Classifiers: the class of the largest probability, probabilities in class_labels
        order; regressors: the booster's predictions."""
        self._require_trained()
        dmatrix = self._dmatrix(X, None)
        if self._classifier:
            proba = self._normalized_proba(dmatrix)
            return Prediction(np.asarray(self._classes)[np.argmax(proba, axis=1)], proba)
        return Prediction(self._predictions(dmatrix))

    def estimator(self) -> Any:
        """The trained model as an xgboost.XGBClassifier / XGBRegressor (sklearn API)."""
        import xgboost as xgb

        self._require_trained()
        model = xgb.XGBClassifier() if self._classifier else xgb.XGBRegressor()
        # load_model reads the objective and the number of classes from the model itself.
        model.load_model(bytearray(self._booster.save_raw("ubj")))
        return model

    @property
    def export_formats(self) -> list[str]:
        return ["onnx", "pickle", "xgboost_json"]

    def export(self, fmt: str) -> bytes:
        import pickle

        name = self._export_name(fmt, "xgboost")
        self._require_trained()
        if name == "xgboost_json":
            return bytes(self._booster.save_raw("json"))
        model = self.estimator()
        if name == "pickle":
            return pickle.dumps(model, protocol=5)
        return self._to_onnx(model)

    def _to_onnx(self, model: Any) -> bytes:
        from onnxmltools import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        from engine.export.parity import check_parity

        n_features = len(self._data.feature_names)
        onnx_model = convert_xgboost(model, name=f"xgboost_{self._plan.architecture}",
                                     initial_types=[("input", FloatTensorType([None, n_features]))])
        data = onnx_model.SerializeToString()
        rows = np.asarray(self._X_val[:PARITY_ROWS], dtype=np.float64)
        reference = self._predictions(self._dmatrix(rows, self._y_val[:PARITY_ROWS]))
        if self._classifier:
            atol, rtol = PROBABILITY_ATOL, 0.0
        else:
            # Relative, with a floor scaled to the predictions so that values near 0 (where
            # float32 rounding of the summed leaves is no longer small relative) pass.
            atol = 1e-6 * max(1.0, float(np.max(np.abs(reference), initial=0.0)))
            rtol = REGRESSION_RTOL
        try:
            check_parity(data, reference, rows, atol=atol, rtol=rtol)
        except ValueError as exc:
            raise RuntimeError(self._parity_failure(data, reference, rows, atol, rtol, exc)) from exc
        return data

    def _parity_failure(self, data: bytes, reference: np.ndarray, rows: np.ndarray, atol: float, rtol: float,
                        exc: ValueError) -> str:
        from engine.export.parity import onnx_predict

        outputs = onnx_predict(data, rows)
        got = np.asarray(outputs.get("probabilities", outputs.get("variable")), dtype=np.float64)
        if got.size != reference.size:
            return f"ONNX export check failed: {exc}"
        diff = np.abs(got.reshape(reference.shape) - reference)
        if self._classifier:
            return f"ONNX export check failed: max difference {float(diff.max()):.3g} > tolerance {atol:g}"
        relative = float(np.max(diff / np.maximum(np.abs(reference), atol / rtol)))
        return f"ONNX export check failed: max difference {relative:.3g} (relative) > tolerance {rtol:g}"


def _split_state(state: bytes) -> tuple[dict[str, Any], bytes]:
    start = len(_STATE_MAGIC)
    if not state.startswith(_STATE_MAGIC) or len(state) < start + 4:
        raise FailedPrecondition("the checkpoint was not written by the xgboost adapter")
    (size,) = struct.unpack("<I", state[start:start + 4])
    try:
        header = json.loads(state[start + 4:start + 4 + size])
    except ValueError:
        raise FailedPrecondition("the xgboost checkpoint's header is damaged") from None
    if not isinstance(header, dict) or header.get("format") != _STATE_FORMAT:
        raise FailedPrecondition("the checkpoint was not written by this version of the xgboost adapter")
    return header, state[start + 4 + size:]


class XGBoostAdapter(FrameworkAdapter):
    name = "xgboost"
    data_parallel = "xgboost"  # XGBoost's collective; rows shared out by worker_share
    fine_tuning = True
    accepts_missing_values = True

    def validate(self, spec: TrainingSpec) -> None:
        _plan(spec)

    def planned_epochs(self, spec: TrainingSpec) -> int:
        """One epoch per boosting round; no xgboost import (server side)."""
        return _plan(spec).total_epochs

    def worker_share(self, data: TrainingData, rank: int, world: int) -> TrainingData:
        """Rows rank, rank + world, ... of the training data: XGBoost's collective sums the
        workers' gradient histograms (and their quantile sketches, and the eval metrics) each
        round, so the workers together train on all rows. Validation rows stay whole on every
        worker: the same model measures the same metrics everywhere."""
        if len(data.y_train) < world:
            raise InvalidArgument.field("resources.workers", f"{world} workers need at least as many training "
                                        f"rows; the data has {len(data.y_train)}")
        return replace(data, X_train=data.X_train[rank::world], y_train=data.y_train[rank::world])

    def create_run(self, spec: TrainingSpec, data: TrainingData) -> XGBoostRun:
        return XGBoostRun(spec, data)

    def load_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> XGBoostRun:
        return XGBoostRun(spec, data, state=state)

    def fine_tune_run(self, spec: TrainingSpec, data: TrainingData, state: bytes) -> XGBoostRun:
        """More boosting rounds on the parent's trees (this job's epochs), with this job's
        parameters (e.g. a lower learning_rate) for the new ones."""
        return XGBoostRun(spec, data, state=state, fine_tune=True)

    def versions(self) -> dict[str, str]:
        import xgboost

        # The ONNX packages' versions from their installed metadata: importing them here, before
        # the first round, would cost the worker ~0.3 s; they are imported by the ONNX export.
        return {
            "xgboost": xgboost.__version__,
            "numpy": np.__version__,
            "onnxmltools": importlib.metadata.version("onnxmltools"),
            "onnx": importlib.metadata.version("onnx"),
            "python": platform.python_version(),
        }
