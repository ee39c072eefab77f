"""The durable metric and log history of each job, with per-job sequence numbers.

Sequences start at 1 and have no gaps, per job and per stream (metrics, logs). They are
assigned here, in the server process, so they continue across worker restarts
(resume, retry) and server restarts (read back from the database). Each metric point is
also charted in the job's TensorBoard event files once it is recorded (engine/monitor/tensorboard.py).

Once committed, records are handed to the bus as they are (the "metrics" and "logs" feeds),
so watchers that are caught up get them without reading the database again. Rows are
written and read as plain columns (SQLAlchemy Core), not ORM objects: a replay of a long
history spends its time on the records, not on the objects around them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select

from engine.monitor.bus import Bus
from engine.monitor.tensorboard import TensorBoardLogs
from engine.store.database import Database, DriverStatements
from engine.store.models import LogEntryRow, MetricPointRow

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
LEVEL_NAMES = {value: name for name, value in LEVELS.items()}


def now() -> datetime:
    return datetime.now(timezone.utc)


class Journal:
    def __init__(self, db: Database, bus: Bus, tensorboard: TensorBoardLogs | None = None):
        self._db = db
        self._bus = bus
        self.tensorboard = tensorboard
        self._lock = threading.Lock()
        self._next: dict[tuple[str, str], int] = {}
        # A recorded point (its values, sequence and time) as the bytes streams send: the server
        # gives it (its TrainingMetrics encoding), so the engine stores them without knowing the
        # format. None: points are stored without (encoded_metrics_after then cannot be used).
        self.encode_metric: Callable[[dict[str, Any]], bytes] | None = None

    def _reserve(self, job: str, kind: str, count: int) -> int:
        """First of `count` new sequence numbers of `job`'s `kind` stream. Caller holds the lock."""
        key = (job, kind)
        if key not in self._next:
            table = MetricPointRow if kind == "metrics" else LogEntryRow
            with self._db.session() as s:
                last = s.scalar(select(func.max(table.sequence)).where(table.job == job)) or 0
            self._next[key] = last + 1
        first = self._next[key]
        self._next[key] = first + count
        return first

    def append(self, job: str, logs: list[tuple[str, str, str, int]] = (), points: list[dict[str, Any]] = (),
               in_transaction: Callable[[DriverStatements, list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
        """Persist (level, message, source, epoch) log entries and metric points (TrainingMetrics
        fields) in one transaction, together with the caller's `in_transaction(statements, stamped
        points)`, then wake watchers. Returns the points sequenced.

        One transaction per batch because a worker reports an epoch's point and log lines
        together: on 2 cores each commit the server makes is time taken from the training."""
        if not logs and not points:
            return []
        with self._lock:
            try:
                log_rows: list[dict[str, Any]] = []
                if logs:
                    first = self._reserve(job, "logs", len(logs))
                    log_rows = [{"job": job, "sequence": first + offset, "time": now(),
                                 "level": LEVELS.get(level, 20), "message": message, "source": source, "epoch": epoch}
                                for offset, (level, message, source, epoch) in enumerate(logs)]
                stamped: list[dict[str, Any]] = []
                point_rows: list[dict[str, Any]] = []
                if points:
                    first = self._reserve(job, "metrics", len(points))
                    stamped = [{**values, "sequence": first + offset, "time": now()}
                               for offset, values in enumerate(points)]
                    encode = self.encode_metric
                    point_rows = [{"job": job, "sequence": point["sequence"], "time": point["time"],
                                   "epoch": int(values.get("epoch", 0)), "values": values,
                                   "wire": encode(point) if encode is not None else None}
                                  for values, point in zip(points, stamped)]
                with self._db.driver_transaction() as statements:
                    if log_rows:
                        statements.run(_INSERT_LOGS, log_rows)
                    if point_rows:
                        statements.run(_INSERT_POINTS, point_rows)
                    if in_transaction is not None:
                        in_transaction(statements, stamped)
            except BaseException:
                # Nothing was written: the reserved sequences were not used; read them back next time, no gap.
                self._next.pop((job, "logs"), None)
                self._next.pop((job, "metrics"), None)
                raise
            # Under the lock: the feeds get each job's records in sequence order.
            if log_rows:
                self._bus.publish(job, "logs", [_log_dict(row) for row in log_rows])
            if stamped:
                self._bus.publish(job, "metrics", stamped)
            # Once committed, under the lock: the charts hold exactly the recorded points, in order.
            warning = self.tensorboard.write(job, stamped) if self.tensorboard and stamped else ""
        if warning:
            self.log(job, warning, "warning")
        return stamped

    def log(self, job: str, message: str, level: str = "info", epoch: int = 0) -> None:
        self.append(job, logs=[(level, message, "engine", epoch)])

    def metrics_after(self, job: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self._db.driver_rows(_METRICS_AFTER, {"job": job, "after": after, "limit": limit})
        return [_decoded(*row) for row in rows]

    def encoded_metrics_after(self, job: str, after: int, limit: int) -> tuple[list[bytes], int]:
        """encode_metric's bytes of the points after sequence `after` (stored when each point was
        recorded, else, for points recorded before the column existed, encoded now), and the
        last point's sequence (`after` when there is none)."""
        encode = self.encode_metric
        if encode is None:
            raise RuntimeError("encoded_metrics_after needs Journal.encode_metric")
        rows = self._db.driver_rows(_ENCODED_AFTER, {"job": job, "after": after, "limit": limit})
        # The drivers give a BLOB/bytea as bytes; a replay reads each point's here, so nothing else
        # happens to it. The values of points stored without are read only when there are some.
        unencoded = [sequence for sequence, wire in rows if wire is None]
        if unencoded:
            points = self.metrics_after(job, unencoded[0] - 1, unencoded[-1] - unencoded[0] + 1)
            values = {point["sequence"]: point for point in points}
            encoded = [wire if wire is not None else encode(values[sequence]) for sequence, wire in rows]
        else:
            encoded = [wire for _, wire in rows]
        return encoded, rows[-1][0] if rows else after

    def latest_metric(self, job: str) -> dict[str, Any] | None:
        with self._db.session() as s:
            row = s.execute(
                select(MetricPointRow.sequence, MetricPointRow.time, MetricPointRow.values)
                .where(MetricPointRow.job == job)
                .order_by(MetricPointRow.sequence.desc())
                .limit(1)
            ).first()
        return {**row.values, "sequence": row.sequence, "time": row.time} if row else None

    def logs_after(
        self, job: str, after: int, limit: int, min_level: int = 0, contains: str = ""
    ) -> tuple[list[dict[str, Any]], int]:
        """Entries after `after` that pass the filters, and the last sequence scanned.

        The scanned sequence lets a filtered stream move on past entries it skipped.
        """
        columns = (LogEntryRow.sequence, LogEntryRow.time, LogEntryRow.level, LogEntryRow.message,
                   LogEntryRow.source, LogEntryRow.epoch)
        with self._db.session() as s:
            rows = s.execute(
                select(*columns)
                .where(LogEntryRow.job == job, LogEntryRow.sequence > after)
                .order_by(LogEntryRow.sequence)
                .limit(limit)
            ).all()
        scanned = rows[-1].sequence if rows else after
        entries = (_log_dict(row._mapping) for row in rows)
        return [entry for entry in entries if log_passes(entry, min_level, contains)], scanned

    def delete(self, job: str) -> None:
        with self._lock:
            with self._db.session() as s:
                s.execute(delete(MetricPointRow).where(MetricPointRow.job == job))
                s.execute(delete(LogEntryRow).where(LogEntryRow.job == job))
            self._next.pop((job, "metrics"), None)
            self._next.pop((job, "logs"), None)
            if self.tensorboard:
                self.tensorboard.delete(job)
        self._bus.forget(job)


# The statements of the hot paths, run on the driver's cursor (Database.driver_rows and
# driver_transaction): a replay reads many thousands of rows, and SQLAlchemy's result rows and
# column types (decoding each JSON value, parsing each SQLite timestamp) cost more than the
# database does; every epoch of every job writes a point and a log line. Read columns come back
# as the driver gives them: SQLite timestamps and JSON as text, PostgreSQL's already decoded.
_INSERT_POINTS = insert(MetricPointRow)
_INSERT_LOGS = insert(LogEntryRow)

_METRICS_AFTER = (select(MetricPointRow.sequence, MetricPointRow.time, MetricPointRow.values)
                  .where(MetricPointRow.job == bindparam("job"), MetricPointRow.sequence > bindparam("after"))
                  .order_by(MetricPointRow.sequence)
                  .limit(bindparam("limit")))


_ENCODED_AFTER = (select(MetricPointRow.sequence, MetricPointRow.wire)
                  .where(MetricPointRow.job == bindparam("job"), MetricPointRow.sequence > bindparam("after"))
                  .order_by(MetricPointRow.sequence)
                  .limit(bindparam("limit")))


def _decoded(sequence: int, time: Any, values: Any) -> dict[str, Any]:
    """A metric point from its driver columns: SQLite gives the time and JSON as text,
    PostgreSQL already decoded."""
    return {**(json.loads(values) if isinstance(values, (str, bytes)) else values), "sequence": sequence,
            "time": datetime.fromisoformat(time) if isinstance(time, str) else time}


def log_passes(entry: dict[str, Any], min_level: int, contains: str) -> bool:
    """Whether a log entry passes a stream's filters: its level at least `min_level` (10 debug ...
    40 error), its message holding `contains`."""
    return LEVELS.get(entry["level"], 20) >= min_level and (not contains or contains in entry["message"])


def _log_dict(row: Any) -> dict[str, Any]:
    """A log entry as streams see it, from its row's columns (anything with [] by column name)."""
    return {
        "sequence": row["sequence"],
        "time": row["time"],
        "level": LEVEL_NAMES.get(row["level"], "info"),
        "message": row["message"],
        "source": row["source"],
        "epoch": row["epoch"],
    }
