"""Alembic's migration environment for the metadata database (env.py, versions/).

It ships inside the engine package and is driven from code (engine/store/migrate.py), so no
alembic.ini is needed. Revisions are written by hand and never import engine.store.models: a
revision describes the schema as it was, whatever the models say later.
"""
