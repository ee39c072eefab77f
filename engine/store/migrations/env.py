"""Alembic's env.py: runs the migrations on the connection engine/store/migrate.py passes in.

There is no URL here and no offline (--sql) mode: the caller owns the connection and its
transaction, so a server start and `forge-training migrate` migrate the same way.
"""

from alembic import context

from engine.store.models import Base

connection = context.config.attributes["connection"]
# target_metadata lets autogenerate compare the models with a migrated database (the tests do).
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
