"""Connecting to the metadata database (SQLite by default, PostgreSQL supported)."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Callable, Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.store.models import Base


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

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)
        # create_all skips the indexes of tables that already exist: add those added since.
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            with session.begin():
                yield session
            for key in session.info.pop("publish", ()):
                if self._on_commit is not None:
                    self._on_commit(key)

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets stream readers proceed while a supervisor thread writes metric points.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
