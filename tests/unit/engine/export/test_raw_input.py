"""The raw-input front graph reproduces apply_processing + training_data._apply on new data."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.data import training_data
from engine.data.processing import apply_processing, fit_processing
from engine.export.raw_input import Unsupported, raw_input_graph, with_raw_inputs
from engine.jobs.spec import TrainingSpec

RAW_TYPES = {"a": "float64", "b": "int64", "c": "float64", "k": "float64", "flag": "bool", "color": "string",
             "size": "string", "y": "int64"}
LABEL = {"feature_engineering": {"label_column": "y"}}


def _frame(n: int, seed: int, *, unseen: bool = False) -> pd.DataFrame:
    """a: floats with nulls, b: small ints with nulls and zeros, c: positive floats, k: constant
    in training, flag: bools (nulls outside training), color/size: text with nulls."""
    rng = np.random.default_rng(seed)
    a = rng.normal(10.0, 3.0, n)
    a[::7] = np.nan
    b = rng.integers(0, 5, n).astype(float)
    b[3::9] = np.nan
    colors = ["red", "green", "blue"] + (["purple"] if unseen else [])
    color = rng.choice(colors, n).astype(object)
    color[2::8] = None
    flag = (rng.random(n) < 0.5).astype(object) if unseen else rng.random(n) < 0.5
    if unseen:
        flag[1::6] = None
    return pd.DataFrame({
        "a": a, "b": b, "c": rng.uniform(0.5, 20.0, n), "k": np.ones(n) if not unseen else rng.normal(size=n),
        "flag": flag, "color": pd.Series(color, dtype="str"), "size": rng.choice(["S", "M", "L"], n),
        "y": rng.integers(0, 2, n),
    })


TRAIN = _frame(30, 0)
TEST = _frame(24, 1, unseen=True)
TEST_SEEN = _frame(24, 2)  # only training categories, for handle_unknown "error"


def _spec() -> TrainingSpec:
    return TrainingSpec.from_dict({"model_type": "classification", "data": {"label_column": "y"}})


def _prep(frame: pd.DataFrame) -> dict:
    spec = _spec()
    prep = training_data._fit(spec, frame)
    prep["feature_names"] = training_data._feature_names(spec, prep)
    return prep


def _fit(config, train=TRAIN):
    """The fitted processing (or None) and the training data's prep, as a training job makes them."""
    if config is None:
        return None, _prep(train)
    fitted = fit_processing(train, config, seed=0)
    return fitted, _prep(apply_processing(train, fitted, fitting=True))


def _expected(prep, fitted, frame) -> np.ndarray:
    processed = frame if fitted is None else apply_processing(frame, fitted)
    return training_data._apply(_spec(), prep, processed)[0]


def _feeds(session, frame: pd.DataFrame, raw_types=RAW_TYPES) -> dict:
    """The raw columns as the graph takes them: doubles with NaN, or text with "" for null."""
    feeds = {}
    for item in session.get_inputs():
        values = frame[item.name].astype(object)
        if raw_types[item.name] == "string":
            column = np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object)
        else:
            column = np.array([np.nan if pd.isna(v) else float(v) for v in values], dtype=np.float64)
        feeds[item.name] = column.reshape(-1, 1)
    return feeds


def _session(model):
    import onnxruntime as ort

    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def _run_graph(prep, fitted, frame, raw_types=RAW_TYPES, output_type=TensorProto.DOUBLE):
    model = raw_input_graph(prep, fitted, raw_types, "features", output_type)
    onnx.checker.check_model(model, full_check=True)
    session = _session(model)
    return session.run(["features"], _feeds(session, frame, raw_types))[0], session


