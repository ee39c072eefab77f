"""ProcessingConfig: fitted once on one dataset (the training data), applied unchanged to others.

`fit_processing` learns every parameter a step needs (means, categories, vocabularies,
components ...) from one frame and returns them with the config as a *fitted* dict of
plain lists, numbers, strings and bools, so it can be stored in the database and sent as
a protobuf Struct. `apply_processing` replays those parameters on any frame, so a test
set or inference data is transformed with the TRAINING statistics (no leakage).

Steps, always in this order:
  1. transformations (in the order listed)
  2. imputation
  3. feature engineering: date parts, TF-IDF text, ratios, polynomial / interactions
  4. encoding
  5. normalization
  6. selection: variance threshold, correlation threshold, select k best
  7. PCA
  8. sampling, then augmentation -- only with `fitting=True`

Sampling and augmentation change which rows the TRAINING data has; they never touch test
or inference data, so they run only when applying to the very data the processing was
fitted on (`fitting=True`). Target encoding also differs there: on the fitting data each
row is encoded out of fold (5 seeded folds), so a row's own label never leaks into its
feature; other data gets the full-data, smoothed category means.

Config dict (the ProcessingConfig message as json_format.MessageToDict with
preserving_proto_field_name=True; a missing key means the proto default):
  transformations: [{type, columns: [str], parameters: {...}}], type one of
      drop_columns {}                       columns missing from later data are ignored
      rename       {mapping: {old: new}}    columns unused
      cast         {to: float64|int64|string|bool|timestamp}
      log          {}                       log1p; negative values are refused
      clip         {min?, max?}
      fill_null    {value}
      bucketize    {boundaries: [ascending numbers]} -> bucket index i (boundaries[i-1] <= x < boundaries[i])
  imputation: {strategy: mean|median|most_frequent|constant|drop_rows, fill_value, columns, add_indicator}
      columns empty: mean/median -> every numeric feature, constant -> every feature of
      fill_value's type, most_frequent / drop_rows -> every feature. Values are learned
      for all of them (so later data with nulls elsewhere is filled too); `<col>_missing`
      0/1 indicators are added for the listed columns, or, with columns empty, for those
      that had nulls in the fitting data. drop_rows drops rows of every dataset applied to.
  feature_engineering: {date_part_columns, cyclical_dates, text_columns, ratios ["a/b"],
      polynomial_degree, interactions, variance_threshold, correlation_threshold,
      select_k_best, pca_components, label_column}
      date parts: <col>_year, _month, _day, _weekday (Monday=0), _hour; with cyclical_dates
      month/weekday/hour become <col>_month_sin/_cos etc. The timestamp column is replaced.
      text: TF-IDF (sklearn defaults, at most 200 terms) -> <col>_tfidf_<term>, replacing <col>.
      ratios: "a/b" -> column "a_div_b"; division by zero gives null.
      polynomial / interactions: products of the numeric features (not TF-IDF weights nor
      0/1 indicators) named "a^2", "a*b"; degree d gives every product of 2..d factors.
  encoding: {method: onehot|ordinal|label|target, columns, handle_unknown: error|ignore, target_column}
      columns empty: every string/categorical feature (bool and numeric columns only when
      listed). onehot -> "<col>=<value>" 0/1 columns (a null: all 0); ordinal and label -> the
      index in the sorted categories (the same mapping: "label" is scikit-learn's name for it;
      a null stays null); target -> category mean of the numeric/bool target_column (default:
      the label), m-estimate smoothed. handle_unknown defaults to "error", except for target,
      whose unseen categories (and nulls) get the global mean unless handle_unknown is "error".
  normalization: {method: standard|minmax|robust|quantile, columns}
      columns empty: every numeric feature except generated 0/1 flags and TF-IDF weights.
      quantile maps to [0, 1] through up to 100 stored quantiles (as scikit-learn's
      QuantileTransformer); constant columns keep scale 1.
  selection and PCA act on the numeric (int/float) features: variance_threshold drops those
      with population variance <= it; correlation_threshold drops the later column of each
      pair with |Pearson r| above it; select_k_best keeps the k with the highest mutual
      information with the label (classification for string/bool labels and integer labels
      with <= 20 values, else regression); pca_components replaces them with pc1..pck.
      select_k_best and PCA refuse features with nulls (impute first); other columns pass through.
  sampling: {method: random|stratified|systematic|oversample|undersample, fraction, column, seed}
      column defaults to the label; seed 0/unset uses the fit seed. random/systematic keep
      round(fraction * rows) rows, stratified round(fraction * class rows) per class (at least
      one); oversample duplicates random rows of each class up to the largest class,
      undersample keeps a random subset of each class the size of the smallest; kept rows stay
      in their original order.
  augmentation: {enabled, methods: [flip|shift|noise|tabular_noise], parameters, probability, copies}
      parameters: image_shape [H, W] or [H, W, C] (required by flip/shift/noise; pixels are
      the numeric features in row-major order unless pixel_columns lists them), flip
      ("horizontal" | "vertical"), max_shift (pixels, default 1), noise_std (default 0.05,
      times the pixels' std, or each numeric column's std for tabular_noise). Each row is
      augmented with `probability` (0/unset means 0.5); an augmented row gets `copies`
      (default 1) extra rows, each with every method applied in order, appended at the end.
The label column (feature_engineering.label_column) and the target column are never
transformed and never features; naming them in a step is an error.

Errors are InvalidArgument on the field path of the offending setting under `field`
("processing.normalization.method", "processing.transformations[2].columns", ...).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field as dataclass_field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.data.ingest import IngestResult, write_table
from engine.data.schema import MAX_INT_CATEGORIES, format_value
from engine.errors import DataLoss, InvalidArgument

FORMAT = "forge.processing.v1"

TRANSFORMATIONS = ("drop_columns", "rename", "cast", "log", "clip", "fill_null", "bucketize")
CAST_TYPES = ("float64", "int64", "string", "bool", "timestamp")
IMPUTATION_STRATEGIES = ("mean", "median", "most_frequent", "constant", "drop_rows")
NORMALIZATION_METHODS = ("standard", "minmax", "robust", "quantile")
ENCODING_METHODS = ("onehot", "ordinal", "label", "target")
HANDLE_UNKNOWN = ("error", "ignore")
SAMPLING_METHODS = ("random", "stratified", "systematic", "oversample", "undersample")
AUGMENTATION_METHODS = ("flip", "shift", "noise", "tabular_noise")
IMAGE_METHODS = ("flip", "shift", "noise")

MAX_TFIDF_TERMS = 200
MAX_QUANTILES = 100
TARGET_FOLDS = 5
# m-estimate smoothing: a category's encoding is (sum + m * prior) / (count + m), so a rare
# category is pulled towards the prior (m = 1, as category_encoders' MEstimateEncoder).
TARGET_SMOOTHING = 1.0
# Polynomial features grow combinatorially; past this the config is almost surely a mistake.
MAX_GENERATED_COLUMNS = 5000
MAX_COPIES = 100
DEFAULT_PROBABILITY = 0.5
DEFAULT_NOISE_STD = 0.05
DEFAULT_MAX_SHIFT = 1
BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}

_SECTIONS = {
    "imputation": ("strategy", "fill_value", "columns", "add_indicator"),
    "normalization": ("method", "columns"),
    "encoding": ("method", "columns", "handle_unknown", "target_column"),
    "feature_engineering": (
        "polynomial_degree", "interactions", "date_part_columns", "text_columns", "cyclical_dates", "ratios",
        "variance_threshold", "correlation_threshold", "select_k_best", "pca_components", "label_column",
    ),
    "sampling": ("method", "fraction", "column", "seed"),
    "augmentation": ("enabled", "methods", "parameters", "probability", "copies"),
}
_TRANSFORMATION_PARAMETERS = {
    "drop_columns": (), "rename": ("mapping",), "cast": ("to",), "log": (), "clip": ("min", "max"),
    "fill_null": ("value",), "bucketize": ("boundaries",),
}
_AUGMENTATION_PARAMETERS = ("image_shape", "pixel_columns", "flip", "max_shift", "noise_std")


# ----- small helpers


def _path(field: str, suffix: str) -> str:
    return f"{field}.{suffix}" if field else suffix


def _names(columns: Any, limit: int = 20) -> str:
    columns = [str(c) for c in columns]
    shown = ", ".join(repr(c) for c in columns[:limit])
    return shown + (f" ... ({len(columns) - limit} more)" if len(columns) > limit else "") if columns else "(none)"


def _finite(value: Any, path: str, what: str) -> float:
    """A learned number as a plain float; NaN/inf cannot be stored (JSON, Struct)."""
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgument.field(
            path,
            f"{what} is {number}, which cannot be stored; remove infinite values first (e.g. with a clip transformation)",
        )
    return number


def _plain(value: Any) -> Any:
    """A cell value (numpy/pandas scalar) as a JSON-native one."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _kind(series: pd.Series) -> str:
    """"numeric" (int/float), "bool", "timestamp", "string" (text and categories) or "other"."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    if dtype == object:  # before the string test, which counts every object dtype as text
        values = series.dropna()
        types = set(values.map(type))
        if types and types <= {bool, np.bool_}:
            return "bool"
        if types & {bytes, bytearray}:
            return "other"
        return "string"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "string"
    return "other"


def _floats(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype="float64", na_value=np.nan)


def _row(series: pd.Series, mask: Any) -> tuple[Any, Any]:
    """The first row label where `mask` holds, and its value (for error messages)."""
    label = series.index[np.flatnonzero(np.asarray(mask))[0]]
    return label, series.loc[label]


@dataclass
class _Context:
    field: str
    seed: int
    label: str
    target: str
    input_columns: list[str]
    fitting: bool
    phase: str  # "fit" or "apply": changes the fix an error suggests
    flags: set[str] = dataclass_field(default_factory=set)  # generated 0/1 columns
    tfidf: set[str] = dataclass_field(default_factory=set)

    def path(self, suffix: str) -> str:
        return _path(self.field, suffix)

    @property
    def protected(self) -> set[str]:
        return {c for c in (self.label, self.target) if c}

    def features(self, frame: pd.DataFrame, kinds: tuple[str, ...]) -> list[str]:
        return [c for c in frame.columns if c not in self.protected and _kind(frame[c]) in kinds]

    def require(self, frame: pd.DataFrame, columns: list[str], path: str) -> None:
        for column in columns:
            if column in frame.columns:
                continue
            hint = " (an earlier step removed or renamed it)" if column in self.input_columns else ""
            fix = (
                "name a column that exists at this step"
                if self.phase == "fit"
                else "the data must have the columns the processing was fitted on"
            )
            raise InvalidArgument.field(
                path, f"column {column!r} is not in the data{hint}; available columns: {_names(frame.columns)}; {fix}"
            )

    def unprotected(self, columns: list[str], path: str) -> None:
        for column in columns:
            if column in self.protected:
                raise InvalidArgument.field(
                    path,
                    f"{column!r} is the label/target column, which processing never transforms and never uses as a "
                    "feature; remove it from this list",
                )

    def of_kind(self, frame: pd.DataFrame, columns: list[str], kinds: tuple[str, ...], path: str, why: str) -> None:
        for column in columns:
            kind = _kind(frame[column])
            if kind not in kinds:
                raise InvalidArgument.field(
                    path,
                    f"column {column!r} is {kind} ({frame[column].dtype}) but {why} needs {' or '.join(kinds)} "
                    "values; remove it from the list or cast it first with a cast transformation",
                )


def _replace(frame: pd.DataFrame, drop: list[str], new: dict[str, Any], path: str) -> pd.DataFrame:
    """`frame` without `drop`, with the `new` columns appended (refusing name clashes)."""
    kept = frame.drop(columns=drop)
    for name in new:
        if name in kept.columns:
            raise InvalidArgument.field(
                path,
                f"this step would create column {name!r}, which already exists; rename or drop the existing column first",
            )
    if not new:
        return kept
    return pd.concat([kept, pd.DataFrame(new, index=frame.index)], axis=1)


# ----- reading the config


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument.field(path, f"must be an object (a dict), not {type(value).__name__}")
    return value


def _check_keys(data: dict[str, Any], known: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in known:
            raise InvalidArgument.field(
                _path(path, str(key)), f"unknown setting; known settings here: {', '.join(known) or '(none)'}"
            )


def _string(data: dict[str, Any], key: str, path: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument.field(_path(path, key), f"must be a string, not {type(value).__name__}")
    return value.strip()


def _choice(data: dict[str, Any], key: str, choices: tuple[str, ...], path: str) -> str:
    value = _string(data, key, path).lower()
    if value and value not in choices:
        raise InvalidArgument.field(_path(path, key), f"{value!r} is not supported; use one of: {', '.join(choices)}")
    return value


def _strings(data: dict[str, Any], key: str, path: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, (list, tuple)):
        raise InvalidArgument.field(_path(path, key), f"must be a list of strings, not {type(value).__name__}")
    result: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise InvalidArgument.field(_path(path, key), f"item {index} ({item!r}) must be a non-empty string")
        if item in result:
            raise InvalidArgument.field(_path(path, key), f"{item!r} is listed twice; list each once")
        result.append(item)
    return result


def _boolean(data: dict[str, Any], key: str, path: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InvalidArgument.field(_path(path, key), f"must be true or false, not {value!r}")
    return value


def _number(value: Any, path: str) -> float:
    """A finite number; numeric strings are accepted since MessageToDict writes int64 and NaN as strings."""
    if isinstance(value, bool):
        raise InvalidArgument.field(path, f"must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument.field(path, f"must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise InvalidArgument.field(path, f"must be a finite number, not {value!r}")
    return number


def _integer(value: Any, path: str) -> int:
    number = _number(value, path)
    if number != int(number):
        raise InvalidArgument.field(path, f"must be a whole number, not {value!r}")
    return int(number)


def _parse_transformation(item: Any, path: str) -> dict[str, Any]:
    item = _mapping(item, path)
    _check_keys(item, ("type", "columns", "parameters"), path)
    kind = _string(item, "type", path).lower()
    if not kind:
        raise InvalidArgument.field(_path(path, "type"), f"is required; use one of: {', '.join(TRANSFORMATIONS)}")
    if kind not in TRANSFORMATIONS:
        raise InvalidArgument.field(
            _path(path, "type"),
            f"{kind!r} is not supported; use one of: {', '.join(TRANSFORMATIONS)}",
        )
    columns = _strings(item, "columns", path)
    params_path = _path(path, "parameters")
    raw = _mapping(item.get("parameters"), params_path)
    _check_keys(raw, _TRANSFORMATION_PARAMETERS[kind], params_path)
    params: dict[str, Any] = {}
    if kind == "rename":
        mapping = _mapping(raw.get("mapping"), _path(params_path, "mapping"))
        if not mapping:
            raise InvalidArgument.field(
                _path(params_path, "mapping"),
                'is required: give {"old name": "new name", ...}',
            )
        for old, new in mapping.items():
            if not isinstance(new, str) or not new:
                raise InvalidArgument.field(
                    _path(params_path, "mapping"),
                    f"the new name for {old!r} must be a non-empty string, not {new!r}",
                )
        news = list(mapping.values())
        repeated = sorted({n for n in news if news.count(n) > 1})
        if repeated:
            raise InvalidArgument.field(
                _path(params_path, "mapping"),
                f"two columns would both be named {repeated[0]!r}; give each a different name",
            )
        params["mapping"] = dict(mapping)
    elif kind == "cast":
        to = _choice(raw, "to", CAST_TYPES, params_path)
        if not to:
            raise InvalidArgument.field(_path(params_path, "to"), f"is required; use one of: {', '.join(CAST_TYPES)}")
        params["to"] = to
    elif kind == "clip":
        for bound in ("min", "max"):
            if raw.get(bound) is not None:
                params[bound] = _number(raw[bound], _path(params_path, bound))
        if not params:
            raise InvalidArgument.field(params_path, "clip needs min, max or both")
        if "min" in params and "max" in params and params["min"] > params["max"]:
            raise InvalidArgument.field(
                _path(params_path, "min"),
                f"min {params['min']} is above max {params['max']}; swap them",
            )
    elif kind == "fill_null":
        value = raw.get("value")
        if value is None or isinstance(value, (dict, list)):
            raise InvalidArgument.field(
                _path(params_path, "value"),
                "is required: give the number, string or bool that replaces nulls",
            )
        params["value"] = value
    elif kind == "bucketize":
        bounds = raw.get("boundaries")
        bounds_path = _path(params_path, "boundaries")
        if not isinstance(bounds, (list, tuple)) or not bounds:
            raise InvalidArgument.field(bounds_path, "is required: give a non-empty list of ascending numbers")
        numbers = [_number(b, bounds_path) for b in bounds]
        if any(low >= high for low, high in zip(numbers, numbers[1:])):
            raise InvalidArgument.field(bounds_path, f"{numbers} must be strictly ascending")
        params["boundaries"] = numbers
    if kind == "rename" and columns:
        raise InvalidArgument.field(
            _path(path, "columns"),
            "rename takes its columns from parameters.mapping; leave columns empty",
        )
    if kind != "rename" and not columns:
        raise InvalidArgument.field(_path(path, "columns"), f"{kind} needs the columns it applies to")
    return {"type": kind, "columns": columns, "parameters": params}


def _parse(config: dict[str, Any], field: str) -> dict[str, Any]:
    """The config validated for shape, types and names of methods, with defaults filled in."""
    config = _mapping(config, field)
    _check_keys(config, ("transformations", *_SECTIONS), field)
    items = config.get("transformations") or []
    if not isinstance(items, (list, tuple)):
        raise InvalidArgument.field(_path(field, "transformations"), "must be a list")
    out: dict[str, Any] = {
        "transformations": [
            _parse_transformation(item, _path(field, f"transformations[{i}]")) for i, item in enumerate(items)
        ]
    }
    sections = {}
    for name, keys in _SECTIONS.items():
        sections[name] = _mapping(config.get(name), _path(field, name))
        _check_keys(sections[name], keys, _path(field, name))

    p = _path(field, "imputation")
    s = sections["imputation"]
    imputation = {
        "strategy": _choice(s, "strategy", IMPUTATION_STRATEGIES, p),
        "fill_value": s.get("fill_value"),
        "columns": _strings(s, "columns", p),
        "add_indicator": _boolean(s, "add_indicator", p),
    }
    fill_value = imputation["fill_value"]
    if imputation["strategy"] == "constant" and (fill_value is None or isinstance(fill_value, (dict, list))):
        raise InvalidArgument.field(
            _path(p, "fill_value"),
            "strategy constant needs a fill_value (a number, string or bool)",
        )
    if imputation["strategy"] == "drop_rows" and imputation["add_indicator"]:
        raise InvalidArgument.field(
            _path(p, "add_indicator"),
            "drop_rows leaves no missing values to indicate; turn add_indicator off",
        )
    if not imputation["strategy"] and (imputation["columns"] or imputation["add_indicator"]):
        raise InvalidArgument.field(
            _path(p, "strategy"),
            f"is required when imputation is configured; use one of: {', '.join(IMPUTATION_STRATEGIES)}",
        )
    out["imputation"] = imputation

    p = _path(field, "feature_engineering")
    s = sections["feature_engineering"]
    fe = {
        "polynomial_degree": _integer(s.get("polynomial_degree", 0), _path(p, "polynomial_degree")),
        "interactions": _boolean(s, "interactions", p),
        "date_part_columns": _strings(s, "date_part_columns", p),
        "cyclical_dates": _boolean(s, "cyclical_dates", p),
        "text_columns": _strings(s, "text_columns", p),
        "ratios": _strings(s, "ratios", p),
        "variance_threshold": _number(s.get("variance_threshold", 0), _path(p, "variance_threshold")),
        "correlation_threshold": _number(s.get("correlation_threshold", 0), _path(p, "correlation_threshold")),
        "select_k_best": _integer(s.get("select_k_best", 0), _path(p, "select_k_best")),
        "pca_components": _integer(s.get("pca_components", 0), _path(p, "pca_components")),
        "label_column": _string(s, "label_column", p),
    }
    for key in ("polynomial_degree", "variance_threshold", "select_k_best", "pca_components"):
        if fe[key] < 0:
            raise InvalidArgument.field(
                _path(p, key),
                f"{fe[key]} is negative; use 0 to turn it off or a positive value",
            )
    if not 0 <= fe["correlation_threshold"] <= 1:
        raise InvalidArgument.field(
            _path(p, "correlation_threshold"),
            f"{fe['correlation_threshold']} is outside 0..1; use 0 to turn it off",
        )
    if fe["cyclical_dates"] and not fe["date_part_columns"]:
        raise InvalidArgument.field(
            _path(p, "cyclical_dates"),
            "needs date_part_columns to encode; list them or turn cyclical_dates off",
        )
    out["feature_engineering"] = fe

    p = _path(field, "encoding")
    s = sections["encoding"]
    encoding = {
        "method": _choice(s, "method", ENCODING_METHODS, p),
        "columns": _strings(s, "columns", p),
        "handle_unknown": _choice(s, "handle_unknown", HANDLE_UNKNOWN, p),
        "target_column": _string(s, "target_column", p),
    }
    if not encoding["method"] and encoding["columns"]:
        raise InvalidArgument.field(
            _path(p, "method"),
            f"is required when columns are listed; use one of: {', '.join(ENCODING_METHODS)}",
        )
    if encoding["method"] == "target" and not (encoding["target_column"] or fe["label_column"]):
        raise InvalidArgument.field(
            _path(p, "target_column"),
            "target encoding needs the column whose mean encodes each category; set target_column or "
            "feature_engineering.label_column",
        )
    if encoding["target_column"] and encoding["method"] != "target":
        raise InvalidArgument.field(
            _path(p, "target_column"),
            "is only used by method target; clear it or set method to target",
        )
    out["encoding"] = encoding

    p = _path(field, "normalization")
    s = sections["normalization"]
    normalization = {"method": _choice(s, "method", NORMALIZATION_METHODS, p), "columns": _strings(s, "columns", p)}
    if not normalization["method"] and normalization["columns"]:
        raise InvalidArgument.field(
            _path(p, "method"),
            f"is required when columns are listed; use one of: {', '.join(NORMALIZATION_METHODS)}",
        )
    out["normalization"] = normalization

    p = _path(field, "sampling")
    s = sections["sampling"]
    sampling = {
        "method": _choice(s, "method", SAMPLING_METHODS, p),
        "fraction": _number(s.get("fraction", 0), _path(p, "fraction")),
        "column": _string(s, "column", p),
        "seed": _integer(s.get("seed", 0), _path(p, "seed")),
    }
    if sampling["method"] in ("random", "stratified", "systematic"):
        if not 0 < sampling["fraction"] <= 1:
            raise InvalidArgument.field(
                _path(p, "fraction"),
                f"{sampling['method']} sampling needs a fraction above 0 and at most 1; got {sampling['fraction']}",
            )
    elif sampling["fraction"]:
        raise InvalidArgument.field(
            _path(p, "fraction"),
            f"is not used by {sampling['method'] or 'no sampling'}; leave it unset",
        )
    balanced = sampling["method"] in ("stratified", "oversample", "undersample")
    if balanced and not (sampling["column"] or fe["label_column"]):
        raise InvalidArgument.field(
            _path(p, "column"),
            f"{sampling['method']} sampling needs the column to balance on; set column or "
            "feature_engineering.label_column",
        )
    if sampling["column"] and sampling["method"] in ("random", "systematic", ""):
        raise InvalidArgument.field(
            _path(p, "column"),
            f"is not used by {sampling['method'] or 'no sampling'}; clear it",
        )
    out["sampling"] = sampling

    out["augmentation"] = _parse_augmentation(sections["augmentation"], _path(field, "augmentation"))
    return out


def _parse_augmentation(s: dict[str, Any], p: str) -> dict[str, Any]:
    methods = _strings(s, "methods", p)
    for method in methods:
        if method not in AUGMENTATION_METHODS:
            raise InvalidArgument.field(
                _path(p, "methods"),
                f"{method!r} is not supported; use any of: {', '.join(AUGMENTATION_METHODS)}",
            )
    params_path = _path(p, "parameters")
    raw = _mapping(s.get("parameters"), params_path)
    _check_keys(raw, _AUGMENTATION_PARAMETERS, params_path)
    probability = _number(s.get("probability", 0), _path(p, "probability")) or DEFAULT_PROBABILITY
    copies = _integer(s.get("copies", 0), _path(p, "copies")) or 1
    enabled = _boolean(s, "enabled", p)
    if not 0 < probability <= 1:
        raise InvalidArgument.field(_path(p, "probability"), f"{probability} is outside (0, 1]; use e.g. 0.5")
    if not 1 <= copies <= MAX_COPIES:
        raise InvalidArgument.field(_path(p, "copies"), f"{copies} must be between 1 and {MAX_COPIES}")
    if enabled and not methods:
        raise InvalidArgument.field(
            _path(p, "methods"),
            f"augmentation is enabled but lists no methods; add any of: {', '.join(AUGMENTATION_METHODS)}",
        )
    params: dict[str, Any] = {
        "image_shape": [], "pixel_columns": [], "flip": "horizontal",
        "max_shift": DEFAULT_MAX_SHIFT, "noise_std": DEFAULT_NOISE_STD,
    }
    if enabled and any(m in IMAGE_METHODS for m in methods):
        shape = raw.get("image_shape")
        shape_path = _path(params_path, "image_shape")
        if not isinstance(shape, (list, tuple)) or len(shape) not in (2, 3):
            raise InvalidArgument.field(
                shape_path,
                "image methods (flip, shift, noise) need the image shape [height, width] or [height, width, channels] "
                "of the pixel columns, e.g. [8, 8]",
            )
        params["image_shape"] = [_integer(v, shape_path) for v in shape]
        if min(params["image_shape"]) < 1:
            raise InvalidArgument.field(shape_path, f"{params['image_shape']} must hold positive sizes")
    params["pixel_columns"] = _strings(raw, "pixel_columns", params_path)
    if raw.get("flip") is not None:
        params["flip"] = _choice(raw, "flip", ("horizontal", "vertical"), params_path) or "horizontal"
    if raw.get("max_shift") is not None:
        params["max_shift"] = _integer(raw["max_shift"], _path(params_path, "max_shift"))
        if params["max_shift"] < 0:
            raise InvalidArgument.field(_path(params_path, "max_shift"), "must be 0 or more pixels")
    if raw.get("noise_std") is not None:
        params["noise_std"] = _number(raw["noise_std"], _path(params_path, "noise_std"))
        if params["noise_std"] < 0:
            raise InvalidArgument.field(_path(params_path, "noise_std"), "must be 0 or more")
    return {"enabled": enabled, "methods": methods, "parameters": params, "probability": probability, "copies": copies}


# ----- transformations


def _fit_transformation(frame: pd.DataFrame, t: dict[str, Any], index: int, ctx: _Context) -> dict[str, Any]:
    path = ctx.path(f"transformations[{index}]")
    columns = t["columns"]
    if t["type"] == "rename":
        columns = list(t["parameters"]["mapping"])
        ctx.require(frame, columns, _path(path, "parameters.mapping"))
        ctx.unprotected(columns, _path(path, "parameters.mapping"))
        ctx.unprotected(list(t["parameters"]["mapping"].values()), _path(path, "parameters.mapping"))
    else:
        ctx.require(frame, columns, _path(path, "columns"))
        ctx.unprotected(columns, _path(path, "columns"))
    return {"step": "transformation", "index": index, **t}


def _cast(series: pd.Series, to: str, path: str) -> pd.Series:
    name, kind = series.name, _kind(series)

    def refuse(mask: Any, why: str) -> None:
        if np.asarray(mask).any():
            row, value = _row(series, mask)
            raise InvalidArgument.field(
                path, f"column {name!r}: value {_plain(value)!r} at row {row} {why}; fix the data or cast to another type"
            )

    if to in ("float64", "int64"):
        if kind == "timestamp" or kind == "other":
            raise InvalidArgument.field(
                path,
                f"column {name!r} is {kind} and cannot be cast to {to}; cast it to string instead",
            )
        if kind == "bool":
            numbers = series.astype(object).map(lambda v: np.nan if pd.isna(v) else float(v)).astype("float64")
        elif kind == "string":
            numbers = pd.to_numeric(series.astype(object), errors="coerce").astype("float64")
            refuse(series.notna() & numbers.isna(), f"is not a number and cannot be cast to {to}")
        else:
            numbers = series.astype("float64")
        if to == "float64":
            return numbers
        refuse(numbers.notna() & (numbers != np.floor(numbers)), "is not a whole number and cannot be cast to int64")
        return numbers.astype("Int64") if numbers.isna().any() else numbers.astype("int64")
    if to == "string":
        rendered = [None if pd.isna(v) else format_value(_plain(v)) for v in series.astype(object)]
        return pd.Series(rendered, index=series.index, dtype="str", name=name)
    if to == "bool":
        if kind == "bool":
            return series.astype("boolean")
        if kind == "numeric":
            refuse(series.notna() & ~series.isin([0, 1]), "is neither 0 nor 1 and cannot be cast to bool")
            return series.astype(object).map(lambda v: None if pd.isna(v) else bool(v)).astype("boolean")
        if kind == "string":
            words = series.astype(object).map(lambda v: None if pd.isna(v) else BOOL_WORDS.get(str(v).strip().lower()))
            refuse(series.notna() & words.isna(), "is not one of true/false/1/0/yes/no and cannot be cast to bool")
            return words.astype("boolean")
        raise InvalidArgument.field(path, f"column {name!r} is {kind} and cannot be cast to bool")
    # timestamp
    if kind == "timestamp":
        return series
    if kind != "string":
        raise InvalidArgument.field(path, f"column {name!r} is {kind}; only text (ISO 8601) can be cast to timestamp")
    parsed = pd.to_datetime(series.astype(object), errors="coerce", format="ISO8601")
    refuse(series.notna() & parsed.isna(), "is not an ISO 8601 date/time and cannot be cast to timestamp")
    return parsed


def _fill_value(series: pd.Series, value: Any, path: str) -> Any:
    """`value` in the type of `series`, or an error naming the column when they do not fit."""
    kind = _kind(series)
    if kind == "numeric" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "timestamp" and isinstance(value, str):
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            stamp = None
        if stamp is not None and stamp is not pd.NaT:
            tz = series.dt.tz
            if tz is not None and stamp.tz is None:
                stamp = stamp.tz_localize(tz)
            elif tz is not None:
                # A stored value keeps the fixed offset it was written with: bring it into the
                # column's own zone, or pandas turns the column into objects.
                stamp = stamp.tz_convert(tz)
            return stamp.as_unit(series.dt.unit)
    raise InvalidArgument.field(
        path, f"column {series.name!r} is {kind} but the fill value {value!r} is not; give a value of the column's type"
    )


def _apply_transformation(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = ctx.path(f"transformations[{int(step['index'])}]")
    kind, columns, params = step["type"], list(step["columns"]), step["parameters"]
    if kind == "drop_columns":
        # Later data (e.g. inference input) often lacks the ids the training data dropped.
        return frame.drop(columns=[c for c in columns if c in frame.columns])
    if kind == "rename":
        mapping = dict(params["mapping"])
        ctx.require(frame, list(mapping), _path(path, "parameters.mapping"))
        clash = [n for n in mapping.values() if n in frame.columns and n not in mapping]
        if clash:
            raise InvalidArgument.field(
                _path(path, "parameters.mapping"),
                f"renaming would create column {clash[0]!r}, which already exists; pick another name or drop "
                "that column first",
            )
        return frame.rename(columns=mapping)
    ctx.require(frame, columns, _path(path, "columns"))
    frame = frame.copy()
    if kind == "cast":
        for column in columns:
            frame[column] = _cast(frame[column], params["to"], _path(path, "columns"))
        return frame
    if kind == "fill_null":
        for column in columns:
            value = _fill_value(frame[column], params["value"], _path(path, "parameters.value"))
            frame[column] = frame[column].fillna(value)
        return frame
    ctx.of_kind(frame, columns, ("numeric",), _path(path, "columns"), kind)
    for column in columns:
        values = _floats(frame[column])
        if kind == "log":
            negative = values < 0
            if negative.any():
                row, value = _row(frame[column], negative)
                raise InvalidArgument.field(
                    _path(path, "columns"),
                    f"column {column!r} has the negative value {_plain(value)} at row {row}; log (log1p) needs values "
                    "of at least 0: clip the column first (a clip transformation with min 0) or fix the data",
                )
            frame[column] = np.log1p(values)
        elif kind == "clip":
            frame[column] = frame[column].clip(lower=params.get("min"), upper=params.get("max"))
        else:  # bucketize
            buckets = np.searchsorted(np.asarray(params["boundaries"], dtype=float), values, side="right")
            frame[column] = pd.Series(buckets, index=frame.index, dtype="Int64").mask(np.isnan(values))
    return frame


# ----- imputation


def _fit_imputation(frame: pd.DataFrame, cfg: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    path = ctx.path("imputation")
    strategy, explicit = cfg["strategy"], cfg["columns"]
    if explicit:
        ctx.require(frame, explicit, _path(path, "columns"))
        ctx.unprotected(explicit, _path(path, "columns"))
        columns = explicit
        if strategy in ("mean", "median"):
            ctx.of_kind(frame, columns, ("numeric",), _path(path, "columns"), f"strategy {strategy}")
    elif strategy in ("mean", "median"):
        columns = ctx.features(frame, ("numeric",))
    elif strategy == "constant":
        value = cfg["fill_value"]
        if isinstance(value, bool):
            kinds: tuple[str, ...] = ("bool",)
        else:
            kinds = ("numeric",) if isinstance(value, (int, float)) else ("string", "timestamp")
        columns = ctx.features(frame, kinds)
    else:
        columns = ctx.features(frame, ("numeric", "bool", "string", "timestamp"))
    step: dict[str, Any] = {
        "step": "imputation", "strategy": strategy, "columns": columns, "values": [], "indicators": [],
    }
    if strategy == "drop_rows":
        return step
    for column in columns:
        series = frame[column]
        present = series.dropna()
        if strategy in ("mean", "median", "most_frequent") and present.empty:
            raise InvalidArgument.field(
                _path(path, "columns"),
                f"column {column!r} has no values in the fitting data to learn a {strategy} from; drop the column "
                "or use strategy constant",
            )
        if strategy == "mean":
            value = _finite(_floats(present).mean(), _path(path, "strategy"), f"the mean of {column!r}")
        elif strategy == "median":
            value = _finite(np.median(_floats(present)), _path(path, "strategy"), f"the median of {column!r}")
        elif strategy == "most_frequent":
            counts = present.value_counts(sort=False)
            top = counts[counts == counts.max()].index.tolist()
            try:
                value = _plain(sorted(top)[0])  # ties: the smallest value, like scikit-learn
            except TypeError:
                value = _plain(sorted(top, key=str)[0])
        else:
            value = _plain(cfg["fill_value"])
            _fill_value(series, value, _path(path, "fill_value"))
        step["values"].append(value)
    if cfg["add_indicator"]:
        step["indicators"] = [c for c in columns if explicit or frame[c].isna().any()]
    return step


def _apply_imputation(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = ctx.path("imputation")
    columns = list(step["columns"])
    ctx.require(frame, columns, _path(path, "columns"))
    if step["strategy"] == "drop_rows":
        return frame[frame[columns].notna().all(axis=1)] if columns else frame
    indicators = {f"{c}_missing": frame[c].isna().astype("int64") for c in step["indicators"]}
    frame = frame.copy()
    for column, value in zip(columns, step["values"]):
        frame[column] = frame[column].fillna(_fill_value(frame[column], value, _path(path, "fill_value")))
    ctx.flags.update(indicators)
    return _replace(frame, [], indicators, _path(path, "add_indicator"))


# ----- feature engineering


def _fit_date_parts(frame: pd.DataFrame, fe: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    path = ctx.path("feature_engineering.date_part_columns")
    columns = fe["date_part_columns"]
    ctx.require(frame, columns, path)
    ctx.unprotected(columns, path)
    ctx.of_kind(frame, columns, ("timestamp",), path, "date parts")
    return {"step": "date_parts", "columns": columns, "cyclical": fe["cyclical_dates"]}


def _apply_date_parts(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = ctx.path("feature_engineering.date_part_columns")
    columns = list(step["columns"])
    ctx.require(frame, columns, path)
    ctx.of_kind(frame, columns, ("timestamp",), path, "date parts")
    new: dict[str, Any] = {}
    for column in columns:
        dt = frame[column].dt
        parts = {"year": dt.year, "month": dt.month, "day": dt.day, "weekday": dt.day_of_week, "hour": dt.hour}
        for part, values in parts.items():
            period = {"month": 12, "weekday": 7, "hour": 24}.get(part)
            if step["cyclical"] and period:
                # Month 1..12 -> 0..11 so December sits next to January on the circle.
                angle = 2 * np.pi * (_floats(values) - (1 if part == "month" else 0)) / period
                new[f"{column}_{part}_sin"] = np.sin(angle)
                new[f"{column}_{part}_cos"] = np.cos(angle)
            else:
                new[f"{column}_{part}"] = values.astype("Int64")
    return _replace(frame, columns, new, path)


def _tfidf_outputs(column: str, terms: list[str]) -> list[str]:
    return [f"{column}_tfidf_{term}" for term in terms]


def _texts(series: pd.Series) -> list[str]:
    return ["" if pd.isna(v) else str(v) for v in series.astype(object)]


def _fit_tfidf(frame: pd.DataFrame, fe: dict[str, Any], ctx: _Context) -> list[dict[str, Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    path = ctx.path("feature_engineering.text_columns")
    ctx.require(frame, fe["text_columns"], path)
    ctx.unprotected(fe["text_columns"], path)
    ctx.of_kind(frame, fe["text_columns"], ("string",), path, "TF-IDF")
    steps = []
    for column in fe["text_columns"]:
        vectorizer = TfidfVectorizer(max_features=MAX_TFIDF_TERMS)
        try:
            vectorizer.fit(_texts(frame[column]))
        except ValueError as exc:  # e.g. "empty vocabulary"
            raise InvalidArgument.field(
                path,
                f"column {column!r} has no words to vectorize ({exc}); remove it from text_columns",
            ) from None
        terms = [str(t) for t in vectorizer.get_feature_names_out()]
        steps.append({"step": "tfidf", "column": column, "terms": terms, "idf": [float(v) for v in vectorizer.idf_]})
    return steps


def _apply_tfidf(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    # TfidfVectorizer's own transform needs the fitted object; with the stored vocabulary and
    # idf the same numbers follow from counts * idf, then L2-normalized rows (its defaults).
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    path = ctx.path("feature_engineering.text_columns")
    column, terms = step["column"], list(step["terms"])
    ctx.require(frame, [column], path)
    ctx.of_kind(frame, [column], ("string",), path, "TF-IDF")
    counts = CountVectorizer(vocabulary=terms).transform(_texts(frame[column]))
    weights = normalize(counts.multiply(np.asarray(step["idf"], dtype=float)).tocsr(), norm="l2").toarray()
    outputs = _tfidf_outputs(column, terms)
    ctx.tfidf.update(outputs)
    return _replace(frame, [column], {name: weights[:, i] for i, name in enumerate(outputs)}, path)


def _fit_ratios(frame: pd.DataFrame, fe: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    path = ctx.path("feature_engineering.ratios")
    pairs = []
    for ratio in fe["ratios"]:
        # Column names may contain "/" themselves: take the one split whose sides both exist.
        splits = [(ratio[:i], ratio[i + 1:]) for i, ch in enumerate(ratio) if ch == "/"]
        matches = [(a, b) for a, b in splits if a in frame.columns and b in frame.columns]
        if len(matches) != 1:
            problem = "names no two existing columns" if not matches else "can be split into columns in more than one way"
            raise InvalidArgument.field(
                path,
                f"{ratio!r} {problem}; write each ratio as \"numerator/denominator\" with column names from: "
                f"{_names(frame.columns)}",
            )
        numerator, denominator = matches[0]
        ctx.unprotected([numerator, denominator], path)
        ctx.of_kind(frame, [numerator, denominator], ("numeric",), path, "a ratio")
        pairs.append([numerator, denominator, f"{numerator}_div_{denominator}"])
    return {"step": "ratios", "pairs": pairs}


def _apply_ratios(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = ctx.path("feature_engineering.ratios")
    new = {}
    for numerator, denominator, name in step["pairs"]:
        ctx.require(frame, [numerator, denominator], path)
        ctx.of_kind(frame, [numerator, denominator], ("numeric",), path, "a ratio")
        top, bottom = _floats(frame[numerator]), _floats(frame[denominator])
        with np.errstate(divide="ignore", invalid="ignore"):
            new[name] = np.where(bottom == 0, np.nan, top / np.where(bottom == 0, 1, bottom))
    return _replace(frame, [], new, path)


def _term_name(factors: tuple[str, ...]) -> str:
    counts: dict[str, int] = {}
    for factor in factors:
        counts[factor] = counts.get(factor, 0) + 1
    return "*".join(name if power == 1 else f"{name}^{power}" for name, power in counts.items())


def _fit_polynomial(frame: pd.DataFrame, fe: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    degree = fe["polynomial_degree"]
    columns = [c for c in ctx.features(frame, ("numeric",)) if c not in ctx.flags and c not in ctx.tfidf]
    terms: list[tuple[str, ...]] = []
    # Counted before listed: the terms of degrees 2..degree number C(n + degree, degree) - 1 - n, and
    # listing those of a huge degree would take all the memory before the cap below is reached.
    count = math.comb(len(columns) + degree, degree) - 1 - len(columns) if degree >= 2 else 0
    if count <= MAX_GENERATED_COLUMNS:
        for d in range(2, degree + 1):
            terms.extend(itertools.combinations_with_replacement(columns, d))
        if fe["interactions"]:
            terms.extend(t for t in itertools.combinations(columns, 2) if t not in terms)
        count = len(terms)
    field_name = "polynomial_degree" if degree >= 2 else "interactions"
    if count > MAX_GENERATED_COLUMNS:
        raise InvalidArgument.field(
            ctx.path(f"feature_engineering.{field_name}"),
            f"would create {count} columns from {len(columns)} numeric features (at most {MAX_GENERATED_COLUMNS}); "
            "lower the degree or drop features first",
        )
    return {
        "step": "polynomial", "terms": [list(t) for t in terms], "outputs": [_term_name(t) for t in terms],
        "field": field_name,
    }


def _apply_polynomial(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = ctx.path(f"feature_engineering.{step['field']}")
    needed = sorted({c for t in step["terms"] for c in t})
    ctx.require(frame, needed, path)
    ctx.of_kind(frame, needed, ("numeric",), path, "polynomial features")
    values = {c: _floats(frame[c]) for c in needed}
    new = {name: np.prod([values[c] for c in term], axis=0) for term, name in zip(step["terms"], step["outputs"])}
    return _replace(frame, [], new, path)


# ----- encoding


def _sorted_categories(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # mixed types in an object column
        return sorted(values, key=lambda v: (type(v).__name__, str(v)))


def _fit_encoding(frame: pd.DataFrame, cfg: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    path = ctx.path("encoding")
    method = cfg["method"]
    if cfg["columns"]:
        columns = cfg["columns"]
        ctx.require(frame, columns, _path(path, "columns"))
        ctx.unprotected(columns, _path(path, "columns"))
        ctx.of_kind(frame, columns, ("string", "bool", "numeric"), _path(path, "columns"), f"{method} encoding")
    else:
        columns = ctx.features(frame, ("string",))
    handle_unknown = cfg["handle_unknown"] or ("ignore" if method == "target" else "error")
    step: dict[str, Any] = {"step": "encoding", "method": method, "handle_unknown": handle_unknown, "columns": []}
    for column in columns:
        categories = _sorted_categories([_plain(v) for v in frame[column].dropna().unique().tolist()])
        entry: dict[str, Any] = {"column": column, "categories": categories}
        if method == "onehot":
            entry["outputs"] = [f"{column}={format_value(v)}" for v in categories]
        step["columns"].append(entry)
    width = sum(len(e.get("outputs", ())) for e in step["columns"])
    if width > MAX_GENERATED_COLUMNS:
        widest = max(step["columns"], key=lambda e: len(e["categories"]))
        raise InvalidArgument.field(
            _path(path, "method"),
            f"one-hot encoding would create {width} columns (at most {MAX_GENERATED_COLUMNS}; {widest['column']!r} alone "
            f"has {len(widest['categories'])} categories); use ordinal or target encoding, or drop id-like columns",
        )
    if method == "target":
        target = ctx.target
        y = _target_values(frame, target, ctx)
        known = y.dropna()
        if known.empty:
            raise InvalidArgument.field(_path(path, "target_column"), f"column {target!r} has no values to encode with")
        global_mean = float(known.mean())
        step.update(
            target_column=target, global_mean=global_mean, smoothing=TARGET_SMOOTHING, folds=TARGET_FOLDS, seed=ctx.seed,
        )
        for entry in step["columns"]:
            sums, counts = _category_sums(frame[entry["column"]], y)
            entry["encodings"] = [
                _finite((sums.get(c, 0.0) + TARGET_SMOOTHING * global_mean) / (counts.get(c, 0) + TARGET_SMOOTHING),
                        _path(path, "target_column"), f"the encoding of {c!r}")
                for c in entry["categories"]
            ]
    return step


def _target_values(frame: pd.DataFrame, target: str, ctx: _Context) -> pd.Series:
    path = ctx.path("encoding.target_column")
    ctx.require(frame, [target], path)
    kind = _kind(frame[target])
    if kind not in ("numeric", "bool"):
        raise InvalidArgument.field(
            path,
            f"column {target!r} is {kind}; target encoding needs a numeric or bool target (encode labels as numbers, "
            "e.g. 0/1)",
        )
    series = frame[target]
    if kind == "bool":
        series = series.astype(object).map(lambda v: np.nan if pd.isna(v) else float(v))
    return pd.Series(_floats(series), index=frame.index)


def _category_sums(x: pd.Series, y: pd.Series) -> tuple[dict[Any, float], dict[Any, int]]:
    mask = x.notna() & y.notna()
    grouped = y[mask].groupby(x[mask].astype(object), sort=False)
    sums = {_plain(k): float(v) for k, v in grouped.sum().items()}
    return sums, {_plain(k): int(v) for k, v in grouped.count().items()}


def _out_of_fold(x: pd.Series, y: pd.Series, step: dict[str, Any]) -> np.ndarray:
    """Each row's category mean over the OTHER folds, so its own label never encodes it."""
    n, m = len(x), float(step["smoothing"])
    folds = max(1, min(int(step["folds"]), n))
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[np.random.default_rng(int(step["seed"])).permutation(n)] = np.arange(n) % folds
    result = np.empty(n)
    for k in range(folds):
        train, held = fold_of != k, fold_of == k
        y_train = y[train]
        prior = float(y_train.mean()) if y_train.notna().any() else float(step["global_mean"])
        sums, counts = _category_sums(x[train], y_train)
        # A category without labelled rows in the other folds gets (0 + m * prior) / (0 + m) = prior.
        encodings = {k: (sums[k] + m * prior) / (counts[k] + m) for k in sums}
        result[held] = x[held].astype(object).map(encodings).astype("float64").fillna(prior).to_numpy()
    return result


