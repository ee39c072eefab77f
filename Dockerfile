# forge-training gRPC server.
#
#   docker build -t forge-training .
#   docker run -p 50051:50051 -v forge-data:/data forge-training
#
# Extra server flags replace the CMD below, so repeat --address and --data-dir with them:
#   docker run ... forge-training --address 0.0.0.0:50051 --data-dir /data --insecure --max-concurrent-jobs 4
FROM python:3.11-slim

# Unbuffered output so logs reach `docker logs` as they are written; no .pyc files
# written into the image or the volume; no pip self-update check or run-as-root warning
# at build time (installing as root into the image's Python is intended here).
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The server only needs write access to /data, so it runs as an unprivileged user.
# A fixed uid lets bind-mounted host directories be chowned to match.
RUN groupadd --system --gid 10001 forge \
    && useradd --system --uid 10001 --gid forge --home-dir /home/forge --create-home forge

WORKDIR /app

# Least-changing sources first. The SDK (forge-training-client: the generated stubs the
# server imports) is its own project in clients/python.
COPY clients/python ./clients/python
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY server ./server

# One pip call with the SDK listed first: pip satisfies the server's requirement on
# forge-training-client from ./clients/python instead of looking it up on an index.
RUN pip install --no-cache-dir './clients/python[plot]' .

# Create and chown /data before the VOLUME line: build steps that change a path after
# it is declared a volume are discarded, and a new named volume copies this ownership.
RUN mkdir -p /data && chown forge:forge /data
VOLUME ["/data"]

USER forge

EXPOSE 50051

# Asks grpc.health.v1 rather than probing the TCP port, so the container counts as healthy
# only once the gRPC server answers. python:3.11-slim has no curl or grpc_health_probe.
# The address must match --address if you change the port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import grpc,sys; from grpc_health.v1 import health_pb2, health_pb2_grpc; ch=grpc.insecure_channel('127.0.0.1:50051'); r=health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=''), timeout=3); sys.exit(0 if r.status==health_pb2.HealthCheckResponse.SERVING else 1)"

ENTRYPOINT ["forge-training", "serve"]
# Bind all interfaces so a published port reaches the server from outside the container.
# --insecure: without arguments the image runs without API keys or TLS, for a private
# network only. To expose it, override the command, e.g.
#   --address 0.0.0.0:50051 --data-dir /data --auth api-key --tls-cert /certs/tls.crt --tls-key /certs/tls.key
# after `docker run --entrypoint forge-training -v DATA:/data IMAGE keys --data-dir /data create --name ci --role default=trainer`.
CMD ["--address", "0.0.0.0:50051", "--data-dir", "/data", "--insecure"]
