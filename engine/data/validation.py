"""Checking a dataset against ValidationRules and reporting every violation.

`validate` never raises because the *data* breaks a rule: each broken rule becomes an
issue with a count and example rows, and the caller decides (with `fail_on_violation`)
whether that fails the request. It raises InvalidArgument only when a *rule* is
malformed (a bad regex, a bad expression, min above max ...), on the rule's field path.

A stored dataset is read in batches of `BATCH_ROWS` rows and only the columns the rules
need, so memory stays bounded whatever the dataset's size, with one exception: a `unique`
constraint remembers every distinct value of its column (memory grows with the number of
distinct values, not rows).

Nulls (and NaN) are governed by `not_null` and `max_null_fraction` only: the value checks
(min, max, allowed_values, pattern, data_type) skip them, and a condition that cannot be
decided because a value it reads is null is not a violation (as an SQL CHECK constraint).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.data import expressions
from engine.data.records import json_safe
from engine.data.schema import DATA_TYPES, canonical_table, data_type_of, format_value
from engine.errors import DataLoss, InvalidArgument

# Rows per batch when scanning: large enough for vectorised kernels to pay off, small
# enough that a batch of a wide table stays a few tens of megabytes.
BATCH_ROWS = 64 * 1024

RULE_KEYS = ("required_columns", "min_rows", "max_null_fraction", "constraints", "fail_on_violation", "conditions")
CONSTRAINT_KEYS = ("column", "min", "max", "allowed_values", "pattern", "not_null", "unique", "data_type")
_NUMERIC = ("int64", "float64")


# ---- the rules ------------------------------------------------------------------------------


@dataclass
class Constraint:
    index: int
    column: str
    min: float | None = None
    max: float | None = None
    allowed_values: list[str] = field(default_factory=list)
    pattern: str = ""
    not_null: bool = False
    unique: bool = False
    data_type: str = ""


@dataclass
class Rules:
    required_columns: list[str] = field(default_factory=list)
    min_rows: int = 0
    max_null_fraction: float = 0.0
    constraints: list[Constraint] = field(default_factory=list)
    conditions: list[expressions.Expression] = field(default_factory=list)
    fail_on_violation: bool = False


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument.field(path, f"must be true or false; got {value!r}")
    return value


def _number(value: Any, path: str) -> float:
    # JSON (MessageToDict) spells NaN and the infinities as strings; infinity is a usable bound, NaN is not.
    number = math.nan
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            pass
    if math.isnan(number):
        raise InvalidArgument.field(path, f"must be a number; got {value!r}")
    return number


def _whole(value: Any, path: str) -> int:
    # int64 fields arrive as strings from MessageToDict.
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            pass
    raise InvalidArgument.field(path, f"must be a whole number; got {value!r}")


def _strings(value: Any, path: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument.field(path, f"must be a list of strings; got {value!r}")
    return list(value)


def _data_type(value: Any, path: str) -> str:
    """Engine type name from the proto enum's name ("DATA_TYPE_INT64"), number (1) or a plain "int64"."""
    if value in (None, "", 0, "DATA_TYPE_UNSPECIFIED"):
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(DATA_TYPES):
        return DATA_TYPES[value - 1]  # the enum numbers follow DATA_TYPES' order
    if isinstance(value, str):
        name = value.strip().lower().removeprefix("data_type_")
        if name in DATA_TYPES:
            return name
    raise InvalidArgument.field(path, f"data type {value!r} is not one of {', '.join(DATA_TYPES)}")


