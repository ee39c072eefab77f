r"""An ONNX front graph that turns RAW columns into the input a model was trained on.

An exported model takes what the framework adapter fed it: for tabular data one float tensor
[N, F] of *processed* features (TrainingData.preprocessing["feature_names"]); for text the
int64 token ids [N, max_length] of engine.data.text.encode; for interactions the int64
(user index, item index) pairs [N, 2]. `raw_input_graph` builds the graph that computes that
input from the raw columns the user trained on, replaying the fitted parameters (never
refitting), and `with_raw_inputs` puts it in front of an exported model so an inference
engine can feed raw rows.

Two layers are replayed, in the order training applied them to the raw frame:
  1. the fitted ProcessingConfig (engine.data.processing.apply_processing, fitting=False),
     when there is one;
  2. the input kind's preprocessing of engine.data.training_data (`prep`, the job's
     model_info["preprocessing"]: the data layer's record merged with the adapter's
     input_preprocessing):
     tabular       numeric and bool columns as float64, the other columns one-hot encoded
                   with prep["onehot"][col];
     text          the text column (missing -> "") encoded as engine.data.text.encode does with
                   prep["vocabulary"] and prep["max_length"] (see "Text" below);
     interactions  the user and item id columns looked up in prep["user_index"] and
                   prep["item_index"], 0 for an id the maps lack (see "Interactions" below);
     sequence      not replayed: a forecaster takes the series' last window values, which are
                   raw numbers already, so its export keeps that input (Unsupported here).

Inputs: one per raw column the output actually depends on, named by the column, shape
[N, 1], in the order the processing first reads them:
  raw type float64 | int64 | bool -> tensor(double): the value (bools 0/1), NaN = missing;
  raw type string                 -> tensor(string): the text, "" = missing;
  raw type timestamp              -> tensor(int64): nanoseconds since 1970-01-01T00:00:00 of
                                     the timestamp's wall-clock time, the int64 minimum
                                     (-2**63, pandas' NaT) = missing (see "Timestamps").
Columns dropped by processing, or never used by a kept feature, get no input.
The one output has the model's input layout: tabular [N, F] with the features in
prep["feature_names"] order, as double, float or int64 (the cast of the double values; int64
only suits whole, non-null features); text [N, max_length] and interactions [N, 2] as int64
or int32.

Covered steps (exact, up to floating-point rounding of the same arithmetic):
  transformations  drop_columns, rename, log (log1p), clip, fill_null (numbers, bools, text,
                   timestamps), bucketize, cast between float64 / int64 / bool of numeric
                   and bool columns, cast of a timestamp to timestamp (no change)
  imputation       mean, median, most_frequent, constant (numbers, bools, text and
                   timestamps), with add_indicator (<col>_missing)
  feature eng.     date parts (with or without cyclical_dates; see "Timestamps"), TF-IDF
                   (see "TF-IDF"), ratios (division by zero -> NaN), polynomial / interactions
  encoding         onehot, ordinal, label, target (the full-data smoothed means)
  normalization    standard, minmax, robust, quantile
  selection        variance_threshold, correlation_threshold, select_k_best (drops)
  PCA
  sampling and augmentation run only on the fitting data, so they have no part here.
Unsupported (the exception says which step and why): drop_rows imputation (it removes rows),
casts from text and casts to string or timestamp (the graph cannot reproduce pandas' parsing
and formatting), text categories that are "" (indistinguishable from a missing value), the
one-hot encoding of numeric or timestamp columns by training_data (it formats them as text;
a timestamp feature needs date parts or a drop), a text or id column that is not text when
the training data reads it (str() of a number), and the sequence kind. A step that feeds
only features the output never uses is no obstacle: the graph is pruned to what the output
needs before anything is refused. An empty text is a missing one to the graph, so
fill_null and imputation of a text column fill it where processing keeps "" (TF-IDF and the
text kind read a missing text as "" anyway).

Where apply_processing would REFUSE a row, the graph cannot raise, so it gives NaN in the
features that row's value affects: an unseen category with handle_unknown "error"
(ordinal/label/target -> NaN, every one-hot column of it -> NaN), a negative value under
log, a non-whole number cast to int64, a value other than 0/1 cast to bool. Unseen
categories with handle_unknown "ignore" behave as processing does (one-hot all 0,
ordinal null, target the global mean), and so do training_data's unseen categories (all 0).

Text. engine.data.text lowercases the text (str.lower), takes the runs of letters and digits
(the regex [^\W_]+) as tokens, maps them to vocabulary ids (vocabulary[i] -> i + 2, 1 for a
token outside it) and keeps the first max_length ids, padded with 0. The graph: the text
column [N, 1] (plus one empty row, so that no op ever sees an empty batch) ->
StringNormalizer LOWER with locale "C" -> com.microsoft Tokenizer (onnxruntime's contrib op;
tokenexp [\p{L}\p{N}]+, an RE2 regex; [N + 1, T] tokens padded with "", T = 0 when no text
has a token) -> LabelEncoder to ids -> padded with max_length zeros, cut to [N, max_length].
Locale "C" because onnxruntime refuses to load a model whose StringNormalizer names a
locale the machine lacks (its default, en_US.UTF-8, is missing from this service's own
image, C.UTF-8 from other systems) or, for the environment's locale "", lowercases "I" to
a dotless "ı" under a Turkish one; "C" exists everywhere and means the same everywhere. It
lowercases only ASCII letters, so the LabelEncoder also takes, for each vocabulary token,
the spellings with non-ASCII capitals that str.lower() maps back to the token: the first
letter in upper (or title) case, all the others, or all of them ("Über", "ÜBER" which
reaches the LabelEncoder as "Über", "Москва", "МОСКВА", "ΟΔΟΣ" for "οδος", "ǅǅ" for "ǆǆ";
_spellings).
Exactness, checked code point by code point with onnxruntime 1.32 on glibc
(tests/unit/engine/export/test_raw_input.py):
  * ASCII text: exact (ASCII letters and digits make tokens, every other character splits).
  * Which characters make up tokens: exact for every character assigned in the Unicode
    version of Python's unicodedata (14.0 on Python 3.11): Python's [^\W_] is exactly
    [\p{L}\p{N}] there; underscores and marks (e.g. a combining accent) split tokens in
    both. Characters that Python's version leaves unassigned but RE2's newer tables count as
    letters or digits (5010 code points for Python 3.11, e.g. the Kawi script U+11F00-U+11F5F)
    are token characters to the graph and separators to Python.
  * Case of non-ASCII letters, where a vocabulary token written in capitals gets id 1
    (unknown) from the graph but the token's id from Python (tokens outside the vocabulary
    get 1 either way):
    - capitals in a pattern other than the spellings above, i.e. upper- and lower-case
      non-ASCII letters mixed after the first letter: e.g. "москВА" or "МОСКва" for
      "москва" (the ASCII letters' case never matters);
    - U+0130 İ: str.lower() makes it "i" + U+0307 (a combining dot), which ends the token
      ("İstanbul" -> "i", "stanbul"); the graph keeps "İstanbul", unknown;
    - U+03A3 Σ: str.lower() picks final "ς" or "σ" by the letters around it, also beyond
      the token ("ΟΔΟΣ.Α" -> "οδοσ", "α" but "ΟΔΟΣ Α" -> "οδος", "α"); the graph maps
      "ΟΔΟΣ" to the token that "ΟΔΟΣ" alone lowercases to ("οδος");
    - capitals that are not the upper or title case of their own lower case: U+03F4 ϴ
      (-> θ), U+1E9E ẞ (-> ß), U+2126 OHM SIGN (-> ω), U+212A KELVIN SIGN (-> k), U+212B
      ANGSTROM SIGN (-> å).
  Missing texts are "" in both.

TF-IDF. processing replays scikit-learn's TfidfVectorizer defaults with the fitted terms and
idf: the text (missing -> "") lowercased (str.lower), its tokens the matches of
r"(?u)\b\w\w+\b" (runs of two or more word characters: letters, digits and "_"), each
term's count times its idf, each row divided by its L2 norm (a row without a known term stays
all 0), as columns <col>_tfidf_<term> in the fitted terms' order, replacing <col>. The graph:
the text front's lowercasing and tokenizing ("Text" above) with tokenexp [\p{L}\p{N}_]{2,}
(the same runs: Python's \w is [\p{L}\p{N}_] where [^\W_] is [\p{L}\p{N}]) -> LabelEncoder
to the term's index (-1 for other tokens and the padding; a term also under its non-ASCII
capital spellings, _spellings) -> TfIdfVectorizer (default domain, mode TF) counting the
indexes of each row -> times idf -> divided by the square root of the row's sum of squares (1
where that is 0).
Exactness, checked code point by code point (tests/unit/engine/export/test_raw_input.py):
  * ASCII text: exact, up to rounding (the sum of squares is added in another order, about
    1e-16).
  * Other text: the differences of "Text" above, in the same cases: characters unassigned in
    Python's Unicode version that RE2 counts as letters or digits, and capitals in other
    patterns than the spellings, U+0130 İ, U+03A3 Σ's context and the capitals that are not
    the case of their own lower case, where the graph misses a term (or counts a token that
    Python splits differently: "aİb" is "ai", "b" to Python, an unknown word to the graph).

Timestamps. A timestamp input holds int64 nanoseconds since 1970-01-01T00:00:00 of the
timestamp's wall-clock time:
  * a naive timestamp (the dataset's timestamps without a zone) or one in UTC: its
    nanoseconds since the Unix epoch in UTC (numpy's datetime64[ns] as int64);
  * a timestamp with another zone: its local time in that zone counted the same way, as if
    it were UTC (pandas: series.dt.tz_localize(None)), since processing takes the date parts
    of the local time (pandas' .dt accessors of an aware column) -- its UTC instant would give
    the parts of the UTC time;
  * missing (None, NaT): the int64 minimum, -2**63, which is pandas' NaT.
  That covers 1677-09-21T00:12:43.145224193 to 2262-04-11T23:47:16.854775807; other times
  cannot be sent. pandas: s = series.dt.tz_localize(None) when it has a zone, then
  s.astype("datetime64[ns]").to_numpy().view("int64").
Date parts (processing: <col>_year, _month, _day, _weekday with Monday 0, _hour; with
cyclical_dates <col>_month_sin/_cos, _weekday_sin/_cos, _hour_sin/_cos of 2 pi (month - 1) /
12, 2 pi weekday / 7, 2 pi hour / 24; a missing timestamp gives NaN in every part): the day
number by floor division (int64 Mod, fmod 0) and Howard Hinnant's civil_from_days in int64
arithmetic, exact for every instant the input can hold (before 1970 and after 2100, leap
days, the proleptic Gregorian calendar of numpy and pandas); the angles with numpy's
arithmetic, so sin and cos differ from numpy's by their implementations' rounding only (a few
1e-16). A timestamp fill value (imputation, fill_null; ISO text in the fitted dict) is taken
at its own wall-clock time: naive text is what processing localizes to the column's zone, and
a value with a UTC offset (most_frequent of an aware column) is the wall-clock time of the
zone it was learned in (with pandas 3 processing fills only a UTC column with such a value;
other zones turn the column into objects, which date parts refuse).

Interactions. training_data reads both id columns with astype(str) (a missing id becomes
"nan"), the adapter maps them through prep["user_index"] / prep["item_index"], 0 for any id
the maps lack. The graph: each id column [N, 1] (text; "" = missing) -> LabelEncoder ->
Concat [N, 2] (user index, item index). Exact for text id columns; refused (Unsupported)
when the id columns are not text (str() of numbers) or the maps have an id that a missing
value would be confused with ("", "nan", "None", "<NA>").

Only standard ops are used (default domain, valid unchanged from opset 11 on, plus
ai.onnx.ml LabelEncoder for text values), so `with_raw_inputs` can build the front graph at
the model's own opsets and IR version, which onnx.compose.merge_models requires; the text
kind and TF-IDF add onnxruntime's com.microsoft Tokenizer (opset 1), which other runtimes may
lack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper

from engine.data import text as text_encoding
from engine.data.processing import FORMAT

# Opsets of a stand-alone front graph; with_raw_inputs uses the model's instead.
FRONT_OPSET = 17
FRONT_ML_OPSET = 2
# Double Equal (opset 11) is the newest op version the front graph needs.
MIN_OPSET = 11
ML_DOMAIN = "ai.onnx.ml"
# onnxruntime's contrib domain, for its Tokenizer (text only).
MS_DOMAIN = "com.microsoft"
MS_OPSET = 1
# The output types each input kind's graph can give (the model's input type).
OUTPUT_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64)
ID_OUTPUT_TYPES = (TensorProto.INT64, TensorProto.INT32)
KIND_OUTPUT_TYPES = {"tabular": OUTPUT_TYPES, "text": ID_OUTPUT_TYPES, "interactions": ID_OUTPUT_TYPES}
# engine.data.text's tokens ([^\W_]+ in Python) as an RE2 regex, and the case folding the
# graph does (see the module docstring, "Text").
TOKEN_REGEX = r"[\p{L}\p{N}]+"
LOWER_LOCALE = "C"
TOKENIZER = text_encoding.__name__
# TF-IDF terms: scikit-learn's default token_pattern in Python, and the same tokens as an RE2
# regex (Python's \w is [\p{L}\p{N}_]; see the module docstring, "TF-IDF").
TFIDF_PATTERN = re.compile(r"(?u)\b\w\w+\b")
TFIDF_TOKEN_REGEX = r"[\p{L}\p{N}_]{2,}"
# What a missing id becomes in the training data (str() of NaN / None / NA): an id map
# holding one of these, or "", would tell a missing id apart where the graph cannot.
MISSING_ID_SPELLINGS = ("", "nan", "None", "<NA>")
# Column kinds by raw type (a timestamp input is int64 nanoseconds; see the module docstring).
INPUT_KINDS = {"float64": "numeric", "int64": "numeric", "bool": "bool", "string": "string",
               "timestamp": "timestamp"}
RAW_TYPES = tuple(INPUT_KINDS)
INPUT_TYPES = {"numeric": TensorProto.DOUBLE, "bool": TensorProto.DOUBLE, "string": TensorProto.STRING,
               "timestamp": TensorProto.INT64}
# A missing timestamp: the int64 minimum, which is pandas' NaT.
MISSING_TIMESTAMP = np.iinfo(np.int64).min
NANOS_PER_DAY = 86_400 * 10**9
NANOS_PER_HOUR = 3_600 * 10**9
QUANTILE_BOUND = 1e-7  # processing._quantile_transform's (scikit-learn's BOUNDS_THRESHOLD)


class Unsupported(Exception):
    """A step the graph cannot express; str() says which step and why."""


# ----- the graph being built


class _Graph:
    """Nodes, constants and inputs of the front graph. Every name it makes starts with
    `prefix`, chosen so that no raw column (input) name and no name of the model the graph
    is merged with can clash."""

    def __init__(self, prefix: str, ml_opset: int) -> None:
        self.prefix, self.ml_opset = prefix, ml_opset  # LabelEncoder's attributes depend on the ml opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        # Types of outputs of ops outside the standard domains, which onnx's shape inference
        # cannot derive (and whose LabelEncoder crashes on an input of unknown type).
        self.value_info: list[onnx.ValueInfoProto] = []
        self._constants: dict[tuple, str] = {}
        self._count = 0

    def fresh(self) -> str:
        self._count += 1
        return f"{self.prefix}{self._count}"

    def const(self, value: Any, dtype: Any = np.float64) -> str:
        """An initializer holding `value` (reused when the same constant is asked for again)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes() if array.dtype != object else tuple(array.flat))
        if key not in self._constants:
            name = self.fresh()
            self.initializers.append(numpy_helper.from_array(array, name))
            self._constants[key] = name
        return self._constants[key]

    def op(self, op_type: str, *inputs: str, domain: str = "", out: str = "", **attrs: Any) -> str:
        output = out or self.fresh()
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=self.fresh(), domain=domain, **attrs))
        return output

    def add_input(self, name: str, elem_type: int) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, [None, 1]))
        return name

    # small building blocks on [N, 1] tensors

    def where(self, condition: str, then: str, otherwise: str) -> str:
        return self.op("Where", condition, then, otherwise)

    def is_nan(self, x: str) -> str:
        return self.op("IsNaN", x)

    def to(self, x: str, elem_type: int) -> str:
        return self.op("Cast", x, to=elem_type)

    def nan_where(self, condition: str, x: str) -> str:
        """x, with NaN where `condition` holds (a row processing would refuse)."""
        return self.where(condition, self.const(np.nan), x)

    def keep_nan(self, x: str, value: str) -> str:
        """`value` where x is a number, NaN where x is NaN (a computed value must not hide a null)."""
        return self.where(self.is_nan(x), self.const(np.nan), value)

    def text_codes(self, x: str, categories: list[str]) -> str:
        """int64 codes of a text tensor: i for categories[i], len(categories) for "" (null),
        -1 for any other text. Callers make sure "" is not a category."""
        keys = [*categories, ""]
        if self.ml_opset == 1:
            attrs: dict[str, Any] = {"classes_strings": keys}
        else:
            attrs = {"keys_strings": keys, "values_int64s": list(range(len(keys)))}
        return self.op("LabelEncoder", x, domain=ML_DOMAIN, default_int64=-1, **attrs)

    def number_codes(self, x: str, values: list[float]) -> str:
        """int64 codes of a double tensor: i where x == values[i], len(values) for NaN, -1
        otherwise. One Equal against all values at once, turned into the index by MatMul."""
        k = len(values)
        codes = self.where(self.is_nan(x), self.const(float(k)), self.const(-1.0))
        if k:
            hits = self.to(self.op("Equal", x, self.const([values])), TensorProto.DOUBLE)  # [N, k] 0/1
            index = self.op("MatMul", hits, self.const(np.arange(k, dtype=np.float64).reshape(k, 1)))
            found = self.op("MatMul", hits, self.const(np.ones((k, 1))))
            codes = self.where(self.to(found, TensorProto.BOOL), index, codes)
        return self.to(codes, TensorProto.INT64)

    def text_ids(self, x: str, ids: dict[str, int], blank: int, unknown: int) -> str:
        """int64 of a text tensor of any shape: ids[text], `blank` for "", `unknown` for any
        other text (a "" key of `ids` is ignored)."""
        keys = [key for key in ids if key != ""]
        codes = self.text_codes(x, keys)
        return self.op("Gather", self.const([*(ids[key] for key in keys), blank, unknown], np.int64), codes)

    def lookup(self, codes: str, known: list[float], null: float, unknown: float) -> str:
        """A double per code: known[i] for code i, `null` for code len(known), `unknown` for -1
        (Gather counts a negative index from the end, so -1 picks the last entry)."""
        return self.op("Gather", self.const([*known, null, unknown]), codes)

    def is_null(self, column: "_Column") -> str:
        if column.kind == "string":
            return self.op("Equal", self.text_codes(column.tensor, []), self.const(0, np.int64))
        if column.kind == "timestamp":
            return self.op("Equal", column.tensor, self.const(MISSING_TIMESTAMP, np.int64))
        return self.is_nan(column.tensor)


