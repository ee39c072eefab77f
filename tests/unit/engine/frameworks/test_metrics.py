import math
import warnings

import numpy as np
import pytest

from engine.frameworks.metrics import classification_metrics, regression_metrics


def test_binary_metrics_match_hand_computed_values():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    # predictions 0, 1, 0, 1: one true positive, one false positive, one false negative.
    m = classification_metrics(y, proba, [0, 1])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1_score"] == pytest.approx(0.5)
    assert m["loss"] == pytest.approx(-(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.3)) / 4)
    assert set(m) == {"loss", "accuracy", "precision", "recall", "f1_score"}


def test_binary_positive_class_is_the_second_class():
    y = np.array(["no", "no", "no", "yes"])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    # predicted yes twice, right once: precision of "yes" 1/2, recall 1/1.
    m = classification_metrics(y, proba, ["no", "yes"])
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(1.0)
    assert m["f1_score"] == pytest.approx(2 / 3)


def test_multiclass_metrics_are_macro_averages():
    y = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    proba = np.full((6, 3), 0.1)
    proba[np.arange(6), predicted] = 0.8
    m = classification_metrics(y, proba, [0, 1, 2])
    # per class precision 1/2, 2/3, 1; recall 1/2, 1, 1/2
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    f1 = [2 * p * r / (p + r) for p, r in ((1 / 2, 1 / 2), (2 / 3, 1), (1, 1 / 2))]
    assert m["f1_score"] == pytest.approx(sum(f1) / 3)


def test_undefined_ratios_are_zero_without_warnings():
    y = np.array([0, 0, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])  # never predicts the positive class
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, proba, [0, 1])
    assert m["precision"] == 0.0
    assert m["recall"] == 0.0
    assert m["f1_score"] == 0.0


def test_classes_absent_from_y_true_still_count_for_the_loss():
    y = np.array([0, 0])
    proba = np.array([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    m = classification_metrics(y, proba, [0, 1, 2])
    assert m["loss"] == pytest.approx(math.log(2))


def test_probability_columns_must_match_the_classes():
    with pytest.raises(ValueError, match="one column per class"):
        classification_metrics(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]]), [0, 1, 2])


def test_regression_metrics_match_hand_computed_values():
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 6.0]))
    assert m == pytest.approx({"loss": 1.0, "rmse": 1.0, "mae": 0.5, "r2": 1 - 4 / 5})


def test_regression_accepts_column_predictions():
    m = regression_metrics(np.array([1.0, 3.0]), np.array([[1.0], [1.0]]))
    assert m["loss"] == pytest.approx(2.0)
    assert m["mae"] == pytest.approx(1.0)


def test_r2_of_a_single_sample_is_nan():
    m = regression_metrics(np.array([1.0]), np.array([2.0]))
    assert m["loss"] == pytest.approx(1.0)
    assert math.isnan(m["r2"])
