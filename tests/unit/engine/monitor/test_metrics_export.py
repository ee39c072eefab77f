"""engine/monitor/metrics_export.py: the JSON and CSV documents of a metric history, page by page."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime

import pytest

from engine.errors import InvalidArgument
from engine.monitor import metrics_export


def _history(n: int) -> list[dict]:
    points = []
    for i in range(1, n + 1):
        point = {"sequence": i, "time": datetime(2026, 1, 1, 0, 0, i % 60), "epoch": i, "total_epochs": n,
                 "progress": i / n, "epoch_seconds": 0.5, "training_loss": 1.0 / i,
                 "resource_usage": {"cpu_usage": 0.5, "memory_usage": 1000 + i}, "extra": {}}
        if i % 2:
            point["validation_loss"] = 2.0 / i
            point["extra"] = {"fold_1.accuracy": 0.9, "ndcg_at_10": math.nan}
        points.append(point)
    return points


def _fetch(points, calls=None):
    def fetch(after: int, limit: int):
        if calls is not None:
            calls.append((after, limit))
        return [p for p in points if p["sequence"] > after][:limit]

    return fetch


def test_json_holds_every_point_in_order_with_times_in_utc():
    points = _history(2500)
    calls = []
    chunks = list(metrics_export.export_metrics("projects/default/trainingJobs/j", _fetch(points, calls), "JSON"))
    document = json.loads(b"".join(chunks))
    assert document["job"] == "projects/default/trainingJobs/j" and document["format_version"] == 1
    assert [p["sequence"] for p in document["points"]] == list(range(1, 2501))
    assert document["points"][0]["time"] == "2026-01-01T00:00:01Z"
    assert document["points"][0]["extra"] == {"fold_1.accuracy": 0.9, "ndcg_at_10": None}  # NaN is not JSON
    assert calls == [(0, 1000), (1000, 1000), (2000, 1000), (2500, 1000)]  # page by page, never all at once
    assert len(chunks) == 5


def test_csv_has_a_column_for_every_value_any_point_has():
    points = _history(5)
    text = b"".join(metrics_export.export_metrics("j", _fetch(points), "METRICS_EXPORT_FORMAT_CSV")).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["sequence", "time", "epoch", "total_epochs", "progress", "epoch_seconds",
                             "training_loss", "validation_loss", "resource_usage.cpu_usage",
                             "resource_usage.memory_usage", "extra.fold_1.accuracy", "extra.ndcg_at_10"]
    assert [float(r["training_loss"]) for r in rows] == [p["training_loss"] for p in points]  # exact floats
    assert [r["validation_loss"] for r in rows][1] == "" and rows[0]["extra.ndcg_at_10"] == ""
    assert rows[4]["resource_usage.memory_usage"] == "1005"


def test_an_empty_history_is_an_empty_document():
    assert json.loads(b"".join(metrics_export.export_metrics("j", _fetch([]), "")))["points"] == []
    assert b"".join(metrics_export.export_metrics("j", _fetch([]), "csv")).decode().startswith("sequence,time,")


def test_an_unknown_format_names_the_field():
    with pytest.raises(InvalidArgument, match="format.*use json or csv"):
        metrics_export.export_metrics("j", _fetch([]), "xml")
