"""Splitting a stored dataset into disjoint parts (train / validation / test ...).

Sizes come from largest-remainder rounding, so each part is within one row of its ratio
(within one row per class when stratified). A grouped split keeps every group (e.g. one
customer's rows) whole, so sizes are as close to the ratios as whole groups allow; a
time-ordered split cuts contiguous parts from the rows sorted by time. All randomness comes
from one numpy Generator seeded with `seed`, so the same seed always gives the same rows in
the same order.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.data.ingest import IngestResult, write_table
from engine.data.schema import DataSchema
from engine.errors import DataLoss, InvalidArgument

RATIO_TOLERANCE = 1e-6


def _validate_ratios(ratios: list[float]) -> None:
    if len(ratios) < 2:
        raise InvalidArgument.field("ratios", f"give at least 2 ratios (one per part); got {len(ratios)}")
    for index, ratio in enumerate(ratios):
        if not (math.isfinite(ratio) and ratio > 0):
            raise InvalidArgument.field("ratios", f"ratios[{index}] is {ratio}; every ratio must be greater than 0")
    total = math.fsum(ratios)
    if abs(total - 1.0) > RATIO_TOLERANCE:
        raise InvalidArgument.field("ratios", f"ratios must sum to 1; they sum to {total:.6g}")


def _apportion(count: int, ratios: list[float], behind: np.ndarray | None = None) -> np.ndarray:
    """Split `count` items by `ratios`: floors first, then one extra item to the parts owed most.

    "Owed" is each part's fractional remainder, plus `behind` (how far the part already
    trails its ideal cumulative size), so successive classes of a stratified split hand
    their leftover rows to different parts and the totals stay close to the ratios.
    Ties go to the earlier part, which keeps the result deterministic.
    """
    ideal = np.asarray(ratios, dtype=float) * count
    sizes = np.floor(ideal).astype(np.int64)
    owed = ideal - sizes + (behind if behind is not None else 0.0)
    leftover = count - int(sizes.sum())
    # A stable sort on -owed puts the most-owed first and breaks ties by part index.
    for part in np.argsort(-owed, kind="stable")[:leftover]:
        sizes[part] += 1
    return sizes


def _class_codes(column: pa.ChunkedArray) -> np.ndarray:
    """One integer per row naming its class; nulls form a class of their own (-1)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    indices = encoded.indices.fill_null(-1) if encoded.null_count else encoded.indices
    return indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _stratified_parts(codes: np.ndarray, ratios: list[float], rng: np.random.Generator) -> list[np.ndarray]:
    pieces: list[list[np.ndarray]] = [[] for _ in ratios]
    allocated = np.zeros(len(ratios))
    seen = 0
    for code in np.unique(codes):  # sorted codes: a fixed class order, independent of the seed
        members = rng.permutation(np.flatnonzero(codes == code))
        seen += len(members)
        # How far each part trails its ideal share of the rows seen so far, before this class.
        behind = np.asarray(ratios) * (seen - len(members)) - allocated
        sizes = _apportion(len(members), ratios, behind)
        start = 0
        for part, size in enumerate(sizes):
            pieces[part].append(members[start:start + size])
            start += size
        allocated += sizes
    # Shuffle each part so rows are not grouped by class.
    return [rng.permutation(np.concatenate(p)) for p in pieces]


def _grouped_parts(
    codes: np.ndarray, ratios: list[float], rng: np.random.Generator, shuffle: bool
) -> list[np.ndarray]:
    """Whole groups dealt to parts: each group, in seeded random order, to the part furthest below its target.

    "Furthest below" is in rows (target minus rows so far), so big parts take groups until
    the small ones are owed as much. A part only takes a group while it is short of its
    target, so it overshoots by less than its last group. Once there are only as many groups
    left as parts still empty, each goes to an empty part, so no part is left without rows
    when a large part would have taken them all. Without shuffling, groups are dealt in order
    of first appearance and rows keep file order.
    """
    groups, first_row, inverse, counts = np.unique(codes, return_index=True, return_inverse=True, return_counts=True)
    order = rng.permutation(len(groups)) if shuffle else np.argsort(first_row, kind="stable")
    # Plain Python lists: one step per group, and datasets can have a group per user.
    targets = [ratio * len(codes) for ratio in ratios]
    filled = [0] * len(ratios)
    sizes = counts.tolist()
    owner = np.empty(len(groups), dtype=np.int64)
    for dealt, group in enumerate(order.tolist()):
        candidates = range(len(ratios))
        empty = [part for part in candidates if filled[part] == 0]
        if len(order) - dealt <= len(empty):
            candidates = empty
        part = max(candidates, key=lambda k: targets[k] - filled[k])  # the first of equals: deterministic ties
        owner[group] = part
        filled[part] += sizes[group]
    row_part = owner[inverse.reshape(-1)]
    parts = [np.flatnonzero(row_part == part) for part in range(len(ratios))]
    return [rng.permutation(p) for p in parts] if shuffle else parts


