"""Unit tests of the Python SDK's own logic (clients/python).

The real server is built elsewhere; these tests run the SDK against small FAKE
servicers in an in-process gRPC server on port 0, and check only what the SDK
itself does: reconnecting streams, export verification, error parsing, upload
chunking, spec parsing and resource-name handling.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest

try:
    import forge.training  # noqa: F401
except ImportError:  # not installed: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "clients" / "python"))

from google.protobuf import any_pb2, duration_pb2, struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from forge.training import Client, ForgeTrainingError, export_format, data_format, log_level
from forge.training.errors import from_rpc_error
from forge.training.v1 import (
    common_pb2,
    data_service_pb2,
    data_service_pb2_grpc,
    dataset_pb2,
    metrics_pb2,
    model_pb2,
    trainer_service_pb2,
    trainer_service_pb2_grpc,
    training_job_pb2,
)

MiB = 1024 * 1024
JS = common_pb2.JobState
RUNNING, COMPLETED, PAUSING, PAUSED = (
    JS.JOB_STATE_RUNNING,
    JS.JOB_STATE_COMPLETED,
    JS.JOB_STATE_PAUSING,
    JS.JOB_STATE_PAUSED,
)


@contextlib.contextmanager
def serve(trainer=None, data=None, **client_kwargs):
    """Runs fake servicers on 127.0.0.1:0 and yields a Client connected to them."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    if trainer is not None:
        trainer_service_pb2_grpc.add_TrainerServiceServicer_to_server(trainer, server)
    if data is not None:
        data_service_pb2_grpc.add_DataServiceServicer_to_server(data, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = Client(f"127.0.0.1:{port}", timeout=5, **client_kwargs)
    client.reconnect_backoff = 0.01
    try:
        yield client
    finally:
        client.close()
        server.stop(None)


def point(seq: int) -> metrics_pb2.TrainingMetrics:
    return metrics_pb2.TrainingMetrics(sequence=seq, epoch=seq, total_epochs=10, training_loss=1.0 / seq)


def batches(first: int, last: int, size: int = 2):
    """Sequences first..last in lists of `size`."""
    seqs = list(range(first, last + 1))
    return [seqs[i : i + size] for i in range(0, len(seqs), size)]


# ---------------------------------------------------------------------------
# Reconnecting streams
# ---------------------------------------------------------------------------


class MetricsFake(trainer_service_pb2_grpc.TrainerServiceServicer):
    """Serves points 1..total; its first `drops` streams end early after `k` points.

    mode "unavailable": a dropped stream aborts with UNAVAILABLE.
    mode "eof": a dropped stream just ends, with the job still RUNNING.
    replay: each reconnect resends the point at from_sequence (a duplicate).
    """

    def __init__(self, total=7, k=3, drops=1, mode="unavailable", replay=False):
        self.total, self.k, self.drops, self.mode, self.replay = total, k, drops, mode, replay
        self.requests: list[trainer_service_pb2.WatchTrainingMetricsRequest] = []

    def WatchTrainingMetrics(self, request, context):
        self.requests.append(request)
        attempt = len(self.requests)
        start = request.from_sequence + 1
        if self.replay and request.from_sequence:
            start -= 1
        if attempt <= self.drops:
            stop = min(start + self.k - 1, self.total)
            for batch in batches(start, stop):
                yield trainer_service_pb2.WatchTrainingMetricsResponse(
                    points=[point(s) for s in batch], job_state=RUNNING
                )
            if self.mode == "unavailable":
                context.abort(grpc.StatusCode.UNAVAILABLE, "server restarting")
            return
        for batch in batches(start, self.total):
            yield trainer_service_pb2.WatchTrainingMetricsResponse(
                points=[point(s) for s in batch], job_state=RUNNING
            )
        if request.follow:
            # The state change alone, then the end of the stream.
            yield trainer_service_pb2.WatchTrainingMetricsResponse(job_state=COMPLETED)


def test_watch_metrics_reconnects_after_unavailable_without_gaps_or_repeats():
    fake = MetricsFake(total=7, k=3, drops=1)
    with serve(trainer=fake) as client:
        points = list(client.watch_metrics("job-1"))
    assert [p.sequence for p in points] == [1, 2, 3, 4, 5, 6, 7]
    assert all(isinstance(p, metrics_pb2.TrainingMetrics) for p in points)
    assert len(fake.requests) == 2
    assert fake.requests[0].from_sequence == 0
    assert fake.requests[1].from_sequence == 3  # the last point it yielded
    assert all(r.name == "job-1" and r.follow for r in fake.requests)


def test_watch_metrics_several_drops_and_from_sequence():
    fake = MetricsFake(total=9, k=2, drops=3)
    with serve(trainer=fake) as client:
        seqs = [p.sequence for p in client.watch_metrics("job-1", from_sequence=2)]
    assert seqs == [3, 4, 5, 6, 7, 8, 9]
    assert [r.from_sequence for r in fake.requests] == [2, 4, 6, 8]


def test_watch_metrics_skips_points_a_server_resends():
    fake = MetricsFake(total=6, k=3, drops=1, replay=True)
    with serve(trainer=fake) as client:
        seqs = [p.sequence for p in client.watch_metrics("job-1")]
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert fake.requests[1].from_sequence == 3


def test_watch_metrics_reconnects_when_stream_ends_before_final_state():
    fake = MetricsFake(total=5, k=2, drops=1, mode="eof")
    with serve(trainer=fake) as client:
        seqs = [p.sequence for p in client.watch_metrics("job-1")]
    assert seqs == [1, 2, 3, 4, 5]
    assert [r.from_sequence for r in fake.requests] == [0, 2]


def test_watch_metrics_without_follow_does_not_reconnect():
    fake = MetricsFake(total=5, k=2, drops=1, mode="eof")
    with serve(trainer=fake) as client:
        seqs = [p.sequence for p in client.watch_metrics("job-1", follow=False)]
    assert seqs == [1, 2]
    assert len(fake.requests) == 1 and not fake.requests[0].follow


def test_watch_metrics_gives_up_after_max_reconnects():
    fake = MetricsFake(total=5, k=0, drops=100)
    with serve(trainer=fake) as client:
        with pytest.raises(ForgeTrainingError) as info:
            list(client.watch_metrics("job-1", max_reconnects=2))
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.requests) == 3


