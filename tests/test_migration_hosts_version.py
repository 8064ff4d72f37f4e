"""0017: an estate upgraded from 0016 gets a HostsVersion for every group with servers and
the triggers that change it; a downgrade takes both away. On both databases."""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from portal.extensions import db
from tests.conftest import make_app

BEFORE = "0016_live_vm_index"


def test_hosts_versions_apply_to_an_existing_estate_and_revert(own_database):
    _upgrade_an_estate(own_database)


def _version(group_id: int):
    return db.session.execute(text(
        "SELECT version FROM baremetal_group_hosts_version WHERE group_id = :g"
    ), {"g": group_id}).scalar()


def _upgrade_an_estate(url: str) -> None:
    app = make_app(url)  # upgraded to head
    with app.app_context():
        downgrade(revision=BEFORE)
        assert "baremetal_group_hosts_version" not in inspect(db.engine).get_table_names()
        now = "2026-01-01 00:00:00"
        for group_id, name in ((1, "with-servers"), (2, "empty")):
            db.session.execute(text(
                "INSERT INTO baremetal_group (id, name, description, dimension, total_cpu, "
                "total_memory, total_storage, available_cpu, available_memory, "
                "available_storage, created_at, updated_at) "
                "VALUES (:id, :name, '', '', 8, 8, 8, 8, 8, 8, :now, :now)"
            ), {"id": group_id, "name": name, "now": now})
        db.session.execute(text(
            "UPDATE baremetal_group SET total_cpu = 0, total_memory = 0, total_storage = 0, "
            "available_cpu = 0, available_memory = 0, available_storage = 0 WHERE id = 2"))
        db.session.execute(text(
            "INSERT INTO baremetal (id, name, serial, status, region, dc, size_u, group_id, "
            "total_cpu, total_memory, total_storage, available_cpu, available_memory, "
            "available_storage, created_at, updated_at) VALUES (1, 'bm-1', 'S1', 'active', "
            "'r1', 'dc1', 1, 1, 8, 8, 8, 8, 8, 8, :now, :now)"), {"now": now})
        db.session.commit()

        upgrade()
        first = _version(1)
        assert first is not None, "a group with servers has a version from the start"
        assert _version(2) is None, "an empty group has none until a server joins it"
        db.session.execute(text("UPDATE baremetal SET available_cpu = 4 WHERE id = 1"))
        assert _version(1) == first, "free counters are not what the version follows"
        db.session.execute(text("UPDATE baremetal SET dc = 'dc2' WHERE id = 1"))
        assert _version(1) != first
        db.session.execute(text("UPDATE baremetal SET group_id = 2 WHERE id = 1"))
        assert _version(2) is not None
        db.session.rollback()

        downgrade(revision=BEFORE)
        assert "baremetal_group_hosts_version" not in inspect(db.engine).get_table_names()
        db.session.execute(text("UPDATE baremetal SET dc = 'dc3' WHERE id = 1"))  # no trigger
        db.session.commit()
        upgrade()
        db.session.remove()
        db.engine.dispose()