def _apply_encoding(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = ctx.path("encoding")
    method = step["method"]
    columns = [e["column"] for e in step["columns"]]
    ctx.require(frame, columns, _path(path, "columns"))
    drop, new = [], {}
    for entry in step["columns"]:
        column, categories = entry["column"], list(entry["categories"])
        series = frame[column]
        codes = series.astype(object).map(dict(zip(categories, range(len(categories)))))
        unknown = series.notna() & codes.isna()
        if unknown.any() and step["handle_unknown"] == "error":
            row, value = _row(series, unknown)
            raise InvalidArgument.field(
                _path(path, "handle_unknown"),
                f"column {column!r} has the category {_plain(value)!r} at row {row}, which the fitting data did not have "
                f"(known: {_names(categories)}); set handle_unknown to ignore or fit on data that has it",
            )
        drop.append(column)
        if method == "onehot":
            code_values = _floats(codes)
            for index, name in enumerate(entry["outputs"]):
                new[name] = (code_values == index).astype("int64")
            ctx.flags.update(entry["outputs"])
        elif method in ("ordinal", "label"):
            new[column] = codes.astype("Int64")
        elif ctx.fitting:
            new[column] = _out_of_fold(series, _target_values(frame, step["target_column"], ctx), step)
        else:
            code_values = _floats(codes)
            known = ~np.isnan(code_values)
            encoded = np.full(len(series), float(step["global_mean"]))
            encoded[known] = np.asarray(entry["encodings"], dtype=float)[code_values[known].astype(np.int64)]
            new[column] = encoded
    if method in ("ordinal", "label", "target"):
        # Encoded in place: keep the column where it was.
        frame = frame.copy()
        for column, values in new.items():
            frame[column] = values
        return frame
    return _replace(frame, drop, new, _path(path, "columns"))


# ----- normalization


def _fit_normalization(frame: pd.DataFrame, cfg: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    path = ctx.path("normalization")
    method = cfg["method"]
    if cfg["columns"]:
        columns = cfg["columns"]
        ctx.require(frame, columns, _path(path, "columns"))
        ctx.unprotected(columns, _path(path, "columns"))
        ctx.of_kind(frame, columns, ("numeric",), _path(path, "columns"), f"{method} normalization")
    else:
        columns = [c for c in ctx.features(frame, ("numeric",)) if c not in ctx.flags and c not in ctx.tfidf]
    step: dict[str, Any] = {"step": "normalization", "method": method, "columns": columns}
    center, scale, quantiles = [], [], []
    for column in columns:
        values = _floats(frame[column])
        values = values[~np.isnan(values)]
        if values.size == 0:
            raise InvalidArgument.field(
                _path(path, "columns"),
                f"column {column!r} has no values in the fitting data to learn the scaling from; drop it or impute it",
            )
        what = f"a statistic of {column!r}"
        if method == "standard":
            low, spread = values.mean(), values.std()
        elif method == "minmax":
            low, spread = values.min(), values.max() - values.min()
        elif method == "robust":
            q25, low, q75 = np.percentile(values, [25, 50, 75])
            spread = q75 - q25
        else:
            count = min(MAX_QUANTILES, values.size)
            # As scikit-learn's QuantileTransformer: quantiles at evenly spaced references, made monotonic.
            levels = np.percentile(values, np.linspace(0, 100, count))
            quantiles.append([_finite(v, _path(path, "method"), what) for v in np.maximum.accumulate(levels)])
            continue
        center.append(_finite(low, _path(path, "method"), what))
        # A constant column keeps its spread: scale 1, as scikit-learn does.
        scale.append(_finite(spread, _path(path, "method"), what) or 1.0)
    if method == "quantile":
        step["quantiles"] = quantiles
    else:
        step["center"], step["scale"] = center, scale
    return step


def _quantile_transform(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    references = np.linspace(0, 1, len(quantiles))
    # Interpolating forwards and backwards and averaging gives repeated quantiles (ties)
    # their middle reference, exactly as scikit-learn does.
    out = 0.5 * (
        np.interp(values, quantiles, references) - np.interp(-values, -quantiles[::-1], -references[::-1])
    )
    bound = 1e-7  # scikit-learn's BOUNDS_THRESHOLD
    out[values + bound > quantiles[-1]] = 1.0
    out[values - bound < quantiles[0]] = 0.0
    out[np.isnan(values)] = np.nan
    return out


def _apply_normalization(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = _path(ctx.path("normalization"), "columns")
    columns = list(step["columns"])
    ctx.require(frame, columns, path)
    ctx.of_kind(frame, columns, ("numeric",), path, f"{step['method']} normalization")
    frame = frame.copy()
    for index, column in enumerate(columns):
        values = _floats(frame[column])
        if step["method"] == "quantile":
            with np.errstate(invalid="ignore"):
                frame[column] = _quantile_transform(values, np.asarray(step["quantiles"][index], dtype=float))
        else:
            frame[column] = (values - float(step["center"][index])) / float(step["scale"][index])
    return frame


# ----- selection and PCA


def _numeric_features(frame: pd.DataFrame, ctx: _Context) -> list[str]:
    return ctx.features(frame, ("numeric",))


def _fit_variance(frame: pd.DataFrame, threshold: float, ctx: _Context) -> dict[str, Any]:
    dropped = []
    for column in _numeric_features(frame, ctx):
        values = _floats(frame[column])
        values = values[~np.isnan(values)]
        variance = values.var() if values.size else 0.0  # population variance, as scikit-learn
        if variance <= threshold:
            dropped.append(column)
    return {"step": "select", "criterion": "variance_threshold", "dropped": dropped}


def _fit_correlation(frame: pd.DataFrame, threshold: float, ctx: _Context) -> dict[str, Any]:
    columns = _numeric_features(frame, ctx)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = frame[columns].astype("float64").corr().abs().fillna(0.0).to_numpy() if columns else np.zeros((0, 0))
    kept: list[int] = []
    dropped = []
    # Greedy in column order: a column goes when it is too correlated with one already kept.
    for i, column in enumerate(columns):
        if any(corr[i, j] > threshold for j in kept):
            dropped.append(column)
        else:
            kept.append(i)
    return {"step": "select", "criterion": "correlation_threshold", "dropped": dropped}


def _is_classification(label: pd.Series) -> bool:
    kind = _kind(label)
    if kind in ("string", "bool"):
        return True
    return pd.api.types.is_integer_dtype(label.dtype) and label.nunique() <= MAX_INT_CATEGORIES


def _fit_k_best(frame: pd.DataFrame, k: int, ctx: _Context) -> dict[str, Any]:
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    path = ctx.path("feature_engineering.select_k_best")
    if not ctx.label:
        raise InvalidArgument.field(
            path,
            "select_k_best ranks features by mutual information with the label; set feature_engineering.label_column",
        )
    ctx.require(frame, [ctx.label], ctx.path("feature_engineering.label_column"))
    columns = _numeric_features(frame, ctx)
    label = frame[ctx.label]
    rows = label.notna()
    X = frame.loc[rows, columns].astype("float64")
    if X.isna().any().any():
        column = X.columns[X.isna().any()][0]
        raise InvalidArgument.field(
            path,
            f"column {column!r} has nulls, which mutual information cannot score; configure imputation",
        )
    classification = _is_classification(label)
    if rows.sum() < 4:
        raise InvalidArgument.field(
            path,
            "mutual information needs at least 4 rows with a label; use more data or turn select_k_best off",
        )
    if columns:
        if classification:
            scores = mutual_info_classif(X.to_numpy(), pd.factorize(label[rows])[0], random_state=ctx.seed)
        else:
            scores = mutual_info_regression(X.to_numpy(), _floats(label[rows]), random_state=ctx.seed)
    else:
        scores = np.zeros(0)
    order = np.argsort(-scores, kind="stable")  # ties keep the earlier column
    keep = set(order[:k].tolist())
    return {
        "step": "select",
        "criterion": "select_k_best",
        "task": "classification" if classification else "regression",
        "columns": columns,
        "scores": [float(s) for s in scores],
        "dropped": [c for i, c in enumerate(columns) if i not in keep],
    }


def _apply_select(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    dropped = list(step["dropped"])
    ctx.require(frame, dropped, ctx.path(f"feature_engineering.{step['criterion']}"))
    return frame.drop(columns=dropped)


def _fit_pca(frame: pd.DataFrame, k: int, ctx: _Context) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    path = ctx.path("feature_engineering.pca_components")
    columns = _numeric_features(frame, ctx)
    X = frame[columns].astype("float64")
    if X.isna().any().any():
        column = X.columns[X.isna().any()][0]
        raise InvalidArgument.field(path, f"column {column!r} has nulls, which PCA cannot use; configure imputation")
    limit = min(len(frame), len(columns))
    if k > limit:
        raise InvalidArgument.field(
            path,
            f"{k} components asked for but at most {limit} are possible ({len(frame)} rows, {len(columns)} numeric "
            "features); ask for fewer",
        )
    pca = PCA(n_components=k, svd_solver="full").fit(X.to_numpy())
    return {
        "step": "pca",
        "columns": columns,
        "mean": [_finite(v, path, "a PCA mean") for v in pca.mean_],
        "components": [[_finite(v, path, "a PCA weight") for v in row] for row in pca.components_],
        "explained_variance_ratio": [float(v) for v in np.nan_to_num(pca.explained_variance_ratio_)],
        "outputs": [f"pc{i + 1}" for i in range(k)],
    }


def _apply_pca(frame: pd.DataFrame, step: dict[str, Any], ctx: _Context) -> pd.DataFrame:
    path = ctx.path("feature_engineering.pca_components")
    columns = list(step["columns"])
    ctx.require(frame, columns, path)
    ctx.of_kind(frame, columns, ("numeric",), path, "PCA")
    X = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
    scores = (X - np.asarray(step["mean"], dtype=float)) @ np.asarray(step["components"], dtype=float).T
    return _replace(frame, columns, {name: scores[:, i] for i, name in enumerate(step["outputs"])}, path)


# ----- sampling and augmentation (fitting data only)


def _fit_sampling(frame: pd.DataFrame, cfg: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    method = cfg["method"]
    column = cfg["column"] or (ctx.label if method in ("stratified", "oversample", "undersample") else "")
    if column and column not in frame.columns:
        raise InvalidArgument.field(
            ctx.path("sampling.column" if cfg["column"] else "feature_engineering.label_column"),
            f"column {column!r} is not in the processed data (an earlier step encoded, replaced or dropped it); "
            f"sample on the label or a column processing leaves alone: {_names(frame.columns)}",
        )
    seed = cfg["seed"] or ctx.seed
    return {"step": "sampling", "method": method, "fraction": cfg["fraction"], "column": column, "seed": seed}


def _class_rows(values: pd.Series) -> list[np.ndarray]:
    """Row positions of each class, classes in a fixed order; nulls are a class of their own."""
    codes = pd.factorize(values.astype(object), sort=False, use_na_sentinel=True)[0]
    return [np.flatnonzero(codes == code) for code in np.unique(codes)]


def _apply_sampling(frame: pd.DataFrame, step: dict[str, Any]) -> pd.DataFrame:
    rng = np.random.default_rng(int(step["seed"]))
    method, fraction, n = step["method"], float(step["fraction"]), len(frame)
    if n == 0:
        return frame
    if method == "random":
        picked = rng.choice(n, size=max(1, round(fraction * n)), replace=False)
    elif method == "systematic":
        size = max(1, round(fraction * n))
        step_size = n / size
        picked = (rng.uniform(0, step_size) + step_size * np.arange(size)).astype(np.int64)
    else:
        classes = _class_rows(frame[step["column"]])
        if method == "stratified":
            # Every class keeps its share (at least one row), so rare classes survive.
            sizes = [max(1, round(fraction * len(rows))) for rows in classes]
            picked = np.concatenate([rng.choice(rows, size=size, replace=False) for rows, size in zip(classes, sizes)])
        elif method == "undersample":
            smallest = min(len(rows) for rows in classes)
            picked = np.concatenate([rng.choice(rows, size=smallest, replace=False) for rows in classes])
        else:  # oversample: minority classes get random duplicates up to the majority's size
            largest = max(len(rows) for rows in classes)
            extra = [rng.choice(rows, size=largest - len(rows), replace=True) for rows in classes]
            return pd.concat([frame, frame.iloc[np.concatenate(extra)]])
    # Kept rows stay in their original order.
    return frame.iloc[np.sort(picked)]


def _fit_augmentation(frame: pd.DataFrame, cfg: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    path = ctx.path("augmentation")
    params = cfg["parameters"]
    step: dict[str, Any] = {
        "step": "augmentation", "methods": cfg["methods"], "probability": cfg["probability"], "copies": cfg["copies"],
        "seed": ctx.seed, "image_shape": params["image_shape"], "flip": params["flip"], "max_shift": params["max_shift"],
        "noise_std": params["noise_std"], "pixel_columns": [], "pixel_std": 0.0, "noise_columns": [], "noise_stds": [],
    }
    if any(m in IMAGE_METHODS for m in cfg["methods"]):
        pixels = params["pixel_columns"] or _numeric_features(frame, ctx)
        pixels_path = _path(path, "parameters.pixel_columns" if params["pixel_columns"] else "parameters.image_shape")
        ctx.require(frame, pixels, pixels_path)
        ctx.unprotected(pixels, pixels_path)
        ctx.of_kind(frame, pixels, ("numeric",), pixels_path, "image augmentation")
        size = int(np.prod(params["image_shape"]))
        if len(pixels) != size:
            raise InvalidArgument.field(
                _path(path, "parameters.image_shape"),
                f"image_shape {params['image_shape']} holds {size} pixels but there are {len(pixels)} pixel columns "
                f"({_names(pixels)}); fix image_shape or list the pixel columns in parameters.pixel_columns",
            )
        values = frame[pixels].to_numpy(dtype="float64", na_value=np.nan)
        step["pixel_columns"] = pixels
        step["pixel_std"] = float(np.nanstd(values)) if np.isfinite(values).any() else 0.0
    if "tabular_noise" in cfg["methods"]:
        columns = _numeric_features(frame, ctx)
        step["noise_columns"] = columns
        stds = []
        for column in columns:
            values = _floats(frame[column])
            stds.append(float(np.nanstd(values)) if np.isfinite(values).any() else 0.0)
        step["noise_stds"] = [_finite(s, _path(path, "methods"), "a column's std") for s in stds]
    return step


def _augment_images(pixels: np.ndarray, step: dict[str, Any], method: str, rng: np.random.Generator) -> np.ndarray:
    shape = [int(v) for v in step["image_shape"]]
    images = pixels.reshape(len(pixels), *shape)  # row-major: pixel (r, c) is column r * W + c
    if method == "flip":
        images = images[:, :, ::-1] if step["flip"] == "horizontal" else images[:, ::-1, :]
    elif method == "shift":
        limit = int(step["max_shift"])
        shifted = np.zeros_like(images)
        height, width = shape[0], shape[1]
        for i in range(len(images)):
            dy, dx = rng.integers(-limit, limit + 1, size=2)
            # Copy the overlapping window; pixels shifted in from outside are 0.
            src_y, dst_y = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
            src_x, dst_x = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
            shifted[i, dst_y, dst_x] = images[i, src_y, src_x]
        images = shifted
    else:
        images = images + rng.normal(0.0, float(step["noise_std"]) * float(step["pixel_std"]), size=images.shape)
    return images.reshape(len(pixels), -1)


def _apply_augmentation(frame: pd.DataFrame, step: dict[str, Any]) -> pd.DataFrame:
    rng = np.random.default_rng(int(step["seed"]))
    chosen = np.flatnonzero(rng.random(len(frame)) < float(step["probability"]))
    if chosen.size == 0:
        return frame
    copies = frame.iloc[np.repeat(chosen, int(step["copies"]))].copy()
    pixel_columns = list(step["pixel_columns"])
    for method in step["methods"]:
        if method == "tabular_noise":
            for column, std in zip(step["noise_columns"], step["noise_stds"]):
                values = _floats(copies[column])
                copies[column] = values + rng.normal(0.0, float(step["noise_std"]) * float(std), size=len(values))
        else:
            pixels = copies[pixel_columns].to_numpy(dtype="float64", na_value=np.nan)
            augmented = _augment_images(pixels, step, method, rng)
            integral = method != "noise"
            for index, column in enumerate(pixel_columns):
                values = augmented[:, index]
                # Flips and shifts move pixel values around; an integer image stays integer.
                if integral and pd.api.types.is_integer_dtype(copies[column].dtype) and not np.isnan(values).any():
                    copies[column] = values.astype(copies[column].dtype)
                else:
                    copies[column] = values
    return pd.concat([frame, copies])


# ----- public API


def _fit(frame: pd.DataFrame, config: dict[str, Any], seed: int, field: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The fitted dict and the fitting data through every step but sampling and augmentation."""
    cfg = _parse(config, field)
    fe = cfg["feature_engineering"]
    label = fe["label_column"]
    target = (cfg["encoding"]["target_column"] or label) if cfg["encoding"]["method"] == "target" else ""
    if label and label not in frame.columns:
        raise InvalidArgument.field(
            _path(field, "feature_engineering.label_column"),
            f"column {label!r} is not in the data; available columns: {_names(frame.columns)}",
        )
    if target and target not in frame.columns:
        raise InvalidArgument.field(
            _path(field, "encoding.target_column"),
            f"column {target!r} is not in the data; available columns: {_names(frame.columns)}",
        )
    if len(frame) == 0:
        raise InvalidArgument.field(field or "processing", "the data to fit the processing on has no rows")
    frame = frame.reset_index(drop=True)
    ctx = _Context(
        field=field, seed=int(seed), label=label, target=target, input_columns=list(frame.columns),
        fitting=True, phase="fit",
    )

    steps: list[dict[str, Any]] = []

    def run(step: dict[str, Any]) -> None:
        nonlocal frame
        steps.append(step)
        frame = _APPLY[step["step"]](frame, step, ctx)

    for index, t in enumerate(cfg["transformations"]):
        run(_fit_transformation(frame, t, index, ctx))
    if cfg["imputation"]["strategy"]:
        run(_fit_imputation(frame, cfg["imputation"], ctx))
        if frame.empty:
            raise InvalidArgument.field(
                _path(field, "imputation.strategy"),
                "drop_rows removed every row of the fitting data; list fewer columns or use another strategy",
            )
    if fe["date_part_columns"]:
        run(_fit_date_parts(frame, fe, ctx))
    if fe["text_columns"]:
        for step in _fit_tfidf(frame, fe, ctx):
            run(step)
    if fe["ratios"]:
        run(_fit_ratios(frame, fe, ctx))
    if fe["polynomial_degree"] >= 2 or fe["interactions"]:
        run(_fit_polynomial(frame, fe, ctx))
    if cfg["encoding"]["method"]:
        run(_fit_encoding(frame, cfg["encoding"], ctx))
    if cfg["normalization"]["method"]:
        run(_fit_normalization(frame, cfg["normalization"], ctx))
    if fe["variance_threshold"] > 0:
        run(_fit_variance(frame, fe["variance_threshold"], ctx))
    if fe["correlation_threshold"] > 0:
        run(_fit_correlation(frame, fe["correlation_threshold"], ctx))
    if fe["select_k_best"] > 0:
        run(_fit_k_best(frame, fe["select_k_best"], ctx))
    if fe["pca_components"] > 0:
        run(_fit_pca(frame, fe["pca_components"], ctx))
    if cfg["sampling"]["method"]:
        steps.append(_fit_sampling(frame, cfg["sampling"], ctx))
    if cfg["augmentation"]["enabled"]:
        steps.append(_fit_augmentation(frame, cfg["augmentation"], ctx))

    fitted = {
        "format": FORMAT,
        "field": field,
        "seed": int(seed),
        "label_column": label,
        "target_column": target,
        "config": cfg,
        "input_columns": ctx.input_columns,
        "output_columns": [str(c) for c in frame.columns],
        "steps": steps,
    }
    return fitted, frame


def fit_processing(
    frame: pd.DataFrame, config: dict[str, Any], *, seed: int = 0, field: str = "processing"
) -> dict[str, Any]:
    """Learn every step of `config` from `frame`; returns the fitted dict (JSON-serializable).

    The dict holds "config" (validated, defaults filled), "seed", "label_column",
    "target_column", "input_columns", "output_columns" (the columns apply_processing
    produces on data like the fitting data) and "steps": one dict per step in the order
    they run, each with its learned parameters (see the module docstring).
    Errors are InvalidArgument on `<field>.<setting>` paths.
    """
    return _fit(frame, config, seed, field)[0]


def _fitting_only(frame: pd.DataFrame, steps: list[dict[str, Any]]) -> pd.DataFrame:
    for step in steps:
        if step["step"] == "sampling":
            frame = _apply_sampling(frame, step)
        elif step["step"] == "augmentation":
            frame = _apply_augmentation(frame, step)
    return frame.reset_index(drop=True)


def apply_processing(frame: pd.DataFrame, fitted: dict[str, Any], *, fitting: bool = False) -> pd.DataFrame:
    """Apply the fitted steps to `frame` with the parameters learned at fit time.

    Pass `fitting=True` only when `frame` is the very data the processing was fitted on:
    then target encoding is out of fold, and sampling and augmentation run (they change the
    training rows only; test and inference data keep every row, un-augmented). The label
    column may be missing (inference data) unless a fitting-only step needs it.
    """
    if not isinstance(fitted, dict) or fitted.get("format") != FORMAT or not isinstance(fitted.get("steps"), list):
        raise InvalidArgument.field(
            "fitted",
            f"is not a fitted processing (format {FORMAT}); fit one with fit_processing",
        )
    field = str(fitted.get("field", "processing"))
    ctx = _Context(
        field=field, seed=int(fitted["seed"]), label=str(fitted["label_column"]), target=str(fitted["target_column"]),
        input_columns=[str(c) for c in frame.columns], fitting=fitting, phase="apply",
    )
    frame = frame.reset_index(drop=True)
    rowwise = [s for s in fitted["steps"] if s["step"] not in ("sampling", "augmentation")]
    for step in rowwise:
        frame = _APPLY[step["step"]](frame, step, ctx)
    if not fitting:
        return frame.reset_index(drop=True)
    return _fitting_only(frame, [s for s in fitted["steps"] if s["step"] in ("sampling", "augmentation")])


_APPLY = {
    "transformation": _apply_transformation,
    "imputation": _apply_imputation,
    "date_parts": _apply_date_parts,
    "tfidf": _apply_tfidf,
    "ratios": _apply_ratios,
    "polynomial": _apply_polynomial,
    "encoding": _apply_encoding,
    "normalization": _apply_normalization,
    "select": _apply_select,
    "pca": _apply_pca,
}


def _read_frame(source_parquet: str) -> pd.DataFrame:
    if not os.path.isfile(source_parquet):
        raise DataLoss(f"dataset file {os.path.basename(source_parquet)} is missing")
    return pq.read_table(source_parquet).to_pandas()


def _write_frame(frame: pd.DataFrame, dest: str, label_column: str) -> IngestResult:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return write_table(table, dest, label_column=label_column, field_prefix="")


def process_table(
    source_parquet: str,
    dest: str,
    config: dict[str, Any],
    *,
    seed: int = 0,
    label_column: str = "",
    field: str = "processing",
) -> tuple[IngestResult, dict[str, Any]]:
    """Fit `config` on the Parquet dataset at `source_parquet`, apply it (fitting=True, so
    sampling and augmentation run) and write the result atomically to `dest`.

    The dataset's `label_column` is the processing's label unless the config names one
    (they must agree), so the label is never scaled or encoded. Returns the written
    dataset's IngestResult and the fitted dict (to apply the same processing elsewhere).
    """
    frame = _read_frame(source_parquet)
    if label_column:
        config = dict(_mapping(config, field))
        fe = dict(_mapping(config.get("feature_engineering"), _path(field, "feature_engineering")))
        named = fe.get("label_column") or ""
        if named and named != label_column:
            raise InvalidArgument.field(
                _path(field, "feature_engineering.label_column"),
                f"{named!r} differs from the dataset's label column {label_column!r}; leave it empty or set it "
                f"to {label_column!r}",
            )
        fe["label_column"] = label_column
        config["feature_engineering"] = fe
    fitted, processed = _fit(frame, config, seed, field)
    out = _fitting_only(processed, fitted["steps"])
    return _write_frame(out, dest, label_column), fitted


def apply_to_table(source_parquet: str, dest: str, fitted: dict[str, Any], *, label_column: str = "",
                   fitting: bool = False) -> IngestResult:
    """Apply fitted processing to the Parquet dataset at `source_parquet` and write the result
    atomically to `dest`. `fitting` only when this is the dataset the processing was fitted on
    (then sampling, augmentation and out-of-fold target encoding apply)."""
    out = apply_processing(_read_frame(source_parquet), fitted, fitting=fitting)
    return _write_frame(out, dest, label_column)
