"""Column types of a dataset: inferring them from data and forcing data into them.

The engine knows six column types ("int64", "float64", "string", "bool", "timestamp",
"binary"). Every table the data layer writes is first brought to the matching *canonical*
Arrow types (see `canonical_table`) so that a stored file, its recorded schema and the
frames training code loads from it always agree.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from engine.errors import InvalidArgument

# In the proto's DataType order (1 int64 ... 6 binary): engine/jobs/request.py reads its numbers by it.
DATA_TYPES = ("int64", "float64", "string", "bool", "timestamp", "binary")

# An integer column is treated as categorical (a class label, a code, a flag) when it
# has at most this many distinct values ...
MAX_INT_CATEGORIES = 20
# ... and those values repeat: at most this fraction of the non-null rows are distinct.
# Two-valued integer columns (0/1 flags) count as categorical whatever the row count,
# because tiny tables would otherwise never pass the fraction test.
MAX_INT_CATEGORY_FRACTION = 0.05
# Categories are listed in the schema only up to this many; beyond it a column can still
# be categorical (e.g. a free-text or id column) but the list would be noise.
MAX_LISTED_CATEGORIES = 50


@dataclass
class ColumnSchema:
    name: str
    data_type: str
    nullable: bool
    categorical: bool = False
    categories: list[str] = field(default_factory=list)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ColumnSchema":
        return cls(
            name=data["name"],
            data_type=data["data_type"],
            nullable=bool(data["nullable"]),
            categorical=bool(data.get("categorical", False)),
            categories=[str(c) for c in data.get("categories", [])],
            description=data.get("description", ""),
        )


@dataclass
class DataSchema:
    columns: list[ColumnSchema] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSchema | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataSchema":
        return cls(columns=[ColumnSchema.from_dict(c) for c in data.get("columns", [])])


def format_value(value: Any) -> str:
    """Render one cell as the string used for categories, top values and label counts.

    One rendering everywhere, so a category listed in a schema can be compared with the
    values counted in statistics: bools are "true"/"false", timestamps ISO 8601, bytes base64.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def data_type_of(arrow_type: pa.DataType) -> str | None:
    """The engine type an Arrow type maps to, or None when the engine cannot hold it."""
    if pa.types.is_dictionary(arrow_type):
        return data_type_of(arrow_type.value_type)
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int64"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float64"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_null(arrow_type):
        # An all-empty column (Arrow's null type) has nothing to infer from; string holds anything.
        return "string"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type) or pa.types.is_fixed_size_binary(arrow_type):
        return "binary"
    return None


def _canonical_arrow_type(source: pa.DataType, data_type: str) -> pa.DataType:
    if data_type == "timestamp":
        # Keep the unit and time zone of real timestamps: casting an aware column to a naive
        # one would silently drop the zone. Dates become midnight timestamps.
        return source if pa.types.is_timestamp(source) else pa.timestamp("us")
    return {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "bool": pa.bool_(),
        "binary": pa.binary(),
    }[data_type]


def _nan_to_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """NaN is how pandas spells "missing"; store it as a real null so every reader agrees."""
    if column.null_count == len(column):
        return column
    nan = pc.fill_null(pc.is_nan(column), False)
    if not pc.any(nan).as_py():
        return column
    return pc.if_else(nan, pa.scalar(None, column.type), column)


def canonical_table(table: pa.Table, *, blame_field: str) -> pa.Table:
    """Cast every column to its canonical Arrow type and drop foreign metadata.

    `blame_field` is the request field an unsupported column type is reported on (the
    upload's source), because the fix is to change the file. Pandas metadata is dropped
    so `to_pandas` on the stored file never resurrects an index column.
    """
    names = table.column_names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgument.field(blame_field, f"column names must be unique; repeated: {', '.join(map(repr, duplicates))}")
    arrays, fields = [], []
    for name, column in zip(names, table.columns):
        data_type = data_type_of(column.type)
        if data_type is None:
            raise InvalidArgument.field(
                blame_field,
                f"column {name!r} has type {column.type}, which is not supported; flatten nested values or "
                f"convert them to strings before uploading (supported types: {', '.join(DATA_TYPES)})",
            )
        target = _canonical_arrow_type(column.type, data_type)
        if column.type != target:
            try:
                column = column.cast(target)
            except pa.ArrowInvalid as exc:  # e.g. a uint64 above the int64 range
                raise InvalidArgument.field(
                    blame_field, f"column {name!r} cannot be stored as {data_type}: {exc}"
                ) from None
        if data_type == "float64":
            column = _nan_to_null(column)
        arrays.append(column)
        fields.append(pa.field(name, target))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _is_int_categorical(distinct: int, non_null: int) -> bool:
    if distinct == 0 or distinct > MAX_INT_CATEGORIES:
        return False
    return distinct <= 2 or distinct <= MAX_INT_CATEGORY_FRACTION * non_null


def infer_schema(table: pa.Table, *, blame_field: str = "config.source_uri") -> DataSchema:
    """Describe `table`: type, whether it has nulls, and whether it looks categorical.

    Categorical: every string and bool column, and integer columns per `_is_int_categorical`
    (<= 20 distinct values that are either at most two or at most 5% of the non-null rows).
    Floats, timestamps and binary are never categorical. Categories are listed (sorted by
    value, rendered with `format_value`) when there are at most 50 of them.
    """
    columns = []
    for index, (name, column) in enumerate(zip(table.column_names, table.columns)):
        data_type = data_type_of(column.type)
        if data_type is None:
            raise InvalidArgument.field(blame_field, f"column {name!r} (#{index}) has unsupported type {column.type}")
        if data_type == "float64" and column.null_count < len(column):
            column = _nan_to_null(column)
        categorical = False
        categories: list[str] = []
        if data_type in ("string", "bool", "int64"):
            non_null = len(column) - column.null_count
            values = pc.unique(column.drop_null()) if non_null else pa.array([], column.type)
            distinct = len(values)
            categorical = data_type != "int64" or _is_int_categorical(distinct, non_null)
            if categorical and 0 < distinct <= MAX_LISTED_CATEGORIES:
                categories = [format_value(v) for v in values.take(pc.sort_indices(values)).to_pylist()]
        columns.append(
            ColumnSchema(
                name=name,
                data_type=data_type,
                nullable=column.null_count > 0,
                categorical=categorical,
                categories=categories,
            )
        )
    return DataSchema(columns=columns)


