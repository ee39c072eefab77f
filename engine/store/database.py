"""Connecting to the metadata database (SQLite by default, PostgreSQL supported)."""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Compiled, Engine
from sqlalchemy.sql import Executable
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
        self._compiled: dict[Executable, Compiled] = {}  # driver statements, compiled for this database

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
            # What must happen only once the change is committed (alerts about it).
            for action in session.info.pop("after_commit", ()):
                action()

    def page(self, query, page_size: int, page_token: str) -> tuple[list, str]:
        """One page of `query`'s rows (one row more is read, to know whether another page follows)."""
        offset, limit = page_bounds(page_size, page_token)
        with self.session() as s:
            rows = list(s.scalars(query.offset(offset).limit(limit + 1)))
        page = rows[:limit]
        return page, next_token(offset, limit, len(page), len(rows) > limit)

    def close(self) -> None:
        self.engine.dispose()

    # ----- the driver's own cursor, for the hot paths (a replay's reads, every epoch's writes)
    #
    # SQLAlchemy's sessions, cache keys and result rows cost far more Python than the database
    # does for a handful of rows: with a job training on every core, each millisecond of it is
    # taken from the training. Statements given here are module constants, compiled once.

    def compiled(self, statement: Executable) -> Compiled:
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = statement.compile(dialect=self.engine.dialect)
        return compiled

    def driver_rows(self, statement: Executable, params: dict[str, Any]) -> list[tuple]:
        """The rows of `statement` as the driver gives them (plain tuples: SQLite timestamps and
        JSON as text, PostgreSQL's already decoded)."""
        with self.engine.connect() as connection:
            return DriverStatements(self, connection).run(statement, params, fetch=True)

    @contextmanager
    def driver_transaction(self) -> Iterator[DriverStatements]:
        """Statements run on the driver's cursor in one transaction, committed at the end."""
        with self.engine.begin() as connection:
            yield DriverStatements(self, connection)


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


class DriverStatements:
    """Compiled statements run on one connection's driver cursor, each parameter through its
    column type's bind processor (JSON to text, SQLite timestamps to text), as SQLAlchemy would."""

    def __init__(self, db: Database, connection):
        self._db = db
        self._connection = connection

    def run(self, statement: Executable, params: dict[str, Any] | list[dict[str, Any]], fetch: bool = False):
        """Execute with one parameter set, or many (executemany). Returns the rows when `fetch`,
        else the number of rows changed."""
        compiled = self._db.compiled(statement)
        # SQLAlchemy's own processor for each bind (its column type's), the ones its execute
        # applies; private, so tests/unit/engine/monitor/test_journal.py reads every written
        # type back through the ORM.
        processors = compiled._bind_processors
        many = isinstance(params, list)

        def bound(values: dict[str, Any]):
            values = compiled.construct_params(values)
            for name, process in processors.items():
                values[name] = process(values[name])
            return tuple(values[name] for name in compiled.positiontup) if compiled.positional else values

        cursor = self._connection.connection.dbapi_connection.cursor()
        try:
            if many:
                cursor.executemany(compiled.string, [bound(values) for values in params])
            else:
                cursor.execute(compiled.string, bound(params))
            return cursor.fetchall() if fetch else cursor.rowcount
        finally:
            cursor.close()
