"""The whole API surface: which methods answer UNIMPLEMENTED (a list that can only shrink),
health, reflection and error details."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from forge.training.v1 import data_service_pb2, pipeline_service_pb2, trainer_service_pb2

SERVICES = [
    trainer_service_pb2.DESCRIPTOR.services_by_name["TrainerService"],
    data_service_pb2.DESCRIPTOR.services_by_name["DataService"],
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
]

# Exactly the methods that do not work yet (none today). Implementing one means deleting it here.
NOT_YET: set[str] = set()


def _call_empty(channel: grpc.Channel, service, method) -> grpc.StatusCode:
    """Call `method` with an empty request; return the status code it ends with."""
    path = f"/{service.full_name}/{method.name}"
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    kwargs = dict(request_serializer=request_cls.SerializeToString, response_deserializer=response_cls.FromString)
    try:
        if method.client_streaming:
            channel.stream_unary(path, **kwargs)(iter([request_cls()]), timeout=10)
        elif method.server_streaming:
            list(channel.unary_stream(path, **kwargs)(request_cls(), timeout=10))
        else:
            channel.unary_unary(path, **kwargs)(request_cls(), timeout=10)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_exactly_the_listed_methods_are_unimplemented(server):
    from server.unimplemented import UNIMPLEMENTED

    assert set(UNIMPLEMENTED) == NOT_YET
    declared = {f"{s.name}.{m.name}" for s in SERVICES for m in s.methods}
    assert NOT_YET <= declared
    with grpc.insecure_channel(server.target) as channel:
        for service in SERVICES:
            for method in service.methods:
                code = _call_empty(channel, service, method)
                full = f"{service.name}.{method.name}"
                if full in NOT_YET:
                    assert code == grpc.StatusCode.UNIMPLEMENTED, full
                else:
                    # An empty request is a client mistake: answered, never UNIMPLEMENTED, UNKNOWN or INTERNAL.
                    assert code not in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNKNOWN,
                                        grpc.StatusCode.INTERNAL), (full, code)


def test_health_and_reflection(server):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "forge.training.v1.TrainerService", "forge.training.v1.DataService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == \
                health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"forge.training.v1.TrainerService", "forge.training.v1.DataService",
            "forge.training.v1.PipelineService", "grpc.health.v1.Health"} <= services


def test_errors_carry_field_violations_and_the_request_id(server):
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(
            "/forge.training.v1.DataService/SplitDataset",
            request_serializer=data_service_pb2.SplitDatasetRequest.SerializeToString,
            response_deserializer=data_service_pb2.SplitDatasetResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as err:
            call(data_service_pb2.SplitDatasetRequest(name="Not A Name"), metadata=[("x-request-id", "req-42")])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    details = {d.type_url.rsplit("/", 1)[-1]: d for d in status.details}
    bad = error_details_pb2.BadRequest()
    details["google.rpc.BadRequest"].Unpack(bad)
    assert bad.field_violations[0].field == "name"
    info = error_details_pb2.RequestInfo()
    details["google.rpc.RequestInfo"].Unpack(info)
    assert info.request_id == "req-42"