CONFIGS = {
    "none": None,
    "impute_mean": {**LABEL, "imputation": {"strategy": "mean", "add_indicator": True}},
    "impute_median": {**LABEL, "imputation": {"strategy": "median", "add_indicator": True}},
    "impute_most_frequent": {**LABEL, "imputation": {"strategy": "most_frequent", "add_indicator": True}},
    "impute_constant_number": {**LABEL, "imputation": {"strategy": "constant", "fill_value": -1,
                                                        "add_indicator": True}},
    "impute_constant_text": {**LABEL, "imputation": {"strategy": "constant", "fill_value": "?",
                                                      "columns": ["color"], "add_indicator": True}},
    "standard": {**LABEL, "normalization": {"method": "standard"}},
    "minmax": {**LABEL, "normalization": {"method": "minmax"}},
    "robust": {**LABEL, "normalization": {"method": "robust"}},
    "quantile": {**LABEL, "normalization": {"method": "quantile"}},
    "onehot_ignore": {**LABEL, "encoding": {"method": "onehot", "handle_unknown": "ignore"}},
    "onehot_bool": {**LABEL, "encoding": {"method": "onehot", "columns": ["flag", "b"], "handle_unknown": "ignore"}},
    "ordinal": {**LABEL, "encoding": {"method": "ordinal", "handle_unknown": "ignore"}},
    "label": {**LABEL, "encoding": {"method": "label", "columns": ["size"], "handle_unknown": "ignore"}},
    "target": {**LABEL, "encoding": {"method": "target"}},
    "target_numeric": {**LABEL, "encoding": {"method": "target", "columns": ["b", "color"]}},
    "transformations": {**LABEL, "transformations": [
        {"type": "drop_columns", "columns": ["k"]},
        {"type": "rename", "parameters": {"mapping": {"size": "sz", "a": "alpha"}}},
        {"type": "log", "columns": ["c"]},
        {"type": "clip", "columns": ["alpha"], "parameters": {"min": 8, "max": 12}},
        {"type": "fill_null", "columns": ["b"], "parameters": {"value": 2}},
        {"type": "fill_null", "columns": ["color"], "parameters": {"value": "none"}},
        {"type": "cast", "columns": ["b"], "parameters": {"to": "int64"}},
        {"type": "cast", "columns": ["flag"], "parameters": {"to": "float64"}},
    ]},
    "bucketize": {**LABEL, "transformations": [
        {"type": "bucketize", "columns": ["a", "c"], "parameters": {"boundaries": [5, 10, 10.5, 15]}},
    ]},
    "cast_bool": {**LABEL, "transformations": [
        {"type": "clip", "columns": ["b"], "parameters": {"min": 0, "max": 1}},
        {"type": "cast", "columns": ["b"], "parameters": {"to": "bool"}},
        {"type": "cast", "columns": ["flag"], "parameters": {"to": "int64"}},
    ]},
    "ratios": {**LABEL, "feature_engineering": {"label_column": "y", "ratios": ["a/b", "c/a"]}},
    "polynomial": {**LABEL, "feature_engineering": {"label_column": "y", "polynomial_degree": 3, "interactions": True}},
    "pca": {"imputation": {"strategy": "mean"}, "feature_engineering": {"label_column": "y", "pca_components": 2}},
    "variance": {**LABEL, "feature_engineering": {"label_column": "y", "variance_threshold": 0.5}},
    "k_best_correlation": {"imputation": {"strategy": "median"}, "feature_engineering": {
        "label_column": "y", "select_k_best": 3, "correlation_threshold": 0.9, "ratios": ["c/c"]}},
    "everything": {
        "transformations": [{"type": "log", "columns": ["c"]}],
        "imputation": {"strategy": "most_frequent", "add_indicator": True},
        "feature_engineering": {"label_column": "y", "ratios": ["b/c"], "interactions": True},
        "encoding": {"method": "onehot", "handle_unknown": "ignore"},
        "normalization": {"method": "robust"},
        "sampling": {"method": "random", "fraction": 0.8},
    },
}


