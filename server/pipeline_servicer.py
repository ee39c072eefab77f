"""PipelineService: declared in the contract, not implemented yet (every method answers UNIMPLEMENTED)."""

from __future__ import annotations

from forge.training.v1 import pipeline_service_pb2_grpc
from server import unimplemented

SERVICE = "PipelineService"


class PipelineServicer(pipeline_service_pb2_grpc.PipelineServiceServicer):
    pass


unimplemented.install(PipelineServicer, SERVICE)
