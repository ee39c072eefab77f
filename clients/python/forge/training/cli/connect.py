"""Connection options, as the SDK's Client takes them, with their environment variables."""

from __future__ import annotations

import argparse
import os

from forge.training.cli.exit_codes import CommandError
from forge.training.client import Client
from forge.training.connection import API_KEY_ENV

TARGET_ENV = "FORGE_TRAINING_TARGET"
PROJECT_ENV = "FORGE_TRAINING_PROJECT"
DEFAULT_TARGET = "127.0.0.1:50051"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection options. Their defaults are SUPPRESS so that an option given before the
    command (`forge-training --target X jobs list`) is not overwritten by the command's parser;
    open_client fills in what was not given."""
    group = parser.add_argument_group("connection")
    suppress = argparse.SUPPRESS
    group.add_argument("--target", default=suppress, metavar="HOST:PORT",
                       help=f"the server (default: ${TARGET_ENV} or {DEFAULT_TARGET})")
    group.add_argument("--api-key", default=suppress, metavar="KEY",
                       help=f"API key of a server with authentication (default: ${API_KEY_ENV})")
    group.add_argument("--project", default=suppress,
                       help=f"the project bare ids mean (default: ${PROJECT_ENV}, else the key's only project)")
    group.add_argument("--tls", action="store_true", default=suppress,
                       help="connect with TLS, trusting the system's CAs")
    group.add_argument("--ca-cert", default=suppress, metavar="PEM",
                       help="CA certificate that signed the server's certificate (implies --tls)")
    group.add_argument("--client-cert", default=suppress, metavar="PEM",
                       help="this client's certificate, for mutual TLS (with --client-key)")
    group.add_argument("--client-key", default=suppress, metavar="PEM", help="this client's private key")


def target(args: argparse.Namespace) -> str:
    return getattr(args, "target", None) or os.environ.get(TARGET_ENV) or DEFAULT_TARGET


def open_client(args: argparse.Namespace) -> Client:
    """A Client for the parsed options; certificate files are read here, so a wrong path is one
    clear error before any call."""
    try:
        return Client(target(args),
                      api_key=getattr(args, "api_key", None),
                      project=getattr(args, "project", None) or os.environ.get(PROJECT_ENV) or None,
                      tls=getattr(args, "tls", False),
                      root_certificates=getattr(args, "ca_cert", None),
                      client_certificate=getattr(args, "client_cert", None),
                      client_key=getattr(args, "client_key", None))
    except ValueError as exc:  # an unreadable PEM, or a client certificate without its key
        message = str(exc)
        for field, flag in (("root_certificates", "--ca-cert"), ("client_certificate", "--client-cert"),
                            ("client_key", "--client-key")):
            message = message.replace(field, flag)
        raise CommandError(message) from exc
