"""server/convert.py metrics_to_proto: the one-call conversion a replay uses gives exactly the
message the field-by-field conversion gives, for every shape of point a job records."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from server import convert

CPU = {"cpu_usage": 0.25, "memory_usage": 123_456_789, "memory_total": 8_000_000_000, "gpu_present": False}
GPU = {**CPU, "gpu_present": True, "gpu_usage": 0.5, "gpu_memory": 1 << 30, "gpu_memory_total": 1 << 34}
WHEN = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)

POINTS = {
    "classification": {"epoch": 3, "total_epochs": 20, "progress": 0.15, "training_loss": 0.31, "validation_loss": 0.35,
                       "accuracy": 0.9, "precision": 0.88, "recall": 0.91, "f1_score": 0.89, "best_loss": 0.3,
                       "best_epoch": 2, "learning_rate": 0.01, "resource_usage": CPU, "extra": {},
                       "epoch_seconds": 0.012, "sequence": 3, "time": WHEN},
    "regression with a GPU and extras": {"epoch": 1, "total_epochs": 1, "progress": 1.0, "rmse": 2.5, "mae": 1.5,
                                         "r2": 0.7, "gradient_norm": 3.25, "resource_usage": GPU,
                                         "extra": {"best_r2": 0.7, "kl": 1e-9}, "epoch_seconds": 1.5,
                                         "sequence": 1, "time": WHEN},
    "read back from SQLite (naive time)": {"epoch": 2, "total_epochs": 5, "progress": 0.4, "training_loss": 1.0,
                                           "resource_usage": CPU, "sequence": 2, "time": WHEN.replace(tzinfo=None)},
    "a job's latest metrics (no sequence, no time)": {"epoch": 5, "total_epochs": 5, "progress": 1.0,
                                                       "validation_loss": 0.2},
    "integers where doubles go": {"epoch": 4, "total_epochs": 4, "progress": 1, "accuracy": 1, "extra": {"n": 3},
                                  "sequence": 4, "time": WHEN},
    "absent metrics recorded as None": {"epoch": 1, "total_epochs": 2, "progress": 0.5, "accuracy": None,
                                        "best_epoch": None, "sequence": 1, "time": WHEN},
    "numbers stored as text": {"epoch": "6", "total_epochs": 10, "progress": "0.6", "training_loss": "0.5",
                               "sequence": 6, "time": WHEN},
    "GPU figures of a GPU that went away": {"epoch": 1, "total_epochs": 1, "progress": 1.0,
                                            "resource_usage": {**GPU, "gpu_present": False}, "sequence": 1},
    "a field this server does not know": {"epoch": 1, "total_epochs": 1, "progress": 1.0, "perplexity": 12.0,
                                          "sequence": 1, "time": WHEN},
}


@pytest.mark.parametrize("shape", POINTS)
def test_one_call_conversion_matches_field_by_field(shape):
    point = POINTS[shape]
    assert convert.metrics_to_proto(point) == convert._metrics_to_proto_field_by_field(point)


def test_the_time_keeps_its_microseconds():
    message = convert.metrics_to_proto(POINTS["classification"])
    assert (message.time.seconds, message.time.nanos) == (int(WHEN.timestamp()), 123_456_000)
    assert message.resource_usage.memory_usage == CPU["memory_usage"]
    assert not message.resource_usage.HasField("gpu_usage")


@pytest.mark.parametrize("extra_bytes", [0, 200, 20_000])  # one-byte, two-byte and longer length prefixes
def test_framed_points_parse_back_as_the_response_of_those_points(extra_bytes):
    from forge.training.v1 import common_pb2, trainer_service_pb2 as pb

    points = [dict(POINTS["classification"], sequence=s, extra={"pad": 1.0} if not extra_bytes else
                   {f"k{i:05d}": float(i) for i in range(extra_bytes // 16)}) for s in (1, 2)]
    response = convert.metrics_response([convert.framed_metric(convert.metric_wire(p)) for p in points], "RUNNING")
    assert pb.WatchTrainingMetricsResponse.FromString(response.data) == pb.WatchTrainingMetricsResponse(
        points=[convert.metrics_to_proto(p) for p in points], job_state=common_pb2.JOB_STATE_RUNNING)
    assert pb.WatchTrainingMetricsResponse.FromString(convert.metrics_response([], "COMPLETED").data) == \
        pb.WatchTrainingMetricsResponse(job_state=common_pb2.JOB_STATE_COMPLETED)


def test_encoded_responses_pass_the_serializer_untouched_and_messages_are_serialized():
    from forge.training.v1 import trainer_service_pb2 as pb

    serialize = convert.passing_encoded(pb.WatchTrainingMetricsResponse.SerializeToString)
    encoded = convert.metrics_response([], "FAILED")
    assert serialize(encoded) is encoded.data
    message = pb.WatchTrainingMetricsResponse.FromString(encoded.data)
    assert serialize(message) == message.SerializeToString() == encoded.data
    assert convert.passing_encoded(None) is None