@dataclass
class _Column:
    """One column of the frame at the current step."""

    kind: str  # "numeric" | "bool" | "string" | "timestamp" (processing._kind's names), or "blocked"
    # [N, 1]: double for numeric/bool (NaN = null), string for text ("" = null), int64
    # nanoseconds for timestamps (MISSING_TIMESTAMP = null)
    tensor: str = ""
    raw: str = ""  # the raw column it still is: its graph input is made on first read
    blocked: str = ""  # why the graph cannot compute it; raised only if the output needs it


def _blocked(why: str) -> _Column:
    return _Column(kind="blocked", blocked=why)


class _Frame:
    """The frame's columns by name, as apply_processing would hold them at each step."""

    def __init__(self, g: _Graph, raw_types: dict[str, str]) -> None:
        self.g = g
        self.columns: dict[str, _Column] = {}
        for name, raw_type in raw_types.items():
            if raw_type not in RAW_TYPES:
                raise ValueError(f"raw column {name!r} has type {raw_type!r}; use one of: {', '.join(RAW_TYPES)}")
            self.columns[name] = _Column(kind=INPUT_KINDS[raw_type], raw=name)

    def get(self, name: str) -> _Column:
        if name not in self.columns:
            raise ValueError(
                f"column {name!r} is not in the data at this step (raw columns: {sorted(self.columns)}); "
                "raw_types must list the columns the processing was fitted on"
            )
        return self.columns[name]

    def why(self, names: list[str]) -> str:
        """Why one of `names` cannot be computed, or "" when all can."""
        return next((self.get(n).blocked for n in names if self.get(n).blocked), "")

    def read(self, name: str) -> _Column:
        """The column with its tensor, making the raw input on first use."""
        column = self.get(name)
        if column.blocked:
            raise Unsupported(column.blocked)
        if not column.tensor:
            column.tensor = self.g.add_input(column.raw, INPUT_TYPES[column.kind])
        return column

    def number(self, name: str) -> str:
        """The double tensor of a numeric or bool column."""
        column = self.read(name)
        if column.kind not in ("numeric", "bool"):
            what = "text" if column.kind == "string" else "a timestamp"
            raise ValueError(f"column {name!r} is {what} where processing needs numbers; the fitted dict does not fit "
                             "these raw types")
        return column.tensor

    def set_numbers(self, name: str, sources: list[str], build: Callable[..., str], kind: str = "numeric") -> None:
        """Column `name` := build(*double tensors of sources), or blocked when a source is."""
        why = self.why(sources)
        self.columns[name] = _blocked(why) if why else _Column(kind=kind, tensor=build(*map(self.number, sources)))


