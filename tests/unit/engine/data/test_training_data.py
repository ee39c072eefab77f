import numpy as np
import pandas as pd
import pytest

from engine.data.training_data import build_training_data, load_arrays
from engine.errors import InvalidArgument
from engine.jobs.spec import DataSpec, TrainingSpec


def _write(tmp_path, name, frame):
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path)
    return str(path)


def test_tabular_one_hot_encodes_text_columns_with_the_training_categories(tmp_path):
    train = pd.DataFrame({"plan": ["basic", "premium", "basic", "premium"] * 5, "calls": range(20),
                          "churned": [0, 1] * 10})
    spec = TrainingSpec(model_type="classification", data=DataSpec(label_column="churned", no_validation=True))
    data = build_training_data(spec, _write(tmp_path, "train", train))
    assert data.input_kind == "tabular"
    assert data.feature_names == ["plan=basic", "plan=premium", "calls"]
    assert data.X_train[:2].tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    assert data.preprocessing["onehot"] == {"plan": ["basic", "premium"]}
    test = pd.DataFrame({"plan": ["gold", "basic"], "calls": [1, 2], "churned": [0, 1]})
    X, y = load_arrays(spec, _write(tmp_path, "test", test), data)
    assert X.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 2.0]]  # an unseen category is all zeros
    assert y.tolist() == [0, 1]


def test_sequence_windows_follow_the_time_column_and_validate_on_the_latest(tmp_path):
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    frame = pd.DataFrame({"day": days, "sales": np.arange(30.0)}).sample(frac=1, random_state=0)
    spec = TrainingSpec(model_type="forecasting",
                        data=DataSpec(label_column="sales", time_column="day", window_size=3, validation_fraction=0.2))
    data = build_training_data(spec, _write(tmp_path, "sales", frame))
    assert data.input_kind == "sequence" and data.feature_names == ["sales_lag_3", "sales_lag_2", "sales_lag_1"]
    assert data.X_train[0].tolist() == [0.0, 1.0, 2.0] and data.y_train[0] == 3.0
    assert data.y_val.min() > data.y_train.max()  # validation is the future, never shuffled in
    test = pd.DataFrame({"day": pd.date_range("2024-01-31", periods=2, freq="D"), "sales": [30.0, 31.0]})
    X, y = load_arrays(spec, _write(tmp_path, "test", test), data)
    assert X.tolist() == [[27.0, 28.0, 29.0], [28.0, 29.0, 30.0]] and y.tolist() == [30.0, 31.0]


def test_too_short_a_series_says_what_to_change(tmp_path):
    spec = TrainingSpec(model_type="forecasting", data=DataSpec(label_column="v", window_size=12))
    with pytest.raises(InvalidArgument, match="lower data_config.window_size"):
        build_training_data(spec, _write(tmp_path, "s", pd.DataFrame({"v": np.arange(5.0)})))


def test_interactions_and_text_keep_raw_values(tmp_path):
    ratings = pd.DataFrame({"user": ["u1", "u2"] * 10, "item": [1, 2, 3, 4] * 5, "rating": np.linspace(1, 5, 20)})
    spec = TrainingSpec(model_type="recommendation", data=DataSpec(label_column="rating", user_column="user",
                                                                  item_column="item", no_validation=True))
    data = build_training_data(spec, _write(tmp_path, "r", ratings))
    assert data.input_kind == "interactions" and data.X_train[0].tolist() == ["u1", "1"]
    texts = pd.DataFrame({"text": ["late parcel", "refund please"] * 10, "team": ["ship", "bill"] * 10})
    spec = TrainingSpec(model_type="classification", data=DataSpec(label_column="team", text_column="text"))
    data = build_training_data(spec, _write(tmp_path, "t", texts))
    assert data.input_kind == "text" and set(data.X_train) == {"late parcel", "refund please"}
    assert data.classes == ["bill", "ship"]


def test_anomaly_detection_needs_no_label(tmp_path):
    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) * 2})
    spec = TrainingSpec(model_type="anomaly_detection", data=DataSpec())
    data = build_training_data(spec, _write(tmp_path, "x", frame))
    assert data.y_train is None and data.y_val is None
    assert len(data.X_train) + len(data.X_val) == 40
