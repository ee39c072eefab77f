"""The raw-input front graph reproduces apply_processing + training_data._apply on new data, and
engine.data.text.encode / the id maps of text and recommendation models."""

from __future__ import annotations

import unicodedata

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from engine.data import text as text_encoding
from engine.data import training_data
from engine.data.processing import apply_processing, fit_processing
from engine.export import package
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


def _nanos(values) -> np.ndarray:
    """Timestamps as the graph takes them (raw_input's docstring, "Timestamps"): int64
    nanoseconds of the wall-clock time (a zone's local time), NaT as the int64 minimum."""
    series = pd.Series(values)
    if series.dt.tz is not None:
        series = series.dt.tz_localize(None)
    return series.astype("datetime64[ns]").to_numpy().view(np.int64)


def _feeds(session, frame: pd.DataFrame, raw_types=RAW_TYPES) -> dict:
    """The raw columns as the graph takes them: doubles with NaN, text with "" for null, or
    timestamps as int64 nanoseconds."""
    feeds = {}
    for item in session.get_inputs():
        values = frame[item.name].astype(object)
        if raw_types[item.name] == "string":
            column = np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object)
        elif raw_types[item.name] == "timestamp":
            column = _nanos(frame[item.name])
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
    ({**LABEL, "feature_engineering": {"label_column": "y", "text_columns": ["notes"]}}, "'when' is a timestamp"),
    ({**LABEL, "transformations": [{"type": "cast", "columns": ["when"], "parameters": {"to": "string"}}],
      "feature_engineering": {"label_column": "y", "text_columns": ["notes"]}}, "casting timestamp column 'when'"),
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


def test_sequences_and_unknown_kinds_are_refused():
    with pytest.raises(Unsupported, match="sequence"):
        raw_input_graph({"kind": "sequence", "window_size": 3}, None, {"y": "float64"}, "x", TensorProto.FLOAT)
    with pytest.raises(Unsupported, match="'images'"):
        raw_input_graph({"kind": "images"}, None, {"t": "string"}, "x", TensorProto.FLOAT)
    with pytest.raises(ValueError, match="INT64"):  # a text graph gives token ids
        raw_input_graph(_text_prep(["a"]), None, {"review": "string"}, "x", TensorProto.FLOAT)


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


# ----- text: engine.data.text.encode inside the graph

TEXT_RAW_TYPES = {"review": "string", "stars": "int64"}
# Texts that build the vocabulary (ASCII and not), and texts to encode with it: empty and
# blank texts, punctuation, underscores, digits, texts longer than max_length, unknown
# words, mixed case, accents (precomposed and combining), other scripts, emoji.
TRAINING_TEXTS = [
    "Hello world, hello again!", "the parcel arrived late", "refund my payment please", "error 404 on page 2",
    "über straße café naïve", "école été", "москва привет мир", "οδος αθηνα", "東京 タワー 中文", "٣٤ ١٢ ⅻ",
    "ǆemal ǳ", "ﬁne 𝐀𝐁 𝟏𝟐", "straße ß", "ñandú", "x1 y2 z3",
]
TEXTS = [
    "", " ", "\t\n  \r", "!!!", "___", "_", "a_b", "hello_world", "Hello, World!", "HELLO world HeLLo",
    "hello " * 40, "the parcel arrived late " * 3, "error404 error 404 4.04 4,04 -404", "can't won't e-mail",
    "zzz unknown qqq", "\x00hello\x01world\x7f", "payment\u00a0refund", "x1y2 X1 Y2 z3",
    "Über ÜBER über uber", "École ÉCOLE école ÉTÉ Été", "Москва МОСКВА москва ПРИВЕТ Мир", "ΟΔΟΣ Οδος οδος ΑΘΗΝΑ",
    "東京タワー 東京 タワー 中文字符", "emoji 😀 here 😀😀 👍🏽", "٣٤١٢ ١٢ Ⅻ ⅻ", "ǅemal ǄEMAL Ǆemal ǲ Ǳ", "e\u0301te\u0301",
    "𝐀𝐁 𝟏𝟐 𝐀𝐁𝐂", "ﬁne FINE", "STRASSE straße Straße", "ÑANDÚ Ñandú", "mixed Über-école_москва",
]


def _text_prep(vocabulary, max_length: int = 6, column: str = "review") -> dict:
    """model_info["preprocessing"] of a text model: the data layer's record merged with the
    adapter's input_preprocessing."""
    return {"kind": "text", "text_column": column, "feature_names": [column], "vocabulary": list(vocabulary),
            "max_length": max_length, "tokenizer": "engine.data.text"}


def _encode_graph(prep, texts, *, raw_types=None, fitted=None, output_type=TensorProto.INT64, column=None):
    model = raw_input_graph(prep, fitted, raw_types or TEXT_RAW_TYPES, "ids", output_type)
    onnx.checker.check_model(model, full_check=True)
    session = _session(model)
    (item,) = session.get_inputs()
    assert (item.name, item.type, item.shape) == (column or prep["text_column"], "tensor(string)", [None, 1])
    return session.run(["ids"], {item.name: np.array(texts, dtype=object).reshape(-1, 1)})[0]


