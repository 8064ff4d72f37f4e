from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.auth.tokens import live_token
from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import (
    Baremetal,
    BaremetalGroupTenantQuota,
    K8sCluster,
    Maintainer,
    MaintainerGroup,
    Rack,
    ResourceMaintainer,
    User,
    VirtualMachine,
)
from portal.seed.demo import LOGINS
from tests import factories as f
from tests.conftest import log_in


def row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


@pytest.fixture
def seeded(any_app):
    result = any_app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    return result


def test_demo_estate_is_realistic_and_consistent(seeded):
    assert db.session.scalar(select(func.count(Rack.id))) == 12
    assert 70 <= db.session.scalar(select(func.count(Baremetal.id))) <= 90
    regions = db.session.scalars(select(Rack.region).distinct()).all()
    dcs = db.session.scalars(select(Rack.dc).distinct()).all()
    assert len(regions) == 2 and len(dcs) == 3
    assert db.session.scalar(select(func.count()).where(Rack.bgp_asn.is_(None))) == 0
    statuses = set(db.session.scalars(select(Baremetal.status)))
    assert {"active", "maintenance"} <= statuses
    quotas = db.session.scalars(select(BaremetalGroupTenantQuota)).all()
    assert any(q.cpu_percent is not None for q in quotas)
    assert any(q.cpu_limit is not None for q in quotas)
    assert db.session.scalar(select(func.count(K8sCluster.id))) == 2
    assert db.session.scalar(select(func.count(MaintainerGroup.id))) >= 2
    assert all(g.manager_id is not None for g in db.session.scalars(select(MaintainerGroup)))
    assert db.session.scalar(select(func.count(ResourceMaintainer.id))) > 10
    assert db.session.scalar(select(func.count(VirtualMachine.id))) > 20
    assert counter_drift() == []


def test_the_demo_history_charts_groups_and_racks_from_their_aggregates(seeded):
    """The week of history `seed demo` writes is rolled up for groups and racks too, as the
    controller would have: their charts read it."""
    from portal.models import metric_15m, metric_aggregate_1d, metric_aggregate_15m

    def buckets(table, object_type):
        return db.session.scalar(select(func.count(func.distinct(table.c.ts)))
                                 .where(table.c.object_type == object_type))

    servers_15m = buckets(metric_15m, "baremetal")
    assert servers_15m >= 7 * 96
    assert buckets(metric_aggregate_15m, "group") == servers_15m
    assert buckets(metric_aggregate_15m, "rack") == servers_15m
    assert buckets(metric_aggregate_1d, "group") >= 7
    groups = db.session.scalar(select(func.count(func.distinct(Baremetal.group_id))))
    assert db.session.scalar(select(func.count(func.distinct(metric_aggregate_15m.c.object_id)))
                             .where(metric_aggregate_15m.c.object_type == "group")) == groups


def test_quotas_hold_in_the_demo(seeded):
    from portal.tenants.quotas import quota_usages

    for usage in quota_usages(list(db.session.scalars(select(BaremetalGroupTenantQuota)))):
        assert not any(d.over for d in usage.dimensions.values()), usage.quota


def test_seeding_twice_changes_nothing(seeded, any_app):
    before = row_counts()
    result = any_app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0 and "already present" in result.output
    assert row_counts() == before


def test_seed_prints_one_login_per_role_and_they_work(seeded, any_app):
    for username, password, _role in LOGINS:
        assert username in seeded.output and password in seeded.output
        client = any_app.test_client()
        assert log_in(client, username, password).status_code == 302
        assert client.get("/").status_code == 200


def test_seed_if_empty_skips_a_database_in_use(app):
    f.user("someone")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["seed", "demo", "--if-empty"])
    assert "not seeding" in result.output
    assert db.session.scalar(select(func.count(Rack.id))) == 0


def test_cli_creates_users_with_roles_and_token(app):
    f.tenant(name="acme")
    f.tenant(name="globex")
    f.maintainer(account="mlchen")
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "alice",
            "--password",
            "long-enough-pw",
            "--operator",
            "--tenant",
            "acme",
            "--tenant",
            "globex",
            "--maintainer",
            "mlchen",
            "--token",
        ]
    )
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    user = db.session.scalar(select(User).where(User.username == "alice"))
    assert user.is_operator
    assert sorted(link.tenant.name for link in user.tenant_links) == ["acme", "globex"]
    assert (
        db.session.scalar(select(Maintainer).where(Maintainer.account == "mlchen")).user_id
        == user.id
    )
    assert live_token(secret).user_id == user.id
    from portal.models import AuditEvent

    trail = {(e.object_type, e.action) for e in db.session.scalars(select(AuditEvent))}
    assert {("user", "create"), ("api_token", "create")} <= trail


@pytest.mark.parametrize(
    "args, message",
    [
        (["bob", "--password", "short"], "at least 12 characters"),
        (["bob", "--password", "long-enough-pw", "--tenant", "nope"], "No tenant named 'nope'"),
        (["bob", "--password", "long-enough-pw", "--maintainer", "ghost"], "No maintainer"),
        (["taken", "--password", "long-enough-pw"], "already exists"),
    ],
)
def test_cli_refuses_bad_input_and_creates_nothing(app, args, message):
    f.user("taken")
    db.session.commit()
    before = db.session.scalar(select(func.count(User.id)))
    result = app.test_cli_runner().invoke(args=["users", "create", *args])
    assert result.exit_code != 0 and message in result.output
    assert db.session.scalar(select(func.count(User.id))) == before


def test_dataset_s_has_the_proportions_of_spec_section_7_and_exact_counters(any_app):
    from portal.seed.dataset import SIZES

    result = any_app.test_cli_runner().invoke(args=["seed", "dataset", "--size", "S"])
    assert result.exit_code == 0, result.output
    size = SIZES["S"]
    for model, expected in (
        (Rack, size.racks),
        (Baremetal, size.servers),
        (VirtualMachine, size.vms),
        (K8sCluster, size.clusters),
        (ResourceMaintainer, size.assignments),
    ):
        assert db.session.scalar(select(func.count(model.id))) == expected, model
    assert counter_drift() == []
    from portal.tenants.quotas import quota_usages

    usages = quota_usages(list(db.session.scalars(select(BaremetalGroupTenantQuota))))
    assert not any(d.over for u in usages for d in u.dimensions.values())
    # New rows still get fresh ids after the bulk load (sequences were advanced).
    f.tenant(name="after-the-dataset")
    db.session.commit()
    again = any_app.test_cli_runner().invoke(args=["seed", "dataset", "--size", "S"])
    assert again.exit_code != 0 and "empty" in again.output


def test_a_served_process_keeps_its_start_up_objects_out_of_the_collectors_sight():
    import gc

    from portal import GC_THRESHOLDS, keep_startup_objects

    source = (Path(__file__).resolve().parents[1] / "wsgi.py").read_text()
    assert "keep_startup_objects()" in source.split("create_app()", 1)[1]
    thresholds = gc.get_threshold()
    try:
        keep_startup_objects()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
