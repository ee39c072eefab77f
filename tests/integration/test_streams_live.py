"""Live metric and log streams of a running job, through a real server: every watcher gets every
point once, in order, as soon as it is recorded, whether it joined at the start, in the middle or
replays the history first, and a watcher that reconnects from its last sequence goes on exactly."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from forge.training import common_pb2, trainer_service_pb2

LIVE_POINTS = 30


def _sgd(dataset: str) -> dict:
    return {
        "modelType": "classification",
        "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
        "trainingConfig": {"epochs": 5000, "seed": 3},
        "dataConfig": {"trainDataset": dataset, "labelColumn": "target"},
    }


@pytest.fixture(scope="module")
def running_job(client, breast_cancer_csv):
    dataset = client.upload_dataset(breast_cancer_csv, dataset_id="bc-live-streams", label_column="target")
    job = client.start_training(_sgd(dataset.name))
    for _ in client.watch_metrics(job.name):
        break  # it is running and has recorded its first point
    yield job.name
    client.cancel(job.name, wait=True)


class Watcher(threading.Thread):
    """WatchTrainingMetrics(follow=true) on the raw stub (the SDK would hide repeats): the
    sequences it got, and how long after the server recorded each point it arrived."""

    def __init__(self, client, job: str, from_sequence: int, points: int):
        super().__init__(daemon=True)
        self.client, self.job, self.from_sequence, self.points = client, job, from_sequence, points
        self.sequences: list[int] = []
        self.delays: list[float] = []
        self.error: Exception | None = None

    def run(self) -> None:
        call = self.client.trainer.WatchTrainingMetrics(trainer_service_pb2.WatchTrainingMetricsRequest(
            name=self.job, from_sequence=self.from_sequence, follow=True))
        try:
            for message in call:
                now = time.time()
                for point in message.points:
                    self.sequences.append(point.sequence)
                    self.delays.append(now - point.time.seconds - point.time.nanos * 1e-9)
                if len(self.sequences) >= self.points:
                    return
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            call.cancel()


def _latest(client, job: str) -> int:
    return client.get_metrics(job).sequence


def test_live_watchers_get_every_point_once_in_order_and_promptly(client, running_job):
    start = _latest(client, running_job)
    live = [Watcher(client, running_job, start, LIVE_POINTS) for _ in range(8)]
    replaying = Watcher(client, running_job, 0, start + LIVE_POINTS)  # the whole history, then live
    for watcher in (*live, replaying):
        watcher.start()
    for watcher in (*live, replaying):
        watcher.join(120)
        assert not watcher.is_alive() and watcher.error is None, watcher.error
    for watcher in live:
        assert watcher.sequences[:LIVE_POINTS] == list(range(start + 1, start + LIVE_POINTS + 1))
    assert replaying.sequences[:start + LIVE_POINTS] == list(range(1, start + LIVE_POINTS + 1))
    # Pushed when recorded, not found by the streams' 5 s safety-net wake-up. The latency itself is
    # a speed target, measured by bench/fanout.py (p99 <= 100 ms with 500 watchers): on this
    # 2-core machine, with the other test process training beside it, the median here was 15 ms
    # in one run and 150 ms in another, so the test holds only the order of magnitude.
    delays = [delay for watcher in live for delay in watcher.delays]
    assert statistics.median(delays) < 1.0, sorted(delays)


def test_a_watcher_that_reconnects_from_its_last_sequence_goes_on_exactly(client, running_job):
    first = Watcher(client, running_job, _latest(client, running_job), 5)
    first.run()
    assert first.error is None
    second = Watcher(client, running_job, first.sequences[-1], 5)
    second.run()
    assert second.error is None
    received = first.sequences + second.sequences
    assert received == list(range(received[0], received[0] + len(received)))


def test_a_filtered_live_log_stream_gets_only_matching_entries_in_order(client, running_job):
    entries = []
    for entry in client.stream_logs(running_job, min_level="info", contains="epoch "):
        entries.append(entry)
        if len(entries) == 10:
            break
    assert all(entry.message.startswith("epoch ") for entry in entries), [e.message for e in entries]
    sequences = [entry.sequence for entry in entries]
    assert sequences == sorted(set(sequences))


def test_a_stream_of_a_job_that_ends_says_so_last(client, breast_cancer_csv):
    dataset = client.upload_dataset(breast_cancer_csv, dataset_id="bc-live-streams-end", label_column="target")
    job = client.start_training({**_sgd(dataset.name), "trainingConfig": {"epochs": 4, "seed": 3}})
    messages = list(client.trainer.WatchTrainingMetrics(trainer_service_pb2.WatchTrainingMetricsRequest(
        name=job.name, follow=True)))
    assert [p.sequence for m in messages for p in m.points] == [1, 2, 3, 4]
    assert messages[-1].job_state == common_pb2.JOB_STATE_COMPLETED