@pytest.mark.parametrize("max_length", [1, 4, 64])
def test_text_graph_matches_encode(max_length):
    vocabulary = text_encoding.build_vocabulary(TRAINING_TEXTS, 60)
    prep = _text_prep(vocabulary, max_length)
    got = _encode_graph(prep, TEXTS)
    want = text_encoding.encode(TEXTS, vocabulary, max_length)
    assert got.dtype == np.int64 and got.shape == want.shape == (len(TEXTS), max_length)
    np.testing.assert_array_equal(got, want)
    assert (want == text_encoding.UNKNOWN).any() and (want > text_encoding.UNKNOWN).any()  # both kinds of token


@pytest.mark.parametrize("texts", [[], [""], ["", "  ", "?!"], ["..."] * 5, ["hello"]], ids=len)
def test_text_batches_without_tokens_or_rows(texts):
    vocabulary = text_encoding.build_vocabulary(TRAINING_TEXTS, 60)
    got = _encode_graph(_text_prep(vocabulary, 5), texts)
    np.testing.assert_array_equal(got, text_encoding.encode(texts, vocabulary, 5))
    assert got.shape == (len(texts), 5)


def test_text_graph_matches_encode_on_random_ascii():
    rng = np.random.default_rng(11)
    alphabet = np.array([chr(i) for i in range(128)] + list("aeiou etnrs ") * 8)  # every ASCII character, mostly words
    texts = ["".join(rng.choice(alphabet, rng.integers(0, 40))) for _ in range(3000)]
    vocabulary = text_encoding.build_vocabulary(texts[:1500], 400)
    got = _encode_graph(_text_prep(vocabulary, 8), texts)
    want = text_encoding.encode(texts, vocabulary, 8)
    np.testing.assert_array_equal(got, want)
    assert (want > text_encoding.UNKNOWN).mean() > 0.2 and (want == text_encoding.UNKNOWN).any()


# The code points whose case mapping the graph misses (raw_input's docstring, "Text"): İ,
# whose lower case is two characters, and capitals that are not the upper case of their own
# lower case (ϴ, ẞ, OHM SIGN, KELVIN SIGN, ANGSTROM SIGN).
MISSED_CAPITALS = {"\u0130", "\u03f4", "\u1e9e", "\u2126", "\u212a", "\u212b"}


def test_text_graph_against_python_on_every_assigned_code_point():
    """Each character alone, tripled, inside an ASCII word and first in one, with every token
    in the vocabulary (so a wrong case or a wrong split shows as a wrong id): the graph agrees
    with Python on every character but MISSED_CAPITALS and characters Python's Unicode version
    does not assign (which RE2's newer tables may count as letters)."""
    unassigned = ("Cn", "Co", "Cs")  # and private use, surrogates: sampled below
    points = [i for i in range(0x110000) if not 0xD800 <= i < 0xE000]
    chars = [chr(i) for i in points if unicodedata.category(chr(i)) not in unassigned or i % 61 == 0]
    texts = [f"{c} {c * 3} a{c}b {c}xy" for c in chars]
    vocabulary = sorted({token for text in texts for token in text_encoding.tokenize(text)})
    got = _encode_graph(_text_prep(vocabulary, 8), texts)
    want = text_encoding.encode(texts, vocabulary, 8)
    wrong = {c for c, row in zip(chars, (got != want).any(axis=1)) if row}
    assert {c for c in wrong if unicodedata.category(c) != "Cn"} == MISSED_CAPITALS
    assert len(chars) > 150_000


@pytest.mark.parametrize("text, vocabulary, python, graph", [
    # Non-ASCII capitals mixed after the first letter: not a known spelling.
    ("москВА", ["москва"], [2], [1]),
    ("МОСКва Москва МОСКВА", ["москва"], [2, 2, 2], [1, 2, 2]),
    # İ lowercases to "i" + a combining dot, which ends Python's token.
    ("İstanbul", ["i", "stanbul", "istanbul"], [2, 3], [1]),
    # Python's final sigma looks beyond the token.
    ("ΟΔΟΣ.Α ΟΔΟΣ Α", ["οδος", "οδοσ", "α"], [3, 4, 2, 4], [2, 4, 2, 4]),
    # KELVIN SIGN lowercases to ASCII k.
    ("\u212ag kg KG", ["kg"], [2, 2, 2], [1, 2, 2]),
    # ẞ is not str.upper("ß") ("SS").
    ("STRAẞE", ["straße"], [2], [1]),
])
def test_text_documented_non_ascii_differences(text, vocabulary, python, graph):
    prep = _text_prep(vocabulary, 8)
    pad = [text_encoding.PAD] * (8 - len(python))
    np.testing.assert_array_equal(text_encoding.encode([text], vocabulary, 8)[0], python + pad)
    np.testing.assert_array_equal(_encode_graph(prep, [text])[0], graph + [text_encoding.PAD] * (8 - len(graph)))


