"""Predictions from an exported ONNX model, on raw rows, with onnxruntime.

    from forge.training import Client
    from forge.training.inference import BatchingPredictor, Model

    model = Model.from_service(Client("127.0.0.1:50051"), "churn-job")   # or from_file / from_bytes
    model.predict([{"age": 42, "plan": "premium"}])        # ["yes"]
    model.predict_proba([{"age": 42, "plan": "premium"}])  # [{"no": 0.2, "yes": 0.8}]

    with BatchingPredictor(model, max_batch_size=64, max_delay_ms=5) as batcher:
        batcher.predict({"age": 42, "plan": "premium"})     # from many threads at once

numpy and onnxruntime are imported on first use; install them with
``pip install 'forge-training-client[inference]'``.

What the server puts in an ONNX export, and this module relies on:

* metadata_props: "forge.framework", "forge.architecture", "forge.versions" (JSON object),
  "forge.task" (classification, regression, forecasting, recommendation or
  anomaly_detection), "forge.features" (JSON list of the raw input feature names, in order),
  "forge.classes" (JSON list of the class labels as strings, in probability-column order) and
  "forge.raw_columns" ("true" when the graph takes the raw columns). The ExportMetadata of an
  export stream fills in what the file lacks; without either, the task is guessed from the
  output names.
* Raw-columns graphs have one input per raw feature column the model uses (perhaps fewer
  than "forge.features", in another order), named by the column, shape [None, 1]:
  tensor(double) for numeric and bool columns (bools as 1.0/0.0, a missing value as NaN),
  tensor(int64) for timestamps (nanoseconds since 1970-01-01 of the wall-clock time, a
  missing value as -2**63, pandas' NaT) and tensor(string) for the others (a missing value
  as "").
* Other graphs have one input [None, F] (float, double or int64); a row given by feature name
  is laid out in "forge.features" order, which only works when F equals the number of features
  (a graph fed one-hot columns built outside it needs the encoded matrix instead).
* Outputs are named as in engine/export/parity.py: classifiers "probabilities" ([n, classes]
  in "forge.classes" order) and usually "label"; regressors and forecasters "variable"
  ([n, 1]); anomaly detectors "label" (1 normal, -1 anomaly) and "scores"
  (decision_function, negative = anomaly).

Rows may be a list of dicts keyed by feature name (other keys are ignored), one such dict, a
dict of columns, a pandas DataFrame, or a 2-D array / list of lists whose columns are the
features in order. Errors name the row (counted from 0) and the feature.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import io
import json
import math
import numbers
import queue
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

import grpc

from forge.training.client import check_export, copy_export
from forge.training.errors import from_rpc_error
from forge.training.v1 import common_pb2, model_pb2, trainer_service_pb2

if TYPE_CHECKING:
    import numpy as np

    from forge.training.client import Client

__all__ = ["BatchStats", "BatchingPredictor", "Model", "TensorInfo", "TASKS"]

#: The values of the "forge.task" metadata.
TASKS = ("classification", "regression", "forecasting", "recommendation", "anomaly_detection")

_INSTALL_HINT = "pip install 'forge-training-client[inference]'"

# metadata_props keys the server writes into every ONNX export.
_FRAMEWORK = "forge.framework"
_ARCHITECTURE = "forge.architecture"
_VERSIONS = "forge.versions"
_TASK = "forge.task"
_FEATURES = "forge.features"
_CLASSES = "forge.classes"
_RAW_COLUMNS = "forge.raw_columns"

# onnxruntime's element types, by the names TensorSpec.dtype uses.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "string",
}

Rows = Any  # list of dicts, a dict (one row or columns), a DataFrame, or a 2-D array / list of lists
Source = Union[bytes, str, Path]


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise ImportError(f"forge.training.inference needs numpy: {_INSTALL_HINT}") from exc
    return numpy


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"forge.training.inference needs onnxruntime: {_INSTALL_HINT}") from exc
    return onnxruntime


class TensorInfo(NamedTuple):
    """An input or output of the graph: dtype as in TensorSpec ("float32", "string", ...),
    shape with None where any size goes (the batch dimension)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def _open_session(source: Source) -> Any:
    """An onnxruntime session on the model, or a ValueError that says what the bytes are."""
    ort = _onnxruntime()
    try:
        # A path goes to onnxruntime as a path, so weights stored beside the file load too.
        return ort.InferenceSession(
            source if isinstance(source, bytes) else str(source), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types, not ValueError
        hint = _looks_like(source[:512] if isinstance(source, bytes) else _head(Path(source)))
        # InvalidProtobuf: the bytes do not parse as ONNX at all. Anything else is ONNX that this
        # onnxruntime cannot run (an operator or opset it lacks), which is a different fix.
        if hint or type(exc).__name__ == "InvalidProtobuf":
            raise ValueError(f"not an ONNX model{hint}: {exc}") from None
        raise ValueError(f"onnxruntime {ort.__version__} cannot load this ONNX model: {exc}") from None


def _head(path: Path) -> bytes:
    with path.open("rb") as f:  # a missing file raises FileNotFoundError here, which says it all
        return f.read(512)


def _looks_like(head: bytes) -> str:
    """What a non-ONNX export most likely is, from its first bytes, so that the error says
    which export format was fetched by mistake."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return " (it looks like a pickle; export with format 'onnx')"
    if head.startswith(b"PK\x03\x04"):
        return " (it looks like a zip archive, e.g. a torch export; export with format 'onnx')"
    if head[257:262] == b"ustar":
        return " (it looks like a tar archive, e.g. a SavedModel; export with format 'onnx')"
    if head.lstrip()[:1] == b"{":
        return " (it looks like JSON, e.g. an XGBoost model; export with format 'onnx')"
    return ""


def _tensor_info(node: Any) -> TensorInfo:
    dtype = _ORT_TYPES.get(node.type, node.type)
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (node.shape or ()))
    return TensorInfo(node.name, dtype, shape)


def _json_prop(props: Mapping[str, str], key: str, kind: type) -> Any:
    if key not in props:
        return None
    try:
        value = json.loads(props[key])
    except json.JSONDecodeError as exc:
        raise ValueError(f"metadata {key} is not JSON: {exc}") from None
    if not isinstance(value, kind):
        raise ValueError(f"metadata {key} is not a JSON {kind.__name__}: {props[key][:100]!r}")
    return value


def _require_onnx(metadata: model_pb2.ExportMetadata) -> None:
    if metadata.format != common_pb2.ExportFormat.EXPORT_FORMAT_ONNX:
        name = common_pb2.ExportFormat.Name(metadata.format) if metadata.format in common_pb2.ExportFormat.values() \
            else str(metadata.format)
        raise ValueError(f"the export is in format {name}, not ONNX; export the model with format 'onnx'")


def _read_export(messages: Iterable[trainer_service_pb2.ExportModelResponse]) -> tuple[model_pb2.ExportMetadata, bytes]:
    """The metadata and bytes of an export stream, checked as Client.export_model checks them."""
    what = "the export stream"
    out = io.BytesIO()
    hasher = hashlib.sha256()
    try:
        # _require_onnx runs on the first message: no point in downloading a pickle.
        metadata, written = copy_export(what, messages, out, hasher, on_metadata=_require_onnx)
    except grpc.RpcError as exc:  # the messages may be a live ExportModel call
        raise from_rpc_error(exc) from exc
    finally:
        cancel = getattr(messages, "cancel", None)
        if callable(cancel):
            cancel()  # frees a live call left unfinished by an error; a no-op once it has ended
    check_export(what, metadata, written, hasher)
    return metadata, out.getvalue()


# ---------------------------------------------------------------------------
# Rows into columns
# ---------------------------------------------------------------------------


def _is_dataframe(rows: Any) -> bool:
    # Checked by module so that pandas stays optional.
    return type(rows).__module__.startswith("pandas") and hasattr(rows, "columns")


def _is_column(value: Any) -> bool:
    """A list, tuple, 1-D array or Series of values (a string is one value)."""
    if isinstance(value, (str, bytes)):
        return False
    return isinstance(value, Sequence) or getattr(value, "ndim", 0) == 1


def _is_matrix(rows: Any) -> bool:
    """A 2-D array or a list of lists (rows of values in feature order)."""
    ndim = getattr(rows, "ndim", None)
    if ndim is not None and not _is_dataframe(rows):
        if ndim < 2:
            raise ValueError(f"a {ndim}-D array is not a batch of rows; pass a 2-D array (one row per line)")
        return True
    if isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)) and len(rows):
        return _is_column(rows[0])
    return False


def _columns(rows: Rows, names: Sequence[str]) -> tuple[int, dict[str, Any]]:
    """The row count and, for each name, its values: from a DataFrame, a dict of columns,
    one dict row or a list of dict rows."""
    if _is_dataframe(rows):
        missing = [name for name in names if name not in rows.columns]
        if missing:
            raise ValueError(f"the DataFrame lacks feature {missing[0]!r}")
        return len(rows), {name: rows[name].to_numpy() for name in names}
    if isinstance(rows, Mapping):
        kinds = {_is_column(value) for value in rows.values()}
        if kinds == {True}:
            return _dict_columns(rows, names)
        if len(kinds) > 1:
            raise ValueError("the dict mixes columns (lists) and single values; pass one row as a dict of "
                             "values, or columns as a dict of equally long lists")
        return _row_columns([rows], names, single=True)
    if isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
        return _row_columns(rows, names)
    raise TypeError(f"cannot read rows from a {type(rows).__name__}; pass a list of dicts, a dict of columns, "
                    "a DataFrame or a 2-D array")


def _dict_columns(columns: Mapping[str, Any], names: Sequence[str]) -> tuple[int, dict[str, Any]]:
    missing = [name for name in names if name not in columns]
    if missing:
        raise ValueError(f"the columns lack feature {missing[0]!r}")
    lengths = {name: len(columns[name]) for name in names}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the columns differ in length: {lengths}")
    return next(iter(lengths.values()), 0), {name: columns[name] for name in names}


def _row_columns(rows: Sequence[Any], names: Sequence[str], *, single: bool = False) -> tuple[int, dict[str, Any]]:
    for i, row in enumerate(rows):
        where = "the row" if single else f"row {i}"
        if not isinstance(row, Mapping):
            raise TypeError(f"{where} is a {type(row).__name__}, expected a dict keyed by feature name")
        for name in names:
            if name not in row:
                raise ValueError(f"{where} lacks feature {name!r}")
    return len(rows), {name: [row[name] for row in rows] for name in names}


def _matrix_columns(matrix: Any, names: Sequence[str]) -> tuple[int, dict[str, Any]]:
    """The columns of a 2-D array or list of lists whose columns are `names` in order."""
    if getattr(matrix, "ndim", None) is not None:
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise ValueError(f"the array has shape {tuple(matrix.shape)}; the model takes {len(names)} "
                             f"features per row ({', '.join(names)})")
        return matrix.shape[0], {name: matrix[:, j] for j, name in enumerate(names)}
    for i, row in enumerate(matrix):
        if len(row) != len(names):
            raise ValueError(f"row {i} has {len(row)} values; the model takes {len(names)} features "
                             f"({', '.join(names)})")
    # zip keeps each value's Python type, where numpy would turn a mixed row into strings.
    return len(matrix), {name: list(values) for name, values in zip(names, zip(*matrix))}


# ---------------------------------------------------------------------------
# Columns into tensors
# ---------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return math.isnan(value)
    # pandas marks missing values of nullable and datetime columns with NA and NaT; matched by
    # name so that pandas stays optional.
    return type(value).__name__ in ("NAType", "NaTType")


def _number(value: Any, i: int, name: str) -> float:
    if _is_missing(value):
        return math.nan
    # numpy's bool is not a numbers.Real, so it is recognised by its dtype.
    if isinstance(value, numbers.Real) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return float(value)
    raise TypeError(f"row {i} feature {name!r} is {value!r} ({type(value).__name__}); the model expects a number")


def _text(value: Any, i: int, name: str) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, str):
        return str(value)  # str() turns numpy's str_ into a plain str
    raise TypeError(f"row {i} feature {name!r} is {value!r} ({type(value).__name__}); the model expects a string")


def _numeric_column(name: str, values: Any, dtype: str) -> np.ndarray:
    """`values` as a 1-D array of `dtype`: bools as 1/0, missing values as NaN (an integer
    input has no NaN, so a missing value there is an error)."""
    np = _numpy()
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        column = values.astype(np.float64)  # the common case, a numeric array, without a Python loop
    else:
        column = np.fromiter((_number(v, i, name) for i, v in enumerate(values)), np.float64, len(values))
    if dtype.startswith("float"):
        return column.astype(dtype, copy=False)
    missing = np.flatnonzero(np.isnan(column))
    if missing.size:
        raise ValueError(f"row {int(missing[0])} feature {name!r} is missing; the model's {dtype} input "
                         "cannot hold a missing value")
    return column.astype(dtype)


_NAT = -(2**63)  # pandas' NaT: a missing timestamp
_EPOCH = datetime.datetime(1970, 1, 1)


def _timestamp(value: Any, i: int, name: str) -> int:
    """Nanoseconds since 1970-01-01 of the value's wall-clock time (a zoned value keeps its
    local time, as the server's date parts do), exact in integers."""
    if _is_missing(value):
        return _NAT
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise TypeError(f"row {i} feature {name!r} is {value!r}, not an ISO 8601 timestamp") from None
    if type(value).__module__ == "numpy" and hasattr(value, "astype"):  # numpy.datetime64
        return int(_numpy().datetime64(value, "ns").astype("int64"))
    if isinstance(value, datetime.datetime):
        delta = value.replace(tzinfo=None) - _EPOCH
        nanos = (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000 + \
            int(getattr(value, "nanosecond", 0))
    elif isinstance(value, datetime.date):
        nanos = (value - _EPOCH.date()).days * 86_400 * 10**9
    else:
        raise TypeError(f"row {i} feature {name!r} is {value!r} ({type(value).__name__}); the model expects a "
                        "timestamp (datetime, date, numpy.datetime64 or ISO 8601 text)")
    if not _NAT < nanos < 2**63:
        raise ValueError(f"row {i} feature {name!r} ({value}) is outside the nanosecond timestamp range")
    return nanos


def _timestamp_column(name: str, values: Any) -> np.ndarray:
    np = _numpy()
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":  # a datetime64 column, e.g. from pandas
        return values.astype("datetime64[ns]").view("int64")
    return np.fromiter((_timestamp(v, i, name) for i, v in enumerate(values)), np.int64, len(values))


def _string_column(name: str, values: Any) -> np.ndarray:
    np = _numpy()
    return np.array([_text(v, i, name) for i, v in enumerate(values)], dtype=object)


def _column_tensor(spec: TensorInfo, values: Any) -> np.ndarray:
    """One raw-columns input: [n, 1] (or [n] for a 1-D input) of the input's type. The only
    int64 inputs of a raw-columns graph are timestamps."""
    if spec.dtype == "string":
        column = _string_column(spec.name, values)
    elif spec.dtype == "int64":
        column = _timestamp_column(spec.name, values)
    else:
        column = _numeric_column(spec.name, values, spec.dtype)
    return column.reshape(-1, 1) if len(spec.shape) == 2 else column


def _matrix_tensor(spec: TensorInfo, matrix: Any) -> np.ndarray:
    """A 2-D array or list of lists as the model's one input, checked against its shape."""
    np = _numpy()
    dtype = object if spec.dtype == "string" else spec.dtype
    try:
        tensor = np.asarray(matrix, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the rows must be numbers for the model's {spec.dtype} input {spec.name!r}: {exc}") from None
    want = spec.shape[1:]
    if tensor.ndim != len(spec.shape) or any(w is not None and w != g for w, g in zip(want, tensor.shape[1:])):
        shown = ", ".join("any" if d is None else str(d) for d in spec.shape)
        raise ValueError(f"the rows have shape {tuple(tensor.shape)}; the model's input {spec.name!r} "
                         f"takes [{shown}]")
    return tensor


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


class Model:
    """An exported ONNX model in an onnxruntime session (one per Model; predict is thread-safe).

    Attributes:
        task: one of TASKS ("classification", ...), from the metadata or guessed from the outputs.
        features: raw input feature names, in order ([] when the export does not name them).
        classes: class labels as strings, in probability-column order ([] unless a classifier).
        framework, architecture: what trained it ("" when unknown); versions: library versions.
        raw_columns: whether the graph takes one input per raw column.
        inputs, outputs: the graph's TensorInfo(name, dtype, shape) tuples.
        export_metadata: the ExportMetadata it came with (empty for a file or bytes).
    """

    def __init__(self, source: Source, *, metadata: model_pb2.ExportMetadata | None = None) -> None:
        metadata = metadata if metadata is not None else model_pb2.ExportMetadata()
        self._session = _open_session(source)
        self.export_metadata = metadata
        self.inputs = [_tensor_info(node) for node in self._session.get_inputs()]
        self.outputs = [_tensor_info(node) for node in self._session.get_outputs()]
        # The file's own metadata first: it travels with the model; the stream's fills the gaps.
        props = dict(self._session.get_modelmeta().custom_metadata_map)
        self.framework: str = props.get(_FRAMEWORK) or metadata.framework
        self.architecture: str = props.get(_ARCHITECTURE, "")
        self.versions: dict[str, str] = _json_prop(props, _VERSIONS, dict) or dict(metadata.framework_versions)
        self.classes: list[str] = [str(c) for c in _json_prop(props, _CLASSES, list) or metadata.class_labels]
        # A graph with several inputs can only be fed column by column, flag or no flag.
        self.raw_columns: bool = (props.get(_RAW_COLUMNS, "").strip().lower() == "true"
                                  or metadata.raw_columns or len(self.inputs) > 1)
        features = _json_prop(props, _FEATURES, list) or list(metadata.input_features)
        if not features and self.raw_columns:
            features = [spec.name for spec in self.inputs]
        self.features: list[str] = [str(f) for f in features]
        self.task: str = props.get(_TASK) or self._guess_task()
        self._output_names = [spec.name for spec in self.outputs]
        self._prediction = self._prediction_output()
        self._check_signature()

    @classmethod
    def from_file(cls, path: str | Path) -> Model:
        """Loads an .onnx file."""
        return cls(Path(path))

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        """Loads a serialized ONNX model."""
        return cls(bytes(data))

    @classmethod
    def from_stream(cls, messages: Iterable[trainer_service_pb2.ExportModelResponse]) -> Model:
        """Loads the model an ExportModel stream carries (the call itself, or its messages).

        Raises ValueError when the stream's format is not ONNX, and
        ForgeTrainingError(DATA_LOSS) when the bytes do not match the first message's size
        and sha256 or arrive out of order.
        """
        metadata, data = _read_export(messages)
        return cls(data, metadata=metadata)

    @classmethod
    def from_service(cls, client: Client, name: str) -> Model:
        """Exports a completed job's or a model version's model as ONNX and loads it.

        Client.export_model only writes to a path, so the model passes through a temporary
        directory; it checks the size and sha256 on the way.
        """
        with tempfile.TemporaryDirectory(prefix="forge-inference-") as tmp:
            path = Path(tmp) / "model.onnx"
            metadata = client.export_model(name, "onnx", path)
            _require_onnx(metadata)
            data = path.read_bytes()
        return cls(data, metadata=metadata)

    def __repr__(self) -> str:
        what = f"{self.framework}/{self.architecture}" if self.architecture else self.framework or "onnx"
        return f"Model({what}, task={self.task!r}, features={len(self.features)}, raw_columns={self.raw_columns})"

    @property
    def is_classifier(self) -> bool:
        return self.task == "classification"

    # -- construction checks -------------------------------------------------

    def _guess_task(self) -> str:
        names = {spec.name for spec in self.outputs}
        if "probabilities" in names:
            return "classification"
        return "anomaly_detection" if "scores" in names else "regression"

    def _prediction_output(self) -> str | None:
        """The output predict() reports for a non-classifier, in parity.py's order."""
        if self.is_classifier:
            return None
        for name in ("variable", "scores"):
            if name in self._output_names:
                return name
        if len(self._output_names) == 1:
            return self._output_names[0]
        raise ValueError(f"cannot tell which of the outputs {self._output_names} holds the {self.task} prediction")

    def _check_signature(self) -> None:
        if not self.raw_columns and len(self.inputs) != 1:
            raise ValueError(f"expected one input tensor, got {[spec.name for spec in self.inputs]}")
        unsupported = [spec for spec in self.inputs if spec.dtype not in _ORT_TYPES.values()]
        if unsupported:
            raise ValueError(f"input {unsupported[0].name!r} has type {unsupported[0].dtype}, which rows cannot fill")
        if not self.is_classifier:
            return
        if not {"probabilities", "label"} & set(self._output_names):
            raise ValueError(f"a classifier needs a 'probabilities' or 'label' output, got {self._output_names}")
        width = next((spec.shape[-1] for spec in self.outputs if spec.name == "probabilities"), None)
        if width is not None and self.classes and width != len(self.classes):
            raise ValueError(f"the model outputs {width} probabilities per row but names "
                             f"{len(self.classes)} classes ({', '.join(self.classes)})")

    # -- rows in ---------------------------------------------------------------

    def _feeds(self, rows: Rows) -> tuple[int, dict[str, np.ndarray]]:
        """The row count and the session's inputs for `rows`."""
        if self.raw_columns:
            n, columns = self._raw_matrix_columns(rows) if _is_matrix(rows) else \
                _columns(rows, [spec.name for spec in self.inputs])
            return n, {spec.name: _column_tensor(spec, columns[spec.name]) for spec in self.inputs}
        spec = self.inputs[0]
        if _is_matrix(rows):
            tensor = _matrix_tensor(spec, rows)
            return len(tensor), {spec.name: tensor}
        n, columns = _columns(rows, self._named_features(spec))
        np = _numpy()
        stacked = [_numeric_column(name, columns[name], spec.dtype) for name in self.features]
        return n, {spec.name: np.stack(stacked, axis=1) if n else np.empty((0, len(stacked)), spec.dtype)}

    def _raw_matrix_columns(self, matrix: Any) -> tuple[int, dict[str, Any]]:
        """A raw-columns model's rows given by position: the columns are `features` in order,
        since the graph's inputs may be fewer (columns no kept feature uses get no input) and
        in another order (the order processing reads them)."""
        unnamed = [spec.name for spec in self.inputs if spec.name not in self.features]
        if unnamed:
            raise ValueError(f"the model's input {unnamed[0]!r} is not among its features {self.features}; "
                             "pass rows by name")
        return _matrix_columns(matrix, self.features)

    def _named_features(self, spec: TensorInfo) -> list[str]:
        """The features that make up the matrix input's columns, when rows come by name."""
        if not self.features:
            raise ValueError("the model does not name its features (no forge.features metadata); pass a 2-D array "
                             "of its input's columns")
        width = spec.shape[1] if len(spec.shape) == 2 else None
        if len(spec.shape) != 2 or (width is not None and width != len(self.features)):
            raise ValueError(f"the model's input {spec.name!r} has shape {list(spec.shape)} but the model names "
                             f"{len(self.features)} raw features; its preprocessing (e.g. one-hot encoding) happens "
                             "outside the graph, so pass the encoded 2-D array instead of rows by name")
        return self.features

    # -- results out -----------------------------------------------------------

    def _run(self, feeds: Mapping[str, np.ndarray], names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        names = list(names or self._output_names)
        return dict(zip(names, self._session.run(names, dict(feeds))))

    def _predictions(self, outputs: Mapping[str, np.ndarray]) -> list[Any]:
        np = _numpy()
        if self.is_classifier:
            # The most probable class: every exporter's "label" is that class, but xgboost's is
            # its index and pytorch exports none, so the probabilities are the common ground.
            if "probabilities" in outputs and self.classes:
                return [self.classes[i] for i in np.argmax(outputs["probabilities"], axis=1)]
            if "label" in outputs:
                return [_label_text(v) for v in np.asarray(outputs["label"]).ravel()]
            raise ValueError("the model does not name its classes (no forge.classes metadata) and has no "
                             "'label' output; use predict_proba(rows, as_array=True)")
        values = np.asarray(outputs[self._prediction], dtype=np.float64)
        values = values.reshape(len(values), -1)
        # One value per row is a float; several (e.g. a forecast horizon) a list of floats.
        return values[:, 0].tolist() if values.shape[1] == 1 else values.tolist()

    # -- public ------------------------------------------------------------------

    def run(self, rows: Rows) -> dict[str, np.ndarray]:
        """Every output of the graph on `rows`, by name (e.g. an anomaly detector's "label")."""
        _, feeds = self._feeds(rows)
        return self._run(feeds)

    def predict(self, rows: Rows) -> list[Any]:
        """One prediction per row: the class label (a string from `classes`) for a
        classifier, a float otherwise (a list of floats when the model predicts several
        values per row; an anomaly detector's score, negative for an anomaly)."""
        n, feeds = self._feeds(rows)
        return self._predictions(self._run(feeds)) if n else []

    def predict_proba(self, rows: Rows, *, as_array: bool = False) -> list[dict[str, float]] | np.ndarray:
        """Class probabilities per row: {class: probability} dicts, or with as_array=True
        the [n, n_classes] float64 array in `classes` order. Classifiers only."""
        if not self.is_classifier:
            raise ValueError(f"predict_proba needs a classifier; this model's task is {self.task}")
        if "probabilities" not in self._output_names:
            raise ValueError(f"this classifier has no 'probabilities' output (outputs: {self._output_names})")
        if not as_array and not self.classes:
            raise ValueError("the model does not name its classes (no forge.classes metadata); "
                             "use predict_proba(rows, as_array=True)")
        np = _numpy()
        n, feeds = self._feeds(rows)
        if not n:
            return np.empty((0, len(self.classes)), np.float64) if as_array else []
        probabilities = np.asarray(self._run(feeds, ["probabilities"])["probabilities"], dtype=np.float64)
        if as_array:
            return probabilities
        return [dict(zip(self.classes, row)) for row in probabilities.tolist()]


def _label_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return str(value.item() if hasattr(value, "item") else value)


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchStats:
    """What a BatchingPredictor has done: onnxruntime runs, rows predicted, largest run."""

    batches: int = 0
    rows: int = 0
    largest_batch: int = 0


_STOP = object()


class BatchingPredictor:
    """Groups rows submitted from many threads into few onnxruntime runs.

    A background thread takes the first waiting row, waits up to `max_delay_ms` for more
    (up to `max_batch_size` rows in all), and runs them together. Rows are checked and
    encoded in the submitting thread, so a bad row fails its own future only.
    """

    def __init__(self, model: Model, max_batch_size: int = 64, max_delay_ms: float = 5.0) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_delay_ms < 0:
            raise ValueError(f"max_delay_ms must not be negative, got {max_delay_ms}")
        self.model = model
        self.max_batch_size = max_batch_size
        self.max_delay_ms = max_delay_ms
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._stats = BatchStats()
        self._thread = threading.Thread(target=self._serve, name="forge-batching-predictor", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> BatchStats:
        return self._stats

    def submit(self, row: Any) -> concurrent.futures.Future[Any]:
        """Queues one row (a dict keyed by feature name, or a sequence of values in feature
        order); the future gets what Model.predict gives for it, or the row's error."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            n, feeds = self.model._feeds(row if isinstance(row, Mapping) else [row])
            if n != 1:
                raise ValueError(f"submit takes one row, got {n}")
        except Exception as exc:
            future.set_exception(exc)
            return future
        with self._lock:
            if self._closed:
                raise RuntimeError("the BatchingPredictor is closed")
            self._queue.put((feeds, future))
        return future

    def predict(self, row: Any) -> Any:
        """The prediction for one row, run in a batch with other threads' rows."""
        return self.submit(row).result()

    def close(self) -> None:
        """Runs the rows already submitted, then stops the background thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)  # after every submitted row, so those still run
        self._thread.join()

    def __enter__(self) -> BatchingPredictor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._collect(first)
            self._run_batch(batch)
            if stop:
                return

    def _collect(self, first: Any) -> tuple[list[Any], bool]:
        """`first` and the rows that arrive within max_delay_ms of it; whether to stop after."""
        batch = [first]
        deadline = time.monotonic() + self.max_delay_ms / 1000
        while len(batch) < self.max_batch_size:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _run_batch(self, batch: list[tuple[dict[str, Any], concurrent.futures.Future[Any]]]) -> None:
        live = [(feeds, future) for feeds, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        np = _numpy()
        try:
            feeds = {name: np.concatenate([f[name] for f, _ in live]) for name in live[0][0]}
            results = self.model._predictions(self.model._run(feeds))
        except Exception as exc:  # the rows were valid alone, so a failed run fails them all alike
            for _, future in live:
                future.set_exception(exc)
            return
        with self._lock:
            self._stats = BatchStats(self._stats.batches + 1, self._stats.rows + len(live),
                                     max(self._stats.largest_batch, len(live)))
        for (_, future), result in zip(live, results):
            future.set_result(result)
