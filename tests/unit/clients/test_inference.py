"""Unit tests of forge.training.inference on small ONNX models built here: a skl2onnx
LogisticRegression (matrix input, "label"/"probabilities" outputs), a hand-built raw-columns
graph (a double and a string input) and a skl2onnx LinearRegression ("variable")."""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest

try:
    import forge.training  # noqa: F401
except ImportError:  # not installed: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "clients" / "python"))

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")
pd = pytest.importorskip("pandas")

from onnx import TensorProto, helper  # noqa: E402

from forge.training import Client, ForgeTrainingError  # noqa: E402
from forge.training.inference import BatchingPredictor, BatchStats, Model, TensorInfo  # noqa: E402
from forge.training.v1 import common_pb2, model_pb2, trainer_service_pb2, trainer_service_pb2_grpc  # noqa: E402

FEATURES = ["age", "income", "tenure", "visits"]
CLASSES = ["bronze", "gold", "silver"]  # LogisticRegression.classes_ order (sorted)
ONNX_FORMAT = common_pb2.ExportFormat.EXPORT_FORMAT_ONNX


def with_props(model: onnx.ModelProto, **props: object) -> bytes:
    """The model with forge.* metadata_props (key "raw_columns" -> "forge.raw_columns")."""
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key = "forge." + key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    return model.SerializeToString()