# ----- processing steps (processing.py's _apply_* with the fitted parameters)


def _timestamp_nanos(value: str, step: str) -> int:
    """processing._fill_value's timestamp from ISO text, as the timestamp input holds it: int64
    nanoseconds of its wall-clock time. A value with a UTC offset (what a zone-aware column
    records) keeps the wall-clock time at that offset, which is the time fillna gives a column
    in the zone the value came from."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or stamp is pd.NaT:
        raise Unsupported(f"{step}: the fill value {value!r} is not a timestamp")
    if stamp.tz is not None:
        stamp = stamp.tz_localize(None)
    try:
        return int(stamp.as_unit("ns").value)
    except (OverflowError, ValueError):  # pandas' OutOfBoundsDatetime is a ValueError
        raise Unsupported(f"{step}: the fill value {value!r} is outside the nanosecond timestamps' range "
                          "(1677-09-21 to 2262-04-11) of the graph's timestamp input") from None


def _fill(f: _Frame, name: str, value: Any, step: str) -> None:
    """fillna(value) as processing._fill_value allows it: a value of the column's own type."""
    column = f.get(name)
    if column.blocked:
        return
    column = f.read(name)
    if column.kind == "string" and isinstance(value, str):
        filled = f.g.where(f.g.is_null(column), f.g.const(np.array(value, dtype=object), object), column.tensor)
    elif column.kind == "timestamp" and isinstance(value, str):
        filled = f.g.where(f.g.is_null(column), f.g.const(_timestamp_nanos(value, step), np.int64), column.tensor)
    elif (column.kind == "bool" and isinstance(value, bool)) or (
            column.kind == "numeric" and isinstance(value, (int, float)) and not isinstance(value, bool)):
        filled = f.g.where(f.g.is_nan(column.tensor), f.g.const(float(value)), column.tensor)
    else:
        raise Unsupported(f"{step}: the fill value {value!r} does not fit {column.kind} column {name!r}")
    f.columns[name] = _Column(kind=column.kind, tensor=filled)


