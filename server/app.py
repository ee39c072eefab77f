"""Building and running the gRPC server."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.apikeys import ApiKeys
from engine.app import Engine
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
from server.auth import Authenticator
from server.interceptors import CallInterceptor
from server.metrics import MetricsEndpoint
from server.webhooks import WebhookListener
from server.pipeline_servicer import PipelineServicer
from server.request_decoding import RequestDecodingInterceptor
from server.trainer_servicer import TrainerServicer
from server.tracing import RpcTracer, create_tracer

log = logging.getLogger("forge.server")

SERVICE_NAMES = (
    trainer_service_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name,
    data_service_pb2.DESCRIPTOR.services_by_name["DataService"].full_name,
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name,
)


class ListenError(RuntimeError):
    """The server cannot listen where it was told to (the message says where and why)."""


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    engine: Engine
    health: health.aio.HealthServicer
    # Prometheus /metrics (config.metrics_address) and its port; None when not served.
    metrics: MetricsEndpoint | None = None
    metrics_port: int | None = None
    tracer: RpcTracer | None = None
    # Pipelines' webhook triggers (config.webhook_address) and its port; None when not served.
    webhooks: WebhookListener | None = None
    webhook_port: int | None = None

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking calls, let running jobs checkpoint and pause, then close."""
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        # Workers start checkpointing at once, while open calls and streams are being closed.
        # Tuning controllers and pipeline executors stop first, so none resumes a trial or
        # stage job that is pausing for the shutdown.
        if self.webhooks is not None:  # no new executions while the pipelines stop
            await asyncio.to_thread(self.webhooks.stop)
        await asyncio.to_thread(self.engine.tuning.shutdown)
        await asyncio.to_thread(self.engine.pipelines.shutdown)
        await asyncio.to_thread(self.engine.trainer.begin_shutdown)
        await self.server.stop(min(grace_seconds, 5.0))
        if self.tracer is not None:  # every call has ended: send their last spans
            await asyncio.to_thread(self.tracer.shutdown)
        await asyncio.to_thread(self.engine.shutdown, grace_seconds)
        if self.metrics is not None:  # scrapable until the end: jobs pausing for the shutdown show
            await asyncio.to_thread(self.metrics.stop)


async def create_server(config: ServerConfig) -> RunningServer:
    """Start the engine and a server on config.address (port 0 picks a free port)."""
    engine = Engine(config.engine_settings())
    engine.tuning.make_spec = engine.pipelines.make_spec = convert.spec_from_request_dict
    engine.journal.encode_metric = convert.metric_wire
    engine.pipelines.functions.update(config.pipeline_functions)
    await asyncio.to_thread(engine.start)
    authenticator = Authenticator(ApiKeys(engine.db)) if config.auth == "api-key" else None
    metrics = MetricsEndpoint(engine.trainer) if config.metrics_address else None
    tracer = create_tracer(config.tracing, config.tracing_endpoint)
    server = grpc.aio.server(
        interceptors=[CallInterceptor(authenticator, config.max_streams_per_key, metrics and metrics.rpc, tracer),
                      RequestDecodingInterceptor()],
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
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
    credentials = server_credentials(config)
    port = (server.add_secure_port(config.address, credentials) if credentials
            else server.add_insecure_port(config.address))
    metrics_port, failure = None, ""
    webhooks = WebhookListener(engine.pipelines) if config.webhook_address else None
    webhook_port = None
    if port == 0:
        failure = f"could not listen on {config.address}"
    elif metrics is not None:
        try:
            metrics_port = metrics.start(config.metrics_address, config.tls_cert, config.tls_key, config.tls_client_ca)
        except OSError as exc:  # the port is taken, the host is not this machine's, a certificate does not load
            failure = f"could not serve metrics on {config.metrics_address}: {exc}"
    if webhooks is not None and not failure:
        try:
            webhook_port = webhooks.start(config.webhook_address, config.tls_cert, config.tls_key)
        except OSError as exc:
            failure = f"could not listen for webhooks on {config.webhook_address}: {exc}"
    if failure:
        if tracer is not None:
            tracer.shutdown()
        if metrics_port is not None:
            metrics.stop()
        await asyncio.to_thread(engine.shutdown, 0)
        raise ListenError(failure)
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server=server, port=port, engine=engine, health=health_servicer, metrics=metrics,
                         metrics_port=metrics_port, tracer=tracer, webhooks=webhooks, webhook_port=webhook_port)


class BackgroundServer:
    """The gRPC service inside an application's own process, on an event loop thread of its own
    (for an application without asyncio, or one that keeps its loop to itself):

        with BackgroundServer(config) as server:          # started with the application
            client = Client(f"127.0.0.1:{server.port}")
        # stopped with it: running jobs checkpoint and pause, and resume at the next start

    An asyncio application awaits create_server(config) on its own loop instead and keeps the
    RunningServer. A bad configuration or a taken port raises at start (ListenError,
    SchemaMismatch, FailedPrecondition), as `forge-training serve` reports them."""

    def __init__(self, config: ServerConfig, start_timeout: float = 120.0):
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="forge-training", daemon=True)
        self.thread.start()
        starting = asyncio.run_coroutine_threadsafe(create_server(config), self.loop)
        try:
            self.running: RunningServer = starting.result(start_timeout)
        except BaseException:
            starting.cancel()  # a start still under way (a timeout) stops where it is
            self._close_loop()
            raise

    @property
    def port(self) -> int:
        """The port the service listens on (the one chosen when the address asked for port 0)."""
        return self.running.port

    @property
    def engine(self) -> Engine:
        return self.running.engine

    @property
    def webhook_port(self) -> int | None:
        """The port of the pipelines' webhook listener (config.webhook_address); None without it."""
        return self.running.webhook_port

    def call(self, coroutine, timeout: float | None = 60.0):
        """Run `coroutine` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, grace_seconds: float | None = None) -> None:
        """Stop taking calls; running jobs get `grace_seconds` (default: the configuration's) to
        checkpoint and pause."""
        if not self.thread.is_alive():
            return
        grace = self.config.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        try:
            self.call(self.running.stop(grace), timeout=grace + 120)
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the configured PEM files (mutual TLS with a client CA); None without TLS."""
    if not config.tls_cert:
        return None
    client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials([(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
                                       root_certificates=client_ca, require_client_auth=client_ca is not None)