def test_watch_metrics_other_errors_are_not_retried():
    class Fake(trainer_service_pb2_grpc.TrainerServiceServicer):
        calls = 0

        def WatchTrainingMetrics(self, request, context):
            Fake.calls += 1
            context.abort(grpc.StatusCode.NOT_FOUND, f"training job {request.name} not found")

    with serve(trainer=Fake()) as client:
        with pytest.raises(ForgeTrainingError) as info:
            list(client.watch_metrics("nope"))
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert str(info.value) == "NOT_FOUND: training job nope not found"
    assert Fake.calls == 1


def test_stream_logs_reconnects_and_passes_filters():
    requests = []

    class Fake(trainer_service_pb2_grpc.TrainerServiceServicer):
        def StreamTrainingLogs(self, request, context):
            requests.append(request)
            entries = lambda a, b: [  # noqa: E731
                metrics_pb2.TrainingLogEntry(sequence=s, message=f"line {s}") for s in range(a, b + 1)
            ]
            if len(requests) == 1:
                yield trainer_service_pb2.StreamTrainingLogsResponse(entries=entries(1, 4), job_state=RUNNING)
                context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")
            yield trainer_service_pb2.StreamTrainingLogsResponse(
                entries=entries(request.from_sequence + 1, 6), job_state=COMPLETED
            )

    with serve(trainer=Fake()) as client:
        lines = [e.message for e in client.stream_logs("job-1", min_level="warning", contains="line")]
    assert lines == [f"line {s}" for s in range(1, 7)]
    assert [r.from_sequence for r in requests] == [0, 4]
    assert all(r.min_level == common_pb2.LogLevel.LOG_LEVEL_WARNING for r in requests)
    assert all(r.contains == "line" for r in requests)


# ---------------------------------------------------------------------------
# Export verification
# ---------------------------------------------------------------------------

PAYLOAD = os.urandom(2 * MiB + 12345)