def _log1p(g: _Graph, x: str) -> str:
    """np.log1p without a Log1p op: log(u) * (x / (u - 1)) with u = 1 + x is exact to rounding
    even for tiny x (Goldberg's trick; x / (u - 1) ~ 1 also keeps huge x from overflowing),
    x itself where u == 1 or x is infinite. Negative x, which processing refuses, gives NaN."""
    u = g.op("Add", x, g.const(1.0))
    d = g.op("Sub", u, g.const(1.0))
    scaled = g.op("Mul", g.op("Log", u), g.op("Div", x, d))
    plain = g.op("Or", g.op("Equal", d, g.const(0.0)), g.op("IsInf", x))
    return g.nan_where(g.op("Less", x, g.const(0.0)), g.where(plain, x, scaled))


def _bucketize(g: _Graph, x: str, boundaries: list[float]) -> str:
    # searchsorted(side="right"): the number of boundaries <= x.
    below = g.op("Not", g.op("Greater", g.const([boundaries]), x))  # [N, B]
    count = g.op("MatMul", g.to(below, TensorProto.DOUBLE), g.const(np.ones((len(boundaries), 1))))
    return g.keep_nan(x, count)


def _clip(g: _Graph, x: str, params: dict[str, Any]) -> str:
    # Where keeps NaN as pandas' clip does (Clip/Min/Max have no rule for NaN).
    if params.get("min") is not None:
        low = g.const(float(params["min"]))
        x = g.where(g.op("Less", x, low), low, x)
    if params.get("max") is not None:
        high = g.const(float(params["max"]))
        x = g.where(g.op("Greater", x, high), high, x)
    return x


def _cast(f: _Frame, name: str, to: str, step: str) -> None:
    column = f.get(name)
    if column.blocked or (column.kind == "timestamp" and to == "timestamp"):  # processing: unchanged
        return
    if column.kind not in ("numeric", "bool") or to not in ("float64", "int64", "bool"):
        f.columns[name] = _blocked(
            f"{step}: casting {column.kind} column {name!r} to {to} parses or formats text, which the graph cannot "
            "reproduce exactly")
        return
    g, x = f.g, f.number(name)
    # Numbers and bools are doubles already; a cast only refuses values (NaN here).
    if to == "int64" and column.kind == "numeric":
        x = g.nan_where(g.op("Not", g.op("Equal", x, g.op("Floor", x))), x)  # NaN == NaN is false: NaN stays
    elif to == "bool" and column.kind == "numeric":
        zero_or_one = g.op("Or", g.op("Equal", x, g.const(0.0)), g.op("Equal", x, g.const(1.0)))
        x = g.nan_where(g.op("Not", zero_or_one), x)  # NaN is neither: it stays NaN
    f.columns[name] = _Column(kind="bool" if to == "bool" else "numeric", tensor=x)


def _transformation(f: _Frame, step: dict[str, Any]) -> None:
    kind, columns, params = step["type"], list(step["columns"]), step["parameters"]
    where = f"transformation {int(step['index'])} ({kind})"
    if kind == "drop_columns":
        for name in columns:
            f.columns.pop(name, None)  # like processing: later data may lack them
    elif kind == "rename":
        mapping = dict(params["mapping"])
        for old in mapping:
            f.get(old)
        f.columns = {mapping.get(n, n): c for n, c in f.columns.items()}
    elif kind == "cast":
        for name in columns:
            _cast(f, name, params["to"], where)
    elif kind == "fill_null":
        for name in columns:
            _fill(f, name, params["value"], where)
    else:
        build = {
            "log": lambda x: _log1p(f.g, x),
            "clip": lambda x: _clip(f.g, x, params),
            "bucketize": lambda x: _bucketize(f.g, x, [float(b) for b in params["boundaries"]]),
        }[kind]
        for name in columns:
            f.set_numbers(name, [name], build)


def _imputation(f: _Frame, step: dict[str, Any]) -> None:
    if step["strategy"] == "drop_rows":
        raise Unsupported("imputation drop_rows removes rows, which a graph mapping each row to features cannot do")
    # Indicators see the nulls before filling; they are 0/1 int64 columns in processing.
    indicators = {}
    for name in step["indicators"]:
        why = f.why([name])
        indicators[f"{name}_missing"] = _blocked(why) if why else _Column(
            kind="numeric", tensor=f.g.to(f.g.is_null(f.read(name)), TensorProto.DOUBLE))
    for name, value in zip(step["columns"], step["values"]):
        _fill(f, name, value, f"imputation {step['strategy']}")
    f.columns.update(indicators)


# Date parts in processing's order, and the periods of those cyclical_dates puts on a circle.
DATE_PARTS = ("year", "month", "day", "weekday", "hour")
DATE_CYCLES = {"month": 12, "weekday": 7, "hour": 24}


def _civil_parts(g: _Graph, x: str) -> dict[str, str]:
    """processing's dt.year, .month, .day, .day_of_week (Monday = 0) and .hour of the int64
    nanoseconds x [N, 1] (see the module docstring, "Timestamps"), as doubles, NaN where x is
    missing. Integer arithmetic throughout: the day number by floor division (Mod with fmod 0
    takes the divisor's sign, as Python's %, so t - Mod(t, d) is a multiple of d and Div of
    it is exact whichever way Div rounds), then Howard Hinnant's civil_from_days (proleptic
    Gregorian calendar, as numpy and pandas), whose other divisions are of non-negative values."""
    def i64(value: int) -> str:
        return g.const(value, np.int64)

    def add(a: str, b: str) -> str:
        return g.op("Add", a, b)

    def sub(a: str, b: str) -> str:
        return g.op("Sub", a, b)

    def mul(a: str, k: int) -> str:
        return g.op("Mul", a, i64(k))

    def div(a: str, k: int) -> str:
        return g.op("Div", a, i64(k))

    def mod(a: str, k: int) -> str:
        return g.op("Mod", a, i64(k), fmod=0)

    missing = g.op("Equal", x, i64(MISSING_TIMESTAMP))
    t = g.where(missing, i64(0), x)  # keeps the arithmetic of missing rows in range
    # A day later for negative times, then a day less: the midnight before the earliest
    # times (1677-09-21T00:12:43) is below the int64 minimum.
    before = g.op("Less", t, i64(0))
    later = add(t, g.where(before, i64(NANOS_PER_DAY), i64(0)))
    nanos = mod(later, NANOS_PER_DAY)  # nanoseconds since midnight
    days = sub(div(sub(later, nanos), NANOS_PER_DAY), g.to(before, TensorProto.INT64))  # since 1970-01-01, a Thursday
    z = add(days, i64(719_468))  # days since 0000-03-01
    doe = mod(z, 146_097)  # day of the 400-year era
    era = div(sub(z, doe), 146_097)
    yoe = div(sub(add(sub(doe, div(doe, 1_460)), div(doe, 36_524)), div(doe, 146_096)), 365)  # year of era
    doy = sub(doe, sub(add(mul(yoe, 365), div(yoe, 4)), div(yoe, 100)))  # day of the March-based year
    mp = div(add(mul(doy, 5), i64(2)), 153)  # month, March = 0
    march_based = g.op("Less", mp, i64(10))
    month = add(mp, g.where(march_based, i64(3), i64(-9)))
    year = add(add(yoe, mul(era, 400)), g.to(g.op("Not", march_based), TensorProto.INT64))
    parts = {
        "year": year,
        "month": month,
        "day": add(sub(doy, div(add(mul(mp, 153), i64(2)), 5)), i64(1)),
        "weekday": mod(add(days, i64(3)), 7),
        "hour": div(nanos, NANOS_PER_HOUR),
    }
    return {part: g.nan_where(missing, g.to(value, TensorProto.DOUBLE)) for part, value in parts.items()}


