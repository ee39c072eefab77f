import pytest
import threading

from engine.monitor.bus import Bus
from engine.monitor.journal import Journal
from engine.store.database import Database


def _journal(tmp_path, bus=None):
    bus = bus or Bus()
    db = Database(f"sqlite:///{tmp_path / 'forge.db'}", on_commit=bus.publish)
    db.create_schema()
    return Journal(db, bus), bus


def test_sequences_are_contiguous_and_survive_a_restart(tmp_path):
    journal, _ = _journal(tmp_path)
    journal.append("job", points=[{"epoch": 1}, {"epoch": 2}])
    journal.log("job", "hello")
    restarted, _ = _journal(tmp_path)  # a new server process reads the last sequence back
    restarted.append("job", points=[{"epoch": 3}])
    assert [p["sequence"] for p in restarted.metrics_after("job", 0, 10)] == [1, 2, 3]
    assert [p["epoch"] for p in restarted.metrics_after("job", 1, 10)] == [2, 3]
    assert restarted.latest_metric("job")["epoch"] == 3
    assert restarted.metrics_after("other", 0, 10) == []


def test_log_filters_report_how_far_they_scanned(tmp_path):
    journal, _ = _journal(tmp_path)
    journal.append("job", logs=[("info", "epoch 1", "worker", 1), ("warning", "slow", "worker", 1),
                                ("info", "epoch 2", "worker", 2)])
    warnings, scanned = journal.logs_after("job", 0, 10, min_level=30)
    assert [e["message"] for e in warnings] == ["slow"] and scanned == 3
    found, _ = journal.logs_after("job", 0, 10, contains="epoch 2")
    assert [e["sequence"] for e in found] == [3]


def test_appending_wakes_a_waiting_watcher(tmp_path):
    journal, bus = _journal(tmp_path)
    seen = bus.version("job")
    timer = threading.Timer(0.1, journal.log, args=("job", "wake up"))
    timer.start()
    assert bus.wait_blocking("job", seen, timeout=5) != seen
    timer.join()


def test_delete_forgets_the_history(tmp_path):
    journal, _ = _journal(tmp_path)
    journal.append("job", points=[{"epoch": 1}])
    journal.delete("job")
    assert journal.metrics_after("job", 0, 10) == []
    journal.append("job", points=[{"epoch": 1}])
    assert journal.latest_metric("job")["sequence"] == 1


def test_points_keep_their_encoding_and_older_points_are_encoded_when_read(tmp_path):
    import json

    journal, _ = _journal(tmp_path)
    journal.append("job", points=[{"epoch": 1, "accuracy": 0.5}])  # no encoder yet: stored without
    journal.encode_metric = lambda point: json.dumps({"e": point["epoch"], "s": point["sequence"]}).encode()
    journal.append("job", points=[{"epoch": 2}, {"epoch": 3}])
    journal.encode_metric = lambda point: b"encoded when read"  # the stored bytes are what is read back
    assert journal.encoded_metrics_after("job", 0, 10) == (
        [b"encoded when read", b'{"e": 2, "s": 2}', b'{"e": 3, "s": 3}'], 3)
    assert journal.encoded_metrics_after("job", 1, 1) == ([b'{"e": 2, "s": 2}'], 2)
    assert journal.encoded_metrics_after("job", 3, 10) == ([], 3)
    assert [p["epoch"] for p in journal.metrics_after("job", 0, 10)] == [1, 2, 3]  # the values as ever


def test_an_epochs_logs_points_and_the_callers_update_commit_together_or_not_at_all(tmp_path):
    from engine.store.models import LogEntryRow, MetricPointRow

    journal, _ = _journal(tmp_path)

    def fail(statements, stamped):
        assert [p["sequence"] for p in stamped] == [1]
        raise RuntimeError("the job's row is gone")

    with pytest.raises(RuntimeError):
        journal.append("job", logs=[("info", "epoch 1", "worker", 1)], points=[{"epoch": 1}], in_transaction=fail)
    assert journal.metrics_after("job", 0, 10) == []
    assert journal.logs_after("job", 0, 10)[0] == []

    seen = []
    stamped = journal.append("job", logs=[("info", "epoch 1", "worker", 1)],
                             points=[{"epoch": 1, "values": {"nested": [1, 2]}}],
                             in_transaction=lambda statements, points: seen.append(points))
    # Nothing was lost to the failed attempt: the sequences start at 1, without a gap.
    assert [p["sequence"] for p in stamped] == [1] and seen == [stamped]
    # Written on the driver's cursor, read back through the ORM's column types: the same values.
    with journal._db.session() as s:
        point = s.get(MetricPointRow, ("job", 1))
        entry = s.get(LogEntryRow, ("job", 1))
        assert point.values == {"epoch": 1, "values": {"nested": [1, 2]}}
        assert point.time.replace(tzinfo=None) == stamped[0]["time"].replace(tzinfo=None)
        assert (entry.message, entry.level, entry.source, entry.epoch) == ("epoch 1", 20, "worker", 1)
