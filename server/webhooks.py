"""The webhook listener (serve --webhook-address): HTTP calls that trigger pipelines.

    POST /v1/projects/{project}/pipelines/{pipeline}/triggers/{trigger}
    X-Forge-Timestamp: <Unix seconds>
    X-Forge-Signature: sha256=<HMAC-SHA256 of "{timestamp}.{body}" with the trigger's secret>
    Content-Type: application/json

    {"any": "input"}          -> 202 {"execution": "projects/.../executions/run-..."}

The body (a JSON object, or empty) is merged over the trigger's input. The call is
authenticated by the signature alone (engine/alerts/signing.py): an unknown pipeline or
trigger, a wrong or missing signature, an old timestamp (more than 5 minutes away) or a
signature already used are all the same 401 (nothing is told to an unauthenticated caller but
that it failed; the server's log says which). Served over TLS with the server's certificate
when it has one.

Nothing an unauthenticated caller sends may cost the server more than a bounded amount: the
body must declare its length (at most 1 MiB), every connection has a 10 s socket timeout (the
TLS handshake included, done in the connection's own thread), and at most 64 connections are
served at once (more are closed at once).
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engine import tenancy
from engine.alerts import signing
from engine.errors import ForgeError, NotFound
from engine.pipelines.manager import PipelineManager
from server.http_listener import HttpListener

log = logging.getLogger("forge.webhooks")

MAX_BODY_BYTES = 1 << 20
MAX_CONNECTIONS = 64
SOCKET_TIMEOUT_SECONDS = 10.0
_REFUSED = {"error": "no such webhook trigger, or the call is not signed with its secret, is too old, or is a replay"}
_PATH = re.compile(r"^/v1/(projects/([a-z0-9-]{1,63})/pipelines/[a-z0-9-]{1,63})/triggers/([a-z0-9-]{1,63})$")
_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 409, "NOT_FOUND": 404, "UNAVAILABLE": 503,
           "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429}


class _SeenSignatures:
    """Signatures accepted within the timestamp tolerance: the same request twice is a replay."""

    def __init__(self, size: int = 10_000):
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, signature: str) -> bool:
        now = time.time()
        with self._lock:
            while self._seen and (len(self._seen) >= self._size
                                  or next(iter(self._seen.values())) < now - 2 * signing.TOLERANCE_SECONDS):
                self._seen.popitem(last=False)
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True


class WebhookListener(HttpListener):
    def __init__(self, pipelines: PipelineManager):
        self.pipelines = pipelines
        self._seen = _SeenSignatures()

    def start(self, address: str, certfile=None, keyfile=None) -> int:
        """Listen on host:port (port 0: a free one), over TLS with a certificate; returns the
        port (OSError when it cannot)."""
        host, _, port = address.rpartition(":")
        listener = self

        class Handler(_Handler):
            owner = listener

        context = None
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(certfile), str(keyfile))
        self._httpd = _Server((host.strip("[]"), int(port)), Handler, context)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="webhook listener", daemon=True)
        self._thread.start()
        return self._httpd.server_port


    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) of one call."""
        found = _PATH.match(path)
        if not found:
            return 404, {"error": "POST to /v1/projects/{project}/pipelines/{pipeline}/triggers/{trigger}"}
        pipeline, project, trigger_name = found.groups()
        try:
            trigger = self.pipelines.webhook_trigger(pipeline, trigger_name)
        except NotFound:
            log.warning("webhook call to %s/triggers/%s refused: no such webhook trigger", pipeline, trigger_name)
            return 401, _REFUSED
        signed = headers.get(signing.SIGNATURE_HEADER, "")
        why = signing.verify(trigger["secret"], headers.get(signing.TIMESTAMP_HEADER, ""), signed, body)
        if why or not self._seen.first_time(signed):
            log.warning("webhook call to %s/triggers/%s refused: %s", pipeline, trigger_name,
                        why or "a signature already used (a replay)")
            return 401, _REFUSED
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return 400, {"error": f"the body is not JSON: {exc}"}
        if not isinstance(payload, dict):
            return 400, {"error": "the body must be a JSON object: the execution's input"}
        try:
            with tenancy.acting_for(project):
                execution = self.pipelines.webhook_called(pipeline, trigger_name, payload)
        except ForgeError as exc:
            return _STATUS.get(exc.code, 500), {"error": exc.message}
        return 202, {"execution": execution.name}


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most MAX_CONNECTIONS at once; with TLS, each connection's
    handshake happens in its own thread, under its socket timeout (never in accept())."""

    daemon_threads = True

    def __init__(self, address, handler, context: ssl.SSLContext | None):
        super().__init__(address, handler)
        self._context = context
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many at once: this one is closed unanswered
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            if self._context is not None:
                request.settimeout(SOCKET_TIMEOUT_SECONDS)
                try:
                    request = self._context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    self.shutdown_request(request)
                    return
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    owner: WebhookListener
    server_version = "forge-training-webhooks"
    timeout = SOCKET_TIMEOUT_SECONDS  # a caller that stops sending is dropped

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        declared = self.headers.get("Content-Length", "")
        if not declared.isdigit():
            self._answer(411, {"error": "send the body's length in Content-Length"})
            return
        if int(declared) > MAX_BODY_BYTES:
            self._answer(413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})
            return
        body = self.rfile.read(int(declared))
        try:
            status, answer = self.owner.handle(self.path, self.headers, body)
        except Exception:  # noqa: BLE001 - the listener answers, whatever went wrong
            log.exception("webhook call to %s failed", self.path)
            status, answer = 500, {"error": "internal error; the server log has the details"}
        self._answer(status, answer)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(405, {"error": "POST a signed JSON body"})

    def _answer(self, status: int, answer: dict[str, Any]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # the server's log, not stderr
        log.debug("%s %s", self.address_string(), format % args)
