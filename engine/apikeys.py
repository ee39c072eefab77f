"""API keys: created, listed and revoked by the server's administrator, checked on every call.

A key reads `ftk_<id>_<secret>`. The id is public (listed, logged); only the SHA-256 of the
whole key is stored, so the database never holds a usable key. Each key carries a role per
project: viewer < trainer < admin.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select

from engine import names
from engine.errors import InvalidArgument, NotFound
from engine.store.database import Database
from engine.store.models import ApiKeyRow

ROLES = ("viewer", "trainer", "admin")
PREFIX = "ftk_"
_KEY = re.compile(r"^ftk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# How long a checked key is trusted before the database is asked again: a revoked key stops
# working within this many seconds on every server sharing the database.
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's id, its name and its role in each project."""

    key_id: str
    name: str
    roles: dict[str, str]

    def projects_with(self, role: str) -> frozenset[str]:
        """The projects where this key has at least `role`."""
        need = ROLES.index(role)
        return frozenset(p for p, r in self.roles.items() if ROLES.index(r) >= need)


def parse_roles(entries: list[str]) -> dict[str, str]:
    """{project: role} from "project=role" entries, each checked."""
    roles: dict[str, str] = {}
    for entry in entries:
        project, sep, role = entry.partition("=")
        if not sep:
            raise InvalidArgument.field("role", f"{entry!r}: write PROJECT=ROLE, e.g. vision=trainer")
        names.validate_id(project, "role")
        if role not in ROLES:
            raise InvalidArgument.field("role", f"{entry!r}: the role must be one of {', '.join(ROLES)}")
        roles[project] = role
    if not roles:
        raise InvalidArgument.field("role", "give at least one PROJECT=ROLE: a key with no project can do nothing")
    return roles


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, db: Database):
        self._db = db
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def create(self, name: str, roles: dict[str, str]) -> tuple[ApiKeyRow, str]:
        """A new key; the returned secret is the only copy there will ever be."""
        key_id = secrets.token_hex(6)
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        row = ApiKeyRow(id=key_id, name=name, secret_sha256=_digest(key), roles=dict(roles),
                        create_time=datetime.now(timezone.utc), revoke_time=None)
        with self._db.session() as s:
            s.add(row)
        return row, key

    def list(self) -> list[ApiKeyRow]:
        with self._db.session() as s:
            return list(s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.create_time)))

    def revoke(self, key_id: str) -> ApiKeyRow:
        key_id = key_id.removeprefix(PREFIX)
        with self._db.session() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key with id {key_id}: `forge-training keys list` shows them")
            if row.revoke_time is None:
                row.revoke_time = datetime.now(timezone.utc)
        with self._lock:
            self._cache.clear()
        return row

    def verify(self, key: str) -> Principal | None:
        """The key's principal, or None for a malformed, unknown or revoked key."""
        match = _KEY.match(key)
        if match is None:
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        with self._db.session() as s:
            row = s.get(ApiKeyRow, match.group(1))
            principal = None
            if row is not None and row.revoke_time is None and hmac.compare_digest(row.secret_sha256, _digest(key)):
                principal = Principal(row.id, row.name, dict(row.roles))
        with self._lock:
            if len(self._cache) > 10_000:  # bounded: someone trying many keys must not grow it forever
                self._cache.clear()
            self._cache[key] = (now, principal)
        return principal