@pytest.mark.parametrize("name", CONFIGS)
def test_graph_matches_processing_then_training_data_on_new_rows(name):
    fitted, prep = _fit(CONFIGS[name])
    got, _ = _run_graph(prep, fitted, TEST)
    want = _expected(prep, fitted, TEST)
    assert got.shape == want.shape == (len(TEST), len(prep["feature_names"]))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_edge_values_of_log_quantile_and_bucketize_match():
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"q": np.round(rng.exponential(2.0, 150), 1), "l": rng.uniform(0, 5, 150),
                          "s": rng.uniform(0, 20, 150), "y": rng.integers(0, 2, 150)})  # q has ties
    config = {**LABEL, "transformations": [
        {"type": "log", "columns": ["l"]},
        {"type": "bucketize", "columns": ["s"], "parameters": {"boundaries": [5, 10, 10.5, 15]}}],
        "normalization": {"method": "quantile", "columns": ["q"]}}
    fitted, prep = _fit(config, train)
    stored = np.asarray(fitted["steps"][-1]["quantiles"][0])
    q = np.concatenate([stored, stored + 1e-8, stored - 1e-8, [-1.0, 50.0, np.nan, np.inf, -np.inf]])
    l = np.resize([0.0, 1e-300, 1e-17, 1e-10, 1e-5, 0.3, 1e10, 1e308, np.inf, np.nan], len(q))
    s = np.resize([5.0, 10.0, 10.5, 15.0, 4.999, -np.inf, np.inf, np.nan], len(q))
    frame = pd.DataFrame({"q": q, "l": l, "s": s})
    raw_types = {"q": "float64", "l": "float64", "s": "float64"}
    got, _ = _run_graph(prep, fitted, frame, raw_types)
    want = _expected(prep, fitted, frame.assign(y=0))
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)  # log1p to rounding, the rest exactly
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_inputs_are_the_used_raw_columns_named_and_typed_by_raw_type():
    fitted, prep = _fit(CONFIGS["variance"])  # k is constant in training: selection drops it
    assert "k" not in prep["columns"]
    _, session = _run_graph(prep, fitted, TEST)
    inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
    assert list(inputs) == ["a", "b", "c", "flag", "color", "size"]  # no k, no label
    assert inputs["a"] == ("tensor(double)", [None, 1]) and inputs["flag"][0] == "tensor(double)"
    assert inputs["color"] == ("tensor(string)", [None, 1])
    output = session.get_outputs()[0]
    assert output.type == "tensor(double)" and output.shape == [None, len(prep["feature_names"])]


def test_bool_column_with_nulls_in_training_is_one_hot_as_text():
    train = TRAIN.assign(flag=TEST["flag"].iloc[:24].tolist() + [True] * 6)  # object dtype: one-hot "False"/"True"
    fitted, prep = _fit(None, train)
    assert prep["onehot"]["flag"] == ["False", "True"]
    got, _ = _run_graph(prep, fitted, TEST)
    np.testing.assert_array_equal(got, _expected(prep, fitted, TEST))


@pytest.mark.parametrize("method", ["onehot", "ordinal", "target"])
def test_unknown_categories_processing_refuses_become_nan(method):
    fitted, prep = _fit({**LABEL, "encoding": {"method": method, "columns": ["color"], "handle_unknown": "error"}})
    got, _ = _run_graph(prep, fitted, TEST_SEEN)
    np.testing.assert_allclose(got, _expected(prep, fitted, TEST_SEEN), rtol=0, atol=1e-9)
    got, _ = _run_graph(prep, fitted, TEST)
    unseen = (TEST["color"] == "purple").to_numpy()
    color = [i for i, n in enumerate(prep["feature_names"]) if n.startswith("color")]
    assert unseen.any() and np.isnan(got[unseen][:, color]).all()
    np.testing.assert_allclose(got[~unseen], _expected(prep, fitted, TEST[~unseen]), rtol=0, atol=1e-9)