def _regex_check(pattern: str, path: str) -> None:
    # Patterns run on Arrow's RE2 engine: linear time, so a user's pattern cannot hang the server.
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), _anchored(pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidArgument.field(
            path, f"{pattern!r} is not a valid regular expression (RE2 syntax, no look-around or backreferences): {exc}"
        ) from None


def _anchored(pattern: str) -> str:
    return rf"\A(?:{pattern})\z"


def _unknown_keys(data: dict, known: tuple[str, ...], path: str) -> None:
    unknown = [k for k in data if k not in known]
    if unknown:
        raise InvalidArgument.field(f"{path}.{unknown[0]}", f"is not a validation setting; known: {', '.join(known)}")


def parse_rules(rules: dict[str, Any] | None, field_prefix: str = "rules") -> Rules:
    """Check a ValidationRules dict (proto snake_case keys, as MessageToDict gives) and normalise it.

    Accepted shape (every key optional):
      {"required_columns": [str], "min_rows": int | str, "max_null_fraction": float (0..1, 0 = no limit),
       "constraints": [{"column": str, "min": float, "max": float, "allowed_values": [str],
                        "pattern": str (RE2, must match the whole value), "not_null": bool,
                        "unique": bool, "data_type": "DATA_TYPE_INT64" | "int64" | 1 ...}],
       "conditions": [expression str, see engine.data.expressions], "fail_on_violation": bool}
    """
    rules = rules or {}
    if not isinstance(rules, dict):
        raise InvalidArgument.field(field_prefix, f"must be a ValidationRules object; got {type(rules).__name__}")
    _unknown_keys(rules, RULE_KEYS, field_prefix)
    parsed = Rules(
        required_columns=_strings(rules.get("required_columns", []), f"{field_prefix}.required_columns"),
        fail_on_violation=_bool(rules.get("fail_on_violation", False), f"{field_prefix}.fail_on_violation"),
    )
    parsed.min_rows = _whole(rules.get("min_rows", 0), f"{field_prefix}.min_rows")
    if parsed.min_rows < 0:
        raise InvalidArgument.field(f"{field_prefix}.min_rows", f"must be 0 or more; got {parsed.min_rows}")
    parsed.max_null_fraction = _number(rules.get("max_null_fraction", 0.0), f"{field_prefix}.max_null_fraction")
    if not 0.0 <= parsed.max_null_fraction <= 1.0:
        raise InvalidArgument.field(
            f"{field_prefix}.max_null_fraction", f"must be between 0 and 1 (0 means no limit); got {parsed.max_null_fraction}"
        )
    constraints = rules.get("constraints", [])
    if not isinstance(constraints, (list, tuple)):
        raise InvalidArgument.field(f"{field_prefix}.constraints", "must be a list of ColumnConstraint objects")
    parsed.constraints = [_parse_constraint(c, i, f"{field_prefix}.constraints[{i}]") for i, c in enumerate(constraints)]
    conditions = _strings(rules.get("conditions", []), f"{field_prefix}.conditions")
    parsed.conditions = [expressions.parse(c, f"{field_prefix}.conditions[{i}]") for i, c in enumerate(conditions)]
    return parsed


def _parse_constraint(data: Any, index: int, path: str) -> Constraint:
    if not isinstance(data, dict):
        raise InvalidArgument.field(path, f"must be a ColumnConstraint object; got {type(data).__name__}")
    _unknown_keys(data, CONSTRAINT_KEYS, path)
    column = data.get("column", "")
    if not isinstance(column, str) or not column:
        raise InvalidArgument.field(f"{path}.column", "is required: the column the constraint applies to")
    constraint = Constraint(
        index=index,
        column=column,
        min=_number(data["min"], f"{path}.min") if data.get("min") is not None else None,
        max=_number(data["max"], f"{path}.max") if data.get("max") is not None else None,
        allowed_values=_strings(data.get("allowed_values", []), f"{path}.allowed_values"),
        pattern=data.get("pattern", "") or "",
        not_null=_bool(data.get("not_null", False), f"{path}.not_null"),
        unique=_bool(data.get("unique", False), f"{path}.unique"),
        data_type=_data_type(data.get("data_type"), f"{path}.data_type"),
    )
    if constraint.min is not None and constraint.max is not None and constraint.min > constraint.max:
        raise InvalidArgument.field(f"{path}.min", f"min {constraint.min:g} is greater than max {constraint.max:g}; swap them")
    if not isinstance(constraint.pattern, str):
        raise InvalidArgument.field(f"{path}.pattern", f"must be a string; got {constraint.pattern!r}")
    if constraint.pattern:
        _regex_check(constraint.pattern, f"{path}.pattern")
    return constraint


# ---- the data ---------------------------------------------------------------------------------


class _Source:
    """Column names, row count and batches of a stored Parquet file or an in-memory table."""

    def __init__(self, data: pd.DataFrame | pa.Table | str | os.PathLike):
        self.path: str | None = None
        self.table: pa.Table | None = None
        if isinstance(data, (str, os.PathLike)):
            self.path = os.fspath(data)
            if not os.path.isfile(self.path):
                raise DataLoss(f"dataset file {os.path.basename(self.path)} is missing")
            with pq.ParquetFile(self.path) as parquet:
                self.schema = parquet.schema_arrow
                self.num_rows = parquet.metadata.num_rows
        else:
            if isinstance(data, pd.DataFrame):
                try:
                    data = pa.Table.from_pandas(data, preserve_index=False)
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                    raise InvalidArgument.field("dataset", f"the data cannot be read as a table: {exc}") from None
            self.table = canonical_table(data, blame_field="dataset")
            self.schema = self.table.schema
            self.num_rows = self.table.num_rows
        self.names = list(self.schema.names)

    def data_type(self, column: str) -> str:
        return data_type_of(self.schema.field(column).type) or "binary"

    def batches(self, columns: list[str]) -> Iterator[pa.Table]:
        """Canonical tables of up to BATCH_ROWS rows holding only `columns` (NaN already turned into null)."""
        if self.table is not None:
            for batch in self.table.select(columns).to_batches(max_chunksize=BATCH_ROWS):
                yield pa.Table.from_batches([batch])
            return
        with pq.ParquetFile(self.path) as parquet:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                table = pa.Table.from_batches([batch])
                # A table without columns (a condition that reads none) must keep its row count.
                yield canonical_table(table, blame_field="dataset") if table.num_columns else table


# ---- checks -------------------------------------------------------------------------------------


def _issue(rule: str, column: str, message: str, count: int = 0, rows: list[int] | None = None) -> dict[str, Any]:
    return {"rule": rule, "column": column, "message": message, "violation_count": int(count), "example_rows": rows or []}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Tally:
    """Counts violating rows across batches, keeping the first few row numbers and the first bad value."""

    def __init__(self, sample_rows: int):
        self.sample_rows = sample_rows
        self.count = 0
        self.rows: list[int] = []
        self.first_value: Any = None

    def add(self, mask: np.ndarray, offset: int, values: pa.ChunkedArray | None = None) -> None:
        hits = np.flatnonzero(mask)
        if not len(hits):
            return
        if self.count == 0 and values is not None:
            self.first_value = json_safe(values[int(hits[0])].as_py())
        self.count += len(hits)
        room = self.sample_rows - len(self.rows)
        if room > 0:
            self.rows.extend(int(h) + offset for h in hits[:room])

    def example(self) -> str:
        return f"{self.first_value!r} at row {self.rows[0]}" if self.rows else f"{self.first_value!r}"

    def first_row(self) -> str:
        return f"row {self.rows[0]}" if self.rows else "see the count"


def _mask(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean Arrow result as numpy, null meaning 'no violation'."""
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(bool)


@dataclass
class _ColumnCheck:
    """One per-value rule on one column: `violates(column) -> mask`, `describe(tally) -> message`."""

    rule: str
    column: str
    violates: Callable[[pa.ChunkedArray], np.ndarray]
    describe: Callable[[_Tally], str]
    tally: _Tally
    keep_if: Callable[[_Tally], bool] = lambda tally: tally.count > 0

    def update(self, batch: pa.Table, offset: int) -> None:
        values = batch.column(self.column)
        self.tally.add(self.violates(values), offset, values)

    def issues(self) -> list[dict[str, Any]]:
        if not self.keep_if(self.tally):
            return []
        return [_issue(self.rule, self.column, self.describe(self.tally), self.tally.count, self.tally.rows)]


class _UniqueCheck:
    """Rows whose value already appeared in an earlier row; memory grows with the distinct values."""

    def __init__(self, column: str, sample_rows: int):
        self.column = column
        self.tally = _Tally(sample_rows)
        self.seen: set[Any] = set()

    def update(self, batch: pa.Table, offset: int) -> None:
        values = batch.column(self.column)
        seen = self.seen
        mask = np.zeros(len(values), dtype=bool)
        for row, value in enumerate(values.to_pylist()):
            if value is None:
                continue  # nulls are never duplicates of each other, as in SQL UNIQUE
            if value in seen:
                mask[row] = True
            else:
                seen.add(value)
        self.tally.add(mask, offset, values)

    def issues(self) -> list[dict[str, Any]]:
        if not self.tally.count:
            return []
        message = (
            f"column {self.column!r} should hold unique values but {_plural(self.tally.count, 'row')} repeat a value of an "
            f"earlier row (e.g. {self.tally.example()}); remove the duplicates or drop the unique constraint"
        )
        return [_issue("unique", self.column, message, self.tally.count, self.tally.rows)]


class _ConditionCheck:
    """Rows where a condition is definitely false (unknown because of nulls does not count)."""

    def __init__(self, expression: expressions.Expression, sample_rows: int):
        self.expression = expression
        self.tally = _Tally(sample_rows)

    def update(self, batch: pa.Table, offset: int) -> None:
        columns = list(self.expression.columns)
        frame = batch.select(columns).to_pandas() if columns else pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
        truth = self.expression.truth(frame)
        self.tally.add(~truth.to_numpy(dtype=bool, na_value=True), offset)

    def issues(self) -> list[dict[str, Any]]:
        if not self.tally.count:
            return []
        message = (
            f"{_plural(self.tally.count, 'row')} {'does' if self.tally.count == 1 else 'do'} not satisfy the condition {self.expression.source!r} (first at "
            f"{self.tally.first_row()}); fix those rows or the condition"
        )
        return [_issue("condition", "", message, self.tally.count, self.tally.rows)]


def _uncastable(values: pa.Array, target: pa.DataType) -> pa.Array:
    """The entries of `values` that do not cast to `target`, found by halving failing slices.

    A slice casts exactly when none of its values is bad, so k bad values among n cost
    O(k log n) vectorised casts, and the verdict is Arrow's own (the cast a declared
    schema would do), not an imitation of it.
    """
    if len(values) == 0:
        return values
    try:
        values.cast(target)
        return values.slice(0, 0)
    except pa.ArrowInvalid:
        if len(values) == 1:
            return values
        middle = len(values) // 2
        return pa.concat_arrays([_uncastable(values.slice(0, middle), target), _uncastable(values.slice(middle), target)])


def _data_type_violations(expected: str) -> Callable[[pa.ChunkedArray], np.ndarray]:
    """Rows whose value Arrow cannot cast to `expected`, exactly as a declared schema would cast it.

    Cost: a few vectorised casts when few distinct values fail, but about two small casts
    per distinct failing value, so a column of another type with a million distinct values
    takes tens of seconds. Timestamps as text parse into a naive or a zoned type, as
    enforce_schema tries both.
    """
    targets = {
        "int64": [pa.int64()],
        "float64": [pa.float64()],
        "string": [pa.string()],
        "bool": [pa.bool_()],
        "timestamp": [pa.timestamp("us"), pa.timestamp("us", tz="UTC")],
        "binary": [pa.binary()],
    }[expected]

    def violates(column: pa.ChunkedArray) -> np.ndarray:
        bad = pc.unique(column.drop_null()) if len(column) else pa.array([], column.type)
        try:
            for target in targets:
                bad = _uncastable(bad, target)
        except pa.ArrowNotImplementedError:
            return ~_mask(pc.is_null(column))  # no value of this type converts
        return _mask(pc.is_in(column, value_set=bad))

    return violates


def _outside(column: pa.ChunkedArray, value_set: pa.Array) -> np.ndarray:
    """Non-null values not in `value_set` (is_in says False for a null, which is no violation here)."""
    return _mask(pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, value_set=value_set))))


def _allowed_violations(allowed: list[str], data_type: str) -> Callable[[pa.ChunkedArray], np.ndarray]:
    """Values outside `allowed`, compared as numbers for numeric columns and as rendered text otherwise."""
    if data_type in _NUMERIC:
        numbers = []
        for value in allowed:
            try:
                numbers.append(float(value))
            except ValueError:
                pass  # text can never equal a number; such entries simply match nothing
        value_set = pa.array(numbers, pa.float64())
        return lambda column: _outside(column.cast(pa.float64()), value_set)
    if data_type == "string":
        value_set = pa.array(allowed, pa.string())
        return lambda column: _outside(column, value_set)
    # bool, timestamp, binary: render each distinct value as statistics and schemas do ("true", ISO 8601, base64).
    folded = {v.lower() for v in allowed} if data_type == "bool" else set(allowed)

    def violates(column: pa.ChunkedArray) -> np.ndarray:
        distinct = pc.unique(column.drop_null()) if len(column) else pa.array([], column.type)
        bad = [v for v in distinct.to_pylist() if format_value(v) not in folded]
        return _mask(pc.is_in(column, value_set=pa.array(bad, column.type)))

    return violates


def _constraint_checks(c: Constraint, source: _Source, sample_rows: int) -> tuple[list[dict], list[Any]]:
    """(issues known without reading data, checks to run over the batches) for one constraint."""
    name, data_type = c.column, source.data_type(c.column)
    static: list[dict] = []
    checks: list[Any] = []

    def check(rule: str, violates, describe) -> None:
        checks.append(_ColumnCheck(rule, name, violates, describe, _Tally(sample_rows)))

    if c.data_type and c.data_type != data_type:
        check(
            "data_type",
            _data_type_violations(c.data_type),
            lambda t: f"column {name!r} is {data_type} and {_plural(t.count, 'value')} cannot be read as {c.data_type} "
            f"(e.g. {t.example()}); fix those values or change data_type",
        )
    if c.not_null:
        check(
            "not_null",
            lambda column: _mask(pc.is_null(column)),
            lambda t: f"column {name!r} must not be empty but has {_plural(t.count, 'empty value')} (first at "
            f"{t.first_row()}); fill them or drop those rows",
        )
    if c.unique:
        checks.append(_UniqueCheck(name, sample_rows))
    for rule, bound in (("min", c.min), ("max", c.max)):
        if bound is None:
            continue
        if data_type not in _NUMERIC:
            static.append(_issue(rule, name, f"column {name!r} is {data_type}; {rule} applies only to int64 and float64 "
                                             f"columns; remove {rule} from the constraint or convert the column"))
            continue
        compare, word, fix = (pc.less, "below the minimum", "lower min") if rule == "min" else (pc.greater, "above the maximum", "raise max")
        check(
            rule,
            lambda column, compare=compare, bound=bound: _mask(compare(column.cast(pa.float64()), bound)),
            lambda t, word=word, bound=bound, fix=fix: f"column {name!r} has {_plural(t.count, 'value')} {word} {bound:g} "
            f"(e.g. {t.example()}); fix those values or {fix}",
        )
    if c.allowed_values:
        shown = ", ".join(c.allowed_values[:10]) + (", ..." if len(c.allowed_values) > 10 else "")
        check(
            "allowed_values",
            _allowed_violations(c.allowed_values, data_type),
            lambda t: f"column {name!r} has {_plural(t.count, 'value')} not among the allowed values ({shown}) "
            f"(e.g. {t.example()}); fix those values or add them to allowed_values",
        )
    if c.pattern:
        if data_type not in ("string", "int64"):
            static.append(_issue("pattern", name, f"column {name!r} is {data_type}; pattern applies to string (and int64) "
                                                  f"columns; remove the pattern or convert the column"))
        else:
            regex = _anchored(c.pattern)
            check(
                "pattern",
                lambda column: _mask(pc.invert(pc.match_substring_regex(column.cast(pa.string()), regex))),
                lambda t: f"column {name!r} has {_plural(t.count, 'value')} not fully matching the pattern "
                f"{c.pattern!r} (e.g. {t.example()}); fix those values or the pattern",
            )
    return static, checks


def validate(
    data: pd.DataFrame | pa.Table | str | os.PathLike,
    rules: dict[str, Any] | None,
    *,
    sample_rows: int = 10,
    field_prefix: str = "rules",
) -> dict[str, Any]:
    """Check `data` (a DataFrame, an Arrow table or a Parquet file path) against ValidationRules.

    Returns {"valid": bool, "issues": [{"rule", "column", "message", "violation_count",
    "example_rows"}], "fail_on_violation": bool (copied from the rules)}. `example_rows` are
    up to `sample_rows` zero-based row numbers of the dataset, in order. Rules about the
    dataset as a whole (required_columns, min_rows, column_exists, a min/max/pattern on a
    column of the wrong type) have violation_count 0 and no example rows.

    Issue rules: "required_columns", "min_rows", "max_null_fraction", "column_exists" (a
    constraint or condition names a column that is not there), "data_type", "not_null",
    "unique", "min", "max", "allowed_values", "pattern", "condition". Malformed rules raise
    InvalidArgument on `<field_prefix>.<key>`, e.g. "rules.constraints[0].pattern" or
    "rules.conditions[1]", before any data is read.
    """
    if sample_rows < 0:
        raise ValueError(f"sample_rows must be 0 or more; got {sample_rows}")
    parsed = parse_rules(rules, field_prefix)
    source = _Source(data)
    available = ", ".join(source.names)
    issues: list[dict[str, Any]] = []
    for column in parsed.required_columns:
        if column not in source.names:
            issues.append(_issue("required_columns", column, f"required column {column!r} is missing (available columns: "
                                                             f"{available}); add it to the data or remove it from required_columns"))
    if source.num_rows < parsed.min_rows:
        issues.append(_issue("min_rows", "", f"the dataset has {_plural(source.num_rows, 'row')} but min_rows requires at "
                                             f"least {parsed.min_rows}; add rows or lower min_rows"))

    # Checks in report order; `ordered` holds finished issues (lists) and checks still to run.
    ordered: list[Any] = []
    if parsed.max_null_fraction > 0 and source.num_rows:
        limit, rows = parsed.max_null_fraction, source.num_rows
        for name in source.names:
            ordered.append(_ColumnCheck(
                "max_null_fraction", name, lambda column: _mask(pc.is_null(column)),
                lambda t, name=name: f"column {name!r} is {t.count / rows:.1%} empty ({t.count} of {rows} rows), above "
                f"max_null_fraction {limit:g}; fill the values, drop those rows or raise the limit",
                _Tally(sample_rows), keep_if=lambda t: t.count / rows > limit,
            ))
    for c in parsed.constraints:
        if c.column not in source.names:
            ordered.append([_issue("column_exists", c.column, f"constraints[{c.index}] names column {c.column!r}, which is not "
                                                            f"in the dataset (available columns: {available}); fix the name "
                                                            f"or remove the constraint")])
            continue
        static, checks = _constraint_checks(c, source, sample_rows)
        ordered.extend([static, *checks])
    for index, expression in enumerate(parsed.conditions):
        missing = [name for name in expression.columns if name not in source.names]
        if missing:
            ordered.append([_issue("column_exists", name, f"conditions[{index}] ({expression.source!r}) names column "
                                                          f"{name!r}, which is not in the dataset (available columns: "
                                                          f"{available}); fix the name or remove the condition")
                            for name in missing])
            continue
        ordered.append(_ConditionCheck(expression, sample_rows))

    checks = [item for item in ordered if not isinstance(item, list)]
    needed = [name for name in source.names if any(_reads(check, name) for check in checks)]
    if checks:
        offset = 0
        for batch in source.batches(needed):
            for check in checks:
                check.update(batch, offset)
            offset += batch.num_rows
    for item in ordered:
        issues.extend(item if isinstance(item, list) else item.issues())
    return {"valid": not issues, "issues": issues, "fail_on_violation": parsed.fail_on_violation}


def _reads(check: Any, name: str) -> bool:
    if isinstance(check, _ConditionCheck):
        return name in check.expression.columns
    return check.column == name
