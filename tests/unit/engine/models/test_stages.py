"""Model stages: one production version per model, held by the database itself."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine.models.registry import ModelRegistry
from engine.store.database import Database
from engine.store.models import ModelVersionRow


def _versions(db: Database, count: int) -> list[str]:
    names = []
    with db.session() as s:
        for n in range(1, count + 1):
            name = f"projects/p/models/m/versions/{n}"
            s.add(ModelVersionRow(name=name, project="p", model_id="m", version=n, framework="sklearn",
                                  model_type="classification", stage="", create_time=datetime.now(timezone.utc)))
            names.append(name)
    return names


def test_promotion_archives_the_previous_production_version(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'forge.db'}")
    db.create_schema()
    registry = ModelRegistry(db)
    first, second, third = _versions(db, 3)
    registry.set_stage(first, "production")
    row, archived = registry.set_stage(second, "production")
    assert row.stage == "production" and [a.name for a in archived] == [first]
    assert registry.set_stage(third, "staging")[1] == []
    assert [registry.get(n).stage for n in (first, second, third)] == ["archived", "production", "staging"]


def test_the_database_refuses_a_second_production_version(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'forge.db'}")
    db.create_schema()
    first, second = _versions(db, 2)
    with db.session() as s:
        s.execute(text("UPDATE model_versions SET stage = 'production' WHERE name = :n"), {"n": first})
    with pytest.raises(IntegrityError):
        with db.session() as s:  # another process that skipped the registry's archiving
            s.execute(text("UPDATE model_versions SET stage = 'production' WHERE name = :n"), {"n": second})