def test_log_of_negative_values_is_nan_where_processing_refuses():
    fitted, prep = _fit(CONFIGS["transformations"])
    frame = TEST.assign(c=np.linspace(-2.0, 1e-12, len(TEST)))
    got, _ = _run_graph(prep, fitted, frame)
    column = prep["feature_names"].index("c")
    negative = frame["c"].to_numpy() < 0
    assert np.isnan(got[negative, column]).all()
    np.testing.assert_allclose(got[~negative], _expected(prep, fitted, frame[~negative]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("output_type, dtype", [(TensorProto.FLOAT, np.float32), (TensorProto.INT64, np.int64)])
def test_other_output_types_are_casts_of_the_doubles(output_type, dtype):
    fitted, prep = _fit(CONFIGS["impute_most_frequent"])
    got, _ = _run_graph(prep, fitted, TEST, output_type=output_type)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _expected(prep, fitted, TEST).astype(dtype))


def test_columns_only_dropped_steps_read_need_no_input_and_block_nothing():
    raw_types = {**RAW_TYPES, "when": "timestamp", "notes": "string"}
    train = TRAIN.assign(when=pd.date_range("2024-01-01", periods=len(TRAIN)), notes="late parcel")
    config = {**LABEL, "transformations": [{"type": "drop_columns", "columns": ["when", "notes"]}]}
    fitted, prep = _fit(config, train)
    got, session = _run_graph(prep, fitted, TEST, raw_types)
    assert {"when", "notes"}.isdisjoint(i.name for i in session.get_inputs())
    np.testing.assert_allclose(got, _expected(prep, fitted, TEST), rtol=0, atol=1e-9)


@pytest.mark.parametrize("config, match", [
    ({**LABEL, "transformations": [{"type": "drop_columns", "columns": ["when"]}],
      "feature_engineering": {"label_column": "y", "text_columns": ["notes"]}}, "TF-IDF"),
    ({**LABEL, "feature_engineering": {"label_column": "y", "date_part_columns": ["when"]}}, "date parts"),
    (None, "'when' is a timestamp"),
    ({**LABEL, "imputation": {"strategy": "drop_rows"}}, "drop_rows"),
    ({**LABEL, "transformations": [{"type": "cast", "columns": ["b"], "parameters": {"to": "string"}}]}, "to string"),
])
def test_steps_the_graph_cannot_express_are_refused(config, match):
    raw_types = {**RAW_TYPES, "when": "timestamp", "notes": "string"}
    train = TRAIN.assign(when=pd.date_range("2024-01-01", periods=len(TRAIN)),
                         notes=["late parcel", "refund please", "thanks"] * 10)
    fitted, prep = _fit(config, train)
    with pytest.raises(Unsupported, match=match):
        raw_input_graph(prep, fitted, raw_types, "features", TensorProto.DOUBLE)
    with pytest.raises(Unsupported):
        with_raw_inputs(_identity_model(len(prep["feature_names"])), prep, fitted, raw_types)


@pytest.mark.parametrize("config", [None, {**LABEL, "encoding": {"method": "ordinal", "columns": ["color"]}}])
def test_an_empty_text_category_is_refused_since_empty_text_means_null(config):
    fitted, prep = _fit(config, TRAIN.assign(color=["", "red", "blue"] * 10))
    with pytest.raises(Unsupported, match="color"):
        raw_input_graph(prep, fitted, RAW_TYPES, "features", TensorProto.DOUBLE)


def test_only_tabular_training_data_is_supported():
    with pytest.raises(Unsupported, match="tabular"):
        raw_input_graph({"kind": "text", "text_column": "t"}, None, {"t": "string"}, "x", TensorProto.FLOAT)


# ----- composing with a model


def _identity_model(width: int, *, input_name: str = "input", inner: str = "inner", opset: int = 17) -> bytes:
    """float [N, width] -> its double (through an inner tensor), with a metadata prop."""
    nodes = [helper.make_node("Mul", [input_name, "two"], [inner]), helper.make_node("Identity", [inner], ["out"])]
    graph = helper.make_graph(nodes, "tiny",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, width])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, width])],
                              initializer=[numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")])
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=max(7, helper.find_min_ir_version_for(opsets)))
    helper.set_model_props(model, {"forge.model_id": "m1"})
    return model.SerializeToString()


def test_with_raw_inputs_predicts_like_sklearn_on_the_processed_matrix():
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    fitted, prep = _fit(CONFIGS["everything"])
    processed = apply_processing(TRAIN, fitted, fitting=True)
    X, y = training_data._apply(_spec(), prep, processed)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    width = len(prep["feature_names"])
    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, width]))],
                                 options={id(model): {"zipmap": False}}, target_opset=17)
    helper.set_model_props(onnx_model, {"forge.model_id": "lr"})

    composed = onnx.load_from_string(with_raw_inputs(onnx_model.SerializeToString(), prep, fitted, RAW_TYPES))
    assert [o.name for o in composed.graph.output] == [o.name for o in onnx_model.graph.output]
    assert {p.key: p.value for p in composed.metadata_props} == {"forge.model_id": "lr"}
    opsets = {o.domain: o.version for o in onnx_model.opset_import}
    assert {o.domain: o.version for o in composed.opset_import} == opsets
    session = _session(composed)
    # In the order processing first reads them: log(c), then the imputation's indicators, then its fills.
    assert [i.name for i in session.get_inputs()] == ["c", "a", "b", "color", "k", "flag", "size"]
    labels, probabilities = session.run(["label", "probabilities"], _feeds(session, TEST))
    X_test = _expected(prep, fitted, TEST)
    np.testing.assert_allclose(probabilities, model.predict_proba(X_test), rtol=0, atol=1e-5)
    assert (labels == model.predict(X_test)).mean() > 0.9  # float32 rounding may flip a near tie


