"""Connecting to the metadata database (SQLite by default, PostgreSQL supported)."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Callable, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine import tenancy
from engine.errors import AlreadyExists, NotFound
from engine.paging import next_token, page_bounds
from engine.store import migrate


class Database:
    """An engine plus a session factory. Sessions are short: one unit of work each."""

    def __init__(self, url: str, on_commit: Callable[[str], None] | None = None):
        self.url = url
        # Called with each key a session put in session.info["publish"], after it committed.
        self._on_commit = on_commit
        kwargs: dict = {}
        if url.startswith("sqlite"):
            # Worker supervisor threads and the server's thread pool share one SQLite file.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self, upgrade_older: bool = False) -> None:
        """Create an empty database at the newest schema revision (Alembic, engine/store/migrate.py).

        A database at an older revision raises SchemaMismatch, naming `forge-training migrate`,
        unless `upgrade_older` is set: a server never migrates a shared database on its own.
        """
        migrate.ensure_current(self.engine, upgrade_older=upgrade_older)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            with session.begin():
                yield session
            for key in session.info.pop("publish", ()):
                if self._on_commit is not None:
                    self._on_commit(key)

    def page(self, query, page_size: int, page_token: str) -> tuple[list, str]:
        """One page of `query`'s rows (one row more is read, to know whether another page follows)."""
        offset, limit = page_bounds(page_size, page_token)
        with self.session() as s:
            rows = list(s.scalars(query.offset(offset).limit(limit + 1)))
        page = rows[:limit]
        return page, next_token(offset, limit, len(page), len(rows) > limit)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets stream readers proceed while a supervisor thread writes metric points.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def fetch(s: Session, model: type, key, what: str):
    """The `model` row with primary key `key`, or NotFound naming it as `what`."""
    row = s.get(model, key)
    # Names are checked against the caller's projects where they are resolved (engine/names.py);
    # this catches a row reached some other way.
    project = getattr(row, "project", None)
    if row is None or (project is not None and not tenancy.current().allows(project)):
        raise NotFound(f"{what} {key} not found")
    return row


def add_new(s: Session, row, key, taken: str) -> None:
    """Add `row` unless its primary key `key` is taken; AlreadyExists(`taken`) otherwise."""
    if s.get(type(row), key) is not None:
        raise AlreadyExists(taken)
    s.add(row)