def _date_parts(f: _Frame, step: dict[str, Any]) -> None:
    """processing._apply_date_parts: each timestamp column replaced by its parts (appended)."""
    g, new = f.g, {}
    for name in step["columns"]:
        why = f.why([name])
        if why:
            for part in DATE_PARTS:
                cycled = step["cyclical"] and part in DATE_CYCLES
                new.update((output, _blocked(why)) for output in (
                    [f"{name}_{part}_sin", f"{name}_{part}_cos"] if cycled else [f"{name}_{part}"]))
            continue
        column = f.read(name)
        if column.kind != "timestamp":
            raise ValueError(f"column {name!r} is {column.kind} where date parts need a timestamp; the fitted dict "
                             "does not fit these raw types")
        for part, value in _civil_parts(g, column.tensor).items():
            period = DATE_CYCLES.get(part)
            if step["cyclical"] and period:
                # 2 * pi * (value - offset) / period, evaluated as numpy does (left to right).
                angle = g.op("Div", g.op("Mul", g.const(2 * np.pi), g.op("Sub", value, g.const(
                    1.0 if part == "month" else 0.0))), g.const(float(period)))
                new[f"{name}_{part}_sin"] = _Column(kind="numeric", tensor=g.op("Sin", angle))
                new[f"{name}_{part}_cos"] = _Column(kind="numeric", tensor=g.op("Cos", angle))
            else:
                new[f"{name}_{part}"] = _Column(kind="numeric", tensor=value)
    for name in step["columns"]:
        f.get(name)
        f.columns.pop(name)
    f.columns.update(new)


def _tfidf_tokenize(text: str) -> list[str]:
    """scikit-learn's default analyzer (what processing's CountVectorizer does to a text)."""
    return TFIDF_PATTERN.findall(text.lower())


def _tfidf(f: _Frame, step: dict[str, Any]) -> None:
    """processing._apply_tfidf: the text column replaced by <col>_tfidf_<term> columns
    (appended) holding counts * idf, each row scaled to unit L2 norm (all 0 without a known
    term). See the module docstring, "TF-IDF"."""
    name, terms, idf = step["column"], [str(t) for t in step["terms"]], [float(v) for v in step["idf"]]
    outputs = [f"{name}_tfidf_{term}" for term in terms]  # processing._tfidf_outputs
    why = f.why([name])
    if why or not terms:
        f.get(name)
        f.columns.pop(name)
        f.columns.update((output, _blocked(why)) for output in outputs)
        return
    column = f.read(name)
    if column.kind != "string":
        raise ValueError(f"column {name!r} is {column.kind} where TF-IDF needs text; the fitted dict does not fit "
                         "these raw types")
    g, width = f.g, len(terms)
    tokens = _tokens(g, column.tensor, TFIDF_TOKEN_REGEX)  # [N + 1, T]
    index = _spelling_ids({term: i for i, term in enumerate(terms)}, _tfidf_tokenize)
    codes = g.text_ids(tokens, index, -1, -1)  # the term index, -1 for padding and other words
    # float [N + 1, V]: how often each term index occurs in each row.
    counts = g.op("TfIdfVectorizer", codes, mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
                  ngram_counts=[0], ngram_indexes=list(range(width)), pool_int64s=list(range(width)))
    weights = g.op("Mul", g.to(counts, TensorProto.DOUBLE), g.const([idf]))
    norm = g.op("Sqrt", g.op("MatMul", g.op("Mul", weights, weights), g.const(np.ones((width, 1)))))
    norm = g.where(g.op("Equal", norm, g.const(0.0)), g.const(1.0), norm)  # a row without terms stays 0
    rows = g.op("Slice", g.op("Div", weights, norm), g.const([0], np.int64), g.const([-1], np.int64),
                g.const([0], np.int64))  # without the empty row _tokens added
    f.columns.pop(name)
    for i, output in enumerate(outputs):
        f.columns[output] = _Column(kind="numeric", tensor=g.op("Gather", rows, g.const([i], np.int64), axis=1))


def _ratios(f: _Frame, step: dict[str, Any]) -> None:
    g = f.g

    def ratio(top: str, bottom: str) -> str:
        # processing: np.where(bottom == 0, nan, top / bottom)
        return g.nan_where(g.op("Equal", bottom, g.const(0.0)), g.op("Div", top, bottom))

    for numerator, denominator, name in step["pairs"]:
        f.set_numbers(name, [numerator, denominator], ratio)


def _polynomial(f: _Frame, step: dict[str, Any]) -> None:
    def product(*factors: str) -> str:
        result = factors[0]
        for factor in factors[1:]:  # left to right, as np.prod over the factor axis
            result = f.g.op("Mul", result, factor)
        return result

    for term, name in zip(step["terms"], step["outputs"]):
        f.set_numbers(name, list(term), product)


def _encoding_codes(f: _Frame, name: str, categories: list[Any]) -> str:
    """The int64 codes (see _Graph.text_codes / number_codes) of column `name` against the
    fitted categories, matched by value as processing's dict lookup does."""
    column = f.read(name)
    if column.kind == "string":
        return f.g.text_codes(column.tensor, categories)
    return f.g.number_codes(column.tensor, [float(c) for c in categories])


def _category_problem(f: _Frame, name: str, categories: list[Any], where: str) -> str:
    """Why the graph cannot tell text column `name`'s categories apart from nulls, or ""."""
    if f.get(name).kind == "string" and not all(isinstance(c, str) and c for c in categories):
        return (f"{where}: column {name!r} has categories that are not non-empty text; the graph takes \"\" as a "
                "missing value")
    return ""


def _encoding(f: _Frame, step: dict[str, Any]) -> None:
    method = step["method"]
    refuse_unknown = step["handle_unknown"] == "error"  # processing raises: the graph gives NaN
    where = f"encoding {method}"
    for entry in step["columns"]:
        name, categories = entry["column"], list(entry["categories"])
        why = f.why([name]) or _category_problem(f, name, categories, where)
        outputs = entry.get("outputs") or [name]
        if why:
            for output in outputs:
                f.columns[output] = _blocked(why)
            if method == "onehot":
                f.columns.pop(name, None)
            continue
        codes = _encoding_codes(f, name, categories)
        if method == "onehot":
            f.columns.pop(name)
            unknown = np.nan if refuse_unknown else 0.0
            for index, output in enumerate(entry["outputs"]):
                known = [1.0 if i == index else 0.0 for i in range(len(categories))]
                f.columns[output] = _Column(kind="numeric", tensor=f.g.lookup(codes, known, 0.0, unknown))
        elif method in ("ordinal", "label"):
            indexes = [float(i) for i in range(len(categories))]
            f.columns[name] = _Column(kind="numeric", tensor=f.g.lookup(codes, indexes, np.nan, np.nan))
        else:  # target: the smoothed category means learned at fit time, nulls the global mean
            prior = float(step["global_mean"])
            encodings = [float(v) for v in entry["encodings"]]
            tensor = f.g.lookup(codes, encodings, prior, np.nan if refuse_unknown else prior)
            f.columns[name] = _Column(kind="numeric", tensor=tensor)