class ExportFake(trainer_service_pb2_grpc.TrainerServiceServicer):
    def __init__(self, corrupt: str = ""):
        self.corrupt = corrupt
        self.requests = []

    def ExportModel(self, request, context):
        self.requests.append(request)
        sha = hashlib.sha256(PAYLOAD).hexdigest()
        size = len(PAYLOAD)
        if self.corrupt == "sha":
            sha = hashlib.sha256(b"something else").hexdigest()
        if self.corrupt == "size":
            size += 1
        yield trainer_service_pb2.ExportModelResponse(
            metadata=model_pb2.ExportMetadata(
                format=request.format, size_bytes=size, sha256=sha, filename="model.onnx", framework="sklearn"
            )
        )
        for n, offset in enumerate(range(0, len(PAYLOAD), MiB)):
            if self.corrupt == "abort" and n == 1:
                context.abort(grpc.StatusCode.INTERNAL, "worker died")
            sent_offset = offset + 1 if self.corrupt == "offset" and n == 1 else offset
            yield trainer_service_pb2.ExportModelResponse(data=PAYLOAD[offset : offset + MiB], offset=sent_offset)


def test_export_model_writes_verified_file(tmp_path):
    fake = ExportFake()
    target = tmp_path / "churn.onnx"
    with serve(trainer=fake) as client:
        meta = client.export_model("job-1", "onnx", target)
    assert target.read_bytes() == PAYLOAD
    assert meta.size_bytes == len(PAYLOAD) and meta.framework == "sklearn"
    assert fake.requests[0].name == "job-1"
    assert fake.requests[0].format == common_pb2.ExportFormat.EXPORT_FORMAT_ONNX
    assert os.listdir(tmp_path) == ["churn.onnx"]  # no temporary file left


def test_export_model_into_directory_uses_suggested_name(tmp_path):
    with serve(trainer=ExportFake()) as client:
        client.export_model(training_job_pb2.TrainingJob(name="projects/default/trainingJobs/j"),
                            common_pb2.ExportFormat.EXPORT_FORMAT_ONNX, tmp_path)
    assert (tmp_path / "model.onnx").read_bytes() == PAYLOAD
    assert os.listdir(tmp_path) == ["model.onnx"]


@pytest.mark.parametrize("corrupt", ["sha", "size", "offset"])
def test_export_model_corrupt_stream_raises_data_loss_and_leaves_nothing(tmp_path, corrupt):
    target = tmp_path / "model.onnx"
    with serve(trainer=ExportFake(corrupt)) as client:
        with pytest.raises(ForgeTrainingError) as info:
            client.export_model("job-1", "onnx", target)
    assert info.value.code == grpc.StatusCode.DATA_LOSS
    assert str(info.value).startswith("DATA_LOSS: ")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_export_model_server_error_leaves_nothing(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")
    with serve(trainer=ExportFake("abort")) as client:
        with pytest.raises(ForgeTrainingError) as info:
            client.export_model("job-1", "onnx", target)
    assert info.value.code == grpc.StatusCode.INTERNAL
    assert target.read_bytes() == b"previous"  # the old file is untouched
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_format_names():
    assert export_format("onnx") == common_pb2.ExportFormat.EXPORT_FORMAT_ONNX
    assert export_format("PICKLE") == common_pb2.ExportFormat.EXPORT_FORMAT_PICKLE
    assert export_format("EXPORT_FORMAT_TORCH") == common_pb2.ExportFormat.EXPORT_FORMAT_TORCH
    assert export_format(common_pb2.ExportFormat.EXPORT_FORMAT_SAVEDMODEL) == 2
    assert data_format("parquet") == dataset_pb2.DataFormat.DATA_FORMAT_PARQUET
    assert log_level(None) == 0 and log_level("error") == common_pb2.LogLevel.LOG_LEVEL_ERROR
    with pytest.raises(ValueError, match="onnx, savedmodel, pickle, torch"):
        export_format("zip")
    with pytest.raises(ValueError, match="csv"):
        data_format("xlsx")
    with pytest.raises(ValueError):
        export_format("unspecified")


# ---------------------------------------------------------------------------
# Error parsing
# ---------------------------------------------------------------------------


def bad_request_status() -> status_pb2.Status:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="training_config.epochs", description="must be >= 1", reason="OUT_OF_RANGE"
            )
        ]
    )
    info = error_details_pb2.ErrorInfo(reason="INVALID_SPEC", domain="forge.training")
    details = []
    for message in (bad_request, info):
        detail = any_pb2.Any()
        detail.Pack(message)
        details.append(detail)
    return status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message="invalid training spec", details=details
    )


