"""TensorBoard event files of each job: one event per recorded metric point, step = epoch.

They are written in the server process, by the journal, as each point is recorded: a point
replayed after a crash is never recorded, so it is never written twice either, and a
server restart simply starts a new file in the same directory (TensorBoard merges them).

The files are TFRecord files of `Event` protos, framed here rather than with TensorBoard's
EventFileWriter, which imports TensorFlow when it is installed: far too heavy for the server.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import socket
import struct
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

# The pure-Python CRC-32C TensorBoard itself reads records with when TensorFlow is absent.
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from engine import names

log = logging.getLogger("forge.engine.tensorboard")

# Tags of TrainingMetrics fields: the two losses share a section, so their charts sit together.
_TAGS = {
    "training_loss": "loss/train",
    "validation_loss": "loss/validation",
    "best_loss": "loss/best",
    "learning_rate": "learning_rate",
    "gradient_norm": "gradient_norm",
    "epoch_seconds": "time/epoch_seconds",
}
# Other numeric fields of a point describe its position, not the model: they are not charted.
_NOT_SCALARS = frozenset({"epoch", "total_epochs", "progress", "best_epoch", "sequence"})
_MIB = float(1 << 20)
_EVENT_FILE = re.compile(r"^events\.out\.tfevents\.(\d+)\.")
_file_counter = itertools.count()


def record(data: bytes) -> bytes:
    """`data` framed as one TFRecord: length, its masked CRC-32C, data, its masked CRC-32C."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def scalars(point: dict[str, Any]) -> dict[str, float]:
    """The tags and values one metric point (TrainingMetrics fields) is charted as."""
    values: dict[str, float] = {}
    for key, value in point.items():
        if key in _NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        values[_TAGS.get(key, f"metrics/{key}")] = float(value)  # accuracy, rmse, ... and any added later
    for key, value in (point.get("extra") or {}).items():
        values[f"extra/{key}"] = float(value)
    usage = point.get("resource_usage") or {}
    if usage:
        values["resources/cpu_percent"] = 100.0 * float(usage.get("cpu_usage", 0.0))
        values["resources/memory_mib"] = int(usage.get("memory_usage", 0)) / _MIB
        if usage.get("gpu_present"):  # without a GPU its charts are absent, never a flat zero
            values["resources/gpu_percent"] = 100.0 * float(usage["gpu_usage"])
            values["resources/gpu_memory_mib"] = int(usage["gpu_memory"]) / _MIB
    return values


def point_event(point: dict[str, Any]) -> event_pb2.Event:
    wall_time = point["time"].timestamp() if isinstance(point.get("time"), datetime) else time.time()
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)
                                         for tag, value in scalars(point).items()])
    return event_pb2.Event(wall_time=wall_time, step=int(point.get("epoch", 0)), summary=summary)


def _new_file_name(directory: Path) -> str:
    """TensorBoard's own naming. The time is at least one second past every file already there:
    TensorBoard reads a run's files in name order, and a server restarted within the same second
    must still come after the one before it."""
    seconds = int(time.time())
    for existing in directory.iterdir():
        found = _EVENT_FILE.match(existing.name)
        if found:
            seconds = max(seconds, int(found.group(1)) + 1)
    return f"events.out.tfevents.{seconds:010d}.{socket.gethostname()}.{os.getpid()}.{next(_file_counter)}"


class TensorBoardLogs:
    """Event files under `root/{project}/{job id}/`, one per job and server process.

    Each write opens the file, appends and closes it again: every epoch is on disk for a live
    `tensorboard` as soon as it is recorded, and no descriptor is held for jobs that ended.
    """

    def __init__(self, root: Path):
        self.root = Path(root).resolve()  # the job reports it: absolute, whatever the data dir was given as
        self._lock = threading.Lock()
        self._files: dict[str, Path] = {}
        self._stopped: set[str] = set()

    def log_dir(self, job: str) -> Path:
        return self.root / names.project_of(job) / names.short_id(job)

    def written_dir(self, job: str) -> str:
        """The job's directory once something has been written to it; "" before."""
        directory = self.log_dir(job)
        return str(directory) if directory.is_dir() else ""

    def write(self, job: str, points: list[dict[str, Any]]) -> str:
        """Append recorded points. Never raises: on the first failure it stops writing for this
        job and returns the warning to log, so a full disk costs the charts, not the job."""
        if not points or job in self._stopped:
            return ""
        try:
            data = b"".join(record(point_event(p).SerializeToString()) for p in points)
            with self._lock:
                path = self._files.get(job)
                if path is None:
                    directory = self.log_dir(job)
                    directory.mkdir(parents=True, exist_ok=True)
                    path = directory / _new_file_name(directory)
                    first = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
                    data = record(first.SerializeToString()) + data
                    self._files[job] = path
                with open(path, "ab") as f:
                    f.write(data)
        except Exception as exc:  # OSError above all; whatever it is, training goes on
            self._stopped.add(job)
            message = (f"TensorBoard event files could not be written under {self.root}: "
                       f"{type(exc).__name__}: {exc}; no more are written for this job (its metrics are "
                       "still recorded)")
            log.warning("%s: %s", job, message)
            return message
        return ""

    def delete(self, job: str) -> None:
        with self._lock:
            self._files.pop(job, None)
            self._stopped.discard(job)
            shutil.rmtree(self.log_dir(job), ignore_errors=True)