def _interp(g: _Graph, x: str, xp: np.ndarray, fp: np.ndarray) -> str:
    """np.interp(x, xp, fp) for non-decreasing xp, as numpy computes it: on the segment j with
    xp[j] <= x < xp[j + 1] (the LAST such j when xp repeats), slope[j] * (x - xp[j]) + fp[j];
    fp[0] below xp[0], fp[-1] from xp[-1] on. NaN x gives garbage: callers mask it."""
    n = len(xp)
    if n == 1:
        return g.where(g.is_nan(x), g.const(fp[0]), g.const(fp[0]))  # fp[0] in x's shape
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = np.diff(fp) / np.diff(xp)
    slopes[~np.isfinite(slopes)] = 0.0  # zero-width segments are never the chosen j
    at_or_below = g.to(g.op("Not", g.op("Greater", g.const([xp]), x)), TensorProto.DOUBLE)  # [N, n]
    count = g.op("MatMul", at_or_below, g.const(np.ones((n, 1))))  # how many xp <= x
    segment = g.op("Min", g.op("Max", g.op("Sub", count, g.const(1.0)), g.const(0.0)), g.const(float(n - 2)))
    j = g.to(segment, TensorProto.INT64)
    inner = g.op("Add", g.op("Mul", g.op("Gather", g.const(slopes), j),
                             g.op("Sub", x, g.op("Gather", g.const(xp), j))), g.op("Gather", g.const(fp), j))
    below = g.op("Equal", count, g.const(0.0))
    beyond = g.op("Equal", count, g.const(float(n)))
    return g.where(below, g.const(fp[0]), g.where(beyond, g.const(fp[-1]), inner))


def _quantile(g: _Graph, x: str, quantiles: list[float]) -> str:
    """processing._quantile_transform: the average of interpolating forwards and backwards,
    then the bounds, then NaN kept."""
    q = np.asarray(quantiles, dtype=np.float64)
    references = np.linspace(0, 1, len(q))
    forward = _interp(g, x, q, references)
    backward = _interp(g, g.op("Neg", x), -q[::-1], -references[::-1])
    out = g.op("Mul", g.const(0.5), g.op("Sub", forward, backward))
    out = g.where(g.op("Greater", g.op("Add", x, g.const(QUANTILE_BOUND)), g.const(q[-1])), g.const(1.0), out)
    out = g.where(g.op("Less", g.op("Sub", x, g.const(QUANTILE_BOUND)), g.const(q[0])), g.const(0.0), out)
    return g.keep_nan(x, out)


def _normalization(f: _Frame, step: dict[str, Any]) -> None:
    g = f.g
    for index, name in enumerate(step["columns"]):
        if step["method"] == "quantile":
            def build(x: str, quantiles: list[float] = step["quantiles"][index]) -> str:
                return _quantile(g, x, quantiles)
        else:
            def build(x: str, center: float = float(step["center"][index]),
                      scale: float = float(step["scale"][index])) -> str:
                return g.op("Div", g.op("Sub", x, g.const(center)), g.const(scale))
        f.set_numbers(name, [name], build)


def _select(f: _Frame, step: dict[str, Any]) -> None:
    for name in step["dropped"]:
        f.get(name)
        f.columns.pop(name)


def _pca(f: _Frame, step: dict[str, Any]) -> None:
    columns, outputs = list(step["columns"]), list(step["outputs"])
    why = f.why(columns)
    if why:
        scores = [_blocked(why)] * len(outputs)
    else:
        g = f.g
        X = g.op("Concat", *map(f.number, columns), axis=1)
        components = np.asarray(step["components"], dtype=np.float64)
        projected = g.op("MatMul", g.op("Sub", X, g.const([step["mean"]])), g.const(components.T))  # [N, k]
        scores = [_Column(kind="numeric", tensor=g.op("Gather", projected, g.const([i], np.int64), axis=1))
                  for i in range(len(outputs))]
    for name in columns:
        f.columns.pop(name)
    f.columns.update(zip(outputs, scores))


_STEPS: dict[str, Callable[[_Frame, dict[str, Any]], None]] = {
    "transformation": _transformation,
    "imputation": _imputation,
    "date_parts": _date_parts,
    "tfidf": _tfidf,
    "ratios": _ratios,
    "polynomial": _polynomial,
    "encoding": _encoding,
    "normalization": _normalization,
    "select": _select,
    "pca": _pca,
}
# Fitting-only steps: apply_processing(fitting=False) skips them, so does the graph.
_SKIPPED = ("sampling", "augmentation")


def _apply_processing(f: _Frame, fitted: dict[str, Any]) -> None:
    if not isinstance(fitted, dict) or fitted.get("format") != FORMAT or not isinstance(fitted.get("steps"), list):
        raise ValueError(f"fitted is not a fitted processing (format {FORMAT})")
    for step in fitted["steps"]:
        if step["step"] in _SKIPPED:
            continue
        if step["step"] not in _STEPS:
            raise Unsupported(f"processing step {step['step']!r} is not known to the raw-input graph")
        _STEPS[step["step"]](f, step)


# ----- training_data's tabular preprocessing


def _onehot(f: _Frame, name: str, categories: list[str]) -> list[str]:
    """training_data: str(value) == category as 0/1, a null all 0 (unseen values too)."""
    column = f.read(name)
    g = f.g
    if column.kind == "string":
        if "" in categories:
            raise Unsupported(f"column {name!r} has the category \"\", which the graph takes as a missing value")
        codes = g.text_codes(column.tensor, list(categories))
    elif column.kind == "bool":
        # str(True) == "True": only those two categories can match a bool.
        words = {"True": 1.0, "False": 0.0}
        codes = g.number_codes(column.tensor, [words.get(c, np.nan) for c in categories])
    elif column.kind == "timestamp":
        raise Unsupported(f"column {name!r} is a timestamp, which the training data one-hot encodes as text; the "
                          "graph cannot format timestamps as pandas does (use date parts or drop the column)")
    else:
        raise Unsupported(f"column {name!r} is numeric but one-hot encoded as text by the training data; the graph "
                          "cannot format numbers as pandas does")
    width = len(categories)
    return [g.lookup(codes, [1.0 if i == index else 0.0 for i in range(width)], 0.0, 0.0) for index in range(width)]


def _features(f: _Frame, prep: dict[str, Any]) -> list[str]:
    """training_data._apply for the tabular kind: [N, 1] doubles in feature_names order."""
    tensors: list[str] = []
    for name in prep["columns"]:
        if name in prep["onehot"]:
            tensors.extend(_onehot(f, name, prep["onehot"][name]))
        elif f.read(name).kind == "string":
            raise Unsupported(f"column {name!r} is text but the training data reads it as numbers; the graph cannot "
                              "parse text as pandas does")
        elif f.read(name).kind == "timestamp":
            raise Unsupported(f"column {name!r} is a timestamp but the training data reads it as numbers; the graph "
                              "cannot convert timestamps as pandas does")
        else:
            tensors.append(f.number(name))
    if len(tensors) != len(prep["feature_names"]):
        raise ValueError(f"prep gives {len(tensors)} features but lists {len(prep['feature_names'])} feature_names")
    return tensors