@pytest.mark.parametrize("opset", [11, 13, 21])
def test_with_raw_inputs_builds_the_front_at_the_models_opset(opset):
    fitted, prep = _fit(CONFIGS["everything"])
    composed = with_raw_inputs(_identity_model(len(prep["feature_names"]), opset=opset), prep, fitted, RAW_TYPES)
    assert {o.domain: o.version for o in onnx.load_from_string(composed).opset_import} == {
        "": opset, "ai.onnx.ml": 2}  # the front's LabelEncoders bring the ml domain the model lacked
    session = _session(composed)
    (out,) = session.run(["out"], _feeds(session, TEST))
    np.testing.assert_allclose(out, 2 * _expected(prep, fitted, TEST).astype(np.float32), rtol=1e-6, atol=1e-6)


def test_with_raw_inputs_gives_an_ml_only_model_the_default_domain():
    # onnxmltools' XGBoost trees import only ai.onnx.ml; the front graph brings the default domain.
    fitted, prep = _fit(None)
    width = len(prep["feature_names"])
    node = helper.make_node("LinearRegressor", ["x"], ["variable"], domain="ai.onnx.ml",
                            coefficients=[1.0] * width, intercepts=[0.5])
    graph = helper.make_graph([node], "ml-only", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
                              [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx.ml", 1)], ir_version=7)
    session = _session(with_raw_inputs(model.SerializeToString(), prep, fitted, RAW_TYPES))
    (out,) = session.run(["variable"], _feeds(session, TEST))
    expected = np.nansum(_expected(prep, fitted, TEST), axis=1, keepdims=True) + 0.5
    finite = np.isfinite(_expected(prep, fitted, TEST)).all(axis=1)
    np.testing.assert_allclose(out[finite], expected[finite], rtol=1e-5)


def test_with_raw_inputs_refuses_models_older_than_opset_11():
    fitted, prep = _fit(None)
    with pytest.raises(Unsupported, match="opset 10"):
        with_raw_inputs(_identity_model(len(prep["feature_names"]), opset=10), prep, fitted, RAW_TYPES)


def test_with_raw_inputs_survives_raw_names_that_are_model_tensor_names():
    renames = {"a": "input", "c": "inner"}  # the model's input and one of its inner tensors
    raw = TEST.rename(columns=renames)
    raw_types = {renames.get(k, k): v for k, v in RAW_TYPES.items()}
    prep = _prep(TRAIN.rename(columns=renames))
    composed = with_raw_inputs(_identity_model(len(prep["feature_names"])), prep, None, raw_types)
    session = _session(composed)
    assert {"input", "inner"} <= {i.name for i in session.get_inputs()}
    (out,) = session.run(["out"], _feeds(session, raw, raw_types))
    np.testing.assert_allclose(out, 2 * _expected(prep, None, raw).astype(np.float32), rtol=1e-6)
    assert {p.key: p.value for p in onnx.load_from_string(composed).metadata_props} == {"forge.model_id": "m1"}


def test_with_raw_inputs_refuses_models_without_one_float_input():
    fitted, prep = _fit(None)
    two = helper.make_model(helper.make_graph(
        [helper.make_node("Add", ["x1", "x2"], ["out"])], "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 3]) for n in ("x1", "x2")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 3])]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(ValueError, match="exactly one input"):
        with_raw_inputs(two.SerializeToString(), prep, fitted, RAW_TYPES)
    with pytest.raises(ValueError, match="columns"):
        with_raw_inputs(_identity_model(3), prep, fitted, RAW_TYPES)  # wrong width
