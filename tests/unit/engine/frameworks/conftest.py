"""Datasets every adapter test trains on: scikit-learn's bundled data, split 75/25 (stratified
for classification), as TrainingData with numeric features."""

from __future__ import annotations

import pytest

from engine.frameworks.base import TrainingData


def _split(name: str, task: str, rows: int | None = None) -> TrainingData:
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if rows is not None:
        X, y = X[:rows], y[:rows]
    stratify = y if task == "classification" else None
    X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0, stratify=stratify)
    classes = sorted(set(y.tolist())) if task == "classification" else None
    names = [f"f{i}" for i in range(X.shape[1])]
    return TrainingData(task, names, "target", X_train, y_train, X_val, y_val, classes)


@pytest.fixture(scope="module")
def cancer():
    return _split("breast_cancer", "classification")


@pytest.fixture(scope="module")
def iris():
    return _split("iris", "classification")


@pytest.fixture(scope="module")
def diabetes(request):
    # Neural-network tests set DIABETES_ROWS to keep their epochs short.
    return _split("diabetes", "regression", rows=getattr(request.module, "DIABETES_ROWS", None))
