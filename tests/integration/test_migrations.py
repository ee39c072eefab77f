"""Schema migrations (engine/store/migrations): the revisions build exactly what the models
describe, a server refuses an old database until `forge-training migrate` upgrades it (keeping its
rows), and every revision reverses. On SQLite and on PostgreSQL (a throwaway database beside
FORGE_TEST_POSTGRES_URL's, so nobody else's tables are touched)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from engine.store import migrate
from engine.store.database import Database
from engine.store.models import Base

FORGE_TRAINING = str(Path(sys.executable).with_name("forge-training"))
MODEL = "projects/default/models/iris/versions/1"


class Store:
    """A data dir and the metadata database a server started on it would use."""

    def __init__(self, data_dir: Path, url: str, flags: list[str]):
        self.data_dir, self.url = data_dir, url
        self.flags = flags  # how the command line names this database
        # Named even for the data dir's own SQLite file: make test-postgres would give a test
        # server without a database_url a PostgreSQL database of its own.
        self.server_settings = {"database_url": url}

    def forge_training(self, *args: str) -> subprocess.CompletedProcess:
        """The command as an operator runs it: a process of its own."""
        return subprocess.run([FORGE_TRAINING, *args, *self.flags], capture_output=True, text=True, timeout=120)

    def in_process(self, capsys, *args: str) -> tuple[int, str, str]:
        """The same command in this process (no second engine import): exit code, stdout, stderr."""
        from server.main import main

        capsys.readouterr()
        code = main([*args, *self.flags])
        captured = capsys.readouterr()
        return code, captured.out, captured.err


def _sqlite_store(data_dir: Path) -> Store:
    # The default database of the data dir: the commands find it through --data-dir alone.
    return Store(data_dir, f"sqlite:///{data_dir / 'forge.db'}", ["--data-dir", str(data_dir)])


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    data_dir = tmp_path / "forge-data"
    data_dir.mkdir()
    if request.param == "sqlite":
        yield _sqlite_store(data_dir)
        return
    with request.getfixturevalue("postgres").throwaway("forge_migrations") as url:
        yield Store(data_dir, url, ["--data-dir", str(data_dir), "--database-url", url])


@pytest.fixture
def db(store):
    database = Database(store.url)
    yield database
    database.close()


def _differences(db: Database) -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def _tables(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def _migrate(db: Database, target: str) -> None:
    with db.engine.begin() as conn:
        migrate.upgrade(conn, target)


def _status(db: Database) -> migrate.SchemaStatus:
    with db.engine.connect() as conn:
        return migrate.status(conn)


def _insert(db: Database, table: str, **values) -> None:
    # Through the table as the database has it, not the models: those describe the newest schema.
    with db.engine.begin() as conn:
        conn.execute(sa.Table(table, sa.MetaData(), autoload_with=conn).insert().values(**values))


def _model_version(db: Database, name: str, version: int, stage: str) -> None:
    _insert(db, "model_versions", name=name, project="default", model_id="iris", version=version,
            framework="sklearn", model_type="classification", framework_versions={"sklearn": "1.9"},
            metrics={"accuracy": 0.93}, training_job="", datasets=[], artifacts={}, model_info={}, stage=stage,
            create_time=datetime(2026, 1, 2, tzinfo=timezone.utc))


def test_an_empty_database_is_created_exactly_as_the_models_describe(db):
    db.create_schema()
    assert _status(db).at_head and _status(db).current == migrate.revisions()[-1]
    assert _differences(db) == []
    # compare_metadata ignores an index's WHERE: check the partial unique index by what it does.
    _model_version(db, MODEL, 1, "archived")
    _model_version(db, "projects/default/models/iris/versions/2", 2, "archived")
    _model_version(db, "projects/default/models/iris/versions/3", 3, "production")
    with pytest.raises(IntegrityError):
        _model_version(db, "projects/default/models/iris/versions/4", 4, "production")


def test_a_server_refuses_an_old_database_until_migrate_upgrades_it(store, db, start_server, capsys):
    from forge.training import Client, model_pb2

    # What servers made before migrations: the baseline's tables, no alembic_version, some rows.
    _migrate(db, migrate.BASELINE)
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
    _model_version(db, MODEL, 1, "production")
    assert "api_keys" not in _tables(db)

    refused = store.forge_training("serve", "--address", "127.0.0.1:0")
    assert refused.returncode == 2, refused.stderr
    assert "is at schema revision 0001 and this forge-training needs 0005" in refused.stderr
    assert "run `forge-training migrate` with the same --data-dir or --database-url" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _status(db).unstamped  # the refusing server changed nothing

    code, shown, _ = store.in_process(capsys, "migrate", "--show")
    assert code == 0
    assert "current revision: 0001 (made before migrations" in shown
    assert "  0002  API keys: one row per key" in shown
    assert "  0003  Training jobs count the retries" in shown
    assert "  0004  Metric points keep their stream encoding" in shown
    assert "  0005  Alerts and pipeline triggers" in shown

    upgraded = store.forge_training("migrate")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == "database at revision 0001 (made before migrations, now stamped), upgraded to 0005\n"
    assert _differences(db) == []
    assert store.in_process(capsys, "migrate") == (0, "already at head\n", "")

    server = start_server(store.data_dir, **store.server_settings)
    with Client(server.target) as client:
        model = client.get_model(MODEL)
    assert (model.version, model.stage, dict(model.metrics)) == (1, model_pb2.MODEL_STAGE_PRODUCTION,
                                                                  {"accuracy": pytest.approx(0.93)})


def test_revisions_reverse_and_a_downgraded_database_is_refused_then_upgraded(db):
    db.create_schema()
    _migrate(db, migrate.BASELINE)
    assert "api_keys" not in _tables(db) and "model_versions" in _tables(db)
    assert _status(db).current == migrate.BASELINE and not _status(db).unstamped
    with pytest.raises(migrate.SchemaMismatch, match=r"at schema revision 0001 .* `forge-training migrate`"):
        db.create_schema()
    db.create_schema(upgrade_older=True)
    assert "api_keys" in _tables(db) and _differences(db) == []
    _migrate(db, "0002")
    assert "worker_retries" not in {c["name"] for c in sa.inspect(db.engine).get_columns("training_jobs")}
    _migrate(db, "head")
    assert _differences(db) == []
    _migrate(db, "base")
    assert _tables(db) <= {"alembic_version"} and _status(db).current is None


def test_an_unknown_revision_is_refused_and_a_partial_old_database_is_not_stamped(db):
    db.create_schema()
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(migrate.SchemaMismatch, match="0099, which this forge-training does not know"):
        db.create_schema(upgrade_older=True)

    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(sa.text("DROP TABLE tuning_events"))
    with pytest.raises(migrate.SchemaMismatch, match=r"missing: tuning_events"):
        _migrate(db, "head")
    assert _status(db).unstamped


def test_servers_starting_together_on_an_empty_postgres_database_both_start(postgres):
    errors: list[BaseException] = []

    def start(database: Database) -> None:
        try:
            database.create_schema()
        except BaseException as exc:  # reported below
            errors.append(exc)

    with postgres.throwaway("forge_migrations") as url:
        databases = [Database(url) for _ in range(2)]
        threads = [threading.Thread(target=start, args=(database,)) for database in databases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        stuck = [thread for thread in threads if thread.is_alive()]
        at_head = not stuck and _status(databases[0]).at_head
        for database in databases:
            database.close()
    assert errors == [] and stuck == [] and at_head


def test_migrate_names_the_flag_of_a_revision_it_does_not_know(tmp_path, capsys):
    code, _, error = _sqlite_store(tmp_path).in_process(capsys, "migrate", "--to", "0099")
    assert (code, error) == (2, "forge-training migrate: --to 0099: no such schema revision; "
                                "use one of base, 0001, 0002, 0003, 0004, 0005 or head\n")
