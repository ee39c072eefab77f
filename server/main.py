"""`forge-training serve`: the server's command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import signal
import sys
from pathlib import Path

import yaml

from server import config as server_config
from server import config_file, keys_command, logs, migrate_command
from engine.apikeys import ApiKeys
from engine.errors import FailedPrecondition
from engine.store.migrate import SchemaMismatch
from server.app import ListenError, create_server

log = logging.getLogger("forge.server")


async def serve(config: server_config.ServerConfig) -> None:
    running = await create_server(config)
    host = config.address.rsplit(":", 1)[0]
    log.info("forge-training serving on %s:%d (data dir %s, %d concurrent jobs, artifacts in %s)", host,
             running.port, config.data_dir.resolve(), config.max_concurrent_jobs,
             running.engine.storage.config.describe())
    if config.executor == "ray":
        log.info("jobs run as tasks on the Ray cluster at %s (docs/ray.md)", config.ray_address or "this machine's")
    for level, line in security_summary(config, running):
        log.log(level, "%s", line)
    for line in observability_summary(config, running):
        log.info("%s", line)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: running jobs checkpoint and pause (grace %.0f s)", config.shutdown_grace_seconds)
    await running.stop(config.shutdown_grace_seconds)
    log.info("stopped")


def security_summary(config: server_config.ServerConfig, running) -> list[tuple[int, str]]:
    """What protects this server, said once at start: (log level, line) pairs."""
    lines = [(logging.INFO, "TLS: on, clients need a certificate signed by %s (mutual TLS)" % config.tls_client_ca
              if config.tls_client_ca else "TLS: on" if config.tls_cert else "TLS: off (plaintext)")]
    if config.auth == "api-key":
        active = sum(1 for key in ApiKeys(running.engine.db).list() if key.revoke_time is None)
        lines.append((logging.INFO, f"authentication: API keys ({active} active)"))
        if not active:
            lines.append((logging.WARNING, "no API key exists yet, so every call will be refused: create one with "
                                           "`forge-training keys create --name NAME --role PROJECT=ROLE`"))
    elif server_config.is_loopback(config.address):
        lines.append((logging.INFO, "no authentication is configured: listening on loopback only"))
    else:
        lines.append((logging.WARNING, f"no authentication is configured and --insecure is set: anyone who "
                                       f"reaches {config.address} can use this server"))
    if config.auth == "api-key" and not config.tls_cert and not server_config.is_loopback(config.address):
        lines.append((logging.WARNING, "API keys travel in plaintext without TLS (--insecure is set)"))
    return lines


def observability_summary(config: server_config.ServerConfig, running) -> list[str]:
    """Where metrics and traces go, said once at start."""
    lines = []
    if running.metrics_port is not None:
        host = config.metrics_address.rsplit(":", 1)[0]
        scheme = "https" if config.tls_cert else "http"
        lines.append(f"metrics on {scheme}://{host}:{running.metrics_port}/metrics"
                     + (" (mutual TLS)" if config.tls_client_ca else ""))
    if running.webhook_port is not None:
        host = config.webhook_address.rsplit(":", 1)[0]
        scheme = "https" if config.tls_cert else "http"
        lines.append(f"pipeline webhook triggers on {scheme}://{host}:{running.webhook_port}/v1/"
                     "projects/P/pipelines/ID/triggers/NAME")
    if config.tracing == "console":
        lines.append("tracing: a span per RPC, printed to stdout")
    elif config.tracing == "otlp":
        lines.append(f"tracing: a span per RPC, sent over OTLP/HTTP to "
                     f"{config.tracing_endpoint or 'the OTEL_EXPORTER_OTLP_* endpoint (default localhost:4318)'}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    """The server's commands (also read by tools/gen_config_docs.py for docs/configuration.md)."""
    parser = argparse.ArgumentParser(prog="forge-training", description="forge-training: train models over gRPC")
    commands = parser.add_subparsers(dest="command", required=True)
    # No abbreviated flags: a flag given on the command line must be seen as given, to win over
    # the configuration file (config_file.apply matches the names as written).
    serve_parser = commands.add_parser("serve", help="run the gRPC server", allow_abbrev=False)
    server_config.add_serve_arguments(serve_parser)
    keys_command.add_parser(commands)
    migrate_command.add_parser(commands)
    config_parser = commands.add_parser("config", help="the server's effective configuration",
                                        description="What `forge-training serve` would run with, given the same "
                                                    "--config file, environment and flags.")
    config_commands = config_parser.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser(
        "show", help="print the effective configuration as YAML, secrets masked", allow_abbrev=False,
        description="Prints, as YAML in the configuration file's shape, what `forge-training serve` would run with "
                    "given the same --config file, environment and flags (it takes every flag of serve); secrets "
                    "are masked and credentials shown only as set or not. A configuration serve would refuse "
                    "exits 1 with the same one-line reason.")
    server_config.add_serve_arguments(show)
    return parser


def effective_config(parser: argparse.ArgumentParser, args: argparse.Namespace,
                     argv: list[str]) -> server_config.ServerConfig:
    """The configuration `serve` runs with: the --config file under the environment under the
    flags, checked whole. A bad value stops with one line naming the key or flag and the fix."""
    command = parser._subparsers._group_actions[0].choices[args.command]
    if args.command == "config":
        command = command._subparsers._group_actions[0].choices[args.config_command]
    settings = None
    if args.config:
        try:
            settings = config_file.load(args.config)
            config_file.apply(settings, command, args, argv)
        except config_file.ConfigFileError as exc:
            raise SystemExit(f"forge-training: {exc}") from None
    try:
        return server_config.from_args(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            raise SystemExit(f"forge-training: {config_file.explain(exc.code, settings, command)}") from None
        raise


def load_config(path: str | Path | None = None, *flags: str) -> server_config.ServerConfig:
    """The configuration `forge-training serve --config PATH FLAGS...` would run with, for an
    application that embeds the service (server.app.BackgroundServer / create_server): the
    file, under the FORGE_TRAINING_* environment, under `flags`, checked as serve checks them.
    ValueError, naming the key or flag, when it is not valid."""
    argv = ["serve", *(["--config", str(path)] if path else []), *flags]
    parser = build_parser()
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):  # argparse prints its complaint, then exits
            args = parser.parse_args(argv)
        return effective_config(parser, args, argv)
    except SystemExit as exc:  # argparse and the checks speak to a command line; a library raises
        said = exc.code if isinstance(exc.code, str) else usage.getvalue().strip().splitlines()[-1]
        raise ValueError(said.removeprefix("forge-training: ")) from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "config":
        config = effective_config(parser, args, argv)
        sys.stdout.write(yaml.safe_dump(config_file.effective(config, args), sort_keys=False))
        return 0
    if args.command == "serve":
        config = effective_config(parser, args, argv)
        logs.configure(config.log_level, config.log_format)
        if args.config:
            log.info("configuration from %s, with FORGE_TRAINING_* variables and flags over it "
                     "(forge-training config show prints the result)", Path(args.config).resolve())
        try:
            asyncio.run(serve(config))
        except SchemaMismatch as exc:  # the operator's to fix: the message says how, no traceback needed
            log.error("%s", exc.message)
            return 2
        except ListenError as exc:  # a taken port or a foreign host: the operator's to fix too
            log.error("%s", exc)
            return 2
        except FailedPrecondition as exc:  # e.g. a Ray cluster (--executor ray) that does not answer
            log.error("%s", exc.message)
            return 2
    elif args.command == "keys":
        return keys_command.run(args)
    elif args.command == "migrate":
        return migrate_command.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
