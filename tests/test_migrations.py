"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from portal.extensions import db, migrate
from portal.models.ddl import outside_metadata
from tests.conftest import make_app


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
        } | {f"trg_baremetal_hosts_version_{op}" for op in ("insert", "update", "delete")} | {
            "trg_rack_hosts_version"
        }


def test_downgrade_and_upgrade_again(own_database):
    _roundtrip(own_database)


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


def test_the_aggregates_migration_fills_them_from_the_rollups_already_kept(own_database):
    """0014 combines the history already rolled up into groups and racks exactly as the
    rollup step does from then on."""
    _fill_aggregates(own_database)


def _fill_aggregates(url: str) -> None:
    from datetime import datetime, timedelta

    from sqlalchemy import select

    from portal.metrics import store
    from portal.models import metric_1d, metric_15m, metric_aggregate_1d, metric_aggregate_15m
    from tests import factories as f

    app = make_app(url)
    with app.app_context():
        downgrade(revision="0013_list_indexes")
        group, rack = f.group(), f.rack()
        servers = [f.server(group=group, rack=rack, rack_unit=1 + 2 * i) for i in range(3)]
        db.session.commit()
        day = datetime(2026, 11, 30)
        for table, step in ((metric_15m, timedelta(minutes=15)), (metric_1d, timedelta(days=1))):
            db.session.execute(table.insert(), [
                {"object_type": "baremetal", "object_id": s.id, "ts": day + step * n,
                 "cpu_util": 0.1 * (i + n), "cpu_util_max": 0.2 * (i + n),
                 "memory_used_gib": 10.0 * i + n, "memory_used_gib_max": 11.0 * i + n,
                 "storage_used_gib": 5.0, "storage_used_gib_max": 5.0, "samples": 15}
                for i, s in enumerate(servers) for n in range(3)])
        db.session.commit()
        upgrade()
        tables = (metric_aggregate_15m, metric_aggregate_1d)
        migrated = [db.session.execute(select(t).order_by(*t.primary_key)).all() for t in tables]
        assert all(len(rows) == 6 for rows in migrated)  # 3 buckets, of a group and a rack
        for table in tables:
            db.session.execute(table.delete())
        for level in ("15m", "1d"):
            store.rollup_aggregates(level, day, day + timedelta(days=3))
        db.session.commit()
        rolled = [db.session.execute(select(t).order_by(*t.primary_key)).all() for t in tables]
        assert [[tuple(r) for r in rows] for rows in migrated] == \
            [[tuple(r) for r in rows] for rows in rolled]
        db.session.remove()
        db.engine.dispose()


# The PostgreSQL-only indexes on virtual_machine the migrations add, newest first: the
# revision that adds each, the revision before it, and what its definition says.
VM_INDEXES = [
    ("0016_live_vm_index", "0015_usage_minutes", "pgx_virtual_machine_live_tenant",
     "(tenant_id, status, cpu, memory) WHERE ((status)::text <> 'deleted'::text)"),
    ("0015_usage_minutes", "0014_metric_aggregates", "pgx_virtual_machine_server_usage",
     "(baremetal_id) INCLUDE (tenant_id, status, cpu, memory, storage, k8s_cluster_id, role)"),
]


def test_the_vm_indexes_apply_and_revert(own_database):
    """0015 and 0016: on PostgreSQL each migration's index exists at head and goes with
    the downgrade past it, and no other index does; on SQLite they apply and change
    nothing."""
    _vm_indexes(own_database)


def _vm_indexes(url: str) -> None:
    app = make_app(url)  # upgraded to head
    with app.app_context():
        def indexes() -> dict[str, str]:
            if db.engine.dialect.name == "sqlite":
                rows = db.session.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'virtual_machine'"))
            else:
                rows = db.session.execute(text(
                    "SELECT indexname, indexdef FROM pg_indexes "
                    "WHERE tablename = 'virtual_machine'"))
            found = {name: sql or "" for name, sql in rows}
            db.session.commit()
            return found

        script = ScriptDirectory.from_config(migrate.get_config())
        at_head = indexes()
        after = at_head
        for revision, previous, index, definition in VM_INDEXES:
            assert script.get_revision(revision).down_revision == previous
            downgrade(revision=previous)
            before = indexes()
            if db.engine.dialect.name == "postgresql":
                assert definition in after[index], revision
                assert set(after) - set(before) == {index}, revision
            else:
                assert after == before, revision
            after = before
        upgrade()
        assert indexes() == at_head
        db.session.remove()
        db.engine.dispose()
