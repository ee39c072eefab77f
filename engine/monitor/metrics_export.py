"""A job's whole metric history as one JSON or CSV document (the seed's MetricsCollector.ExportMetrics).

Both are written in chunks, page by page of the journal, so a long history is never held
whole, neither here nor by whoever receives it (ExportTrainingMetrics streams the chunks).

- JSON: {"job": name, "format_version": 1, "points": [point, ...]}, each point as the
  journal records it: sequence, time (RFC 3339, UTC), epoch, total_epochs, progress,
  epoch_seconds, the TrainingMetrics fields it has, "extra" (name -> value) and
  "resource_usage" (cpu_usage, memory_usage, ... as measured).
- CSV: one row per point, a header first. Columns: the fixed ones (sequence ... epoch_seconds),
  every TrainingMetrics scalar any point has, `resource_usage.<field>` and `extra.<name>`
  for every name any point has (sorted); a point without a value leaves its cell empty. The
  columns are known only once every point has been seen, so CSV reads the history twice
  (two passes of pages, never the whole history in memory).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from engine.errors import InvalidArgument

FORMATS = {"json": "application/json", "csv": "text/csv"}
PAGE = 1000
FIXED = ("sequence", "time", "epoch", "total_epochs", "progress", "epoch_seconds")
# TrainingMetrics' optional scalars, in the proto's order.
SCALARS = ("training_loss", "validation_loss", "best_loss", "best_epoch", "accuracy", "precision", "recall",
           "f1_score", "rmse", "mae", "r2", "learning_rate", "gradient_norm")

Fetch = Callable[[int, int], list[dict[str, Any]]]  # (after sequence, limit) -> points, as Journal.metrics_after


def parse_format(value: str) -> str:
    """"json" or "csv" from what a user wrote ("CSV", "METRICS_EXPORT_FORMAT_CSV"); JSON when empty."""
    short = (value or "json").strip().lower().removeprefix("metrics_export_format_")
    if short == "unspecified":
        return "json"
    if short not in FORMATS:
        raise InvalidArgument.field("format", f"{value!r} is not a metrics export format: use json or csv")
    return short


def export_metrics(job: str, fetch: Fetch, fmt: str) -> Iterator[bytes]:
    """The document's bytes, in chunks of about one page of points each."""
    fmt = parse_format(fmt)
    return _json(job, fetch) if fmt == "json" else _csv(fetch)


def _points(fetch: Fetch) -> Iterator[list[dict[str, Any]]]:
    after = 0
    while True:
        page = fetch(after, PAGE)
        if not page:
            return
        yield page
        after = page[-1]["sequence"]


def _plain(point: dict[str, Any]) -> dict[str, Any]:
    """A point as JSON takes it: the time in RFC 3339 (UTC), non-finite numbers as null."""
    out: dict[str, Any] = {}
    for key, value in point.items():
        if key == "time" and isinstance(value, datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, dict):
            value = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in value.items()}
        out[key] = value
    return out


def _json(job: str, fetch: Fetch) -> Iterator[bytes]:
    yield (json.dumps({"job": job, "format_version": 1})[:-1] + ', "points": [').encode()
    first = True
    for page in _points(fetch):
        text = ",\n".join(json.dumps(_plain(p), sort_keys=True) for p in page)
        yield (("\n" if first else ",\n") + text).encode()
        first = False
    yield b"\n]}\n"


def _csv(fetch: Fetch) -> Iterator[bytes]:
    scalars: set[str] = set()
    usage: set[str] = set()
    extra: set[str] = set()
    for page in _points(fetch):
        for point in page:
            scalars.update(k for k in SCALARS if point.get(k) is not None)
            usage.update((point.get("resource_usage") or {}).keys())
            extra.update((point.get("extra") or {}).keys())
    columns = [*FIXED, *(k for k in SCALARS if k in scalars), *(f"resource_usage.{k}" for k in sorted(usage)),
               *(f"extra.{k}" for k in sorted(extra))]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for page in _points(fetch):
        for point in page:
            plain = _plain(point)
            flat = {**plain, **{f"resource_usage.{k}": v for k, v in (plain.get("resource_usage") or {}).items()},
                    **{f"extra.{k}": v for k, v in (plain.get("extra") or {}).items()}}
            writer.writerow(["" if flat.get(c) is None else _cell(flat[c]) for c in columns])
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():  # the header of an empty history
        yield buffer.getvalue().encode()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)
