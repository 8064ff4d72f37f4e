"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from portal.extensions import db, migrate
from portal.models.ddl import outside_metadata
from tests.conftest import ThrowawayPostgres, make_app


def _include(obj, name, type_, reflected, compare_to):
    return not outside_metadata(type_, name)  # as migrations/env.py does


def test_single_head(app):
    script = ScriptDirectory.from_config(migrate.get_config())
    assert len(script.get_heads()) == 1


def test_models_and_migrations_agree(any_app):
    """Autogenerate against the upgraded database finds nothing: a model change without a
    migration fails here."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _include}
        )
        assert compare_metadata(context, db.metadata) == []


def test_triggers_installed(any_app):
    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'"))
        else:
            names = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
        assert {row[0] for row in names} >= {
            f"trg_{t}_delete_assignments" for t in ("rack", "baremetal", "k8s_cluster")
        }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_downgrade_and_upgrade_again(backend, tmp_path):
    if backend == "sqlite":
        _roundtrip(f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}")
    else:
        with ThrowawayPostgres("portal_migrate") as url:
            _roundtrip(url)


def _roundtrip(url: str) -> None:
    app = make_app(url)  # upgraded to head
    with app.app_context():
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "virtual_machine" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_the_comparison_would_catch_a_forgotten_migration(app):
    """Guard against a vacuous check: a column added to the models only is reported."""
    from sqlalchemy import Column, Integer, MetaData

    changed = MetaData(naming_convention=db.metadata.naming_convention)
    for table in db.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["rack"].append_column(Column("forgotten", Integer))
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _include})
        diff = compare_metadata(context, changed)
    assert [(op[0], op[3].name) for op in diff if op[0] == "add_column"] == [
        ("add_column", "forgotten")
    ]
