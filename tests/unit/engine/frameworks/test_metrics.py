import math
import warnings

import numpy as np
import pytest

from engine.frameworks.base import Prediction
from engine.frameworks.metrics import classification_metrics, evaluation_report, regression_metrics


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


# The per-epoch metrics are computed with numpy (they run every epoch); they must be sklearn's.


def _sklearn_classification(y, proba, classes):
    from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

    labels = np.asarray(classes)
    predicted = labels[np.argmax(proba, axis=1)]
    p, r, f, _ = precision_recall_fscore_support(y, predicted, labels=list(classes), average=None, zero_division=0)
    pick = (lambda a: a[1]) if len(classes) == 2 else np.mean
    return {"loss": log_loss(y, proba, labels=labels), "accuracy": accuracy_score(y, predicted),
            "precision": pick(p), "recall": pick(r), "f1_score": pick(f)}


@pytest.mark.parametrize("classes", [[0, 1], ["a", "b", "c"], [-1.0, 0.0, 2.0, 10.0, 11.0]])
@pytest.mark.parametrize("n", [1, 9, 2000])
def test_classification_metrics_are_sklearns(classes, n):
    rng = np.random.default_rng(n)
    # The last of five classes never occurs: its precision and recall are undefined (0).
    y = np.asarray(classes)[rng.integers(0, len(classes) - (len(classes) == 5), n)]
    proba = rng.random((n, len(classes)))
    proba[: n // 3] = np.eye(len(classes))[rng.integers(0, len(classes), n // 3)]  # certain: clipped log loss
    proba /= proba.sum(axis=1, keepdims=True)
    assert classification_metrics(y, proba, classes) == pytest.approx(
        _sklearn_classification(y, proba, classes), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("n", [1, 9, 2000])
def test_binary_metrics_from_the_positive_probability_are_sklearns(n):
    from engine.frameworks.metrics import binary_metrics_of_codes

    rng = np.random.default_rng(n)
    codes = rng.integers(0, 2, n)
    positive = rng.random(n)
    positive[: n // 3] = rng.integers(0, 2, n // 3)  # certain: clipped log loss
    positive[n // 3: n // 3 + 2] = 0.5  # ties go to the first class, as argmax's do
    proba = np.column_stack([1.0 - positive, positive])
    assert binary_metrics_of_codes(codes, positive) == pytest.approx(
        _sklearn_classification(np.array(["no", "yes"])[codes], proba, ["no", "yes"]), rel=1e-12, abs=1e-15)
    assert binary_metrics_of_codes(np.zeros(3, dtype=np.int64), np.full(3, 0.2))["precision"] == 0.0


def test_labels_outside_the_classes_and_nan_probabilities_are_refused_as_sklearn_does():
    with pytest.raises(ValueError, match="not belonging to the passed labels"):
        classification_metrics(np.array([0, 1, 7]), np.full((3, 2), 0.5), [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(np.array([0, 1]), np.array([[0.5, 0.5], [np.nan, np.nan]]), [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        regression_metrics(np.array([1.0, 2.0]), np.array([1.0, np.nan]))


@pytest.mark.parametrize("y, predicted", [
    (np.arange(500.0) ** 1.5, np.arange(500.0) ** 1.5 + np.sin(np.arange(500.0)) * 40),
    (np.full(4, 3.0), np.full(4, 3.0)),  # constant target, perfect fit: r2 1
    (np.full(4, 3.0), np.array([3.0, 2.0, 3.0, 3.0])),  # constant target otherwise: r2 0
])
def test_regression_metrics_are_sklearns(y, predicted):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    assert regression_metrics(y, predicted) == pytest.approx(
        {"loss": mean_squared_error(y, predicted), "rmse": math.sqrt(mean_squared_error(y, predicted)),
         "mae": mean_absolute_error(y, predicted), "r2": r2_score(y, predicted)}, rel=1e-12, abs=1e-15)


# --- evaluation_report


def _classified(proba, classes):
    proba = np.asarray(proba, dtype=float)
    return Prediction(np.asarray(classes)[np.argmax(proba, axis=1)], proba)


def test_binary_report_matches_the_epoch_metrics_and_counts_every_row():
    y = np.array(["no", "no", "yes", "yes", "no"])
    proba = [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2], [0.7, 0.3]]
    report = evaluation_report("classification", y, _classified(proba, ["no", "yes"]), ["no", "yes"])
    epoch = classification_metrics(y, np.array(proba), ["no", "yes"])
    assert {k: report[k] for k in ("accuracy", "precision", "recall", "f1_score")} == pytest.approx(
        {k: epoch[k] for k in ("accuracy", "precision", "recall", "f1_score")})
    assert report["log_loss"] == pytest.approx(epoch["loss"])
    assert report["roc_auc"] == pytest.approx(4 / 6)  # P(yes) ranks 4 of the 6 (yes, no) pairs right
    assert report["class_labels"] == ["no", "yes"]
    assert report["confusion_matrix"] == [[2, 1], [1, 1]]
    assert report["per_class"][1] == {"label": "yes", "precision": 0.5, "recall": 0.5, "f1_score": 0.5, "support": 2}


def test_multiclass_report_with_a_label_the_model_never_saw():
    y = np.array([0, 1, 2, 2, 7])
    proba = np.eye(3)[[0, 1, 2, 0, 1]] * 0.7 + 0.1
    report = evaluation_report("classification", y, _classified(proba, [0, 1, 2]), [0, 1, 2])
    assert report["class_labels"] == ["0", "1", "2", "7"]
    assert report["confusion_matrix"] == [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0]]
    assert report["accuracy"] == pytest.approx(3 / 5)
    # Macro averages over the model's three classes; the unseen row is a false positive of class 1.
    assert report["precision"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert report["recall"] == pytest.approx((1 + 1 + 1 / 2) / 3)
    assert [c["support"] for c in report["per_class"]] == [1, 1, 2, 1]
    assert report["log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.8, 0.8, 0.1])))  # known rows only


def test_roc_auc_is_omitted_with_a_single_class_among_the_labels():
    y = np.array([1, 1, 1])
    report = evaluation_report("classification", y, _classified([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]], [0, 1]),
                               [0, 1])
    assert "roc_auc" not in report and report["accuracy"] == pytest.approx(2 / 3)


def test_regression_report_skips_zero_targets_for_mape():
    report = evaluation_report("forecasting", np.array([0.0, 2.0, 4.0]), Prediction(np.array([1.0, 3.0, 2.0])), None)
    assert report == pytest.approx({"rmse": math.sqrt(2), "mae": 4 / 3, "r2": 1 - 6 / 8, "mape": (1 / 2 + 2 / 4) / 2})
    assert "mape" not in evaluation_report("regression", np.zeros(2), Prediction(np.ones(2)), None)
    assert "r2" not in evaluation_report("regression", np.ones(1), Prediction(np.ones(1)), None)


def test_anomaly_report_measures_the_anomaly_label_when_known():
    prediction = Prediction(np.array([1, 0, 0, 1]), scores=np.array([0.9, 0.2, 0.6, 0.7]))
    assert evaluation_report("anomaly_detection", None, prediction, None) == {"anomaly_rate": 0.5}
    y = np.array(["fraud", "ok", "fraud", "ok"])
    report = evaluation_report("anomaly_detection", y, prediction, ["ok", "fraud"])
    assert report == pytest.approx({"anomaly_rate": 0.5, "precision": 0.5, "recall": 0.5, "f1_score": 0.5,
                                    "roc_auc": 0.75})