def test_bad_request_details_become_field_violations():
    class Fake(trainer_service_pb2_grpc.TrainerServiceServicer):
        def StartTraining(self, request, context):
            context.abort_with_status(rpc_status.to_status(bad_request_status()))

    with serve(trainer=Fake()) as client:
        with pytest.raises(ForgeTrainingError) as info:
            client.start_training({"training_config": {"epochs": 0}})
    err = info.value
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.message == "invalid training spec"
    assert err.field_violations == [("training_config.epochs", "must be >= 1", "OUT_OF_RANGE")]
    assert err.field_violations[0].field == "training_config.epochs"
    assert err.reason == "INVALID_SPEC"
    assert str(err) == "INVALID_ARGUMENT: training_config.epochs: must be >= 1"
    assert isinstance(err.__cause__, grpc.RpcError)


def test_error_without_details():
    class Fake(trainer_service_pb2_grpc.TrainerServiceServicer):
        def GetTrainingJob(self, request, context):
            context.abort(grpc.StatusCode.NOT_FOUND, f"training job {request.name} not found")

    with serve(trainer=Fake()) as client:
        with pytest.raises(ForgeTrainingError) as info:
            client.get_job("ghost")
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert info.value.field_violations == []
    assert str(info.value) == "NOT_FOUND: training job ghost not found"


def test_from_rpc_error_passes_through_and_constructor():
    err = ForgeTrainingError(grpc.StatusCode.DATA_LOSS, "bad\nbytes")
    assert from_rpc_error(err) is err
    assert str(err) == "DATA_LOSS: bad bytes"
    assert ForgeTrainingError(3, "x").code == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------------------
# Upload chunking
# ---------------------------------------------------------------------------


class UploadFake(data_service_pb2_grpc.DataServiceServicer):
    def __init__(self):
        self.messages: list[data_service_pb2.UploadDatasetRequest] = []

    def UploadDataset(self, request_iterator, context):
        self.messages = list(request_iterator)
        meta = self.messages[0].metadata
        return data_service_pb2.UploadDatasetResponse(
            dataset=dataset_pb2.Dataset(name=f"projects/default/datasets/{meta.dataset_id or 'gen'}")
        )

    def check(self, content: bytes, limit: int = MiB) -> data_service_pb2.UploadMetadata:
        first, rest = self.messages[0], self.messages[1:]
        assert first.WhichOneof("part") == "metadata"
        assert rest and all(m.WhichOneof("part") == "chunk" for m in rest)
        assert all(0 < len(m.chunk) <= limit for m in rest)
        data = b"".join(m.chunk for m in rest)
        assert data == content
        assert first.metadata.size_bytes == len(content)
        assert first.metadata.sha256 == hashlib.sha256(data).hexdigest()
        return first.metadata


def test_upload_from_path_chunks_and_hashes(tmp_path):
    content = (b"a,b,label\n" + b"1,2,0\n" * 500_000)[: 2 * MiB + 777]
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    fake = UploadFake()
    with serve(data=fake) as client:
        ds = client.upload_dataset(path, dataset_id="churn", label_column="label", display_name="Churn")
    assert ds.name == "projects/default/datasets/churn"
    meta = fake.check(content)
    assert len(fake.messages) == 1 + 3
    assert meta.format == dataset_pb2.DataFormat.DATA_FORMAT_CSV  # from the extension
    assert (meta.dataset_id, meta.label_column, meta.display_name) == ("churn", "label", "Churn")


def test_upload_bytes_and_file_objects():
    content = os.urandom(5000)
    fake = UploadFake()
    with serve(data=fake) as client:
        client.upload_dataset(content, format="parquet", chunk_size=1024)
        meta = fake.check(content, limit=1024)
        assert meta.format == dataset_pb2.DataFormat.DATA_FORMAT_PARQUET
        assert len(fake.messages) == 1 + 5

        stream = io.BytesIO(b"xx" + content)
        stream.seek(2)  # uploads from the current position
        client.upload_dataset(stream, format="jsonl")
        assert fake.check(content).format == dataset_pb2.DataFormat.DATA_FORMAT_JSONL

        with pytest.raises(ValueError, match="format"):
            client.upload_dataset(content)  # raw bytes: no extension to infer from
        with pytest.raises(ValueError, match="chunk_size"):
            client.upload_dataset(content, format="csv", chunk_size=MiB + 1)


# ---------------------------------------------------------------------------
# Dict specs
# ---------------------------------------------------------------------------


