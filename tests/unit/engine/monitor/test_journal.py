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
    journal.append_metrics("job", [{"epoch": 1}, {"epoch": 2}])
    journal.log("job", "hello")
    restarted, _ = _journal(tmp_path)  # a new server process reads the last sequence back
    restarted.append_metrics("job", [{"epoch": 3}])
    assert [p["sequence"] for p in restarted.metrics_after("job", 0, 10)] == [1, 2, 3]
    assert [p["epoch"] for p in restarted.metrics_after("job", 1, 10)] == [2, 3]
    assert restarted.latest_metric("job")["epoch"] == 3
    assert restarted.metrics_after("other", 0, 10) == []


def test_log_filters_report_how_far_they_scanned(tmp_path):
    journal, _ = _journal(tmp_path)
    journal.append_logs("job", [("info", "epoch 1", "worker", 1), ("warning", "slow", "worker", 1),
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
    journal.append_metrics("job", [{"epoch": 1}])
    journal.delete("job")
    assert journal.metrics_after("job", 0, 10) == []
    journal.append_metrics("job", [{"epoch": 1}])
    assert journal.latest_metric("job")["sequence"] == 1
