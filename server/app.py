"""Building and running the gRPC server."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.app import Engine, EngineSettings
from forge.training.v1 import (
    data_service_pb2,
    data_service_pb2_grpc,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
    trainer_service_pb2,
    trainer_service_pb2_grpc,
)
from server import convert
from server.config import ServerConfig
from server.data_servicer import DataServicer
from server.interceptors import RequestIdInterceptor
from server.pipeline_servicer import PipelineServicer
from server.trainer_servicer import TrainerServicer

log = logging.getLogger("forge.server")

SERVICE_NAMES = (
    trainer_service_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name,
    data_service_pb2.DESCRIPTOR.services_by_name["DataService"].full_name,
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name,
)
# Chunks are 1 MiB; leave room for the envelope around them.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    engine: Engine
    health: health.aio.HealthServicer

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking calls, let running jobs checkpoint and pause, then close."""
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        # Workers start checkpointing at once, while open calls and streams are being closed.
        # Tuning controllers and pipeline executors stop first, so none resumes a trial or
        # stage job that is pausing for the shutdown.
        await asyncio.to_thread(self.engine.tuning.shutdown)
        await asyncio.to_thread(self.engine.pipelines.shutdown)
        await asyncio.to_thread(self.engine.trainer.begin_shutdown)
        await self.server.stop(min(grace_seconds, 5.0))
        await asyncio.to_thread(self.engine.shutdown, grace_seconds)


async def create_server(config: ServerConfig) -> RunningServer:
    """Start the engine and a server on config.address (port 0 picks a free port)."""
    engine = Engine(EngineSettings(
        data_dir=config.data_dir,
        database_url=config.database_url,
        max_concurrent_jobs=config.max_concurrent_jobs,
        max_upload_bytes=config.max_upload_bytes,
        storage=config.storage,
        load_policy=config.load_policy,
    ))
    engine.tuning.make_spec = engine.pipelines.make_spec = convert.spec_from_request_dict
    engine.pipelines.functions.update(config.pipeline_functions)
    await asyncio.to_thread(engine.start)
    server = grpc.aio.server(
        interceptors=[RequestIdInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    trainer_service_pb2_grpc.add_TrainerServiceServicer_to_server(TrainerServicer(engine), server)
    data_service_pb2_grpc.add_DataServiceServicer_to_server(DataServicer(engine), server)
    pipeline_service_pb2_grpc.add_PipelineServiceServicer_to_server(PipelineServicer(engine), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(config.address)
    if port == 0:
        await asyncio.to_thread(engine.shutdown, 0)
        raise RuntimeError(f"could not listen on {config.address}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server=server, port=port, engine=engine, health=health_servicer)