class StartFake(trainer_service_pb2_grpc.TrainerServiceServicer):
    def __init__(self):
        self.requests = []

    def StartTraining(self, request, context):
        self.requests.append(request)
        return trainer_service_pb2.StartTrainingResponse(
            training_job=training_job_pb2.TrainingJob(
                name=f"projects/default/trainingJobs/{request.training_job_id or 'gen'}",
                spec=request.spec,
                state=JS.JOB_STATE_PENDING,
            )
        )


def test_dict_spec_is_parsed_into_training_request():
    spec = {
        "display_name": "churn lr",
        "model_type": "MODEL_TYPE_CLASSIFICATION",
        "model_config": {
            "framework": "sklearn",
            "architecture": "logistic_regression",
            "hyperparameters": {"C": 0.5, "max_iter": 200, "hidden_units": [128, 64]},
        },
        "trainingConfig": {"epochs": 5, "earlyStopping": {"enabled": True, "patience": 2}},
        "data_config": {"train_dataset": "churn-train", "label_column": "churned",
                        "feature_columns": ["a", "b"]},
        "resources": {"timeout": "90s", "priority": 3},
        "callbacks": [{"name": "cb", "type": "time_budget", "config": {"seconds": 60}}],
        "labels": {"team": "fraud"},
    }
    hyper = struct_pb2.Struct()
    hyper.update({"C": 0.5, "max_iter": 200, "hidden_units": [128, 64]})
    cb_config = struct_pb2.Struct()
    cb_config.update({"seconds": 60})
    expected = training_job_pb2.TrainingRequest(
        display_name="churn lr",
        model_type=common_pb2.ModelType.MODEL_TYPE_CLASSIFICATION,
        model_config=training_job_pb2.ModelConfig(
            framework="sklearn", architecture="logistic_regression", hyperparameters=hyper
        ),
        training_config=training_job_pb2.TrainingConfig(
            epochs=5, early_stopping=training_job_pb2.EarlyStoppingConfig(enabled=True, patience=2)
        ),
        data_config=training_job_pb2.TrainingDataConfig(
            train_dataset="churn-train", label_column="churned", feature_columns=["a", "b"]
        ),
        resources=common_pb2.ResourceConfig(timeout=duration_pb2.Duration(seconds=90), priority=3),
        callbacks=[training_job_pb2.CallbackConfig(name="cb", type="time_budget", config=cb_config)],
        labels={"team": "fraud"},
    )
    fake = StartFake()
    with serve(trainer=fake) as client:
        job = client.start_training(spec, training_job_id="churn-1")
        # Short enum names are accepted too, and a message passes through as is.
        client.start_training(dict(spec, model_type="classification"))
        client.start_training(expected)
    assert job.name == "projects/default/trainingJobs/churn-1"
    assert job.state == JS.JOB_STATE_PENDING
    assert fake.requests[0].training_job_id == "churn-1"
    assert [r.spec for r in fake.requests] == [expected, expected, expected]


def test_invalid_dict_spec_raises_value_error_without_calling():
    fake = StartFake()
    with serve(trainer=fake) as client:
        with pytest.raises(ValueError, match="invalid training spec"):
            client.start_training({"model_config": {"framework": "sklearn", "no_such_field": 1}})
        with pytest.raises(ValueError):
            client.start_training({"model_type": "MODEL_TYPE_NOPE"})
        with pytest.raises(TypeError):
            client.start_training(["not", "a", "spec"])
    assert fake.requests == []


# ---------------------------------------------------------------------------
# Resource names, paging, polling
# ---------------------------------------------------------------------------


class JobsFake(trainer_service_pb2_grpc.TrainerServiceServicer):
    def __init__(self, states=()):
        self.names: list[str] = []
        self.metadata: list[dict] = []
        self.states = list(states)
        self.page_tokens: list[str] = []

    def GetTrainingJob(self, request, context):
        self.names.append(request.name)
        self.metadata.append(dict(context.invocation_metadata()))
        state = self.states.pop(0) if len(self.states) > 1 else (self.states[0] if self.states else RUNNING)
        return trainer_service_pb2.GetTrainingJobResponse(
            training_job=training_job_pb2.TrainingJob(name=request.name, state=state)
        )

    def PauseTraining(self, request, context):
        self.names.append(request.name)
        return trainer_service_pb2.PauseTrainingResponse(
            training_job=training_job_pb2.TrainingJob(name=request.name, state=PAUSING)
        )

    def ListTrainingJobs(self, request, context):
        self.page_tokens.append(request.page_token)
        if not request.page_token:
            return trainer_service_pb2.ListTrainingJobsResponse(
                training_jobs=[training_job_pb2.TrainingJob(name="a"), training_job_pb2.TrainingJob(name="b")],
                next_page_token="page2",
            )
        return trainer_service_pb2.ListTrainingJobsResponse(training_jobs=[training_job_pb2.TrainingJob(name="c")])

    def GetTrainingMetrics(self, request, context):
        return trainer_service_pb2.GetTrainingMetricsResponse()


