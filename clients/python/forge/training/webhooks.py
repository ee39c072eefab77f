"""Webhooks of the forge-training service, from the other side: checking the alerts it POSTs,
and signing the calls that trigger pipelines.

A receiver of alerts checks each POST before trusting it (standard library only)::

    from forge.training import webhooks

    def handle(headers, body: bytes):
        if not webhooks.verify(SECRET, headers, body):
            return 401
        alert = json.loads(body)      # {"id", "alert", "event", "resource", "state" | "metric", ...}

X-Forge-Delivery is the delivery's id: a receiver that sees an id twice got a retry of an alert
it already took. A caller of a pipeline's webhook trigger signs its body the same way::

    body = json.dumps({"dataset": "projects/default/datasets/sales-2026-11"}).encode()
    headers = {"Content-Type": "application/json", **webhooks.signed_headers(SECRET, body)}
    urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST"))

The scheme: X-Forge-Timestamp is the Unix time in seconds; X-Forge-Signature is "sha256=" and
the hex HMAC-SHA256, keyed with the secret, of "{timestamp}.{body}". The timestamp is signed,
so a receiver that refuses old ones (more than `tolerance` seconds away) refuses replays after
that; within it, remember the X-Forge-Delivery ids already taken.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Forge-Timestamp"
SIGNATURE_HEADER = "X-Forge-Signature"
DELIVERY_HEADER = "X-Forge-Delivery"
EVENT_HEADER = "X-Forge-Event"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """ "sha256=" and the hex HMAC-SHA256 of "{timestamp}.{body}"."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The X-Forge-Timestamp and X-Forge-Signature headers of `body`, signed now."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, tolerance: float = 300,
           now: float | None = None) -> bool:
    """Whether `body` with these headers was signed with `secret` less than `tolerance` seconds
    from now. `headers` may be any mapping; names are matched without regard to case."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    timestamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    try:
        if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
            return False
    except (TypeError, ValueError):
        return False
    # As bytes: compare_digest refuses text with characters outside ASCII.
    return hmac.compare_digest(signature(secret, timestamp, body).encode(),
                               str(lowered.get(SIGNATURE_HEADER.lower(), "")).encode())
