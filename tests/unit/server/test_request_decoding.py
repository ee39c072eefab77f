"""server/request_decoding.py: requests that do not decode, or hold a value their well-known type
forbids, are refused naming the field (the RPC fuzz test found both answered UNKNOWN / INTERNAL)."""

from __future__ import annotations

import math

from forge.training.v1 import data_service_pb2, pipeline_service_pb2, trainer_service_pb2
from server.request_decoding import MAX_DURATION_SECONDS, Rejected, _tolerant, first_invalid_value


def _field(request) -> str:
    error = first_invalid_value(request)
    assert error is not None and error.code == "INVALID_ARGUMENT"
    return error.violations[0].field


def test_durations_and_timestamps_out_of_range_name_their_field():
    request = pipeline_service_pb2.CreatePipelineRequest()
    request.pipeline.stages.add(id="a")
    request.pipeline.stages.add(id="b").timeout.seconds = -2**63
    assert _field(request) == "pipeline.stages[1].timeout"

    tuning = trainer_service_pb2.StartTuningRequest()
    tuning.spec.time_budget.seconds, tuning.spec.time_budget.nanos = 5, -1  # signs differ
    assert _field(tuning) == "spec.time_budget"

    scheduled = pipeline_service_pb2.CreatePipelineRequest()
    scheduled.pipeline.schedule.next_run_time.seconds = 253_402_300_800  # the year 10000
    assert _field(scheduled) == "pipeline.schedule.next_run_time"


def test_values_at_the_edges_of_the_range_pass():
    request = pipeline_service_pb2.CreatePipelineRequest()
    request.pipeline.timeout.seconds, request.pipeline.timeout.nanos = -MAX_DURATION_SECONDS, -999_999_999
    request.pipeline.schedule.next_run_time.seconds = -62_135_596_800  # 0001-01-01
    request.pipeline.schedule.input.update({"a": [1.5, {"b": None}], "c": "text"})
    assert first_invalid_value(request) is None


def test_struct_numbers_json_cannot_hold_are_named_by_key_and_index():
    request = pipeline_service_pb2.ExecutePipelineRequest(name="p")
    request.input.update({"fine": 1.0, "a": {"b": [1.0, {"c": math.nan}]}})
    assert _field(request) == "input.a.b[1].c"

    training = trainer_service_pb2.StartTrainingRequest()
    training.spec.model_config.hyperparameters["C"] = -math.inf
    assert _field(training) == "spec.model_config.hyperparameters.C"


def test_the_deserializer_replaces_bad_requests_and_keeps_good_ones():
    parse = _tolerant(data_service_pb2.GetDatasetRequest.FromString)
    good = data_service_pb2.GetDatasetRequest(name="projects/p/datasets/d")
    assert parse(good.SerializeToString()) == good

    rejected = parse(b"\n\x02\xff\xfe")  # a name that is not UTF-8
    assert isinstance(rejected, Rejected)
    assert "do not decode" in rejected.error.message and "UTF-8" in rejected.error.message

    bad = pipeline_service_pb2.ExecutePipelineRequest(name="p")
    bad.input["x"] = math.inf
    rejected = _tolerant(pipeline_service_pb2.ExecutePipelineRequest.FromString)(bad.SerializeToString())
    assert isinstance(rejected, Rejected) and rejected.error.violations[0].field == "input.x"