def _time_order(column: pa.ChunkedArray, time_column: str) -> np.ndarray:
    """Row indices sorted by `column`, oldest first; equal times keep file order."""
    missing = pc.is_null(column, nan_is_null=True)
    if pc.any(missing).as_py():
        row = pc.index(missing, True).as_py()
        raise InvalidArgument.field(
            "time_column",
            f"column {time_column!r} is empty at row {row}; every row needs a time to be ordered by: "
            "fill or drop the rows without one, or split without time_column",
        )
    # Arrow's sort is stable, so rows with the same time stay in the order the file had them.
    return pc.sort_indices(column).to_numpy()


def _check_split_columns(
    table: pa.Table, columns: dict[str, str], group_column: str, ratios: list[float]
) -> None:
    for name, value in columns.items():
        if value and value not in table.column_names:
            raise InvalidArgument.field(
                name, f"column {value!r} is not in the dataset; available columns: {', '.join(table.column_names)}"
            )
    if group_column:
        groups = len(pc.unique(table.column(group_column)))
        if groups < len(ratios):
            raise InvalidArgument.field(
                "group_column",
                f"column {group_column!r} has {groups} distinct value(s) (groups) but the split has {len(ratios)} "
                "parts; every part needs at least one whole group: use fewer parts or a column with more groups",
            )


def split_table(
    source_parquet: str,
    dests: list[str],
    ratios: list[float],
    *,
    seed: int = 0,
    stratify_column: str = "",
    shuffle: bool = True,
    label_column: str = "",
    schema: DataSchema | None = None,
    group_column: str = "",
    time_column: str = "",
) -> list[IngestResult]:
    """Split the Parquet dataset at `source_parquet` into `len(ratios)` parts written to `dests`.

    With `shuffle=False` the parts are contiguous slices in file order (and stratifying is
    refused, since it needs shuffling). `schema`, when given (the parent dataset's), is
    enforced on and reported for every part, so parts keep the parent's declared columns;
    otherwise each part's schema is inferred from its own rows.

    `group_column`: rows sharing a value of it (nulls count as one group) land in the same
    part; parts are as close to the ratios, in rows, as whole groups allow. `time_column`:
    rows are sorted by it (stable) and cut into contiguous parts, the oldest first; this
    never shuffles, whatever `shuffle` says. Each result's `row_count` is its part's exact size.

    Errors are InvalidArgument on `ratios`, `stratify_column`, `group_column`, `time_column`
    or `label_column`; a missing source file is DataLoss.
    """
    _validate_ratios(ratios)
    if len(dests) != len(ratios):
        raise ValueError(f"split_table needs one destination per ratio: {len(dests)} dests for {len(ratios)} ratios")
    if time_column and (stratify_column or group_column):
        other = "stratify_column" if stratify_column else "group_column"
        raise InvalidArgument.field(
            "time_column", f"a time-ordered split cannot also use {other}; choose one of time_column and {other}"
        )
    if stratify_column and group_column:
        raise InvalidArgument.field(
            "group_column", "choose one of stratify_column and group_column; a split cannot use both"
        )
    if stratify_column and not shuffle:
        raise InvalidArgument.field(
            "stratify_column", "a stratified split needs shuffled rows; set shuffle to true or clear stratify_column"
        )
    if not os.path.isfile(source_parquet):
        raise DataLoss(f"dataset file {os.path.basename(source_parquet)} is missing")
    table = pq.read_table(source_parquet)
    columns = {
        "stratify_column": stratify_column,
        "group_column": group_column,
        "time_column": time_column,
        "label_column": label_column,
    }
    _check_split_columns(table, columns, group_column, ratios)

    rows = table.num_rows
    sizes = _apportion(rows, ratios)
    if (sizes == 0).any():
        empty = int(np.flatnonzero(sizes == 0)[0])
        raise InvalidArgument.field(
            "ratios",
            f"part {empty} would get no rows ({rows} rows split by {list(ratios)}); use fewer parts or larger ratios",
        )

    rng = np.random.default_rng(seed)
    if time_column:
        parts = np.split(_time_order(table.column(time_column), time_column), np.cumsum(sizes)[:-1])
    elif group_column:
        parts = _grouped_parts(_class_codes(table.column(group_column)), ratios, rng, shuffle)
    elif stratify_column:
        parts = _stratified_parts(_class_codes(table.column(stratify_column)), ratios, rng)
        if any(len(p) == 0 for p in parts):
            empty = next(i for i, p in enumerate(parts) if len(p) == 0)
            raise InvalidArgument.field("ratios", f"part {empty} would get no rows; use fewer parts or larger ratios")
    else:
        order = rng.permutation(rows) if shuffle else np.arange(rows)
        bounds = np.cumsum(sizes)[:-1]
        parts = np.split(order, bounds)

    return [
        write_table(table.take(pa.array(indices, pa.int64())), dest, label_column=label_column, schema=schema, field_prefix="")
        for indices, dest in zip(parts, dests)
    ]
