"""Live progress without extra dependencies: a job's epochs (a bar and a metric table redrawn in
place on a terminal, one line per epoch otherwise) and bytes of a download."""

from __future__ import annotations

import shutil
import time
from typing import TextIO

from forge.training.cli.output import number, size, table
from forge.training.v1 import metrics_pb2

#: Metrics shown per epoch, where the job reports them (classification or regression).
METRICS = ("training_loss", "validation_loss", "accuracy", "f1_score", "rmse", "mae", "r2")
BAR_WIDTH = 30
TABLE_ROWS = 8  # the latest epochs kept on screen

_UP_AND_CLEAR = "\x1b[{lines}A\r\x1b[J"  # cursor up over the last drawing, erase to the end of the screen


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def present_metrics(point: metrics_pb2.TrainingMetrics) -> list[str]:
    return [name for name in METRICS if point.HasField(name)]


class EpochProgress:
    """Shows a job's metric points as they arrive."""

    def __init__(self, out: TextIO, job: str, *, live: bool | None = None, clock=time.monotonic):
        self.out = out
        self.job = job
        self.live = _is_terminal(out) if live is None else live
        self.clock = clock
        self.started = clock()
        self.points: list[metrics_pb2.TrainingMetrics] = []
        self.columns: list[str] = []
        self._drawn = 0  # lines of the last drawing, to redraw over

    def waiting(self, state: str) -> None:
        """Before the first epoch ends (on a terminal only: a log stays quiet)."""
        if self.live:
            self._draw([f"{self.job}: {state}, waiting for the first epoch"])

    def add(self, point: metrics_pb2.TrainingMetrics) -> None:
        self.points.append(point)
        for name in present_metrics(point):
            if name not in self.columns:
                self.columns.append(name)
        if self.live:
            self._draw([self._bar(point), ""] + self._table().splitlines())
        else:
            self.out.write(self.line(point) + "\n")
            self.out.flush()

    def line(self, point: metrics_pb2.TrainingMetrics) -> str:
        """One epoch as one line: `epoch 2/3  training_loss 0.2374  ...  (0.12 s)`; an epoch of
        a cross-validation fold says which (`epoch 2/12 fold 1/3`)."""
        parts = [f"epoch {point.epoch}/{point.total_epochs}" + _fold(point)]
        parts += [f"{name} {number(getattr(point, name))}" for name in present_metrics(point)]
        parts.append(f"({point.epoch_seconds:.2f} s)")
        return "  ".join(parts)

    def _bar(self, point: metrics_pb2.TrainingMetrics) -> str:
        fraction = min(max(point.progress, 0.0), 1.0)
        filled = int(round(fraction * BAR_WIDTH))
        elapsed = self.clock() - self.started
        timing = f"elapsed {_duration(elapsed)}"
        durations = [p.epoch_seconds for p in self.points if p.epoch_seconds > 0]
        remaining = point.total_epochs - point.epoch
        if durations and remaining > 0:
            timing += f"  eta {_duration(remaining * sum(durations) / len(durations))}"
        return (f"{self.job}  epoch {point.epoch}/{point.total_epochs} "
                f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction * 100:3.0f}%  {timing}")

    def _table(self) -> str:
        rows = [[p.epoch] + [getattr(p, name) if p.HasField(name) else None for name in self.columns]
                + [f"{p.epoch_seconds:.2f}"] for p in self.points[-TABLE_ROWS:]]
        return table(["epoch", *self.columns, "seconds"], rows)

    def _draw(self, lines: list[str]) -> None:
        # A line wider than the terminal would wrap, and the redraw would then climb too few lines.
        width = shutil.get_terminal_size().columns
        lines = [line[: width - 1] for line in lines]
        if self._drawn:
            self.out.write(_UP_AND_CLEAR.format(lines=self._drawn))
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self._drawn = len(lines)


def _fold(point: metrics_pb2.TrainingMetrics) -> str:
    """" fold 2" for a point of a cross-validation fold ("" for the final model, or no folds)."""
    fold = int(point.extra.get("cv_fold", 0))
    return f" fold {fold}" if fold else ""


class ByteProgress:
    """`label: 1.2 MiB / 3.4 MiB (35%)`, redrawn on one line of a terminal at most ten times a
    second; silent elsewhere (the command prints its result when done)."""

    def __init__(self, out: TextIO, label: str, *, live: bool | None = None, clock=time.monotonic):
        self.out = out
        self.label = label
        self.live = _is_terminal(out) if live is None else live
        self.clock = clock
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.live:
            return
        now = self.clock()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        percent = f" ({done * 100 // total}%)" if total else ""
        self.out.write(f"\r\x1b[K{self.label}: {size(done)} / {size(total)}{percent}")
        self.out.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.out.write("\n")
            self.out.flush()
