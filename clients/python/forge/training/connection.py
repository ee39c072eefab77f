"""Opening a channel to a forge-training server: TLS (mutual TLS with a client certificate)
and the metadata every call carries (the API key and the default project).

The metadata is added by a channel interceptor, so the raw stubs of a Client
(client.trainer, client.data, client.pipelines) carry the key as well.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Union

import grpc

API_KEY_ENV = "FORGE_TRAINING_API_KEY"
PROJECT_HEADER = "x-forge-project"
Pem = Union[bytes, str, Path]


def _pem(value: Pem | None, what: str) -> bytes | None:
    """PEM bytes from bytes, PEM text or a file path."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    path = Path(value)
    if not path.is_file():
        raise ValueError(f"{what}: {value} is neither PEM text nor a readable file")
    return path.read_bytes()


def channel_credentials(root_certificates: Pem | None = None, client_certificate: Pem | None = None,
                        client_key: Pem | None = None) -> grpc.ChannelCredentials:
    """TLS credentials: the CA that signed the server's certificate (None: the system's roots)
    and, for mutual TLS, this client's certificate and key."""
    if bool(client_certificate) != bool(client_key):
        raise ValueError("client_certificate and client_key go together (mutual TLS): give both or neither")
    return grpc.ssl_channel_credentials(root_certificates=_pem(root_certificates, "root_certificates"),
                                        private_key=_pem(client_key, "client_key"),
                                        certificate_chain=_pem(client_certificate, "client_certificate"))


class _Details(collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials",
                                                   "wait_for_ready", "compression")),
               grpc.ClientCallDetails):
    pass


class CallMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds fixed (key, value) pairs to the metadata of every call."""

    def __init__(self, pairs: tuple[tuple[str, str], ...]):
        self.pairs = pairs

    def _with_pairs(self, details):
        return _Details(details.method, details.timeout, tuple(details.metadata or ()) + self.pairs,
                        details.credentials, details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_pairs(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_pairs(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._with_pairs(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._with_pairs(details), request_iterator)


def identity_metadata(api_key: str | None, project: str | None) -> tuple[tuple[str, str], ...]:
    """The API key (argument, else FORGE_TRAINING_API_KEY) and default project as call metadata."""
    api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    pairs: list[tuple[str, str]] = []
    if api_key:
        pairs.append(("authorization", f"Bearer {api_key}"))
    if project:
        pairs.append((PROJECT_HEADER, project))
    return tuple(pairs)


def open_channel(target: str, options, *, tls: bool = False, root_certificates: Pem | None = None,
                 client_certificate: Pem | None = None, client_key: Pem | None = None) -> grpc.Channel:
    """A plaintext channel, or a TLS one when `tls` or any certificate is given."""
    if tls or root_certificates or client_certificate or client_key:
        credentials = channel_credentials(root_certificates, client_certificate, client_key)
        return grpc.secure_channel(target, credentials, options=options)
    return grpc.insecure_channel(target, options=options)
