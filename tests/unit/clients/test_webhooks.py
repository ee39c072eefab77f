"""The SDK's webhook signatures (forge.training.webhooks) and the server's (engine/alerts/signing.py)
are one scheme: each side accepts what the other signs, and nothing else."""

from __future__ import annotations

import time

from engine.alerts import signing
from forge.training import webhooks


def test_what_the_server_signs_the_sdk_verifies_and_the_reverse():
    body = b'{"alert": "failed", "state": "FAILED"}'
    headers = signing.signed_headers("s3cret", body)
    assert webhooks.verify("s3cret", headers, body)
    assert webhooks.verify("s3cret", {k.lower(): v for k, v in headers.items()}, body)  # any header case
    assert not webhooks.verify("other", headers, body)
    assert not webhooks.verify("s3cret", headers, body + b"\n")
    signed = webhooks.signed_headers("s3cret", body)
    assert signing.verify("s3cret", signed[webhooks.TIMESTAMP_HEADER], signed[webhooks.SIGNATURE_HEADER], body) == ""


def test_old_or_missing_timestamps_are_refused():
    body = b"{}"
    old = signing.signed_headers("s3cret", body, now=time.time() - 600)
    assert not webhooks.verify("s3cret", old, body)
    assert webhooks.verify("s3cret", old, body, tolerance=900)
    assert "away from this server's clock" in signing.verify(
        "s3cret", old[signing.TIMESTAMP_HEADER], old[signing.SIGNATURE_HEADER], body)
    assert not webhooks.verify("s3cret", {}, body)
    assert signing.verify("s3cret", "", "", body) == "X-Forge-Timestamp is missing or not a number"
    assert signing.signed_headers("", body) == {}  # no secret: unsigned
