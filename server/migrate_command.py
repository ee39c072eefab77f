"""`forge-training migrate [--show] [--to REVISION]`: the operator upgrades the metadata database's
schema (servers never do). The schema logic lives in engine/store/migrate.py; this module parses
the flags and says what happened."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError

from engine.app import EngineSettings
from engine.errors import ForgeError, InvalidArgument
from engine.store import migrate as schema
from engine.store.database import Database
from server import config as server_config


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "migrate", help="upgrade the metadata database's schema to this version's",
        description="Servers create an empty database at the newest schema but refuse an older one: stop them, "
                    "back the database up, then run this with the same --data-dir / --database-url.")
    server_config.add_database_arguments(parser)
    parser.add_argument("--show", action="store_true",
                        help="print the database's revision, this version's newest and the steps between; "
                             "change nothing")
    parser.add_argument("--to", default=schema.HEAD, metavar="REVISION",
                        help="migrate to this revision instead of the newest; an older one downgrades, dropping "
                             "what the later revisions added (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    """`forge-training migrate [--show] [--to REVISION]`: one report on stdout."""
    url = EngineSettings(data_dir=args.data_dir, database_url=args.database_url).resolved_database_url()
    sqlite_file = _sqlite_file(url)
    if args.show and sqlite_file is not None and not sqlite_file.exists():
        print(f"database: none yet at {sqlite_file}; `forge-training serve` or `forge-training migrate` "
              f"creates it at revision {schema.revisions()[-1]}")
        return 0
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)  # as `serve` does on a fresh data dir
    # Database, not a bare engine: the SQLite settings (WAL, busy timeout) a server uses.
    db = Database(url)
    try:
        with db.engine.begin() as connection:
            if args.show:
                print(_describe(db, schema.status(connection)))
                return 0
            before = schema.upgrade(connection, args.to)
            after = schema.status(connection)
    except InvalidArgument as exc:
        return _fail(f"--to {args.to}: {exc.violations[0].description}")
    except ForgeError as exc:
        return _fail(exc.message)
    except OperationalError as exc:
        return _fail(f"cannot open the metadata database {_shown(db)}: {exc.orig}")
    finally:
        db.close()
    print(_report(before, after))
    return 0


def _fail(message: str) -> int:
    print(f"forge-training migrate: {message}", file=sys.stderr)
    return 2


def _report(before: schema.SchemaStatus, after: schema.SchemaStatus) -> str:
    if before.current is None:
        return f"empty database, created at revision {after.current}"
    was = f"database at revision {before.current}"
    if before.unstamped:
        was += " (made before migrations, now stamped)"
    if before.current == after.current:
        return "already at head" if after.at_head else f"{was}, already there"
    order = schema.revisions()
    moved = "upgraded" if order.index(after.current or "base") > order.index(before.current) else "downgraded"
    return f"{was}, {moved} to {after.current or 'base (empty)'}"


def _describe(db: Database, found: schema.SchemaStatus) -> str:
    current = found.current or "none (empty database)"
    if found.unstamped:
        current += " (made before migrations; `forge-training migrate` stamps it)"
    if found.unknown:
        current += " (unknown here: a newer forge-training migrated it)"
    lines = [f"database: {_shown(db)}",
             f"current revision: {current}",
             f"head revision: {found.head}",
             "pending:" if found.pending else "pending: none"]
    lines += [f"  {revision}  {doc}" for revision, doc in found.pending]
    return "\n".join(lines)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _shown(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=True)
