"""OpenTelemetry tracing of RPCs (--tracing console|otlp): one SERVER span per call, started and
ended by CallInterceptor (server/interceptors.py).

A span continues the caller's trace when the call carries W3C `traceparent` metadata. It is
named `package.Service/Method` and carries rpc.system, rpc.service, rpc.method,
rpc.grpc.status_code, forge.request_id and forge.project (the project bare ids meant). The
provider is the server's own, not OpenTelemetry's global one, so servers sharing a process
(tests) keep their spans apart; logs written inside a call carry its trace_id (server/logs.py).
"""

from __future__ import annotations

import os
import sys

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

# Codes that mean the server failed, not the caller (OpenTelemetry's gRPC conventions): those
# spans are marked as errors.
SERVER_ERRORS = frozenset({"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"})


class RpcTracer:
    def __init__(self, provider: TracerProvider):
        self.provider = provider
        self._tracer = provider.get_tracer("forge.server")

    def start(self, service: str, method: str, metadata: dict[str, str], request_id: str) -> trace.Span:
        """Start the call's span and make it current for the rest of the call's task (its logs and
        any span started inside); like the request id, it is never detached: the task ends with
        the call."""
        span = self._tracer.start_span(
            f"{service}/{method}", context=propagate.extract(metadata), kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method,
                        "forge.request_id": request_id})
        otel_context.attach(trace.set_span_in_context(span))
        return span

    @staticmethod
    def finish(span: trace.Span, code: str, project: str) -> None:
        span.set_attribute("rpc.grpc.status_code", grpc.StatusCode[code].value[0])
        if project:
            span.set_attribute("forge.project", project)
        if code in SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, code))
        span.end()

    def shutdown(self) -> None:
        """Send the spans still buffered, then stop."""
        self.provider.shutdown()


def create_tracer(mode: str, endpoint: str = "") -> RpcTracer | None:
    """The tracer for --tracing `mode`: None for "none"; "console" prints one JSON span per line
    to stdout; "otlp" sends spans over OTLP/HTTP to `endpoint` (default: the OTEL_EXPORTER_OTLP_*
    environment, else http://localhost:4318/v1/traces). OTEL_SERVICE_NAME names the service
    (default forge-training)."""
    if mode == "none":
        return None
    if mode == "console":
        exporter = ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
    elif mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint or None)
    else:
        raise ValueError(f"tracing {mode!r}: use none, console or otlp")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME")
                                                                      or "forge-training"}))
    # Batched: exporting happens on the processor's thread, never on the server's event loop.
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return RpcTracer(provider)
