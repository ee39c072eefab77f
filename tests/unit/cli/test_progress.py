"""Live progress (forge/training/cli/progress.py): redrawn in place on a terminal, one line per
epoch in a log; and the exit codes scripts rely on (exit_codes.py)."""

from __future__ import annotations

import io

import grpc
import pytest

from forge.training.cli import exit_codes
from forge.training.cli.output import table
from forge.training.cli.progress import ByteProgress, EpochProgress
from forge.training.v1 import metrics_pb2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _point(epoch: int, total: int = 4, **metrics) -> metrics_pb2.TrainingMetrics:
    return metrics_pb2.TrainingMetrics(sequence=epoch, epoch=epoch, total_epochs=total, progress=epoch / total,
                                       epoch_seconds=2.0, **metrics)


def test_a_log_gets_one_line_per_epoch_with_the_metrics_the_job_reports():
    out = io.StringIO()
    display = EpochProgress(out, "projects/default/trainingJobs/j")
    display.waiting("PENDING")  # nothing in a log: only epochs
    display.add(_point(1, training_loss=0.51234, validation_loss=0.6, accuracy=0.9))
    display.add(_point(2, rmse=1.25, r2=0.5))
    assert out.getvalue() == ("epoch 1/4  training_loss 0.5123  validation_loss 0.6  accuracy 0.9  (2.00 s)\n"
                              "epoch 2/4  rmse 1.25  r2 0.5  (2.00 s)\n")


def test_a_terminal_gets_a_bar_and_a_table_redrawn_in_place(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out, clock = Terminal(), Clock()
    display = EpochProgress(out, "job-1", clock=clock)
    display.waiting("PENDING")
    first = out.getvalue()
    assert first == "job-1: PENDING, waiting for the first epoch\n"
    clock.now += 5
    display.add(_point(1, training_loss=0.5, accuracy=0.8))
    drawn = out.getvalue()[len(first):]
    assert drawn.startswith("\x1b[1A\r\x1b[J")  # up over the one line drawn before, then erase
    lines = drawn.removeprefix("\x1b[1A\r\x1b[J").splitlines()
    assert lines[0] == f"job-1  epoch 1/4 [{'#' * 8}{'.' * 22}]  25%  elapsed 0:00:05  eta 0:00:06"
    assert lines[2].split() == ["epoch", "training_loss", "accuracy", "seconds"]
    assert lines[3].split() == ["1", "0.5", "0.8", "2.00"]
    before = len(out.getvalue())
    for epoch in range(2, 13):
        display.add(_point(epoch, total=12, training_loss=0.1, accuracy=0.9))
    last = out.getvalue()[before:].rsplit("\x1b[", 1)[1]
    assert last.startswith("J")
    table_rows = last.splitlines()[3:]
    assert [row.split()[0] for row in table_rows] == [str(e) for e in range(5, 13)]  # the latest eight epochs
    assert "eta" not in last.splitlines()[0] and "100%" in last.splitlines()[0]


def test_lines_wider_than_the_terminal_are_cut_so_the_redraw_climbs_the_right_height(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    out = Terminal()
    display = EpochProgress(out, "projects/default/trainingJobs/a-long-job-name")
    display.add(_point(1, training_loss=0.5, validation_loss=0.4, accuracy=0.8, f1_score=0.7))
    display.add(_point(2, training_loss=0.5, validation_loss=0.4, accuracy=0.8, f1_score=0.7))
    first, second = out.getvalue().split("\x1b[")[0], out.getvalue().split("\x1b[")[1]
    assert all(len(line) <= 39 for line in first.splitlines())
    assert second.startswith(f"{len(first.splitlines())}A")


def test_byte_progress_is_throttled_on_a_terminal_and_silent_in_a_log():
    out, clock = Terminal(), Clock()
    progress = ByteProgress(out, "exporting j", clock=clock)
    progress(1024, 4096)
    progress(2048, 4096)  # within a tenth of a second: skipped
    clock.now += 1
    progress(4096, 4096)
    progress.close()
    assert out.getvalue() == ("\r\x1b[Kexporting j: 1.0 KiB / 4.0 KiB (25%)"
                              "\r\x1b[Kexporting j: 4.0 KiB / 4.0 KiB (100%)\n")
    quiet = io.StringIO()
    silent = ByteProgress(quiet, "exporting j")
    silent(10, 10)
    silent.close()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("status, code", [
    (grpc.StatusCode.INVALID_ARGUMENT, 2), (grpc.StatusCode.NOT_FOUND, 3), (grpc.StatusCode.UNAUTHENTICATED, 4),
    (grpc.StatusCode.PERMISSION_DENIED, 4), (grpc.StatusCode.UNAVAILABLE, 5), (grpc.StatusCode.DEADLINE_EXCEEDED, 5),
    (grpc.StatusCode.FAILED_PRECONDITION, 6), (grpc.StatusCode.ALREADY_EXISTS, 6), (grpc.StatusCode.INTERNAL, 7),
    (grpc.StatusCode.DATA_LOSS, 7), (grpc.StatusCode.RESOURCE_EXHAUSTED, 7),
])
def test_status_codes_map_to_documented_exit_codes(status, code):
    assert exit_codes.for_status(status) == code


def test_tables_right_align_numbers_only():
    assert table(["NAME", "ROWS", "NOTE"], [["a", 5, None], ["bbb", 1234, None]]) == (
        "NAME  ROWS  NOTE\n"
        "a        5  -\n"
        "bbb   1234  -")