def _tabular_input(f: _Frame, prep: dict[str, Any]) -> tuple[str, int]:
    tensors = _features(f, prep)
    if not tensors:
        raise Unsupported("the training data has no features, so the graph would have no rows to output")
    return f.g.op("Concat", *tensors, axis=1), len(tensors)


# ----- the text kind: engine.data.text.encode with the model's vocabulary


def _spellings(token: str) -> list[str]:
    """The spellings of a vocabulary token, other than itself, that reach the LabelEncoder
    unchanged (the graph lowercases ASCII letters only) and that str.lower() maps to the
    token: the first letter as it is, in upper or in title case (the digraphs "ǅ", Greek
    capitals with prosgegrammeni "ᾈ"), followed by the other letters as they are, all in
    upper or all in title case, where that form of a letter is one non-ASCII character (a
    letter without one stays as it is)."""
    if token.isascii():
        return []

    def cased(c: str, first: Callable[[str], str], then: Callable[[str], str]) -> str:
        for change in (first, then):
            other = change(c)
            if len(other) == 1 and not other.isascii():
                return other
        return c

    changes = ((str.upper, str.title), (str.title, str.upper))
    heads = {token[0], *(cased(token[0], *change) for change in changes)}
    tails = {token[1:], *("".join(cased(c, *change) for c in token[1:]) for change in changes)}
    return sorted(s for s in {head + tail for head in heads for tail in tails} if s != token and s.lower() == token)


def _spelling_ids(index: dict[str, int], tokenize: Callable[[str], list[str]]) -> dict[str, int]:
    """Token -> id, plus the other spellings of each token (_spellings) with the token's id.
    Entries that `tokenize` (Python's lowercasing tokenizer) never produces ("", "a_b" for
    engine.data.text, "Über") are left out: Python never looks them up, and the graph would
    find "Über" (which Python reads as "über")."""
    index = {token: i for token, i in index.items() if tokenize(token) == [token]}
    ids = dict(index)
    for token, i in index.items():
        for spelling in _spellings(token):
            ids.setdefault(spelling, i)
    return ids


def _vocabulary_ids(vocabulary: list[str]) -> dict[str, int]:
    """Token -> id as encode has it (a repeated token keeps its last id), with the spellings."""
    return _spelling_ids({token: i + 2 for i, token in enumerate(vocabulary)}, text_encoding.tokenize)


def _tokens(g: _Graph, texts: str, regex: str) -> str:
    """The tokens of the text tensor [N, 1] ("" = missing, which has none): [N + 1, T]
    strings padded with "", T = 0 when no text has a token. One empty text is added as a last
    row, since StringNormalizer refuses an empty batch and Tokenizer gives an empty one another
    rank: callers cut it off. The texts are lowercased in the "C" locale (ASCII letters only;
    _spellings covers other capitals), then split into the matches of the RE2 `regex` by
    onnxruntime's com.microsoft Tokenizer. See the module docstring, "Text"."""
    flat = g.op("Concat", g.op("Reshape", texts, g.const([-1], np.int64)), g.const([""], object), axis=0)  # [N + 1]
    lowered = g.op("StringNormalizer", flat, case_change_action="LOWER", is_case_sensitive=0, locale=LOWER_LOCALE)
    tokens = g.op("Tokenizer", lowered, domain=MS_DOMAIN, mark=0, mincharnum=1, pad_value="", tokenexp=regex)
    g.value_info.append(helper.make_tensor_value_info(tokens, TensorProto.STRING, [None, None]))
    return tokens


def _text_parameters(prep: dict[str, Any]) -> tuple[list[str], int]:
    tokenizer = prep.get("tokenizer")
    if tokenizer != TOKENIZER:
        raise Unsupported(f"the model's text encoding is {tokenizer!r}; the graph reproduces {TOKENIZER} only")
    vocabulary, max_length = prep.get("vocabulary"), prep.get("max_length")
    if not isinstance(vocabulary, list) or not all(isinstance(token, str) for token in vocabulary):
        raise ValueError("prep has no vocabulary (a list of tokens)")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"prep's max_length must be a positive integer, not {max_length!r}")
    return vocabulary, max_length


def _text_input(f: _Frame, prep: dict[str, Any]) -> tuple[str, int]:
    """training_data's text kind (the text column, missing -> "") through encode: int64
    [N, max_length] token ids (see the module docstring, "Text")."""
    vocabulary, max_length = _text_parameters(prep)
    name = prep["text_column"]
    column = f.read(name)
    if column.kind != "string":
        raise Unsupported(f"text column {name!r} is {column.kind}, not text, where the training data reads it; the "
                          "graph cannot format values as pandas' astype(str) does")
    g = f.g
    tokens = _tokens(g, column.tensor, TOKEN_REGEX)  # [N + 1, T], the last row cut off below
    ids = g.text_ids(tokens, _vocabulary_ids(vocabulary), text_encoding.PAD, text_encoding.UNKNOWN)
    padded = g.op("Pad", ids, g.const([0, 0, 0, max_length], np.int64))  # [N + 1, T + max_length], zeros
    window = g.op("Slice", padded, g.const([0, 0], np.int64), g.const([-1, max_length], np.int64),
                  g.const([0, 1], np.int64))
    return window, max_length


# ----- the interactions kind: the adapter's id maps


UNKNOWN_ID_INDEX = 0  # the index of an id the maps lack (pytorch_adapter's matrix_factorization)


def _interactions_input(f: _Frame, prep: dict[str, Any]) -> tuple[str, int]:
    """training_data's interactions kind (user id, item id as text) through the id maps:
    int64 [N, 2] (user index, item index), 0 for an id the map lacks or a missing id."""
    g, columns = f.g, []
    for role in ("user", "item"):
        name, index = prep.get(f"{role}_column"), prep.get(f"{role}_index")
        if not isinstance(index, dict):  # a model that does not say how it encodes ids
            raise Unsupported(f"the model info has no {role}_index, so the graph cannot know the model's id encoding")
        confused = [key for key in MISSING_ID_SPELLINGS if key in index]
        if confused:
            raise Unsupported(f"the {role} ids include {confused[0]!r}, which the graph cannot tell apart from a "
                              "missing id")
        column = f.read(name)
        if column.kind != "string":
            raise Unsupported(f"{role} column {name!r} is {column.kind}, not text; the training data formats its ids "
                              "with astype(str), which the graph cannot reproduce")
        ids = {str(key): int(value) for key, value in index.items()}
        columns.append(g.text_ids(column.tensor, ids, UNKNOWN_ID_INDEX, UNKNOWN_ID_INDEX))
    return g.op("Concat", *columns, axis=1), 2


# The model input each kind's graph computes, and its element type before the final cast.
_FRONTS: dict[str, tuple[Callable[[_Frame, dict[str, Any]], tuple[str, int]], int]] = {
    "tabular": (_tabular_input, TensorProto.DOUBLE),
    "text": (_text_input, TensorProto.INT64),
    "interactions": (_interactions_input, TensorProto.INT64),
}


# ----- assembling the model


def _prune(g: _Graph, output: str) -> None:
    """Keep only the nodes, constants and inputs the output depends on (reads of columns that
    were later dropped made inputs and nodes that nothing uses)."""
    needed, kept = {output}, []
    for node in reversed(g.nodes):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    g.nodes = kept[::-1]
    g.initializers = [t for t in g.initializers if t.name in needed]
    g.inputs = [i for i in g.inputs if i.name in needed]
    g.value_info = [v for v in g.value_info if v.name in needed]


def _prefix(taken: set[str]) -> str:
    """A name prefix no name in `taken` starts with."""
    prefix = "raw_input/"
    while any(name.startswith(prefix) for name in taken):
        prefix = "_" + prefix
    return prefix


