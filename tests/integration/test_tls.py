"""TLS and mutual TLS between the SDK and a real server, with certificates made here."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest

from engine.apikeys import ApiKeys
from forge.training import Client, ForgeTrainingError


def _certificate(subject: str, key, issuer_cert=None, issuer_key=None, ca: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA,
    plus a client certificate signed by a stranger."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out = tmp_path_factory.mktemp("pki")
    files: dict[str, Path] = {}

    def write(label: str, cert, key) -> None:
        files[f"{label}.crt"] = out / f"{label}.crt"
        files[f"{label}.crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{label}.key"] = out / f"{label}.key"
        files[f"{label}.key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("forge test CA", ca_key, ca=True)
    write("ca", ca, ca_key)
    for label in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        write(label, _certificate(label, key, ca, ca_key), key)
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger_ca = _certificate("stranger CA", stranger_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    write("stranger", _certificate("stranger", key, stranger_ca, stranger_key), key)
    return files


def _refused(client: Client) -> grpc.StatusCode:
    with pytest.raises(ForgeTrainingError) as err:
        list(client.list_datasets())
    return err.value.code


def test_tls_with_api_keys(start_server, pki):
    running = start_server(auth="api-key", tls_cert=pki["server.crt"], tls_key=pki["server.key"])
    key = ApiKeys(running.engine.db).create("tls", {"a": "trainer"})[1]
    with Client(running.target, api_key=key, root_certificates=pki["ca.crt"], timeout=10) as client:
        assert list(client.list_datasets()) == []
        # The certificate may also be given as PEM text.
    with Client(running.target, api_key=key, root_certificates=pki["ca.crt"].read_text(), timeout=10) as client:
        assert list(client.list_datasets()) == []
    with Client(running.target, api_key=key, timeout=5) as plaintext:  # no TLS: the handshake never completes
        assert _refused(plaintext) == grpc.StatusCode.UNAVAILABLE
    with Client(running.target, api_key=key, root_certificates=pki["stranger.crt"], timeout=5) as untrusting:
        assert _refused(untrusting) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_admits_only_clients_with_a_certificate_from_the_ca(start_server, pki):
    running = start_server(tls_cert=pki["server.crt"], tls_key=pki["server.key"], tls_client_ca=pki["ca.crt"])
    with Client(running.target, root_certificates=pki["ca.crt"], client_certificate=pki["client.crt"],
                client_key=pki["client.key"], timeout=10) as client:
        assert list(client.list_datasets()) == []
    with Client(running.target, root_certificates=pki["ca.crt"], timeout=5) as anonymous:
        assert _refused(anonymous) == grpc.StatusCode.UNAVAILABLE
    with Client(running.target, root_certificates=pki["ca.crt"], client_certificate=pki["stranger.crt"],
                client_key=pki["stranger.key"], timeout=5) as stranger:
        assert _refused(stranger) == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ValueError, match="go together"):
        Client(running.target, root_certificates=pki["ca.crt"], client_certificate=pki["client.crt"])