def sklearn_onnx(estimator, n_features: int, classifier: bool) -> onnx.ModelProto:
    """Converted as engine/frameworks/scikit_learn.py does: a Pipeline, zipmap off, one float
    input named "input", so the outputs are "label"/"probabilities" or "variable"."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.pipeline import Pipeline

    options = {id(estimator): {"zipmap": False}} if classifier else None
    return convert_sklearn(Pipeline([("model", estimator)]), options=options, target_opset=17,
                           initial_types=[("input", FloatTensorType([None, n_features]))])


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(90, 4)).astype(np.float32)
    y = np.array(CLASSES)[np.argmax(X[:, :3] + rng.normal(scale=0.3, size=(90, 3)), axis=1)]
    return X, y


@pytest.fixture(scope="module")
def classifier(data):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    estimator = LogisticRegression(max_iter=500).fit(X, y)
    assert estimator.classes_.tolist() == CLASSES
    proto = sklearn_onnx(estimator, 4, classifier=True)
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    blob = with_props(proto, framework="sklearn", architecture="logistic_regression",
                      versions={"scikit-learn": "1"}, task="classification", features=FEATURES, classes=CLASSES)
    return estimator, blob


@pytest.fixture(scope="module")
def regressor(data):
    from sklearn.linear_model import LinearRegression

    X, _ = data
    estimator = LinearRegression().fit(X[:, :3], X[:, 0] * 3 + X[:, 1] - 2)
    proto = sklearn_onnx(estimator, 3, classifier=False)
    assert [o.name for o in proto.graph.output] == ["variable"]
    return estimator, with_props(proto, framework="sklearn", task="regression", features=FEATURES[:3])


def raw_columns_graph(**props: object) -> bytes:
    """variable = age * 2 + (plan == "premium"), inputs age (double) and plan (string)."""
    nodes = [
        helper.make_node("Constant", [], ["two"], value=helper.make_tensor("two", TensorProto.DOUBLE, [], [2.0])),
        helper.make_node("Constant", [], ["premium"],
                         value=helper.make_tensor("premium", TensorProto.STRING, [], [b"premium"])),
        helper.make_node("Mul", ["age", "two"], ["doubled"]),
        helper.make_node("Equal", ["plan", "premium"], ["is_premium"]),
        helper.make_node("Cast", ["is_premium"], ["bonus"], to=TensorProto.DOUBLE),
        helper.make_node("Add", ["doubled", "bonus"], ["variable"]),
    ]
    graph = helper.make_graph(
        nodes, "raw",
        [helper.make_tensor_value_info("age", TensorProto.DOUBLE, [None, 1]),
         helper.make_tensor_value_info("plan", TensorProto.STRING, [None, 1])],
        [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])],
    )
    # Equal on strings needs opset 19 in onnxruntime.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    return with_props(model, **props)


@pytest.fixture(scope="module")
def raw_model():
    return Model.from_bytes(raw_columns_graph(framework="sklearn", task="regression", features=["age", "plan"],
                                              raw_columns="true"))


def int_sum_graph() -> bytes:
    """variable = sum of an int64 [None, 2] input, as a double."""
    nodes = [helper.make_node("Cast", ["input"], ["as_double"], to=TensorProto.DOUBLE),
             helper.make_node("ReduceSum", ["as_double"], ["variable"], keepdims=1)]
    graph = helper.make_graph(nodes, "ints", [helper.make_tensor_value_info("input", TensorProto.INT64, [None, 2])],
                              [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])])
    # ReduceSum takes its axes as an input from opset 13; with none it sums everything, so opset 11.
    graph.node[1].attribute.append(helper.make_attribute("axes", [1]))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 8
    return with_props(model, task="regression", features=["a", "b"])


def rows_of(X: np.ndarray, names=FEATURES) -> list[dict[str, float]]:
    return [dict(zip(names, map(float, row))) for row in X]


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def test_classifier_metadata(classifier):
    model = Model.from_bytes(classifier[1])
    assert model.task == "classification" and model.is_classifier
    assert model.features == FEATURES and model.classes == CLASSES
    assert (model.framework, model.architecture, model.versions) == ("sklearn", "logistic_regression",
                                                                     {"scikit-learn": "1"})
    assert model.raw_columns is False
    assert model.inputs == [TensorInfo("input", "float32", (None, 4))]
    assert [o.name for o in model.outputs] == ["label", "probabilities"]


def test_raw_columns_metadata(raw_model):
    assert raw_model.raw_columns is True
    assert raw_model.features == ["age", "plan"]
    assert raw_model.inputs == [("age", "float64", (None, 1)), ("plan", "string", (None, 1))]


def test_from_file(tmp_path, classifier, data):
    path = tmp_path / "model.onnx"
    path.write_bytes(classifier[1])
    model = Model.from_file(path)
    assert model.predict(data[0][:5]) == classifier[0].predict(data[0][:5]).tolist()


@pytest.mark.parametrize("blob, hint", [
    (pickle.dumps({"a": 1}, protocol=5), "pickle"),
    (b"PK\x03\x04" + b"\0" * 100, "zip archive"),
    (b'{"learner": {}}', "JSON"),
    (b"not a model at all", ""),
])
def test_not_onnx(tmp_path, blob, hint):
    with pytest.raises(ValueError, match=f"not an ONNX model.*{hint}"):
        Model.from_bytes(blob)
    path = tmp_path / "model.bin"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=f"not an ONNX model.*{hint}"):
        Model.from_file(path)


def test_onnx_that_onnxruntime_cannot_run():
    node = helper.make_node("Nope", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    with pytest.raises(ValueError, match=r"onnxruntime \S+ cannot load this ONNX model"):
        Model.from_bytes(model.SerializeToString())


def test_classes_must_match_probability_columns(data):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    proto = sklearn_onnx(LogisticRegression().fit(X, y), 4, classifier=True)
    with pytest.raises(ValueError, match="3 probabilities per row but names 2 classes"):
        Model.from_bytes(with_props(proto, task="classification", classes=["a", "b"]))


def test_missing_dependency_names_the_extra(monkeypatch, classifier):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ImportError, match=r"pip install 'forge-training-client\[inference\]'"):
        Model.from_bytes(classifier[1])


# ---------------------------------------------------------------------------
# Export streams
# ---------------------------------------------------------------------------


def export_messages(blob: bytes, chunk: int = 200, **metadata) -> list[trainer_service_pb2.ExportModelResponse]:
    """The messages ExportModel sends for `blob`: metadata (right size and sha256 unless
    overridden) on the first, then chunks with their offsets."""
    fields = dict(format=ONNX_FORMAT, size_bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest(),
                  filename="model.onnx")
    fields.update(metadata)
    messages = [trainer_service_pb2.ExportModelResponse(data=blob[i : i + chunk], offset=i)
                for i in range(0, len(blob), chunk)]
    messages[0].metadata.CopyFrom(model_pb2.ExportMetadata(**fields))
    return messages


def test_from_stream(classifier, data):
    messages = export_messages(classifier[1])
    assert len(messages) > 1
    model = Model.from_stream(iter(messages))
    assert model.predict(data[0][:5]) == classifier[0].predict(data[0][:5]).tolist()
    assert model.export_metadata.filename == "model.onnx"


def test_stream_metadata_fills_what_the_file_lacks(data):
    from sklearn.linear_model import LogisticRegression

    X, y = data
    blob = sklearn_onnx(LogisticRegression().fit(X, y), 4, classifier=True).SerializeToString()  # no props
    model = Model.from_stream(export_messages(blob, framework="sklearn", input_features=FEATURES,
                                              class_labels=CLASSES))
    assert (model.features, model.classes, model.framework, model.task) == (FEATURES, CLASSES, "sklearn",
                                                                            "classification")
    assert model.predict(rows_of(X[:3])) == model.predict(X[:3])


def corrupt(messages):
    flipped = bytearray(messages[1].data)
    flipped[0] ^= 0xFF
    messages[1].data = bytes(flipped)
    return messages


@pytest.mark.parametrize("tamper, problem", [
    (corrupt, "sha256 .* does not match"),
    (lambda m: m[:-1], r"received \d+ bytes, expected \d+"),
    (lambda m: [m[0], m[2], m[1], *m[3:]], "chunk at offset 400, expected 200"),
    (lambda m: m[1:], "the first message carries no metadata"),
    (lambda m: [], "the stream was empty"),
])
def test_from_stream_rejects_a_corrupt_export(classifier, tamper, problem):
    with pytest.raises(ForgeTrainingError, match=problem) as info:
        Model.from_stream(tamper(export_messages(classifier[1])))
    assert info.value.code == grpc.StatusCode.DATA_LOSS


def test_from_stream_rejects_another_format(classifier):
    messages = export_messages(pickle.dumps("x"), format=common_pb2.ExportFormat.EXPORT_FORMAT_PICKLE)
    with pytest.raises(ValueError, match="format EXPORT_FORMAT_PICKLE, not ONNX"):
        Model.from_stream(messages)


@contextlib.contextmanager
def serve(trainer):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trainer_service_pb2_grpc.add_TrainerServiceServicer_to_server(trainer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client(f"127.0.0.1:{port}", timeout=5) as client:
            yield client
    finally:
        server.stop(None)


def test_from_service(classifier, data):
    requests = []

    class Fake(trainer_service_pb2_grpc.TrainerServiceServicer):
        def ExportModel(self, request, context):
            requests.append(request)
            yield from export_messages(classifier[1], input_features=["ignored"])

    with serve(Fake()) as client:
        model = Model.from_service(client, "job-1")
    assert [(r.name, r.format) for r in requests] == [("job-1", ONNX_FORMAT)]
    assert model.features == FEATURES  # the file's own metadata wins over the stream's
    assert model.predict(data[0][:5]) == classifier[0].predict(data[0][:5]).tolist()


# ---------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------


def test_classifier_predicts_from_every_row_form(classifier, data):
    estimator, blob = classifier
    model = Model.from_bytes(blob)
    X = data[0][:12]
    want = estimator.predict(X).tolist()
    frame = pd.DataFrame(X, columns=FEATURES).assign(extra="ignored")
    assert model.predict(X) == want
    assert model.predict(X.tolist()) == want
    assert model.predict(rows_of(X)) == want
    assert model.predict(frame) == want
    assert model.predict({name: frame[name].tolist() for name in FEATURES}) == want
    assert model.predict(rows_of(X)[0]) == want[:1]
    assert model.predict([]) == []
    assert all(isinstance(label, str) for label in want)


def test_predict_proba(classifier, data):
    estimator, blob = classifier
    model = Model.from_bytes(blob)
    X = data[0][:8]
    want = estimator.predict_proba(X)
    got = model.predict_proba(rows_of(X))
    assert [list(p) for p in got] == [CLASSES] * 8
    np.testing.assert_allclose([[p[c] for c in CLASSES] for p in got], want, atol=1e-5)
    array = model.predict_proba(X, as_array=True)
    assert array.dtype == np.float64 and array.shape == (8, 3)
    np.testing.assert_allclose(array, want, atol=1e-5)
    assert model.predict_proba([], as_array=True).shape == (0, 3)


def test_regressor(regressor, data):
    estimator, blob = regressor
    model = Model.from_bytes(blob)
    X = data[0][:6, :3]
    got = model.predict(rows_of(X, FEATURES[:3]))
    assert all(isinstance(v, float) for v in got)
    np.testing.assert_allclose(got, estimator.predict(X), rtol=1e-5, atol=1e-5)
    assert set(model.run(X)) == {"variable"}
    with pytest.raises(ValueError, match="predict_proba needs a classifier; this model's task is regression"):
        model.predict_proba(X)


def test_raw_columns_predict(raw_model):
    rows = [{"age": 30, "plan": "premium"}, {"age": 2.5, "plan": "basic", "other": 1},
            {"age": True, "plan": None}, {"age": None, "plan": "premium"}, {"age": np.int64(4), "plan": np.str_("x")}]
    got = raw_model.predict(rows)
    assert got[:3] == [61.0, 5.0, 2.0] and np.isnan(got[3]) and got[4] == 8.0
    frame = pd.DataFrame({"plan": ["premium", None, "basic"], "age": [1.0, np.nan, 3.0]})
    got = raw_model.predict(frame)
    assert got[0] == 3.0 and np.isnan(got[1]) and got[2] == 6.0
    assert raw_model.predict({"age": [1, 2], "plan": ["premium", "basic"]}) == [3.0, 4.0]
    assert raw_model.predict([[1, "premium"], [2, "basic"]]) == [3.0, 4.0]  # columns in feature order


def test_raw_columns_positional_rows_follow_the_features():
    # Inputs (age, plan) are fewer than the features and in another order, as when processing
    # drops a column and reads the others in its own order.
    model = Model.from_bytes(raw_columns_graph(task="regression", features=["plan", "tenure", "age"],
                                               raw_columns="true"))
    assert model.predict([["premium", 9, 30], ["basic", None, 1]]) == [61.0, 2.0]
    assert model.predict([{"age": 30, "plan": "premium"}]) == [61.0]  # by name, "tenure" is not needed
    unnamed = Model.from_bytes(raw_columns_graph(task="regression", features=["age"], raw_columns="true"))
    with pytest.raises(ValueError, match="input 'plan' is not among its features"):
        unnamed.predict([[1]])


def test_row_errors_name_the_problem(raw_model, classifier, data):
    model = Model.from_bytes(classifier[1])
    rows = rows_of(data[0][:5])
    del rows[3]["age"]
    with pytest.raises(ValueError, match="row 3 lacks feature 'age'"):
        model.predict(rows)
    with pytest.raises(ValueError, match="the DataFrame lacks feature 'visits'"):
        model.predict(pd.DataFrame(data[0][:2, :3], columns=FEATURES[:3]))
    with pytest.raises(ValueError, match="row 1 lacks feature 'plan'"):
        raw_model.predict([{"age": 1, "plan": "a"}, {"age": 2}])
    with pytest.raises(TypeError, match=r"row 1 feature 'age' is 'old' \(str\); the model expects a number"):
        raw_model.predict([{"age": 1, "plan": "a"}, {"age": "old", "plan": "a"}])
    with pytest.raises(TypeError, match=r"row 0 feature 'plan' is 7 \(int\); the model expects a string"):
        raw_model.predict([{"age": 1, "plan": 7}])
    with pytest.raises(TypeError, match="row 1 is a str, expected a dict"):
        raw_model.predict([{"age": 1, "plan": "a"}, "oops"])
    with pytest.raises(ValueError, match="the columns differ in length"):
        raw_model.predict({"age": [1, 2], "plan": ["a"]})
    with pytest.raises(ValueError, match=r"row 0 has 3 values; the model takes 2 features \(age, plan\)"):
        raw_model.predict([[1, "a", 3]])
    with pytest.raises(ValueError, match=r"the rows have shape \(2, 3\); the model's input 'input' takes \[any, 4\]"):
        model.predict(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="the rows must be numbers"):
        model.predict([["a", "b", "c", "d"]])
    with pytest.raises(ValueError, match="1-D array is not a batch of rows"):
        model.predict(np.zeros(4))


def test_rows_by_name_need_named_features(data):
    from sklearn.linear_model import LinearRegression

    X = data[0][:, :2]
    blob = sklearn_onnx(LinearRegression().fit(X, X[:, 0]), 2, classifier=False).SerializeToString()
    model = Model.from_bytes(blob)
    assert model.task == "regression" and model.features == []
    with pytest.raises(ValueError, match="does not name its features"):
        model.predict([{"a": 1.0, "b": 2.0}])
    assert len(model.predict(X[:2])) == 2
    # Raw features that one-hot encoding outside the graph widened into more columns.
    encoded = Model.from_bytes(with_props(onnx.load_from_string(blob), features=["plan"]))
    with pytest.raises(ValueError, match="names 1 raw features; its preprocessing"):
        encoded.predict([{"plan": "basic"}])


def test_int64_input_cannot_hold_missing_values():
    model = Model.from_bytes(int_sum_graph())
    assert model.inputs == [("input", "int64", (None, 2))]
    assert model.predict([{"a": 1, "b": 2}, {"a": True, "b": 5}]) == [3.0, 6.0]
    with pytest.raises(ValueError, match="row 1 feature 'b' is missing; the model's int64 input"):
        model.predict([{"a": 1, "b": 2}, {"a": 1, "b": None}])


def test_predict_is_thread_safe(classifier, data):
    model = Model.from_bytes(classifier[1])
    want = model.predict(data[0])
    with futures.ThreadPoolExecutor(8) as pool:
        assert all(got == want for got in pool.map(lambda _: model.predict(data[0]), range(32)))


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------


def submit_together(batcher: BatchingPredictor, rows: list) -> list:
    """Each row predicted from its own thread, all released at once."""
    barrier = threading.Barrier(len(rows))
    results: list = [None] * len(rows)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = batcher.predict(rows[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(rows))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_batching_groups_concurrent_rows(classifier, data):
    model = Model.from_bytes(classifier[1])
    rows = rows_of(data[0][:50])
    with BatchingPredictor(model, max_batch_size=64, max_delay_ms=20) as batcher:
        got = submit_together(batcher, rows)
        stats = batcher.stats
    assert got == model.predict(rows)
    assert stats.rows == 50 and stats.batches < 50, stats


def test_batching_respects_max_batch_size(raw_model):
    rows = [{"age": float(i), "plan": "premium" if i % 2 else "basic"} for i in range(30)]
    with BatchingPredictor(raw_model, max_batch_size=4, max_delay_ms=20) as batcher:
        got = submit_together(batcher, rows)
    assert got == raw_model.predict(rows)
    assert batcher.stats.rows == 30 and batcher.stats.largest_batch <= 4 and batcher.stats.batches >= 8


def test_batching_a_bad_row_fails_alone(raw_model):
    with BatchingPredictor(raw_model, max_delay_ms=200) as batcher:
        good = batcher.submit({"age": 1, "plan": "premium"})
        bad = batcher.submit({"age": 1})
        matrix_row = batcher.submit([2, "basic"])
        with pytest.raises(ValueError, match="the row lacks feature 'plan'"):
            bad.result(timeout=10)
        assert good.result(timeout=10) == 3.0 and matrix_row.result(timeout=10) == 4.0
        with pytest.raises(ValueError, match="submit takes one row, got 2"):
            batcher.predict({"age": [1, 2], "plan": ["a", "b"]})
    assert batcher.stats == BatchStats(batches=1, rows=2, largest_batch=2)


def test_batching_close_runs_pending_rows_then_refuses(raw_model):
    batcher = BatchingPredictor(raw_model, max_delay_ms=200)
    pending = [batcher.submit({"age": i, "plan": "basic"}) for i in range(5)]
    batcher.close()
    assert [f.result(timeout=0) for f in pending] == [0.0, 2.0, 4.0, 6.0, 8.0]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit({"age": 1, "plan": "basic"})
    batcher.close()  # idempotent


def test_timestamp_inputs_take_datetimes_as_wall_clock_nanoseconds():
    import datetime as dt

    import numpy as np
    import pandas as pd
    from onnx import TensorProto, helper

    from forge.training.inference import Model

    graph = helper.make_graph(
        [helper.make_node("Identity", ["when"], ["variable"])], "stamps",
        [helper.make_tensor_value_info("when", TensorProto.INT64, [None, 1])],
        [helper.make_tensor_value_info("variable", TensorProto.INT64, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (("forge.raw_columns", "true"), ("forge.features", '["when"]'), ("forge.task", "regression")):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    loaded = Model.from_bytes(model.SerializeToString())
    berlin = dt.timezone(dt.timedelta(hours=1))
    rows = [{"when": dt.datetime(2024, 2, 29, 13, 30)}, {"when": "1969-12-31T23:59:59"},
            {"when": dt.datetime(2024, 2, 29, 13, 30, tzinfo=berlin)}, {"when": None}, {"when": dt.date(2000, 1, 1)},
            {"when": pd.Timestamp("2024-02-29 13:30:00.000000001")}, {"when": np.datetime64("2024-02-29T13:30")}]
    got = loaded.run(rows)["variable"].ravel().tolist()
    want = pd.to_datetime(["2024-02-29 13:30", "1969-12-31 23:59:59", "2024-02-29 13:30", None, "2000-01-01",
                           "2024-02-29 13:30:00.000000001", "2024-02-29 13:30"], format="ISO8601")
    want = want.as_unit("ns").to_numpy().view("int64").tolist()
    assert got == want  # the zoned value keeps its local wall-clock time; None is NaT
    frame = pd.DataFrame({"when": pd.to_datetime(["2024-02-29 13:30", None])})
    assert loaded.run(frame)["variable"].ravel().tolist() == want[:1] + [-(2**63)]
    with pytest.raises(TypeError, match="ISO 8601"):
        loaded.run([{"when": "yesterday"}])
