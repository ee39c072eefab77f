"""The durable metric and log history of each job, with per-job sequence numbers.

Sequences start at 1 and have no gaps, per job and per stream (metrics, logs). They are
assigned here, in the server process, so they continue across worker restarts
(resume, retry) and server restarts (read back from the database). Each metric point is
also charted in the job's TensorBoard event files once it is recorded (engine/monitor/tensorboard.py).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, select

from engine.monitor.bus import Bus
from engine.monitor.tensorboard import TensorBoardLogs
from engine.store.database import Database
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

    def append_metrics(self, job: str, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Persist metric points (TrainingMetrics fields) and wake watchers. Returns them sequenced."""
        if not points:
            return []
        stamped = []
        with self._lock:
            first = self._reserve(job, "metrics", len(points))
            with self._db.session() as s:
                for offset, values in enumerate(points):
                    row = MetricPointRow(
                        job=job, sequence=first + offset, time=now(), epoch=int(values.get("epoch", 0)), values=values
                    )
                    s.add(row)
                    stamped.append(_metric_dict(row))
            # Once committed, under the lock: the charts hold exactly the recorded points, in order.
            warning = self.tensorboard.write(job, stamped) if self.tensorboard else ""
        self._bus.publish(job)
        if warning:
            self.log(job, warning, "warning")
        return stamped

    def append_logs(self, job: str, entries: list[tuple[str, str, str, int]]) -> None:
        """Persist (level, message, source, epoch) log entries and wake watchers."""
        if not entries:
            return
        with self._lock:
            first = self._reserve(job, "logs", len(entries))
            with self._db.session() as s:
                for offset, (level, message, source, epoch) in enumerate(entries):
                    s.add(
                        LogEntryRow(
                            job=job,
                            sequence=first + offset,
                            time=now(),
                            level=LEVELS.get(level, 20),
                            message=message,
                            source=source,
                            epoch=epoch,
                        )
                    )
        self._bus.publish(job)

    def log(self, job: str, message: str, level: str = "info", epoch: int = 0) -> None:
        self.append_logs(job, [(level, message, "engine", epoch)])

    def metrics_after(self, job: str, after: int, limit: int) -> list[dict[str, Any]]:
        with self._db.session() as s:
            rows = s.scalars(
                select(MetricPointRow)
                .where(MetricPointRow.job == job, MetricPointRow.sequence > after)
                .order_by(MetricPointRow.sequence)
                .limit(limit)
            ).all()
            return [_metric_dict(r) for r in rows]

    def latest_metric(self, job: str) -> dict[str, Any] | None:
        with self._db.session() as s:
            row = s.scalars(
                select(MetricPointRow).where(MetricPointRow.job == job).order_by(MetricPointRow.sequence.desc()).limit(1)
            ).first()
            return _metric_dict(row) if row else None

    def logs_after(
        self, job: str, after: int, limit: int, min_level: int = 0, contains: str = ""
    ) -> tuple[list[dict[str, Any]], int]:
        """Entries after `after` that pass the filters, and the last sequence scanned.

        The scanned sequence lets a filtered stream move on past entries it skipped.
        """
        with self._db.session() as s:
            rows = s.scalars(
                select(LogEntryRow)
                .where(LogEntryRow.job == job, LogEntryRow.sequence > after)
                .order_by(LogEntryRow.sequence)
                .limit(limit)
            ).all()
        scanned = rows[-1].sequence if rows else after
        kept = [r for r in rows if r.level >= min_level and (not contains or contains in r.message)]
        return [_log_dict(r) for r in kept], scanned

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


def _metric_dict(row: MetricPointRow) -> dict[str, Any]:
    return {**row.values, "sequence": row.sequence, "time": row.time}


def _log_dict(row: LogEntryRow) -> dict[str, Any]:
    return {
        "sequence": row.sequence,
        "time": row.time,
        "level": LEVEL_NAMES.get(row.level, "info"),
        "message": row.message,
        "source": row.source,
        "epoch": row.epoch,
    }
