"""Turn stored datasets into the arrays a framework adapter trains on (worker side)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.frameworks.base import TrainingData
from engine.jobs.spec import TrainingSpec

NUMERIC_TYPES = ("int64", "float64", "bool")


def feature_columns(spec: TrainingSpec, all_columns: list[str]) -> list[str]:
    label = spec.data.label_column
    return list(spec.data.feature_columns) or [c for c in all_columns if c != label]


def _arrays(frame: pd.DataFrame, features: list[str], label: str) -> tuple[np.ndarray, np.ndarray]:
    X = frame[features].astype("float64").to_numpy()
    y = frame[label].to_numpy()
    return X, y


def build_training_data(spec: TrainingSpec, train_path: str, validation_path: str | None = None) -> TrainingData:
    frame = pd.read_parquet(train_path)
    label = spec.data.label_column
    features = feature_columns(spec, list(frame.columns))
    X, y = _arrays(frame, features, label)
    classification = spec.model_type == "classification"
    X_val = y_val = None
    if validation_path:
        X_val, y_val = _arrays(pd.read_parquet(validation_path), features, label)
    elif not spec.data.no_validation:
        from sklearn.model_selection import train_test_split

        fraction = spec.data.validation_fraction or 0.15
        stratify = y if classification and _stratifiable(y, fraction) else None
        X, X_val, y, y_val = train_test_split(
            X, y, test_size=fraction, random_state=spec.seed, stratify=stratify, shuffle=True
        )
    classes = None
    if classification:
        seen = y if y_val is None else np.concatenate([y, y_val])
        classes = sorted(pd.unique(seen).tolist())
    return TrainingData(
        task=spec.model_type,
        feature_names=features,
        label_name=label,
        X_train=X,
        y_train=y,
        X_val=X_val,
        y_val=y_val,
        classes=classes,
    )


def load_arrays(spec: TrainingSpec, path: str, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return _arrays(pd.read_parquet(path), features, spec.data.label_column)


def _stratifiable(y: np.ndarray, fraction: float) -> bool:
    # Stratifying needs at least two rows of every class and a test part as big as the class count.
    _, counts = np.unique(y, return_counts=True)
    return counts.min() >= 2 and int(len(y) * fraction) >= len(counts)
