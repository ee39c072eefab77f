import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.monitor.bus import Bus
from engine.monitor.journal import Journal
from engine.monitor.tensorboard import TensorBoardLogs, masked_crc32c, record, scalars
from engine.store.database import Database

JOB = "projects/team-a/trainingJobs/job-1"


def _point(epoch: int, **values):
    """A point as a worker sends it to the journal."""
    return {"epoch": epoch, "total_epochs": 3, "progress": epoch / 3,
            "training_loss": 1.0 / epoch, "validation_loss": 1.5 / epoch, "accuracy": 0.5 + epoch / 10,
            "learning_rate": 0.01, "best_epoch": epoch, "epoch_seconds": 0.25, "extra": {"best_accuracy": 0.9},
            "resource_usage": {"cpu_usage": 0.125, "memory_usage": 64 << 20, "memory_total": 1 << 34,
                               "gpu_present": False},
            **values}


def _recorded(epoch: int):
    """A point as the journal hands it on once recorded."""
    return {**_point(epoch), "sequence": epoch, "time": datetime.now(timezone.utc)}


def _read(directory):
    """Scalars as TensorBoard reads the directory: {tag: [(step, value, wall_time)]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def _journal(tmp_path):
    bus = Bus()
    db = Database(f"sqlite:///{tmp_path / 'forge.db'}", on_commit=bus.publish)
    db.create_schema()
    return Journal(db, bus, TensorBoardLogs(tmp_path / "tensorboard"))


def test_crc32c_matches_the_standard_check_value():
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c

    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C (Castagnoli) check value
    framed = record(b"abc")
    assert framed[:8] == (3).to_bytes(8, "little") and framed[12:15] == b"abc"
    assert int.from_bytes(framed[8:12], "little") == masked_crc32c(framed[:8])
    assert int.from_bytes(framed[15:], "little") == masked_crc32c(b"abc")


def test_a_point_is_charted_by_section():
    values = scalars(_point(2))
    assert values == {
        "loss/train": 0.5, "loss/validation": 0.75, "metrics/accuracy": 0.7, "learning_rate": 0.01,
        "time/epoch_seconds": 0.25, "extra/best_accuracy": 0.9, "resources/cpu_percent": 12.5,
        "resources/memory_mib": 64.0,
    }
    gpu = {"cpu_usage": 0.5, "memory_usage": 0, "memory_total": 1, "gpu_present": True, "gpu_usage": 0.75,
           "gpu_memory": 512 << 20, "gpu_memory_total": 1 << 34}
    charted = scalars(_point(1, resource_usage=gpu))
    assert charted["resources/gpu_percent"] == 75.0 and charted["resources/gpu_memory_mib"] == 512.0


def test_tensorboard_reads_every_point_back(tmp_path):
    logs = TensorBoardLogs(tmp_path)
    points = [_recorded(1), _recorded(2), _recorded(3)]
    assert logs.written_dir(JOB) == ""
    assert logs.write(JOB, points[:2]) == "" and logs.write(JOB, points[2:]) == ""
    assert logs.written_dir(JOB) == str(tmp_path.resolve() / "team-a" / "job-1")
    assert len(list((tmp_path / "team-a" / "job-1").iterdir())) == 1  # one file per job and process
    read = _read(logs.written_dir(JOB))
    assert set(read) == set(scalars(points[0]))
    assert [(step, value) for step, value, _ in read["loss/train"]] == [
        (p["epoch"], pytest.approx(p["training_loss"], rel=1e-6)) for p in points]
    assert [wall for _, _, wall in read["metrics/accuracy"]] == [pytest.approx(p["time"].timestamp()) for p in points]


def test_a_damaged_record_is_refused_by_the_reader(tmp_path):
    """The checksums are what TensorBoard checks: a flipped byte ends the file there."""
    logs = TensorBoardLogs(tmp_path)
    logs.write(JOB, [_recorded(1)])
    logs.write(JOB, [_recorded(2)])
    (path,) = logs.log_dir(JOB).iterdir()
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the second point's event
    path.write_bytes(bytes(data))
    assert [step for step, _, _ in _read(logs.log_dir(JOB))["loss/train"]] == [1]


def test_a_restarted_server_adds_a_file_and_repeats_nothing(tmp_path):
    journal = _journal(tmp_path)
    journal.append(JOB, points=[_point(1), _point(2)])
    restarted = _journal(tmp_path)  # a new server process, possibly within the same second
    restarted.append(JOB, points=[_point(3)])
    directory = restarted.tensorboard.log_dir(JOB)
    files = sorted(p.name for p in directory.iterdir())
    assert len(files) == 2 and files[1].split(".")[3] > files[0].split(".")[3]  # read in the order written
    assert [step for step, _, _ in _read(directory)["loss/validation"]] == [1, 2, 3]


def test_deleting_the_job_deletes_its_event_files(tmp_path):
    journal = _journal(tmp_path)
    journal.append(JOB, points=[_point(1)])
    journal.delete(JOB)
    assert journal.tensorboard.written_dir(JOB) == ""
    journal.append(JOB, points=[_point(1)])  # the same id again starts a fresh chart
    assert [step for step, _, _ in _read(journal.tensorboard.log_dir(JOB))["loss/train"]] == [1]


def test_a_write_failure_warns_once_and_never_stops_the_metrics(tmp_path):
    journal = _journal(tmp_path)
    (tmp_path / "tensorboard").write_text("a file where the directory should be")
    journal.append(JOB, points=[_point(1)])
    journal.append(JOB, points=[_point(2)])
    assert [p["epoch"] for p in journal.metrics_after(JOB, 0, 10)] == [1, 2]
    warnings, _ = journal.logs_after(JOB, 0, 10, min_level=30)
    assert len(warnings) == 1
    assert warnings[0]["message"].startswith(
        f"TensorBoard event files could not be written under {tmp_path / 'tensorboard'}: ")


def test_writing_event_files_does_not_import_tensorflow(tmp_path):
    code = ("import sys; from datetime import datetime, timezone; "
            "from engine.monitor.tensorboard import TensorBoardLogs; "
            f"TensorBoardLogs({str(tmp_path)!r}).write({JOB!r}, [{{'epoch': 1, 'training_loss': 0.5, "
            "'time': datetime.now(timezone.utc)}]); "
            "loaded = [m for m in sys.modules if m.split('.')[0] == 'tensorflow']; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=Path(__file__).parents[4])
    assert (tmp_path / "team-a" / "job-1").is_dir()
