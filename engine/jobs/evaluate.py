"""Evaluate a trained model on a dataset, in a process of its own.

The server process never imports a framework, and a framework that crashes or hangs on odd
data must not take the server with it. So the server calls `evaluate_in_process`, which runs
`run_evaluation` in a freshly spawned process (engine.jobs.isolated.run_isolated) and kills it
when the time is up.

`run_evaluation(payload)` (child side) takes a JSON-serializable payload:
  spec                TrainingSpec.to_dict() of the job that trained the model
  state               {"path", "sha256"} of the job's model.state artifact (a checkpoint.pack)
  preprocessing       model_info["preprocessing"] the worker recorded: how raw columns became X
  classes             model_info["classes"] (str) for classifiers, in the model's class order
  dataset             {"path", "sha256"} of a parquet file to evaluate on
  fitted_processing   optional: a fitted processing (engine.data.processing) applied to the
                      dataset first, e.g. the one that made the model's training data
                      (preprocessing["processing"] is not applied by itself: pass it here)
It verifies both files, turns the dataset's rows into X and y exactly as the training rows
were (engine.data.training_data.arrays_from_prep with the recorded preprocessing), loads the
model with its adapter's load_run on TrainingData without training rows
(TrainingData.inference_only), predicts, and returns
engine.frameworks.metrics.evaluation_report(...) plus "row_count" (the rows evaluated).

Labels are matched to the model's classes by value, or by their text when the types differ
(model_info keeps the classes as text): a dataset whose label column holds "1" evaluates a
model trained on the integer 1. Rows with a label the model does not know count as errors
(see evaluation_report).
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import FailedPrecondition, InvalidArgument
from engine.jobs.isolated import run_isolated

FIELD = "dataset"


# --- child side --------------------------------------------------------------------------


def run_evaluation(payload: dict[str, Any]) -> dict[str, Any]:
    """The evaluation report of the payload's model on its dataset; see the module docstring.

    Raises InvalidArgument on field "dataset" when the dataset lacks columns the model reads
    (or its label column), has no rows, missing labels, or values the model cannot take;
    DataLoss when a file no longer matches its checksum; FailedPrecondition when the state
    or the recorded preprocessing does not fit the spec."""
    import dataclasses

    import numpy as np
    import pandas as pd

    from engine.data.processing import apply_processing
    from engine.data.training_data import arrays_from_prep
    from engine.frameworks.metrics import evaluation_report
    from engine.frameworks.registry import get_adapter
    from engine.jobs.spec import TrainingSpec
    from engine.storage import checkpoint
    from engine.storage.files import read_verified, verify

    spec = TrainingSpec.from_dict(payload["spec"])
    prep = dict(payload.get("preprocessing") or {})
    if prep.get("kind") not in ("tabular", "text", "interactions", "sequence") or "feature_names" not in prep:
        raise FailedPrecondition("the model's recorded preprocessing is incomplete (no input kind or feature "
                                 "names); it cannot be evaluated")
    task = spec.model_type

    manifest, state = checkpoint.unpack(read_verified(payload["state"]["path"], payload["state"]["sha256"]))
    if manifest.get("framework") not in (None, spec.framework):
        raise FailedPrecondition(f"the model state was written by {manifest.get('framework')!r}, "
                                 f"the spec names {spec.framework!r}")
    dataset = payload["dataset"]
    verify(dataset["path"], dataset["sha256"])
    frame = pd.read_parquet(dataset["path"])
    if payload.get("fitted_processing"):
        frame = apply_processing(frame, payload["fitted_processing"])
    if len(frame) == 0:
        raise InvalidArgument.field(FIELD, "the dataset has no rows to evaluate the model on")

    label = spec.data.label_column
    labelled = bool(label) and (task != "anomaly_detection" or label in frame.columns)
    if task == "anomaly_detection" and not labelled and label:
        # Anomaly labels are optional: without the column only the anomaly rate is reported.
        spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data, label_column=""))
    _check_columns(spec, prep, list(frame.columns), labelled)
    if labelled and task != "forecasting":  # a forecast's label is its series, checked with X below
        missing = int(frame[label].isna().sum())
        if missing:
            raise InvalidArgument.field(FIELD, f"label column {label!r} is empty in {missing} of {len(frame)} "
                                        "rows; label every row, or drop the unlabelled rows")
    try:
        X, y = arrays_from_prep(spec, prep, frame)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument.field(FIELD, f"the dataset's columns cannot be read the way the training data's "
                                    f"were ({exc}); give them the training data's types") from None

    adapter = get_adapter(spec.framework)
    _check_values(X, prep, adapter.accepts_missing_values, label)
    run = load_stored_run(spec, prep, payload.get("classes") or [], state, y)
    prediction = run.predict(X)

    classes = None  # regression-like tasks report no classes
    if task == "classification":
        classes = list(run.class_labels)
        y = _align_labels(y, classes)
    elif task == "anomaly_detection":
        classes = getattr(run, "anomaly_labels", None)
        if classes is not None and y is not None:
            known = {str(v) for v in classes}
            unknown = sorted({str(v) for v in pd.unique(np.asarray(y, dtype=object))} - known)
            if unknown:
                raise InvalidArgument.field(FIELD, f"label column {label!r} holds {unknown[:5]}; the model was "
                                            f"trained with {classes[1]!r} marking anomalies and {classes[0]!r} "
                                            "normal rows")
            y = _align_labels(y, list(classes))
        else:
            y = None  # no labels, or a model that does not know which label marks anomalies
    report = evaluation_report(task, y, prediction, classes, X, payload.get("metric_reference"))
    return {**report, "row_count": int(len(prediction.values))}


def load_stored_run(spec: Any, prep: dict[str, Any], stored_classes: list[Any], state: bytes, y: Any = None) -> Any:
    """A trained model, ready to predict, from its job's spec, recorded preprocessing, classes
    (as model_info keeps them: text) and model.state payload (checkpoint.unpack's state).
    `y`, the labels of the rows to predict if known, gives the classes back their type."""
    from engine.frameworks.registry import get_adapter

    classes = _typed_classes(stored_classes, y) if spec.model_type == "classification" else None
    if spec.model_type == "classification" and not classes:
        raise FailedPrecondition("the model records no classes; it cannot be run as a classifier")
    return get_adapter(spec.framework).load_run(spec, _inference_data(spec, prep, classes, y), state)


def _check_columns(spec: Any, prep: dict[str, Any], columns: list[str], labelled: bool) -> None:
    """InvalidArgument on "dataset" naming the columns the model reads that the dataset lacks."""
    kind = prep["kind"]
    label = spec.data.label_column
    needed: list[tuple[str, str]] = []
    if kind == "tabular":
        needed += [(c, "feature") for c in prep["columns"]]
    elif kind == "sequence":
        needed.append((label, "series"))
        if prep.get("time_column"):
            needed.append((prep["time_column"], "time"))
    elif kind == "interactions":
        needed += [(prep["user_column"], "user"), (prep["item_column"], "item")]
    else:
        needed.append((prep["text_column"], "text"))
    if labelled and kind != "sequence":
        needed.append((label, "label"))
    have = set(columns)
    missing = [(c, role) for c, role in needed if c not in have]
    if missing:
        shown = ", ".join(f"{c!r} ({role})" for c, role in missing[:10]) + (", ..." if len(missing) > 10 else "")
        present = ", ".join(repr(c) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
        raise InvalidArgument.field(
            FIELD, f"the dataset lacks {len(missing)} column(s) the model reads: {shown}; it has {present or 'none'}. "
                   "Evaluate on data with the training data's columns, or pass the processing that made the "
                   "model's training data (fitted_processing) when the model was trained on processed data")


def _check_values(X: Any, prep: dict[str, Any], accepts_missing: bool, label: str) -> None:
    """InvalidArgument on "dataset" for missing feature values a model without missing-value
    support would choke on (tabular and sequence input)."""
    import numpy as np

    if prep["kind"] not in ("tabular", "sequence") or accepts_missing or X.size == 0:
        return
    empty = np.isnan(X)
    if not empty.any():
        return
    if prep["kind"] == "sequence":
        raise InvalidArgument.field(FIELD, f"the series {label!r} has missing values; fill them or drop those rows")
    names = [prep["feature_names"][j] for j in np.flatnonzero(empty.any(axis=0))]
    raise InvalidArgument.field(FIELD, f"{int(empty.any(axis=1).sum())} rows have missing values in "
                                f"{', '.join(repr(n) for n in names[:10])}; this model cannot take missing "
                                "values: fill them (e.g. with an imputation processing) or drop those rows")


def _typed_classes(stored: list[Any], y: Any) -> list[Any]:
    """The model's classes (recorded as text) as label values of the dataset's type: the value
    of y with the same text, else the text parsed as y's dtype (a class the dataset lacks)."""
    import numpy as np

    if y is None:
        return list(stored)
    values = np.asarray(y)
    seen: dict[str, Any] = {}
    for v in dict.fromkeys(values.ravel().tolist()):
        seen.setdefault(str(v), v)
    kind = values.dtype.kind
    typed = []
    for c in stored:
        text = str(c)
        if text in seen:
            typed.append(seen[text])
        elif kind == "b" and text in ("True", "False"):
            typed.append(text == "True")
        elif kind in "iuf":
            try:
                typed.append(int(text) if kind in "iu" else float(text))
            except ValueError:
                typed.append(c)
        else:
            typed.append(c)
    return typed


def _align_labels(y: Any, classes: list[Any]) -> Any:
    """y with each label that equals no class but has a class's text replaced by that class."""
    import numpy as np

    values = np.asarray(y).ravel().tolist()
    known = set(classes)
    by_text = {str(c): c for c in classes}
    aligned = [v if v in known else by_text.get(str(v), v) for v in values]
    if all(a is v for a, v in zip(aligned, values)):
        return np.asarray(y)
    if len(set(map(type, aligned))) > 1:
        return np.array(aligned, dtype=object)
    return np.asarray(aligned)


def _inference_data(spec: Any, prep: dict[str, Any], classes: list[Any] | None, y: Any) -> Any:
    """TrainingData without training rows (inference_only), shaped for the recorded input kind."""
    import numpy as np

    from engine.frameworks.base import TrainingData

    kind = prep["kind"]
    if kind == "tabular":
        X = np.empty((0, len(prep["feature_names"])))
    elif kind == "sequence":
        X = np.empty((0, int(prep["window_size"])))
    elif kind == "interactions":
        X = np.empty((0, 2), dtype=object)
    else:
        X = np.empty(0, dtype=object)
    y_empty = np.empty(0, dtype=np.asarray(y).dtype if y is not None else np.float64)
    return TrainingData(task=spec.model_type, feature_names=list(prep["feature_names"]),
                        label_name=spec.data.label_column, X_train=X, y_train=y_empty,
                        classes=classes, input_kind=kind, preprocessing=prep, inference_only=True)


def run_artifact_evaluation(payload: dict[str, Any]) -> dict[str, Any]:
    """The evaluation report of a model known only by its artifact (LoadModel from a file this
    service did not write: no job, no state), run with its own library (child side).

    payload: artifact {"path", "sha256", "format"} (onnx, pickle or xgboost_json), task,
    features (raw feature names, in the model's order), classes (text), raw_columns (an ONNX
    graph with one input per column), label_column, dataset {"path", "sha256"}."""
    import numpy as np
    import pandas as pd

    from engine.frameworks.base import Prediction
    from engine.frameworks.metrics import evaluation_report
    from engine.storage.files import verify

    artifact, dataset = payload["artifact"], payload["dataset"]
    verify(artifact["path"], artifact["sha256"])
    verify(dataset["path"], dataset["sha256"])
    frame = pd.read_parquet(dataset["path"])
    task, label, features = payload["task"], payload["label_column"], list(payload["features"])
    if task not in ("classification", "regression"):
        raise FailedPrecondition(f"a loaded {task or 'unknown-task'} model cannot be evaluated: only classifiers "
                                 "and regressors loaded from files are")
    if not features:
        raise FailedPrecondition("the model's file does not name its input features (ONNX metadata_props "
                                 "forge.features), so the dataset's columns cannot be matched to its inputs")
    missing = [c for c in [*features, label] if c not in frame.columns]
    if missing:
        raise InvalidArgument.field(FIELD, f"the dataset lacks the column(s) {', '.join(map(repr, missing[:10]))} "
                                           "the model reads or its label")
    if len(frame) == 0 or frame[label].isna().any():
        raise InvalidArgument.field(FIELD, f"every row needs a label in {label!r}, and there must be rows")
    y = frame[label].to_numpy()
    values, probabilities = _ARTIFACT_PREDICTORS[artifact["format"]](artifact["path"], frame, features,
                                                                     payload.get("raw_columns", False))
    classes = None
    if task == "classification":
        classes = _typed_classes(payload.get("classes") or [], y)
        if probabilities is None or len(classes) != probabilities.shape[1]:
            raise FailedPrecondition("the model's class labels do not match its probability outputs")
        values = np.asarray(classes, dtype=object)[np.argmax(probabilities, axis=1)]
        y = _align_labels(y, classes)
    report = evaluation_report(task, y, Prediction(values=np.asarray(values), probabilities=probabilities), classes)
    return {**report, "row_count": int(len(frame))}


def _onnx_predict(path: str, frame: Any, features: list[str], raw_columns: bool):
    """(values, probabilities) of an ONNX graph: raw columns fed one input each, else the feature
    matrix as its single input's type."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {}
    if raw_columns:
        for item in session.get_inputs():
            column = frame[item.name]
            if item.type == "tensor(string)":
                feeds[item.name] = column.astype(object).where(column.notna(), "").astype(str).to_numpy()[:, None]
            else:
                feeds[item.name] = column.astype("float64").to_numpy()[:, None]
    else:
        (item,) = session.get_inputs()
        dtype = {"tensor(double)": np.float64, "tensor(int64)": np.int64}.get(item.type, np.float32)
        feeds[item.name] = frame[features].to_numpy(dtype=dtype)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(names, feeds)))
    if "probabilities" in outputs:
        return None, np.asarray(outputs["probabilities"], dtype=np.float64)
    value = outputs.get("variable", outputs[names[0]])
    return np.asarray(value, dtype=np.float64).reshape(len(frame), -1)[:, 0], None


def _pickle_predict(path: str, frame: Any, features: list[str], raw_columns: bool):
    import pickle

    import numpy as np

    with open(path, "rb") as f:
        model = pickle.load(f)  # noqa: S301 - LoadModel admitted it (written here, or explicitly allowed)
    X = frame[features].to_numpy(dtype=np.float64)
    if hasattr(model, "predict_proba"):
        return None, np.asarray(model.predict_proba(X), dtype=np.float64)
    return np.asarray(model.predict(X), dtype=np.float64), None


def _xgboost_predict(path: str, frame: Any, features: list[str], raw_columns: bool):
    import numpy as np
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(path)
    out = np.asarray(booster.predict(xgboost.DMatrix(frame[features].to_numpy(dtype=np.float32))), dtype=np.float64)
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    if objective.startswith("binary:"):
        return None, np.column_stack([1.0 - out, out])
    if objective == "multi:softprob":
        return None, out
    if objective.startswith("multi:"):
        raise FailedPrecondition("a multi:softmax booster gives no probabilities; save it with multi:softprob")
    return out, None


_ARTIFACT_PREDICTORS = {"onnx": _onnx_predict, "pickle": _pickle_predict, "xgboost_json": _xgboost_predict}


# --- server side -------------------------------------------------------------------------


def evaluate_in_process(payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    """run_evaluation(payload) in a freshly spawned process (engine.jobs.isolated); its result.

    Blocks (call it from a thread, e.g. asyncio.to_thread, in an event loop). `timeout` (seconds)
    covers the whole evaluation, the process start and framework imports included: past it the
    process is killed and engine.errors.DeadlineExceeded raised. Engine errors raised in the
    child (InvalidArgument on "dataset", DataLoss, FailedPrecondition, ...) are raised here with
    their type, message and field violations; any other failure becomes a RuntimeError."""
    child = run_artifact_evaluation if "artifact" in payload else run_evaluation
    return run_isolated(child, (payload,), timeout, what="the evaluation")