def _column_field(prefix: str, index: int) -> str:
    return f"{prefix}.schema.columns[{index}]" if prefix else f"schema.columns[{index}]"


def _first_failing_row(column: pa.ChunkedArray, target: pa.DataType) -> int:
    """Index of the first value that cannot be cast, found by bisecting on prefixes.

    A prefix fails to cast exactly when it contains a bad value, so O(log n) vectorised
    casts find it without a per-row Python loop.
    """
    lo, hi = 0, len(column)  # invariant: prefix [0, lo) casts; prefix [0, hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            column.slice(0, mid).cast(target)
            lo = mid
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            hi = mid
    return lo  # [0, lo) casts and [0, lo + 1) does not


def _cast_column(column: pa.ChunkedArray, spec: ColumnSchema, field_path: str) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if spec.data_type == "timestamp" and not pa.types.is_timestamp(column.type):
        # Strings with a zone offset only parse into an aware type, those without only into
        # a naive one; try both and, if neither fits every row, report the attempt that got furthest.
        candidates = [pa.timestamp("us"), pa.timestamp("us", tz="UTC")]
    else:
        candidates = [_canonical_arrow_type(column.type, spec.data_type)]
    first_bad, bad_target = -1, candidates[0]
    for target in candidates:
        if column.type == target:
            return column
        try:
            return column.cast(target)
        except pa.ArrowNotImplementedError:
            raise InvalidArgument.field(
                field_path,
                f"column {spec.name!r} has type {column.type}, which cannot be converted to {spec.data_type}; "
                f"change the schema's data_type or the data",
            ) from None
        except pa.ArrowInvalid:
            row = _first_failing_row(column, target)
            if row > first_bad:
                first_bad, bad_target = row, target
    value = column[first_bad].as_py()
    raise InvalidArgument.field(
        field_path,
        f"column {spec.name!r}: value {value!r} at row {first_bad} cannot be converted to {spec.data_type} "
        f"({bad_target}); fix the value or change the schema's data_type",
    )


def _as_category_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column rendered with `format_value`, to compare against declared categories.

    Arrow's own string cast already matches for ints, strings and bools; other types go
    through Python (slow, but only for the rare schema that lists categories for them).
    """
    if pa.types.is_integer(column.type) or pa.types.is_string(column.type) or pa.types.is_boolean(column.type):
        return column.cast(pa.string())
    rendered = [None if v is None else format_value(v) for v in column.to_pylist()]
    return pa.chunked_array([pa.array(rendered, pa.string())])


def enforce_schema(table: pa.Table, schema: DataSchema, *, field_prefix: str = "config") -> pa.Table:
    """Return `table` cast to `schema`: exactly its columns, in its order, with its types.

    Raises InvalidArgument on `<field_prefix>.schema.columns[i]` naming the column when it
    is missing, has an unknown data_type, cannot be cast (with the first bad row and value),
    has nulls although declared non-nullable, or holds a value outside its declared
    categories. Columns of the data that the schema does not describe are an error too
    (on `<field_prefix>.schema.columns`): a declared schema is a contract, not a filter.
    """
    columns_field = f"{field_prefix}.schema.columns" if field_prefix else "schema.columns"
    declared = schema.names
    repeated = sorted({n for n in declared if declared.count(n) > 1})
    if repeated:
        raise InvalidArgument.field(columns_field, f"each column may be declared once; repeated: {', '.join(map(repr, repeated))}")
    extra = [n for n in table.column_names if n not in declared]
    if extra:
        raise InvalidArgument.field(
            columns_field,
            f"the data has columns the schema does not declare: {', '.join(map(repr, extra))}; add them to the schema",
        )
    arrays, fields = [], []
    for index, spec in enumerate(schema.columns):
        field_path = _column_field(field_prefix, index)
        if spec.data_type not in DATA_TYPES:
            raise InvalidArgument.field(field_path, f"data_type {spec.data_type!r} is not one of {', '.join(DATA_TYPES)}")
        if spec.name not in table.column_names:
            raise InvalidArgument.field(
                field_path,
                f"column {spec.name!r} is not in the data; available columns: {', '.join(table.column_names)}",
            )
        column = _cast_column(table.column(spec.name), spec, field_path)
        if spec.data_type == "float64":
            column = _nan_to_null(column)
        if not spec.nullable and column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise InvalidArgument.field(
                field_path,
                f"column {spec.name!r} is declared non-nullable but row {row} is empty; fill the value or set nullable",
            )
        if spec.categorical and spec.categories:
            # Nulls are governed by `nullable`, not by the category list.
            listed = pc.is_in(_as_category_text(column), value_set=pa.array(spec.categories, pa.string()))
            allowed = pc.or_(listed, pc.is_null(column))
            if not pc.all(allowed).as_py():
                row = pc.index(allowed, False).as_py()
                raise InvalidArgument.field(
                    field_path,
                    f"column {spec.name!r}: value {column[row].as_py()!r} at row {row} is not one of the declared "
                    f"categories ({', '.join(spec.categories)}); add it to categories or fix the value",
                )
        arrays.append(column)
        fields.append(pa.field(spec.name, column.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