class DatasetsFake(data_service_pb2_grpc.DataServiceServicer):
    def __init__(self):
        self.names: list[str] = []

    def GetDataset(self, request, context):
        self.names.append(request.name)
        return data_service_pb2.GetDatasetResponse(dataset=dataset_pb2.Dataset(name=request.name))

    def GetRecords(self, request, context):
        self.names.append(request.name)
        fields = struct_pb2.Struct()
        fields.update({"age": 42, "score": 0.5, "country": "NL", "tags": ["a"], "missing": None})
        return data_service_pb2.GetRecordsResponse(
            records=[dataset_pb2.DataRecord(row_index=request.offset, fields=fields)], total_rows=1000
        )


def test_ids_and_names_pass_through_unchanged():
    jobs, datasets = JobsFake(), DatasetsFake()
    with serve(trainer=jobs, data=datasets, metadata={"x-team": "fraud"}) as client:
        client.get_job("abc")
        client.get_job("projects/default/trainingJobs/abc")
        client.get_job(training_job_pb2.TrainingJob(name="projects/p/trainingJobs/x"))
        client.get_dataset("churn")
        client.get_dataset(dataset_pb2.Dataset(name="projects/default/datasets/churn"))
        with pytest.raises(TypeError):
            client.get_job(42)
    assert jobs.names == ["abc", "projects/default/trainingJobs/abc", "projects/p/trainingJobs/x"]
    assert datasets.names == ["churn", "projects/default/datasets/churn"]
    assert all(md.get("x-team") == "fraud" for md in jobs.metadata)


def test_get_records_converts_structs():
    with serve(data=DatasetsFake()) as client:
        rows, total = client.get_records("churn", offset=7, limit=1)
    assert total == 1000
    assert rows == [{"age": 42, "score": 0.5, "country": "NL", "tags": ["a"], "missing": None}]
    assert isinstance(rows[0]["age"], int)


def test_list_jobs_reads_every_page_and_get_metrics_none():
    fake = JobsFake()
    with serve(trainer=fake) as client:
        assert [j.name for j in client.list_jobs()] == ["a", "b", "c"]
        assert client.get_metrics("a") is None
    assert fake.page_tokens == ["", "page2"]


def test_pause_wait_polls_until_paused_and_wait_timeout():
    fake = JobsFake(states=[PAUSING, PAUSING, PAUSED])
    with serve(trainer=fake) as client:
        job = client.pause("job-1", wait=True, timeout=5)
        assert job.state == PAUSED
        assert fake.names == ["job-1", "job-1", "job-1", "job-1"]

        fake.states = [RUNNING]
        with pytest.raises(TimeoutError):
            client.wait("job-1", timeout=0.3, poll=0.05)

        fake.states = [COMPLETED]
        assert client.wait("job-1", timeout=1).state == COMPLETED
        with pytest.raises(ForgeTrainingError) as info:
            client.wait("job-1", states=["PAUSED"], timeout=1)
        assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_stopping_a_watch_early_cancels_the_stream():
    import threading

    cancelled = threading.Event()

    class Fake(trainer_service_pb2_grpc.TrainerServiceServicer):
        def WatchTrainingMetrics(self, request, context):
            context.add_callback(cancelled.set)
            yield trainer_service_pb2.WatchTrainingMetricsResponse(
                points=[point(1), point(2), point(3)], job_state=RUNNING
            )
            while context.is_active():  # a live job: no more points for now
                cancelled.wait(0.01)

    with serve(trainer=Fake()) as client:
        stream = client.watch_metrics("job-1")
        assert [next(stream).sequence, next(stream).sequence] == [1, 2]
        stream.close()
        assert cancelled.wait(5)
