"""Firing alerts and delivering them to webhooks.

`state_changed` and `metric_values` are called by the trainer, the pipeline manager and the
tuning manager after they commit a change; they only decide which rules fire, write each
firing to the resource's log (`log_to`) and the server's, and record a delivery per webhook
in the database: never a network call, so a slow or dead receiver cannot hold up training.
A delivery loop POSTs what is due, oldest first, with at most one attempt per receiving host
under way (DELIVERY_THREADS hosts at once): a 2xx answer delivers it; anything else (an error
status, a redirect, a refused connection, a timeout) is retried after 1, 2, 4 ... seconds
(`retry_base`), up to `max_attempts` attempts, then it is FAILED. The receiver's answer body is
not kept (it is the receiver's, and viewers read the deliveries). Unless `private_targets`, a
webhook whose host resolves to a loopback, private or link-local address fails at once. Every attempt's outcome is
on the delivery's row (ListAlertDeliveries). Deliveries still pending when the server stops
are picked up by the next one.

A metric rule fires when its metric crosses the line, and again only after the metric has
been back on the other side; which side each rule's metric was on is kept in memory, so a
restarted server may fire a rule once more for a metric already across.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from engine.alerts import signing
from engine.alerts.rules import crossed
from engine.store.database import Database
from engine.store.models import AlertDeliveryRow

log = logging.getLogger("forge.alerts")

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# The most of an attempt's error kept.
_ERROR_CHARS = 300
# Attempts under way at once (one per receiving host).
DELIVERY_THREADS = 4


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a new address to POST the alert to (or turn it into a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def shown_url(url: str) -> str:
    """`url` as the API and logs show it: scheme, host and port; its path and query often hold
    the credentials of the receiver (a Slack or Teams webhook's do), so they are elided."""
    if not url:
        return ""
    parts = urlsplit(url)
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{rest}"


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def firing(rules: list[dict[str, Any]] | None, state: str) -> list[dict[str, Any]]:
    """The rules that fire when their resource enters `state`."""
    return [rule for rule in rules or () if state in rule.get("on_states", ())]


def state_line(rule: dict[str, Any], resource: str, state: str, message: str) -> str:
    """The log line of a state alert."""
    return f"alert {rule['name']!r}: {resource} is {state}" + (f" ({message})" if message else "")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class Alerts:
    def __init__(self, db: Database, *, log_to: Callable[[str, str, str], None] | None = None,
                 retry_base: float = 1.0, max_attempts: int = 6, timeout: float = 10.0,
                 private_targets: bool = True):
        self._db = db
        # Whether webhooks may be on loopback, private or link-local addresses (_refused).
        self.private_targets = private_targets
        self._busy: set[str] = set()  # hosts with an attempt under way
        self._log_to = log_to  # (resource, message, level): the resource's own log
        self.retry_base = retry_base
        self.max_attempts = max_attempts
        self.timeout = timeout
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sides: dict[tuple[str, str], bool] = {}  # (resource, rule) -> whether its metric is across
        self._lock = threading.Lock()

    # ----- lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._deliver_loop, name="alert deliveries", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)

    # ----- firing

    def state_changed(self, project: str, resource: str, rules: list[dict[str, Any]] | None, state: str,
                      message: str = "", *, logged: bool = False, **details: Any) -> None:
        """`resource` entered `state`: the rules watching it fire. `logged`: the caller has
        already written their lines (state_line) to the resource's log, before the change (a
        final state ends the streams that follow the log: a line after it would be missed)."""
        for rule in firing(rules, state):
            self._fire(project, resource, rule, "state_changed", {"state": state, "message": message, **details},
                       state_line(rule, resource, state, message), logged=logged)

    def metric_values(self, project: str, resource: str, rules: list[dict[str, Any]] | None,
                      values: dict[str, float], **details: Any) -> None:
        """New values of `resource`'s metrics (e.g. an epoch's): rules whose metric crossed fire."""
        for rule in rules or ():
            condition = rule.get("metric")
            if not condition or values.get(condition["metric"]) is None:
                continue
            value = float(values[condition["metric"]])
            across = crossed(condition, value)
            key = (resource, rule["name"])
            with self._lock:
                before, self._sides[key] = self._sides.get(key, False), across
            if across and not before:
                side = "above" if "above" in condition else "below"
                self._fire(project, resource, rule, "metric_threshold",
                           {"metric": condition["metric"], "value": value, side: condition[side], **details},
                           f"alert {rule['name']!r}: {condition['metric']} of {resource} is {value:.6g}, "
                           f"{side} {condition[side]:g}")

    def forget(self, resource: str) -> None:
        """`resource` is over: its metric rules' memory goes."""
        with self._lock:
            for key in [k for k in self._sides if k[0] == resource]:
                del self._sides[key]

    def _fire(self, project: str, resource: str, rule: dict[str, Any], event: str, details: dict[str, Any],
              line: str, logged: bool = False) -> None:
        try:
            if self._log_to is not None and not logged:
                self._log_to(resource, line, "warning" if details.get("state") == "FAILED" else "info")
            log.info("%s", line, extra={"resource": resource, "alert": rule["name"]})
            if not rule.get("webhook_url"):
                return
            now = _now()
            delivery = uuid.uuid4().hex
            payload = {"id": delivery, "alert": rule["name"], "event": event, "resource": resource,
                       "project": project, "time": now.isoformat().replace("+00:00", "Z"), **details}
            with self._db.session() as s:
                s.add(AlertDeliveryRow(id=delivery, project=project, resource=resource, alert=rule["name"],
                                       event=event, payload=payload, url=rule["webhook_url"],
                                       secret=rule.get("webhook_secret") or "", state=PENDING, attempts=0,
                                       last_response_code=0, last_error="", create_time=now,
                                       next_attempt_time=now))
            self._wake.set()
        except Exception:  # an alert must never fail what it reports on
            log.exception("alert %r of %s could not be recorded", rule.get("name"), resource)

    # ----- delivery

    def _deliver_loop(self) -> None:
        """Start the attempts that are due, at most one per receiving host at a time and
        DELIVERY_THREADS in all: a receiver that hangs holds up only its own deliveries."""
        with ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="alert delivery") as pool:
            while not self._stop.is_set():
                try:
                    due, wait = self._due()
                except Exception:  # a database hiccup: try again shortly
                    log.exception("alert deliveries: checking what is due failed")
                    due, wait = [], 1.0
                for row in due:
                    host = _host(row.url)
                    with self._lock:
                        if host in self._busy or len(self._busy) >= DELIVERY_THREADS:
                            continue
                        self._busy.add(host)
                    pool.submit(self._attempt_then_free, row, host)
                self._wake.wait(wait if not due else 0.5)
                self._wake.clear()

    def _attempt_then_free(self, row: AlertDeliveryRow, host: str) -> None:
        try:
            self._attempt(row)
        except Exception:  # recorded nowhere else: the server's log says why, the row stays pending
            log.exception("alert delivery %s to %s failed to run", row.id, shown_url(row.url))
        finally:
            with self._lock:
                self._busy.discard(host)
            self._wake.set()

    def _due(self) -> tuple[list[AlertDeliveryRow], float]:
        """Pending deliveries due now (oldest first, a batch), and else seconds until the next."""
        now = _now()
        with self._db.session() as s:
            due = list(s.scalars(select(AlertDeliveryRow).where(
                AlertDeliveryRow.state == PENDING, AlertDeliveryRow.next_attempt_time <= now)
                .order_by(AlertDeliveryRow.next_attempt_time).limit(200)))
            if due:
                return due, 0.0
            upcoming = s.scalar(select(AlertDeliveryRow.next_attempt_time).where(AlertDeliveryRow.state == PENDING)
                                .order_by(AlertDeliveryRow.next_attempt_time).limit(1))
        if upcoming is None:
            return [], 60.0
        return [], max(0.05, min(60.0, (_utc(upcoming) - now).total_seconds()))

    def _attempt(self, row: AlertDeliveryRow) -> None:
        body = json.dumps(row.payload, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "forge-training-alerts",
                   signing.DELIVERY_HEADER: row.id, signing.EVENT_HEADER: row.event,
                   **signing.signed_headers(row.secret, body)}
        code, error = 0, self._refused(row.url)
        final = bool(error)  # a receiver this server may not call: no use trying again
        if not error:
            try:
                request = urllib.request.Request(row.url, data=body, headers=headers, method="POST")
                with _OPENER.open(request, timeout=self.timeout) as answer:
                    code = answer.status
            except urllib.error.HTTPError as exc:  # its body is the receiver's: not kept, nor shown
                code, error = exc.code, f"HTTP {exc.code} {exc.reason}".strip()
            except Exception as exc:  # refused, unreachable, timed out, a bad certificate
                error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        attempts = row.attempts + 1
        now = _now()
        values: dict[str, Any] = {"attempts": attempts, "last_response_code": code}
        if 200 <= code < 300:
            values.update(state=DELIVERED, last_error="", end_time=now, next_attempt_time=None)
        elif final or attempts >= self.max_attempts:
            values.update(state=FAILED, last_error=error[:_ERROR_CHARS], end_time=now, next_attempt_time=None)
            log.warning("alert %r of %s: giving up on %s after %d attempts: %s", row.alert, row.resource,
                        shown_url(row.url), attempts, error)
        else:
            delay = self.retry_base * 2 ** (attempts - 1)
            values.update(last_error=error[:_ERROR_CHARS], next_attempt_time=now + timedelta(seconds=delay))
        with self._db.session() as s:
            s.execute(update(AlertDeliveryRow).where(AlertDeliveryRow.id == row.id).values(**values))

    def _refused(self, url: str) -> str:
        """Why this server may not POST to `url` ("" when it may): a host that resolves to a
        loopback, private, link-local or reserved address is refused unless the configuration
        allows those (a server reachable by others must not be made to call its own network)."""
        if self.private_targets:
            return ""
        host = urlsplit(url).hostname or ""
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except OSError as exc:
            return f"{type(exc).__name__}: {host} does not resolve ({exc})"
        for address in sorted(addresses):
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global:
                return (f"refused: {host} resolves to {address}, not a public address; a server started with "
                        "--alert-private-webhooks may call such hosts")
        return ""

    # ----- reading

    def deliveries(self, resource: str, page_size: int, page_token: str, *,
                   executions_of: bool = False) -> tuple[list[AlertDeliveryRow], str]:
        """Deliveries about `resource` (with `executions_of`: about any execution of the pipeline
        `resource`), newest first."""
        where = (AlertDeliveryRow.resource.startswith(f"{resource}/executions/", autoescape=True)
                 if executions_of else AlertDeliveryRow.resource == resource)
        query = select(AlertDeliveryRow).where(where).order_by(AlertDeliveryRow.create_time.desc(),
                                                              AlertDeliveryRow.id)
        return self._db.page(query, page_size, page_token)