def test_text_vocabulary_edge_cases_match_encode():
    # A repeated token keeps its last id (encode's dict), an empty or impossible token is never
    # produced, and a vocabulary token that is another's capitalized spelling keeps its own id.
    vocabulary = ["hello", "", "über", "Über", "hello", "a_b", "world"]
    texts = ["hello Über über ÜBER a_b world", "", "Hello"]
    np.testing.assert_array_equal(_encode_graph(_text_prep(vocabulary, 8), texts),
                                  text_encoding.encode(texts, vocabulary, 8))


def test_text_processing_in_front_is_replayed():
    frame = pd.DataFrame({"review": pd.Series(["Great product", None, "TERRIBLE, never again", "ok ok ok", None],
                                              dtype="str"),
                          "stars": [5, 3, 1, 3, 4]})
    config = {"feature_engineering": {"label_column": "stars"}, "transformations": [
        {"type": "fill_null", "columns": ["review"], "parameters": {"value": "no review given"}},
        {"type": "rename", "parameters": {"mapping": {"review": "body"}}}]}
    fitted = fit_processing(frame, config, seed=0)
    vocabulary = text_encoding.build_vocabulary(["great product never again", "no review"], 20)
    prep = _text_prep(vocabulary, 5, column="body")
    got = _encode_graph(prep, frame["review"].fillna("").tolist(), fitted=fitted, column="review")
    spec = TrainingSpec.from_dict({"model_type": "classification", "data": {"label_column": "stars",
                                                                            "text_column": "body"}})
    texts, _ = training_data.arrays_from_prep(spec, prep, apply_processing(frame, fitted))
    np.testing.assert_array_equal(got, text_encoding.encode(texts, vocabulary, 5))
    assert (got[1] == got[4]).all() and got[1, 0] > text_encoding.UNKNOWN  # the filled value's tokens


@pytest.mark.parametrize("prep_change, raw_types, error, match", [
    ({"tokenizer": "my.tokenizer"}, TEXT_RAW_TYPES, Unsupported, "my.tokenizer"),
    ({"text_column": "stars"}, TEXT_RAW_TYPES, Unsupported, "not text"),
    ({"vocabulary": None}, TEXT_RAW_TYPES, ValueError, "vocabulary"),
    ({"max_length": 0}, TEXT_RAW_TYPES, ValueError, "max_length"),
    ({}, {"review": "timestamp"}, Unsupported, "timestamp"),
])
def test_text_graph_refuses_what_it_cannot_reproduce(prep_change, raw_types, error, match):
    with pytest.raises(error, match=match):
        raw_input_graph({**_text_prep(["a"]), **prep_change}, None, raw_types, "ids", TensorProto.INT64)


# ----- interactions: the id maps inside the graph

ID_RAW_TYPES = {"user": "string", "item": "string", "rating": "float64"}
USERS = {"u1": 1, "u2": 2, "U1": 3, "ünïcode": 4, " spaced ": 5}
ITEMS = {"i1": 1, "i2": 2, "i-3": 3}


def _interactions_prep(users=USERS, items=ITEMS) -> dict:
    return {"kind": "interactions", "user_column": "user", "item_column": "item", "feature_names": ["user", "item"],
            "user_index": None if users is None else dict(users), "item_index": dict(items)}


def _adapter_indices(prep, frame) -> np.ndarray:
    """What pytorch_adapter's model_inputs makes of training_data's (user id, item id) strings."""
    spec = TrainingSpec.from_dict({"model_type": "recommendation", "data": {
        "label_column": "rating", "user_column": "user", "item_column": "item"}})
    pairs, _ = training_data.arrays_from_prep(spec, prep, frame)
    pairs = np.vectorize(str, otypes=[object])(pairs)
    return np.array([[prep["user_index"].get(u, 0), prep["item_index"].get(i, 0)] for u, i in pairs.tolist()],
                    dtype=np.int64).reshape(-1, 2)


def test_interactions_graph_matches_the_id_maps():
    frame = pd.DataFrame({
        "user": pd.Series(["u1", "u2", "U1", "u3", None, "ünïcode", " spaced ", "spaced", "u1 ", "nan"], dtype="str"),
        "item": pd.Series(["i1", "i-3", None, "i2", "i1", "I1", "i2", "i9", "i1", "i2"], dtype="str"),
        "rating": np.arange(10.0)})
    prep = _interactions_prep()
    model = raw_input_graph(prep, None, ID_RAW_TYPES, "pairs", TensorProto.INT64)
    onnx.checker.check_model(model, full_check=True)
    session = _session(model)
    assert [(i.name, i.type, i.shape) for i in session.get_inputs()] == [
        ("user", "tensor(string)", [None, 1]), ("item", "tensor(string)", [None, 1])]
    (got,) = session.run(["pairs"], _feeds(session, frame, ID_RAW_TYPES))
    want = _adapter_indices(prep, frame)
    np.testing.assert_array_equal(got, want)
    assert (want == 0).any() and (want > 0).any()
    (empty,) = session.run(["pairs"], {"user": np.empty((0, 1), object), "item": np.empty((0, 1), object)})
    assert empty.shape == (0, 2)


