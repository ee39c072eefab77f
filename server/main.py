"""`forge-training serve`: the server's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from server import config as server_config
from server.app import create_server

log = logging.getLogger("forge.server")


async def serve(config: server_config.ServerConfig) -> None:
    running = await create_server(config)
    host = config.address.rsplit(":", 1)[0]
    log.info("forge-training serving on %s:%d (data dir %s, %d concurrent jobs, artifacts in %s)", host,
             running.port, config.data_dir.resolve(), config.max_concurrent_jobs,
             running.engine.storage.config.describe())
    if server_config.is_loopback(config.address):
        log.info("no authentication is configured: listening on loopback only")
    else:
        log.warning("no authentication is configured and --insecure is set: anyone who reaches %s can use "
                    "this server", config.address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: running jobs checkpoint and pause (grace %.0f s)", config.shutdown_grace_seconds)
    await running.stop(config.shutdown_grace_seconds)
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="forge-training", description="forge-training: train models over gRPC")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the gRPC server")
    server_config.add_serve_arguments(serve_parser)
    args = parser.parse_args(argv)
    if args.command == "serve":
        config = server_config.from_args(args)
        logging.basicConfig(level=config.log_level, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
