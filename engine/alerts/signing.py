"""The signature of everything this service POSTs to a webhook, and of the webhook calls that
trigger pipelines: HMAC-SHA256 over "{timestamp}.{body}" with the shared secret, sent as

    X-Forge-Timestamp: 1795830000
    X-Forge-Signature: sha256=<hex digest>

The timestamp (Unix seconds) is part of what is signed, so a receiver that also refuses old
timestamps refuses replays of a captured request after a few minutes; within them, a receiver
remembers what it took (X-Forge-Delivery for alerts; the webhook listener keeps the
signatures it accepted). The SDK's forge.training.webhooks.verify is
the receiver's side of the same scheme (a test holds the two together).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Forge-Timestamp"
SIGNATURE_HEADER = "X-Forge-Signature"
DELIVERY_HEADER = "X-Forge-Delivery"
EVENT_HEADER = "X-Forge-Event"
# How far a signed timestamp may be from the receiver's clock.
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers of `body` (none without a secret)."""
    if not secret:
        return {}
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, timestamp: str, signed: str, body: bytes, *, now: float | None = None,
           tolerance: float = TOLERANCE_SECONDS) -> str:
    """"" when `signed` is the signature of (timestamp, body) and the timestamp is recent; else
    why not, in words (for a log, not for the caller)."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except (TypeError, ValueError):
        return f"{TIMESTAMP_HEADER} is missing or not a number"
    if age > tolerance:
        return f"{TIMESTAMP_HEADER} is {age:.0f} s away from this server's clock (more than {tolerance:g} s)"
    # As bytes: compare_digest refuses text with characters outside ASCII (any header may hold them).
    if not hmac.compare_digest(signature(secret, timestamp, body).encode(), (signed or "").encode()):
        return f"{SIGNATURE_HEADER} does not match the body"
    return ""