@pytest.mark.parametrize("users, raw_types, match", [
    ({**USERS, "nan": 6}, ID_RAW_TYPES, "'nan'"),
    ({**USERS, "": 6}, ID_RAW_TYPES, "''"),
    (USERS, {**ID_RAW_TYPES, "user": "int64"}, "not text"),
    (None, ID_RAW_TYPES, "user_index"),  # a model without id maps
])
def test_interactions_graph_refuses_ids_it_cannot_tell_apart(users, raw_types, match):
    with pytest.raises(Unsupported, match=match):
        raw_input_graph(_interactions_prep(users), None, raw_types, "pairs", TensorProto.INT64)


# ----- text and interactions models behind their front graphs


def _ids_model(width: int, n_ids: int, elem_type=TensorProto.INT64, opset: int = 17) -> tuple[bytes, np.ndarray]:
    """ids [N, width] -> sum over the row of an embedding-like table (Gather), as "variable"
    [N, 1]; and the table."""
    table = np.random.default_rng(5).normal(size=(n_ids, 1)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["table", "input"], ["embedded"]),  # [N, width, 1]
             helper.make_node("ReduceSum", ["embedded", "axes"], ["variable"], keepdims=0)]
    graph = helper.make_graph(nodes, "ids", [helper.make_tensor_value_info("input", elem_type, [None, width])],
                              [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
                              initializer=[numpy_helper.from_array(table, "table"),
                                           numpy_helper.from_array(np.array([1], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    helper.set_model_props(model, {"forge.model_id": "ids"})
    return model.SerializeToString(), table[:, 0]


@pytest.mark.parametrize("elem_type", [TensorProto.INT64, TensorProto.INT32])
def test_with_raw_inputs_feeds_a_text_model_raw_texts(elem_type):
    vocabulary = text_encoding.build_vocabulary(TRAINING_TEXTS, 60)
    prep = _text_prep(vocabulary, 6)
    blob, table = _ids_model(6, len(vocabulary) + 2, elem_type)
    composed = onnx.load_from_string(with_raw_inputs(blob, prep, None, TEXT_RAW_TYPES))
    onnx.checker.check_model(composed, full_check=True)
    assert {o.domain: o.version for o in composed.opset_import} == {"": 17, "ai.onnx.ml": 2, "com.microsoft": 1}
    assert {p.key: p.value for p in composed.metadata_props} == {"forge.model_id": "ids"}
    session = _session(composed)
    assert [i.name for i in session.get_inputs()] == ["review"]
    (got,) = session.run(["variable"], {"review": np.array(TEXTS, dtype=object).reshape(-1, 1)})
    want = table[text_encoding.encode(TEXTS, vocabulary, 6)].sum(axis=1)
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-6, atol=1e-6)


def test_with_raw_inputs_feeds_a_recommender_raw_ids():
    prep = _interactions_prep()
    blob, table = _ids_model(2, 6)
    session = _session(with_raw_inputs(blob, prep, None, ID_RAW_TYPES))
    frame = pd.DataFrame({"user": ["u1", "U1", "nobody", None], "item": ["i2", "i-3", "i1", "i9"], "rating": 1.0})
    (got,) = session.run(["variable"], _feeds(session, frame, ID_RAW_TYPES))
    np.testing.assert_allclose(got[:, 0], table[_adapter_indices(prep, frame)].sum(axis=1), rtol=1e-6)


def test_with_raw_inputs_checks_the_models_input_for_the_kind():
    prep = _text_prep(["a", "b"], 6)
    with pytest.raises(ValueError, match="int64 or int32"):
        with_raw_inputs(_identity_model(6), prep, None, TEXT_RAW_TYPES)  # a float input
    with pytest.raises(ValueError, match="6"):
        with_raw_inputs(_ids_model(4, 4)[0], prep, None, TEXT_RAW_TYPES)  # max_length 6, the model takes 4
    with pytest.raises(Unsupported, match="sequence"):
        with_raw_inputs(_identity_model(3), {"kind": "sequence"}, None, {"y": "float64"})


MANIFEST = {"framework": "pytorch", "architecture": "text_classifier", "versions": {"torch": "2"}}


def test_package_onnx_gives_text_and_recommender_models_raw_columns():
    vocabulary = text_encoding.build_vocabulary(TRAINING_TEXTS, 60)
    info = {"task": "regression", "features": ["review"], "classes": [], "preprocessing": _text_prep(vocabulary, 6)}
    blob, record, note = package.package_onnx(_ids_model(6, len(vocabulary) + 2)[0], MANIFEST, info, None,
                                              TEXT_RAW_TYPES)
    props = {p.key: p.value for p in onnx.load_from_string(blob).metadata_props}
    assert props["forge.raw_columns"] == "true" and props["forge.features"] == '["review"]'
    assert record["raw_columns"] and record["inputs"] == [{"name": "review", "dtype": "string", "shape": [-1, 1]}]
    assert "text column" in note

    info = {"task": "recommendation", "features": ["user", "item"], "classes": [],
            "preprocessing": _interactions_prep()}
    blob, record, _ = package.package_onnx(_ids_model(2, 6)[0], MANIFEST, info, None, ID_RAW_TYPES)
    assert record["raw_columns"] and [i["name"] for i in record["inputs"]] == ["user", "item"]

    # Numeric ids: the model keeps its own input, and the note says why.
    blob, record, note = package.package_onnx(_ids_model(2, 6)[0], MANIFEST, info, None,
                                              {**ID_RAW_TYPES, "item": "int64"})
    assert not record["raw_columns"] and record["inputs"][0]["dtype"] == "int64" and "not text" in note
    assert {p.key: p.value for p in onnx.load_from_string(blob).metadata_props}["forge.features"] == '["user", "item"]'


# ----- TF-IDF and date parts (processing's feature engineering of text and timestamp columns)

DATED_RAW_TYPES = {**RAW_TYPES, "notes": "string", "when": "timestamp"}
NOTE_WORDS = ["parcel", "late", "refund", "please", "thanks", "error_404", "x1", "42", "the", "a", "I", "of"]
UNSEEN_WORDS = ["zebra", "qq", "b", "refunds", "_", "__"]


def _notes(n: int, seed: int, *, unseen: bool = False) -> pd.Series:
    """ASCII texts of repeated words in any case, joined by spaces, punctuation, digits or
    underscores (which join words), with nulls; unseen words outside training. (No empty
    texts: "" is a missing text to the graph, which fill_null and imputation would fill.)"""
    rng = np.random.default_rng(seed)
    words = NOTE_WORDS + (UNSEEN_WORDS if unseen else [])
    cases = [str.lower, str.upper, str.title]
    texts = []
    for _ in range(n):
        parts = [rng.choice(cases)(str(rng.choice(words))) for _ in range(rng.integers(1, 9))]
        separators = rng.choice([" ", ", ", "! ", "-", "\t", "_", "'", ". "], len(parts))
        texts.append("".join(p + str(sep) for p, sep in zip(parts, separators)))
    texts = np.array(texts, dtype=object)
    texts[4::9] = None
    return pd.Series(texts, dtype="str")


# Test timestamps: the ends of the nanosecond range, before 1970 and after 2100, around leap
# days (2000 and 2024 are leap years, 1900 and 2100 are not), every kind of hour, nulls.
EDGE_TIMES = [
    "1677-09-21T00:12:43.145224193", "1677-09-22T23:00:00", "1899-12-31T23:59:59.999999999", "1900-02-28T13:00:00",
    "1900-03-01T00:00:00", "1904-02-29T01:30:00", "1969-12-31T23:59:59.999999999", "1970-01-01T00:00:00",
    "1970-01-01T00:59:59", None, "2000-02-29T23:00:00", "2000-03-01T11:11:11", "2024-02-29T12:34:56",
    "2024-12-31T23:59:59", "2100-02-28T22:00:00", "2100-03-01T02:00:00", "2104-02-29T17:45:00", None,
    "2199-12-31T23:00:00", "2262-04-11T23:47:16.854775807", "1700-03-01T06:00:00", "1812-06-15T19:00:00",
    "1969-02-28T09:00:00", "2038-01-19T03:14:08",
]
NANOS_PER_DAY = 86_400 * 10**9


def _times(values) -> pd.Series:
    return pd.Series(pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601")).astype("datetime64[ns]")


def _train_times(n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    low, high = pd.Timestamp("1950-01-01").value, pd.Timestamp("2150-01-01").value
    times = pd.Series(pd.to_datetime(rng.integers(low, high, n), unit="ns"))
    times[5::8] = pd.NaT
    return times


DATED_TRAIN = TRAIN.assign(notes=_notes(len(TRAIN), 0), when=_train_times(len(TRAIN), 0))
DATED_TEST = TEST.assign(notes=_notes(len(TEST), 1, unseen=True), when=_times(EDGE_TIMES))
NO_NOTES = {"type": "drop_columns", "columns": ["notes"]}
NO_WHEN = {"type": "drop_columns", "columns": ["when"]}

DATED_CONFIGS = {
    "tfidf": {**LABEL, "transformations": [NO_WHEN], "feature_engineering": {"label_column": "y",
                                                                            "text_columns": ["notes"]}},
    "date_parts": {**LABEL, "transformations": [NO_NOTES], "feature_engineering": {
        "label_column": "y", "date_part_columns": ["when"]}},
    "date_parts_cyclical": {**LABEL, "transformations": [NO_NOTES], "feature_engineering": {
        "label_column": "y", "date_part_columns": ["when"], "cyclical_dates": True}},
    "tfidf_and_date_parts": {**LABEL, "feature_engineering": {
        "label_column": "y", "text_columns": ["notes"], "date_part_columns": ["when"]}},
    "tfidf_and_cyclical_with_everything": {
        "transformations": [{"type": "fill_null", "columns": ["notes"], "parameters": {"value": "nothing noted"}},
                            {"type": "rename", "parameters": {"mapping": {"when": "at", "notes": "text"}}},
                            {"type": "cast", "columns": ["at"], "parameters": {"to": "timestamp"}},
                            {"type": "log", "columns": ["c"]}],
        "imputation": {"strategy": "most_frequent", "add_indicator": True},  # fills the timestamps too
        "feature_engineering": {"label_column": "y", "text_columns": ["text"], "date_part_columns": ["at"],
                                "cyclical_dates": True, "ratios": ["b/c"], "interactions": True},
        "encoding": {"method": "onehot", "handle_unknown": "ignore"},
        "normalization": {"method": "robust"},
        "sampling": {"method": "random", "fraction": 0.8},
    },
    "tfidf_dates_pca": {"imputation": {"strategy": "most_frequent"}, "feature_engineering": {
        "label_column": "y", "text_columns": ["notes"], "date_part_columns": ["when"], "pca_components": 4}},
    "tfidf_dates_selection": {"imputation": {"strategy": "most_frequent"}, "feature_engineering": {
        "label_column": "y", "text_columns": ["notes"], "date_part_columns": ["when"], "select_k_best": 6,
        "correlation_threshold": 0.95, "variance_threshold": 0.001}},
    "impute_constant_timestamp": {**LABEL, "transformations": [NO_NOTES], "imputation": {
        "strategy": "constant", "fill_value": "1960-07-04T12:00:00", "columns": ["when"], "add_indicator": True},
        "feature_engineering": {"label_column": "y", "date_part_columns": ["when"], "cyclical_dates": True}},
    "fill_null_timestamp": {**LABEL, "transformations": [
        NO_NOTES, {"type": "fill_null", "columns": ["when"], "parameters": {"value": "2101-02-28T21:30:00"}}],
        "feature_engineering": {"label_column": "y", "date_part_columns": ["when"], "polynomial_degree": 2}},
}


def _check(prep, fitted, frame, raw_types=DATED_RAW_TYPES):
    got, session = _run_graph(prep, fitted, frame, raw_types)
    want = _expected(prep, fitted, frame)
    assert got.shape == want.shape == (len(frame), len(prep["feature_names"]))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    return got, want, session


@pytest.mark.parametrize("name", DATED_CONFIGS)
def test_tfidf_and_date_parts_match_processing_on_new_rows(name):
    fitted, prep = _fit(DATED_CONFIGS[name], DATED_TRAIN)
    steps = {step["step"] for step in fitted["steps"]}
    assert steps & {"tfidf", "date_parts"}
    got, want, session = _check(prep, fitted, DATED_TEST)
    inputs = {i.name: i.type for i in session.get_inputs()}
    assert inputs.get("when", "tensor(int64)") == "tensor(int64)"
    assert inputs.get("notes", "tensor(string)") == "tensor(string)"
    terms = next((step["terms"] for step in fitted["steps"] if step["step"] == "tfidf"), [])
    tfidf = [i for i, n in enumerate(prep["feature_names"]) if "_tfidf_" in n]
    if terms and len(tfidf) == len(terms) and "normalization" not in steps:  # unit rows, or 0 without a known word
        norms = np.linalg.norm(want[:, tfidf], axis=1)
        assert ((np.abs(norms - 1) < 1e-12) | (norms == 0)).all() and (norms == 0).any() and (norms > 0).any()


def test_date_parts_match_pandas_on_every_day_of_the_nanosecond_range():
    first = -(2**63) // NANOS_PER_DAY + 1
    days = np.arange(first, (2**63 - 1) // NANOS_PER_DAY, dtype=np.int64)
    nanos = days * NANOS_PER_DAY + (days * 7_919_000_000_013) % NANOS_PER_DAY  # every day at some time of it
    nanos = np.concatenate([nanos, days[::97] * NANOS_PER_DAY, days[::89] * NANOS_PER_DAY + NANOS_PER_DAY - 1,
                            [-(2**63) + 1, 2**63 - 1, -1, 0, 1, -(2**63)]])  # midnights, last nanoseconds, NaT
    frame = pd.DataFrame({"when": pd.Series(nanos.view("datetime64[ns]")), "y": 0})
    assert frame["when"].isna().sum() == 1 and frame["when"].min().year == 1677 and frame["when"].max().year == 2262
    train = pd.DataFrame({"when": _train_times(10, 3), "y": np.arange(10) % 2})
    for cyclical in (False, True):
        config = {**LABEL, "feature_engineering": {"label_column": "y", "date_part_columns": ["when"],
                                                   "cyclical_dates": cyclical}}
        fitted, prep = _fit(config, train)
        got, want, _ = _check(prep, fitted, frame, {"when": "timestamp", "y": "int64"})
        if not cyclical:
            np.testing.assert_array_equal(got, want)  # integers: exactly
            assert set(got[:-1, 4]) == set(range(24)) and set(got[:-1, 3]) == set(range(7))


@pytest.mark.parametrize("zone, strategy", [
    ("UTC", "constant"), ("UTC", "most_frequent"), ("America/New_York", "constant"), ("Asia/Kolkata", "constant"),
])
def test_timestamps_with_a_zone_are_fed_their_local_wall_clock_time(zone, strategy):
    # processing's date parts of an aware column are those of its local time: the input holds
    # that wall-clock time (the UTC instant gives the UTC parts, which differ outside UTC). The
    # fill value: naive text localized to the zone, or the most frequent value with its offset
    # (processing itself cannot fill a column in another zone than UTC with such a value: pandas
    # 3 makes the column object, which date parts refuse).
    train = DATED_TRAIN.assign(when=DATED_TRAIN["when"].dt.tz_localize(zone, nonexistent="shift_forward",
                                                                      ambiguous="NaT"))
    stamps = pd.date_range("2024-03-09", periods=len(TEST), freq="197min", tz=zone)  # over New York's DST change
    test = DATED_TEST.assign(when=pd.Series(stamps).where(np.arange(len(TEST)) % 7 != 3))
    config = {**LABEL, "transformations": [NO_NOTES], "imputation": {
        "strategy": strategy, "fill_value": "2024-03-10T01:30:00", "columns": ["when"]},
        "feature_engineering": {"label_column": "y", "date_part_columns": ["when"], "cyclical_dates": True}}
    fitted, prep = _fit(config, train)
    fill = fitted["steps"][-2]["values"][0]
    assert fill == "2024-03-10T01:30:00" if strategy == "constant" else fill.endswith("+00:00")
    _, want, session = _check(prep, fitted, test)
    hour = prep["feature_names"].index("when_hour_sin")
    instants = {"when": test["when"].dt.tz_convert("UTC").dt.tz_localize(None)}
    (utc,) = session.run(["features"], _feeds(session, test.assign(**instants), DATED_RAW_TYPES))
    assert np.allclose(utc[:, hour], want[:, hour], atol=1e-9) == (zone == "UTC")


def test_tfidf_matches_processing_on_random_ascii():
    rng = np.random.default_rng(12)
    alphabet = np.array([chr(i) for i in range(128)] + list("aeiou etnrs _") * 8)  # every ASCII character
    texts = ["".join(rng.choice(alphabet, rng.integers(0, 60))) for _ in range(3000)]
    frame = pd.DataFrame({"notes": pd.Series(texts, dtype="str"), "y": rng.integers(0, 2, 3000)})
    config = {**LABEL, "feature_engineering": {"label_column": "y", "text_columns": ["notes"]}}
    fitted, prep = _fit(config, frame[:1500])
    assert len(fitted["steps"][0]["terms"]) == 200  # processing's cap
    got, want, _ = _check(prep, fitted, frame[1500:].reset_index(drop=True), {"notes": "string", "y": "int64"})
    assert (want > 0).any(axis=1).mean() > 0.5 and (want == 0).all(axis=1).any()


def test_tfidf_on_non_ascii_texts_matches_processing():
    # Capitals in the spellings the graph knows (raw_input's docstring, "Text").
    train = pd.DataFrame({"notes": pd.Series(TRAINING_TEXTS * 2, dtype="str"), "y": [0, 1] * len(TRAINING_TEXTS)})
    test = pd.DataFrame({"notes": pd.Series(TEXTS + [None], dtype="str"), "y": 0})
    fitted, prep = _fit({**LABEL, "feature_engineering": {"label_column": "y", "text_columns": ["notes"]}}, train)
    terms = fitted["steps"][0]["terms"]
    assert {"über", "москва", "οδος", "東京", "ǆemal", "٣٤"} <= set(terms)
    got, want, _ = _check(prep, fitted, test, {"notes": "string", "y": "int64"})
    assert (want > 0).sum() > 30


def test_tfidf_tokens_against_python_on_every_assigned_code_point():
    """The term indexes the TF-IDF graph counts, row by row, against scikit-learn's tokens of
    each character alone, tripled, inside an ASCII word, first and last in one (every token a
    term): they agree on every character but MISSED_CAPITALS and characters Python's Unicode
    version does not assign. (The whole TF-IDF graph, [N, terms], would be too big here.)"""
    from engine.export import raw_input

    unassigned = ("Cn", "Co", "Cs")
    points = [i for i in range(0x110000) if not 0xD800 <= i < 0xE000]
    chars = [chr(i) for i in points if unicodedata.category(chr(i)) not in unassigned or i % 61 == 0]
    texts = [f"{c} {c * 3} a{c}b {c}xy x{c}" for c in chars]
    terms = sorted({token for text in texts for token in raw_input._tfidf_tokenize(text)})
    g = raw_input._Graph("p/", 2)
    tokens = raw_input._tokens(g, g.add_input("notes", TensorProto.STRING), raw_input.TFIDF_TOKEN_REGEX)
    index = raw_input._spelling_ids({term: i for i, term in enumerate(terms)}, raw_input._tfidf_tokenize)
    g.op("Identity", g.text_ids(tokens, index, -1, -1), out="codes")
    graph = helper.make_graph(g.nodes, "tokens", g.inputs,
                              [helper.make_tensor_value_info("codes", TensorProto.INT64, [None, None])],
                              initializer=g.initializers, value_info=g.value_info)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    (codes,) = _session(model).run(["codes"], {"notes": np.array(texts, dtype=object).reshape(-1, 1)})
    position = {term: i for i, term in enumerate(terms)}
    wrong = {c for c, text, row in zip(chars, texts, codes[:-1])
             if [i for i in row if i >= 0] != [position[t] for t in raw_input._tfidf_tokenize(text)]}
    assert {c for c in wrong if unicodedata.category(c) != "Cn"} == MISSED_CAPITALS
    assert len(chars) > 150_000 and len(terms) > 400_000


@pytest.mark.parametrize("text, terms, python, graph", [
    # Non-ASCII capitals mixed after the first letter are not a known spelling.
    ("москВА", ["москва"], {"москва"}, set()),
    # İ lowercases to "i" + a combining dot, which ends Python's word.
    ("aİb", ["ai", "aib"], {"ai"}, set()),
    # Python's final sigma looks beyond the word.
    ("ΟΔΟΣ.Α", ["οδοσ", "οδος"], {"οδοσ"}, {"οδος"}),
    # KELVIN SIGN lowercases to ASCII k.
    ("\u212ag", ["kg"], {"kg"}, set()),
])
def test_tfidf_documented_non_ascii_differences(text, terms, python, graph):
    """The terms with a weight, in processing and in the graph."""
    train = pd.DataFrame({"notes": pd.Series([" ".join(terms), "other words"], dtype="str"), "y": [0, 1]})
    fitted, prep = _fit({**LABEL, "feature_engineering": {"label_column": "y", "text_columns": ["notes"]}}, train)
    frame = pd.DataFrame({"notes": pd.Series([text], dtype="str"), "y": [0]})
    got, _ = _run_graph(prep, fitted, frame, {"notes": "string", "y": "int64"})
    want = _expected(prep, fitted, frame)
    names = [name.removeprefix("notes_tfidf_") for name in prep["feature_names"]]
    assert {t for t, w in zip(names, want[0]) if w} == python
    assert {t for t, w in zip(names, got[0]) if w} == graph


@pytest.mark.parametrize("rows", [0, 1, 3])
def test_tfidf_and_date_parts_on_empty_batches_and_rows_without_words(rows):
    fitted, prep = _fit(DATED_CONFIGS["tfidf_and_date_parts"], DATED_TRAIN)
    frame = DATED_TEST.head(rows).assign(notes=pd.Series(["", "a b c", "!!! ..."][:rows], dtype="str"))
    if rows:
        got, _, _ = _check(prep, fitted, frame)
    else:  # processing's own TF-IDF refuses an empty frame (scikit-learn's normalize needs a row)
        got, _ = _run_graph(prep, fitted, frame, DATED_RAW_TYPES)
    assert got.shape == (rows, len(prep["feature_names"]))
    tfidf = [i for i, n in enumerate(prep["feature_names"]) if "_tfidf_" in n]
    assert (got[:, tfidf] == 0).all()


def test_with_raw_inputs_predicts_like_sklearn_from_raw_text_and_timestamps():
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    fitted, prep = _fit(DATED_CONFIGS["tfidf_and_cyclical_with_everything"], DATED_TRAIN)
    X, y = training_data._apply(_spec(), prep, apply_processing(DATED_TRAIN, fitted, fitting=True))
    model = LogisticRegression(max_iter=2000).fit(X, y)
    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, X.shape[1]]))],
                                 options={id(model): {"zipmap": False}}, target_opset=17)
    composed = onnx.load_from_string(with_raw_inputs(onnx_model.SerializeToString(), prep, fitted, DATED_RAW_TYPES))
    assert {o.domain: o.version for o in composed.opset_import} == {
        **{o.domain: o.version for o in onnx_model.opset_import}, "com.microsoft": 1}
    session = _session(composed)
    assert {"notes": "tensor(string)", "when": "tensor(int64)"}.items() <= {
        i.name: i.type for i in session.get_inputs()}.items()
    _, probabilities = session.run(["label", "probabilities"], _feeds(session, DATED_TEST, DATED_RAW_TYPES))
    X_test = _expected(prep, fitted, DATED_TEST)
    np.testing.assert_allclose(probabilities, model.predict_proba(X_test), rtol=0, atol=1e-5)


@pytest.mark.parametrize("opset", [11, 13, 21])
def test_tfidf_and_date_parts_at_the_models_opset(opset):
    fitted, prep = _fit(DATED_CONFIGS["tfidf_and_date_parts"], DATED_TRAIN)
    composed = with_raw_inputs(_identity_model(len(prep["feature_names"]), opset=opset), prep, fitted,
                               DATED_RAW_TYPES)
    assert {o.domain: o.version for o in onnx.load_from_string(composed).opset_import} == {
        "": opset, "ai.onnx.ml": 2, "com.microsoft": 1}
    session = _session(composed)
    (out,) = session.run(["out"], _feeds(session, DATED_TEST, DATED_RAW_TYPES))
    want = 2 * _expected(prep, fitted, DATED_TEST).astype(np.float32)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
