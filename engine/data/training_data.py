"""Turn stored datasets into the arrays a framework adapter trains on (worker side).

The input kind follows from the spec (see engine.frameworks.base.TrainingData):
forecasting -> "sequence" (lag windows over the label series, ordered by the time column),
recommendation -> "interactions" (user id, item id -> rating), a text_column -> "text",
anything else -> "tabular" (numeric columns as they are, booleans as 0/1, other columns
one-hot encoded with the categories seen in the training data).

The same preprocessing, recorded in TrainingData.preprocessing, is applied to the test
dataset by `load_arrays`, so test metrics see exactly what training saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InvalidArgument
from engine.frameworks.base import TrainingData
from engine.jobs.spec import TrainingSpec

NUMERIC_TYPES = ("int64", "float64", "bool")
CATEGORICAL_TYPES = ("string",)
DEFAULT_WINDOW = 12


def input_kind(spec: TrainingSpec) -> str:
    if spec.model_type == "forecasting":
        return "sequence"
    if spec.model_type == "recommendation":
        return "interactions"
    if spec.data.text_column:
        return "text"
    return "tabular"


def feature_columns(spec: TrainingSpec, all_columns: list[str]) -> list[str]:
    """Tabular feature columns: the configured ones, or every column but the label and the roles."""
    roles = {spec.data.label_column, spec.data.time_column, spec.data.user_column, spec.data.item_column,
             spec.data.text_column}
    return list(spec.data.feature_columns) or [c for c in all_columns if c not in roles]


def window_size(spec: TrainingSpec) -> int:
    return spec.data.window_size or DEFAULT_WINDOW


# ----- per kind: fit the preprocessing on training rows, then apply it to any frame


def _fit(spec: TrainingSpec, frame: pd.DataFrame) -> dict[str, Any]:
    kind = input_kind(spec)
    if kind == "tabular":
        columns = feature_columns(spec, list(frame.columns))
        onehot = {}
        for col in columns:
            series = frame[col]
            if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
                onehot[col] = sorted(series.dropna().astype(str).unique().tolist())
        return {"kind": kind, "columns": columns, "onehot": onehot}
    if kind == "sequence":
        return {"kind": kind, "window_size": window_size(spec), "time_column": spec.data.time_column}
    if kind == "interactions":
        return {"kind": kind, "user_column": spec.data.user_column, "item_column": spec.data.item_column}
    return {"kind": kind, "text_column": spec.data.text_column}


def _feature_names(spec: TrainingSpec, prep: dict[str, Any]) -> list[str]:
    kind = prep["kind"]
    if kind == "tabular":
        names: list[str] = []
        for col in prep["columns"]:
            if col in prep["onehot"]:
                names.extend(f"{col}={value}" for value in prep["onehot"][col])
            else:
                names.append(col)
        return names
    if kind == "sequence":
        window = prep["window_size"]
        return [f"{spec.data.label_column}_lag_{window - k}" for k in range(window)]
    if kind == "interactions":
        return [prep["user_column"], prep["item_column"]]
    return [prep["text_column"]]


def _apply(spec: TrainingSpec, prep: dict[str, Any], frame: pd.DataFrame,
           history: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
    label = spec.data.label_column
    kind = prep["kind"]
    if kind == "tabular":
        parts = []
        for col in prep["columns"]:
            if col in prep["onehot"]:
                values = frame[col].astype(str).where(frame[col].notna(), None)
                parts.extend((values == v).astype("float64").to_numpy() for v in prep["onehot"][col])
            else:
                parts.append(frame[col].astype("float64").to_numpy())
        X = np.column_stack(parts) if parts else np.empty((len(frame), 0))
        # Anomaly detection may have no label column at all: then there is no y.
        return X, frame[label].to_numpy() if label else None
    if kind == "sequence":
        ordered = frame.sort_values(prep["time_column"]) if prep["time_column"] else frame
        series = ordered[label].astype("float64")
        if history is not None:  # the tail of the previous part gives the first windows their past
            series = pd.concat([history.iloc[-prep["window_size"]:], series], ignore_index=True)
        return _windows(series.to_numpy(), prep["window_size"])
    if kind == "interactions":
        ids = frame[[prep["user_column"], prep["item_column"]]].astype(str).to_numpy(dtype=object)
        return ids, frame[label].astype("float64").to_numpy()
    texts = frame[prep["text_column"]].fillna("").astype(str).to_numpy(dtype=object)
    return texts, frame[label].to_numpy()


def _windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    if len(series) <= window:
        raise InvalidArgument.field("data_config.window_size",
                                    f"the series has {len(series)} points; a window of {window} needs more: "
                                    "lower data_config.window_size or give more rows")
    X = np.lib.stride_tricks.sliding_window_view(series[:-1], window).astype("float64")
    return X.copy(), series[window:].astype("float64")


def _series(spec: TrainingSpec, frame: pd.DataFrame) -> pd.Series:
    ordered = frame.sort_values(spec.data.time_column) if spec.data.time_column else frame
    return ordered[spec.data.label_column].astype("float64")


def build_training_data(spec: TrainingSpec, train_path: str, validation_path: str | None = None) -> TrainingData:
    frame = pd.read_parquet(train_path)
    prep = _fit(spec, frame)
    X, y = _apply(spec, prep, frame)
    X_val = y_val = None
    if validation_path:
        history = _series(spec, frame) if prep["kind"] == "sequence" else None
        X_val, y_val = _apply(spec, prep, pd.read_parquet(validation_path), history)
    elif not spec.data.no_validation:
        fraction = spec.data.validation_fraction or 0.15
        if prep["kind"] == "sequence":
            # Time runs forward: validate on the last windows, never on shuffled ones.
            cut = len(y) - max(1, int(len(y) * fraction))
            X, X_val, y, y_val = X[:cut], X[cut:], y[:cut], y[cut:]
        else:
            from sklearn.model_selection import train_test_split

            if y is None:
                X, X_val = train_test_split(X, test_size=fraction, random_state=spec.seed, shuffle=True)
            else:
                stratify = y if spec.model_type == "classification" and _stratifiable(y, fraction) else None
                X, X_val, y, y_val = train_test_split(
                    X, y, test_size=fraction, random_state=spec.seed, stratify=stratify, shuffle=True
                )
    classes = None
    if spec.model_type == "classification":
        seen = y if y_val is None else np.concatenate([y, y_val])
        classes = sorted(pd.unique(seen).tolist())
    prep["feature_names"] = _feature_names(spec, prep)
    if prep["kind"] == "sequence":
        # The latest values before the test period: the validation data's tail when it follows training.
        latest = pd.read_parquet(validation_path) if validation_path else frame
        prep["history"] = _series(spec, latest).iloc[-prep["window_size"]:].tolist()
    return TrainingData(
        task=spec.model_type,
        feature_names=prep["feature_names"],
        label_name=spec.data.label_column,
        X_train=X,
        y_train=y,
        X_val=X_val,
        y_val=y_val,
        classes=classes,
        input_kind=prep["kind"],
        preprocessing=prep,
    )


def load_arrays(spec: TrainingSpec, path: str, data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of another dataset (the test set) through the training data's preprocessing."""
    return arrays_from_prep(spec, data.preprocessing, pd.read_parquet(path))


def arrays_from_prep(spec: TrainingSpec, prep: dict[str, Any],
                     frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """(X, y) of `frame` through recorded preprocessing `prep`: TrainingData.preprocessing, or
    the model_info["preprocessing"] a finished job recorded (a superset of it). The same
    columns, one-hot categories, text column or id columns as training; for sequences, windows
    that continue the recorded history. y is None when spec.data.label_column is empty."""
    history = pd.Series(prep["history"], dtype="float64") if prep["kind"] == "sequence" else None
    return _apply(spec, prep, frame, history)


def _stratifiable(y: np.ndarray, fraction: float) -> bool:
    # Stratifying needs at least two rows of every class and a test part as big as the class count.
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and int(len(y) * fraction) >= len(counts)