def _kind(prep: dict[str, Any]) -> str:
    kind = prep.get("kind") if isinstance(prep, dict) else None
    if kind == "sequence":
        raise Unsupported("input kind 'sequence': a forecaster takes the series' last window values, which are raw "
                          "numbers already, so it keeps its input")
    if kind not in _FRONTS:
        raise Unsupported(f"input kind {kind!r}: only tabular, text and interactions data have raw-column graphs")
    return kind


def _build(prep: dict[str, Any], fitted: dict[str, Any] | None, raw_types: dict[str, str], output_name: str,
           output_type: int, *, opset: int, ml_opset: int, ms_opset: int, ir_version: int,
           taken: set[str]) -> onnx.ModelProto:
    kind = _kind(prep)
    if output_type not in KIND_OUTPUT_TYPES[kind]:
        names = ", ".join(TensorProto.DataType.Name(t) for t in KIND_OUTPUT_TYPES[kind])
        raise ValueError(f"output_type of a {kind} graph must be one of {names}, not {output_type}")
    if output_name in raw_types:
        raise ValueError(f"output name {output_name!r} is also a raw column name")
    g = _Graph(_prefix(taken | set(raw_types) | {output_name}), ml_opset)
    f = _Frame(g, raw_types)
    if fitted is not None:
        _apply_processing(f, fitted)
    front, front_type = _FRONTS[kind]
    matrix, width = front(f, prep)
    if output_type == front_type:
        g.op("Identity", matrix, out=output_name)
    else:
        g.op("Cast", matrix, out=output_name, to=output_type)
    _prune(g, output_name)
    domains = {n.domain for n in g.nodes}
    graph = helper.make_graph(
        g.nodes, "raw_input", g.inputs,
        [helper.make_tensor_value_info(output_name, output_type, [None, width])],
        initializer=g.initializers, value_info=g.value_info,
    )
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(ML_DOMAIN, ml_opset)] if ML_DOMAIN in domains else []
    opsets += [helper.make_opsetid(MS_DOMAIN, ms_opset)] if MS_DOMAIN in domains else []
    return helper.make_model(graph, opset_imports=opsets, ir_version=ir_version, producer_name="forge-training")


def raw_input_graph(prep: dict[str, Any], fitted: dict[str, Any] | None, raw_types: dict[str, str],
                    output_name: str, output_type: int) -> onnx.ModelProto:
    """The graph from raw columns (inputs named by column, [N, 1], double or string) to the
    model input `output_name` of `output_type`: the processed feature matrix [N, F] (tabular),
    token ids [N, max_length] (text) or (user index, item index) [N, 2] (interactions); see
    the module docstring. Raises Unsupported for a step or input kind the graph cannot
    reproduce exactly."""
    opsets = [helper.make_opsetid("", FRONT_OPSET), helper.make_opsetid(ML_DOMAIN, FRONT_ML_OPSET)]
    return _build(prep, fitted, raw_types, output_name, output_type, opset=FRONT_OPSET, ml_opset=FRONT_ML_OPSET,
                  ms_opset=MS_OPSET, ir_version=helper.find_min_ir_version_for(opsets), taken=set())


def _graph_names(graph: onnx.GraphProto) -> set[str]:
    names = {n.name for n in graph.node} | {o for n in graph.node for o in n.output}
    names |= {v.name for v in (*graph.input, *graph.output, *graph.value_info, *graph.initializer)}
    return names


# The model input types with_raw_inputs accepts, by input kind.
MODEL_INPUT_TYPES = {"tabular": (TensorProto.FLOAT, TensorProto.DOUBLE), "text": ID_OUTPUT_TYPES,
                     "interactions": ID_OUTPUT_TYPES}


def _only_input(model: onnx.ModelProto, kind: str) -> onnx.ValueInfoProto:
    initializers = {t.name for t in model.graph.initializer}  # old IRs list initializers as inputs too
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"expected a model with exactly one input, got {[i.name for i in inputs]}")
    tensor = inputs[0].type.tensor_type
    if tensor.elem_type not in MODEL_INPUT_TYPES[kind]:
        names = " or ".join(TensorProto.DataType.Name(t).lower() for t in MODEL_INPUT_TYPES[kind])
        raise ValueError(f"the model's input {inputs[0].name!r} must be {names} for {kind} data, not "
                         f"{TensorProto.DataType.Name(tensor.elem_type).lower()}")
    return inputs[0]


def _check_width(model_input: onnx.ValueInfoProto, width: int) -> None:
    dims = model_input.type.tensor_type.shape.dim
    if len(dims) == 2 and dims[1].HasField("dim_value") and dims[1].dim_value != width:
        raise ValueError(f"the model's input {model_input.name!r} has {dims[1].dim_value} columns but the "
                         f"preprocessing gives {width}")


def with_raw_inputs(model_bytes: bytes, prep: dict[str, Any], fitted: dict[str, Any] | None,
                    raw_types: dict[str, str]) -> bytes:
    """The model (one input: float/double [N, F] for tabular data, int64/int32 [N, max_length]
    token ids for text, int64/int32 [N, 2] id indices for interactions) behind
    raw_input_graph: its inputs are the raw columns, its outputs and metadata_props the
    model's own. Raises Unsupported as raw_input_graph does, ValueError when the model has not
    exactly one input of such a type."""
    model = onnx.load_from_string(model_bytes)
    model_input = _only_input(model, _kind(prep))
    opsets = {o.domain or "": o.version for o in model.opset_import}
    if "" not in opsets and "ai.onnx" not in opsets:
        # Only ai.onnx.ml nodes (e.g. onnxmltools' XGBoost trees): the model uses no default-domain
        # op, so it can import the front graph's opset without changing what its nodes mean.
        model.opset_import.append(helper.make_opsetid("", FRONT_OPSET))
        model.ir_version = max(model.ir_version, helper.find_min_ir_version_for(list(model.opset_import)))
        opsets[""] = FRONT_OPSET
    opset = opsets.get("", opsets.get("ai.onnx", 0))
    if opset < MIN_OPSET:
        raise Unsupported(f"the model uses opset {opset}; the raw-input graph needs opset {MIN_OPSET} or later")
    model_outputs = {o.name for o in model.graph.output}
    clash = sorted(model_outputs & set(raw_types))
    if clash:
        raise Unsupported(f"raw column {clash[0]!r} has the name of a model output; rename the column")
    model_names = _graph_names(model.graph)
    # The front graph is built at the model's opsets and IR version (merge_models needs them
    # equal) and names its own nodes and constants with a prefix no model name starts with.
    front = _build(prep, fitted, raw_types, _prefix(model_names | set(raw_types)) + "features",
                   model_input.type.tensor_type.elem_type, opset=opset, ml_opset=opsets.get(ML_DOMAIN, FRONT_ML_OPSET),
                   ms_opset=opsets.get(MS_DOMAIN, MS_OPSET), ir_version=model.ir_version, taken=model_names)
    features = front.graph.output[0]
    _check_width(model_input, features.type.tensor_type.shape.dim[1].dim_value)
    # A raw column may share its name with one of the model's inner tensors: prefix those.
    inner = model_names - model_outputs - {model_input.name}
    if inner & {i.name for i in front.graph.input}:
        model = onnx.compose.add_prefix(model, _prefix(model_names | _graph_names(front.graph)),
                                        rename_inputs=False, rename_outputs=False)
    merged = onnx.compose.merge_models(
        front, model, io_map=[(features.name, model_input.name)],
        name=model.graph.name, doc_string=model.graph.doc_string, producer_name=model.producer_name,
        producer_version=model.producer_version, domain=model.domain, model_version=model.model_version,
    )
    onnx.checker.check_model(merged)
    return merged.SerializeToString()
