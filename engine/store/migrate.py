"""The metadata database's schema revision: where a database is, where this code needs it, the way there.

Alembic runs the hand-written revisions in engine/store/migrations/ on a connection passed in
(config.attributes), so nobody needs an alembic.ini. A database made by create_all before the
service had migrations (its tables exist, it has no alembic_version table) counts as the
baseline revision and is stamped with it when it is first migrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from engine.errors import FailedPrecondition, InvalidArgument

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
HEAD = "head"


class SchemaMismatch(FailedPrecondition):
    """The database is at a schema revision other than this code's, and nobody asked to migrate it
    (or it cannot be: a revision this code does not know, an incomplete pre-migration database)."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: an empty database
    head: str
    # (revision, what it does in one line) an upgrade to head applies, oldest first.
    pending: tuple[tuple[str, str], ...]
    # Made by create_all before migrations: `current` is the baseline, not yet stamped.
    unstamped: bool = False
    # `current` is a revision this code does not know (a newer forge-training migrated it).
    unknown: bool = False

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def status(connection: Connection) -> SchemaStatus:
    """Where the database is and what an upgrade would do; reads only."""
    scripts = _scripts()
    head = scripts.get_current_head()
    current = _stamped_revision(connection)
    unstamped = False
    if current is None and _baseline_tables_present(connection, scripts):
        current, unstamped = BASELINE, True
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        return SchemaStatus(current, head, (), unknown=True)
    steps = reversed(list(scripts.iterate_revisions(head, current or "base")))
    pending = tuple((s.revision, " ".join(s.doc.split())) for s in steps)
    return SchemaStatus(current, head, pending, unstamped=unstamped)


def revisions() -> list[str]:
    """Every revision this code knows, oldest first, after "base" (the empty database)."""
    newest_first = _scripts().walk_revisions()
    return ["base", *reversed([script.revision for script in newest_first])]


def upgrade(connection: Connection, target: str = HEAD) -> SchemaStatus:
    """Migrate to `target` (an older revision downgrades); the status from before, for the report."""
    order = revisions()
    wanted = order[-1] if target == HEAD else target
    if wanted not in order:
        raise InvalidArgument.field("target", f"no such schema revision; use one of {', '.join(order)} or head")
    _lock(connection)
    before = status(connection)
    _refuse_unknown(connection, before)
    config = _config(connection)
    if before.unstamped:
        _check_baseline_complete(connection)
        command.stamp(config, BASELINE)
    current = order.index(before.current or "base")
    if order.index(wanted) > current:
        command.upgrade(config, wanted)
    elif order.index(wanted) < current:
        command.downgrade(config, wanted)
    return before


def ensure_current(engine: Engine, *, upgrade_older: bool = False) -> None:
    """Create an empty database at head; refuse one at another revision unless `upgrade_older`.

    A server must not migrate a database that other servers may share behind the operator's
    back: `forge-training migrate` does, after the operator has stopped them and backed it up.
    """
    with engine.begin() as connection:
        _lock(connection)
        found = status(connection)
        if found.at_head:
            return
        _refuse_unknown(connection, found)
        if found.current is not None and not upgrade_older:
            steps = ", ".join(f"{revision} ({doc})" for revision, doc in found.pending)
            raise SchemaMismatch(
                f"the metadata database {_shown(connection)} is at schema revision {found.current} and this "
                f"forge-training needs {found.head}; pending: {steps}. Stop every server that uses the "
                "database, back it up, then run `forge-training migrate` with the same --data-dir or "
                "--database-url: servers never migrate a database by themselves")
        upgrade(connection)


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def _config(connection: Connection) -> Config:
    config = Config()
    # Options are ConfigParser values, where "%" starts an interpolation.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def _stamped_revision(connection: Connection) -> str | None:
    # What MigrationContext.get_current_revision reads, without the two INFO lines it logs on
    # every server start. Revisions form one line (no branches), so the table holds one row.
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _lock(connection: Connection) -> None:
    # Two servers starting on one empty PostgreSQL database: the second waits for the first's
    # migration to commit, then finds the database at head. Released when the transaction ends.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('forge-training schema'))"))


def _baseline_tables(scripts: ScriptDirectory) -> tuple[str, ...]:
    return scripts.get_revision(BASELINE).module.TABLES


def _baseline_tables_present(connection: Connection, scripts: ScriptDirectory) -> bool:
    # Any one of them: a database shared with other applications may hold tables of theirs.
    return bool(set(_baseline_tables(scripts)) & set(inspect(connection).get_table_names()))


def _check_baseline_complete(connection: Connection) -> None:
    missing = sorted(set(_baseline_tables(_scripts()))
                     - set(inspect(connection).get_table_names()))
    if missing:
        raise SchemaMismatch(
            f"the metadata database {_shown(connection)} has no alembic_version table and only some of the "
            f"tables forge-training made before it had migrations (missing: {', '.join(missing)}): start the "
            "forge-training version that made it once, so it completes its tables, then migrate")


def _refuse_unknown(connection: Connection, found: SchemaStatus) -> None:
    if found.unknown:
        raise SchemaMismatch(
            f"the metadata database {_shown(connection)} is at schema revision {found.current}, which this "
            f"forge-training does not know (its newest is {found.head}): use the newer forge-training that "
            f"migrated it, or downgrade with its `forge-training migrate --to {found.head}`")


def _shown(connection: Connection) -> str:
    return connection.engine.url.render_as_string(hide_password=True)
