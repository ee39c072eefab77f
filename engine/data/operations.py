"""New datasets made from stored ones: the rows matching a condition, or several datasets stacked.

Both read stored Parquet files and write the result through `ingest.write_table`, so the
new file is canonical, described (schema, statistics) and written atomically: a failure
leaves nothing under `dest`.
"""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.data import expressions
from engine.data.ingest import ROW_GROUP_ROWS, IngestResult, write_table
from engine.data.schema import DataSchema, data_type_of
from engine.errors import DataLoss, InvalidArgument


def _open(path: str) -> pq.ParquetFile:
    if not os.path.isfile(path):
        raise DataLoss(f"dataset file {os.path.basename(path)} is missing")
    return pq.ParquetFile(path)


def filter_table(
    source_parquet: str,
    dest: str,
    expression: str,
    *,
    field: str = "expression",
    label_column: str = "",
    schema: DataSchema | None = None,
) -> IngestResult:
    """Write the rows of `source_parquet` where `expression` holds (see engine.data.expressions) to `dest`.

    Rows where the expression is unknown because of a null are left out. The source is
    read a row group's worth at a time and only the rows kept are held in memory. With
    `schema` (the parent's), the result keeps its declared columns; otherwise its schema
    is inferred. Errors: InvalidArgument on `field` for a bad expression, an unknown
    column, or an expression that matches no row; on `label_column` for an unknown label.
    """
    parsed = expressions.parse(expression, field)
    kept: list[pa.RecordBatch] = []
    total = 0
    with _open(source_parquet) as parquet:
        arrow_schema = parquet.schema_arrow
        parsed.check_columns(arrow_schema.names)
        for batch in parquet.iter_batches(batch_size=ROW_GROUP_ROWS):
            total += batch.num_rows
            # Only the columns the expression reads go to pandas; the kept rows stay in Arrow,
            # so their types come through exactly.
            if parsed.columns:
                frame = batch.select(list(parsed.columns)).to_pandas()
            else:  # a condition over no column (e.g. "True") still needs one frame row per row
                frame = pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
            selected = parsed.evaluate(frame).to_numpy()
            if selected.any():
                kept.append(batch.filter(pa.array(selected)))
    if not kept:
        raise InvalidArgument.field(
            field, f"{parsed.source!r} matches no rows (of {total}); loosen the condition or check the values it compares"
        )
    table = pa.Table.from_batches(kept, schema=arrow_schema)
    return write_table(table, dest, label_column=label_column, schema=schema, field_prefix="")


def _describe(arrow_type: pa.DataType) -> str:
    engine = data_type_of(arrow_type) or str(arrow_type)
    return str(arrow_type) if engine == "timestamp" else engine


def _unify(current: pa.DataType, other: pa.DataType) -> pa.DataType | None:
    """The type both columns fit in without losing values' meaning, or None when there is none.

    Same type: itself. int64 with float64: float64 (integers above 2**53 lose precision, as
    in any numeric library). Timestamps: the finer unit; zoned ones with different zones
    become the first zone (the instants are unchanged); naive with zoned never mix.
    """
    if current == other:
        return current
    if {data_type_of(current), data_type_of(other)} == {"int64", "float64"}:
        return pa.float64()
    if pa.types.is_timestamp(current) and pa.types.is_timestamp(other):
        if (current.tz is None) != (other.tz is None):
            return None
        units = ["s", "ms", "us", "ns"]
        unit = max(current.unit, other.unit, key=units.index)
        return pa.timestamp(unit, tz=current.tz)
    return None


def merge_tables(
    sources: list[str],
    dest: str,
    *,
    field: str = "datasets",
    label_column: str = "",
    schema: DataSchema | None = None,
) -> IngestResult:
    """Stack the Parquet datasets `sources` (two or more, in order) into one dataset at `dest`.

    Every source must have the same column names (in any order; the first's order wins)
    with compatible types (see `_unify`); a column that is entirely empty in one source
    takes the type the others give it. All sources are loaded into memory at once.
    Errors: InvalidArgument on `field` (fewer than two sources) or `<field>[i]` naming the
    dataset index, the column and both types; DataLoss when a stored file is missing.
    """
    if len(sources) < 2:
        raise InvalidArgument.field(field, f"give at least 2 datasets to merge; got {len(sources)}")
    tables: list[pa.Table] = []
    for path in sources:
        with _open(path) as parquet:
            tables.append(parquet.read())
    names = tables[0].column_names
    for index, table in enumerate(tables[1:], start=1):
        missing = [n for n in names if n not in table.column_names]
        extra = [n for n in table.column_names if n not in names]
        if missing or extra:
            parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"has extra {', '.join(map(repr, extra))}"] if extra else []
            )
            raise InvalidArgument.field(
                f"{field}[{index}]",
                f"dataset {index} {' and '.join(parts)} compared with {field}[0] (columns: {', '.join(names)}); "
                f"merge only datasets with the same columns",
            )

    types: dict[str, pa.DataType] = {}
    origin: dict[str, int] = {}  # which dataset first gave a column its (non-empty) type
    for name in names:
        for index, table in enumerate(tables):
            column = table.column(name)
            if column.null_count == len(column):
                continue  # an all-empty column carries no type worth enforcing
            if name not in types:
                types[name], origin[name] = column.type, index
                continue
            unified = _unify(types[name], column.type)
            if unified is None:
                raise InvalidArgument.field(
                    f"{field}[{index}]",
                    f"column {name!r} is {_describe(column.type)} in dataset {index} but {_describe(types[name])} in "
                    f"dataset {origin[name]}; convert one of them so the types match",
                )
            types[name] = unified
        types.setdefault(name, tables[0].column(name).type)

    target = pa.schema([pa.field(name, types[name]) for name in names])
    aligned = []
    for index, table in enumerate(tables):
        try:
            aligned.append(pa.Table.from_arrays(
                [pc.cast(table.column(name), types[name]) for name in names], schema=target
            ))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:  # e.g. a date out of range in a finer unit
            raise InvalidArgument.field(f"{field}[{index}]", f"dataset {index} cannot be converted to the merged types: {exc}") from None
    merged = pa.concat_tables(aligned)
    return write_table(merged, dest, label_column=label_column, schema=schema, field_prefix="")
