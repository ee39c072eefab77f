"""Splitting a stored dataset into disjoint parts (train / validation / test ...).

Sizes come from largest-remainder rounding, so each part is within one row of its ratio
(within one row per class when stratified). All randomness comes from one numpy
Generator seeded with `seed`, so the same seed always gives the same rows in the same order.
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
) -> list[IngestResult]:
    """Split the Parquet dataset at `source_parquet` into `len(ratios)` parts written to `dests`.

    With `shuffle=False` the parts are contiguous slices in file order (and stratifying is
    refused, since it needs shuffling). `schema`, when given (the parent dataset's), is
    enforced on and reported for every part, so parts keep the parent's declared columns;
    otherwise each part's schema is inferred from its own rows.
    """
    _validate_ratios(ratios)
    if len(dests) != len(ratios):
        raise ValueError(f"split_table needs one destination per ratio: {len(dests)} dests for {len(ratios)} ratios")
    if stratify_column and not shuffle:
        raise InvalidArgument.field(
            "stratify_column", "a stratified split needs shuffled rows; set shuffle to true or clear stratify_column"
        )
    if not os.path.isfile(source_parquet):
        raise DataLoss(f"dataset file {os.path.basename(source_parquet)} is missing")
    table = pq.read_table(source_parquet)
    for name, value in (("stratify_column", stratify_column), ("label_column", label_column)):
        if value and value not in table.column_names:
            raise InvalidArgument.field(
                name, f"column {value!r} is not in the dataset; available columns: {', '.join(table.column_names)}"
            )

    rows = table.num_rows
    sizes = _apportion(rows, ratios)
    if (sizes == 0).any():
        empty = int(np.flatnonzero(sizes == 0)[0])
        raise InvalidArgument.field(
            "ratios",
            f"part {empty} would get no rows ({rows} rows split by {list(ratios)}); use fewer parts or larger ratios",
        )

    rng = np.random.default_rng(seed)
    if stratify_column:
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
