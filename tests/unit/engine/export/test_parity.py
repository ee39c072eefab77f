import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine.errors import InvalidArgument
from engine.export.formats import FORMATS, format_info, parse_format
from engine.export.parity import check_parity, onnx_predict

REPO = Path(__file__).resolve().parents[4]


def _convert(model, n_features, classifier):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model): {"zipmap": False}} if classifier else None
    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, n_features]))],
                                 options=options, target_opset=17)
    return onnx_model.SerializeToString()


@pytest.fixture(scope="module")
def iris_classifier():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    return model, _convert(model, X.shape[1], True), X


@pytest.fixture(scope="module")
def diabetes_regressor():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    X = X * 100  # larger inputs make float32 rounding visible in absolute terms
    model = LinearRegression().fit(X, y)
    return model, _convert(model, X.shape[1], False), X


# --- formats ---


def test_format_table():
    assert {n: (f.filename, f.content_type) for n, f in FORMATS.items()} == {
        "onnx": ("model.onnx", "application/octet-stream"),
        "pickle": ("model.pkl", "application/octet-stream"),
        "savedmodel": ("model.savedmodel.tar", "application/x-tar"),
        "torch": ("model.pt", "application/octet-stream"),
        "xgboost_json": ("model.json", "application/json"),
    }
    assert format_info("pickle").filename == "model.pkl"


@pytest.mark.parametrize("name", ["onnx", "pickle", "savedmodel", "torch"])
def test_parse_format_accepts_lowercase_names(name):
    assert parse_format(name) == name


@pytest.mark.parametrize("name, hint", [
    ("ONNX", "use 'onnx'"), ("zip", "onnx, pickle, savedmodel, torch"), ("", "unknown")])
def test_parse_format_rejects_other_names_on_the_format_field(name, hint):
    with pytest.raises(InvalidArgument) as err:
        parse_format(name)
    assert err.value.violations[0].field == "format"
    assert hint in err.value.message


# --- onnx_predict / check_parity ---


def test_classifier_outputs_label_and_probabilities(iris_classifier):
    model, onnx_bytes, X = iris_classifier
    out = onnx_predict(onnx_bytes, X)
    assert set(out) == {"label", "probabilities"}
    assert out["probabilities"].shape == (len(X), 3)
    np.testing.assert_array_equal(out["label"], model.predict(X))
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(X), atol=1e-5)


def test_regressor_outputs_variable(diabetes_regressor):
    model, onnx_bytes, X = diabetes_regressor
    out = onnx_predict(onnx_bytes, X)
    assert set(out) == {"variable"}
    assert out["variable"].shape == (len(X), 1)


def test_check_parity_returns_the_largest_difference(iris_classifier):
    model, onnx_bytes, X = iris_classifier
    reference = model.predict_proba(X)
    worst = check_parity(onnx_bytes, reference, X)
    assert 0 <= worst < 1e-5
    expected = np.abs(onnx_predict(onnx_bytes, X)["probabilities"].astype(np.float64) - reference).max()
    assert worst == pytest.approx(expected)


def test_check_parity_raises_when_outputs_drift(iris_classifier):
    model, onnx_bytes, X = iris_classifier
    reference = model.predict_proba(X)
    reference[7, 1] += 1e-3
    with pytest.raises(ValueError, match="worst row 7"):
        check_parity(onnx_bytes, reference, X)


def test_check_parity_rejects_a_shape_mismatch(iris_classifier):
    model, onnx_bytes, X = iris_classifier
    with pytest.raises(ValueError, match="shape"):
        check_parity(onnx_bytes, model.predict_proba(X)[:, :2], X)


def test_regression_parity_can_be_relative(diabetes_regressor):
    model, onnx_bytes, X = diabetes_regressor
    reference = model.predict(X)
    worst = check_parity(onnx_bytes, reference, X, atol=0.0, rtol=1e-4)
    assert worst > 0  # float32 arithmetic is not bit-exact ...
    with pytest.raises(ValueError):  # ... so an exact comparison fails
        check_parity(onnx_bytes, reference, X, atol=0.0)


def test_export_modules_import_no_framework():
    script = textwrap.dedent("""
        import sys
        import engine.export.formats, engine.export.parity
        print(",".join(m for m in ("sklearn", "skl2onnx", "onnxruntime") if m in sys.modules) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
