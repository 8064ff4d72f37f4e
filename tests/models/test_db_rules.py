"""Every database rule of the data model, rejected by the database itself (not by a form),
on SQLite and on PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import (
    ASSIGNABLE_TYPES,
    AuditEvent,
    Baremetal,
    BaremetalGroupTenantQuota,
    BastionClusterAssociation,
    K8sClusterPlugin,
    K8sClusterToServiceMesh,
    MaintainerToMaintainerGroup,
    ProvisionJob,
    Rack,
    ResourceMaintainer,
    VirtualMachine,
)
from tests import factories as f


@pytest.fixture
def world(any_app):
    rack = f.rack(height_u=10)
    grp = f.group()
    srv = f.server(rack=rack, group=grp, rack_unit=1, size_u=2)
    tenant = f.tenant()
    other_tenant = f.tenant()
    flavor = f.flavor()
    vm = f.vm(tenant, srv, flavor)
    other_vm = f.vm(other_tenant, srv, flavor)
    cluster = f.cluster(tenant, grp)
    mesh = f.mesh()
    person = f.maintainer()
    team = f.maintainer_group(manager=person)
    quota = f.quota(tenant, grp, cpu_limit=10)
    db.session.add(MaintainerToMaintainerGroup(maintainer=person, group=team))
    db.session.add(
        K8sClusterPlugin(cluster=cluster, name="calico", category="network", version="3.28.1")
    )
    db.session.add(K8sClusterToServiceMesh(cluster=cluster, service_mesh=mesh, role="primary"))
    db.session.commit()
    return SimpleNamespace(**locals())


def rejected(action) -> None:
    with pytest.raises(IntegrityError):
        action()
        db.session.flush()
    db.session.rollback()


def add(obj):
    return lambda: db.session.add(obj)


def set_attr(obj, **values):
    def change():
        for key, value in values.items():
            setattr(obj, key, value)

    return change


# --- unique keys -------------------------------------------------------------------------


def test_unique_names(world):
    w = world
    rejected(lambda: f.rack(name=w.rack.name))
    rejected(lambda: f.group(name=w.grp.name))
    rejected(lambda: f.server(name=w.srv.name))
    rejected(lambda: f.server(serial=w.srv.serial))
    rejected(lambda: f.tenant(name=w.tenant.name))
    rejected(lambda: f.flavor(name=w.flavor.name))
    rejected(lambda: f.mesh(name=w.mesh.name))
    rejected(lambda: f.maintainer(account=w.person.account))
    rejected(lambda: f.maintainer_group(name=w.team.name))
    rejected(lambda: f.quota(w.tenant, w.grp))
    rejected(add(K8sClusterPlugin(cluster_id=w.cluster.id, name="calico", version="1")))
    rejected(add(MaintainerToMaintainerGroup(maintainer_id=w.person.id, group_id=w.team.id)))


def test_vm_name_unique_per_tenant_among_live_vms(world):
    w = world
    rejected(lambda: f.vm(w.tenant, w.srv, w.flavor, name=w.vm.name))
    # Another tenant may use the name, and so may the tenant once the old VM is deleted.
    f.vm(w.other_tenant, w.srv, w.flavor, name=w.vm.name)
    w.vm.status = "deleted"
    db.session.flush()
    f.vm(w.tenant, w.srv, w.flavor, name=w.vm.name)
    db.session.commit()


def test_cluster_name_unique_per_tenant_among_live_clusters(world):
    w = world
    rejected(lambda: f.cluster(w.tenant, w.grp, name=w.cluster.name))
    w.cluster.status = "deleted"
    db.session.flush()
    f.cluster(w.tenant, w.grp, name=w.cluster.name)
    db.session.commit()


# --- enums -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, field",
    [
        ("srv", "status"),
        ("vm", "status"),
        ("vm", "role"),
        ("cluster", "status"),
        ("mesh", "mesh_type"),
        ("mesh", "status"),
        ("person", "status"),
    ],
)
def test_enums_are_checked(world, target, field):
    rejected(set_attr(getattr(world, target), **{field: "bogus"}))


def test_enum_checks_on_link_tables(world):
    w = world
    rejected(
        add(K8sClusterPlugin(cluster_id=w.cluster.id, name="x", version="1", category="bogus"))
    )
    rejected(add(K8sClusterPlugin(cluster_id=w.cluster.id, name="x", version="1", status="bogus")))
    rejected(
        add(
            K8sClusterToServiceMesh(
                cluster_id=w.cluster.id, service_mesh_id=f.mesh().id, role="bogus"
            )
        )
    )
    rejected(add(ProvisionJob(vm_id=w.vm.id, action="reboot")))
    rejected(add(ProvisionJob(vm_id=w.vm.id, action="create", status="bogus")))
    rejected(add(ProvisionJob(vm_id=w.vm.id, action="create", attempts=-1)))
    rejected(
        add(ResourceMaintainer(resource_type="planet", resource_id=1, maintainer_id=w.person.id))
    )


# --- ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize("height", [0, 61])
def test_rack_height_range(world, height):
    rejected(lambda: f.rack(height_u=height))


@pytest.mark.parametrize("asn", [0, 4294967296, -5])
def test_rack_asn_range(world, asn):
    rejected(lambda: f.rack(bgp_asn=asn))


def test_rack_asn_extremes_accepted(world):
    f.rack(bgp_asn=1)
    f.rack(bgp_asn=4294967295)
    db.session.commit()


def test_server_position_inside_rack(world):
    w = world
    rejected(lambda: f.server(rack=w.rack, rack_unit=0))
    rejected(lambda: f.server(rack=w.rack, rack_unit=10, size_u=2))  # units 10–11 of 10
    rejected(lambda: f.server(rack=w.rack, rack_unit=5, size_u=0))
    f.server(rack=w.rack, rack_unit=9, size_u=2)  # units 9–10: fits exactly
    db.session.commit()


def test_server_needs_a_unit_when_racked_and_none_without_rack(world):
    w = world
    rejected(set_attr(w.srv, rack_unit=None))
    rejected(lambda: f.server(rack_unit=3))


def test_rack_cannot_shrink_below_its_servers(world):
    w = world
    f.server(rack=w.rack, rack_unit=8, size_u=2)  # units 8–9
    db.session.commit()
    rejected(
        lambda: db.session.execute(update(Rack).where(Rack.id == w.rack.id).values(height_u=8))
    )
    db.session.execute(update(Rack).where(Rack.id == w.rack.id).values(height_u=9))
    db.session.commit()
    assert db.session.get(Baremetal, w.srv.id).rack_height_u == 9


@pytest.mark.parametrize("table", ["srv", "grp"])
@pytest.mark.parametrize("dim", ["cpu", "memory", "storage"])
def test_capacity_counters_stay_between_zero_and_total(world, table, dim):
    obj = getattr(world, table)
    rejected(set_attr(obj, **{f"available_{dim}": -1}))
    obj = getattr(world, table)
    rejected(set_attr(obj, **{f"available_{dim}": getattr(obj, f"total_{dim}") + 1}))
    obj = getattr(world, table)
    rejected(set_attr(obj, **{f"total_{dim}": -1, f"available_{dim}": 0}))


@pytest.mark.parametrize("dim", ["cpu", "memory", "storage"])
def test_quota_percent_range_and_limit_xor_percent(world, dim):
    w = world
    rejected(set_attr(w.quota, **{f"{dim}_limit": None, f"{dim}_percent": 101}))
    rejected(set_attr(w.quota, **{f"{dim}_limit": None, f"{dim}_percent": -1}))
    rejected(set_attr(w.quota, **{f"{dim}_limit": -1, f"{dim}_percent": None}))
    rejected(set_attr(w.quota, **{f"{dim}_limit": 10, f"{dim}_percent": 10}))
    w.quota.cpu_limit = None
    setattr(w.quota, f"{dim}_percent", 100)
    db.session.commit()


def test_flavor_and_vm_resource_ranges(world):
    rejected(lambda: f.flavor(cpu=0))
    rejected(lambda: f.flavor(memory=0))
    rejected(lambda: f.flavor(storage=-1))
    rejected(lambda: f.flavor(generation=0))
    rejected(set_attr(world.vm, cpu=-1))


def test_vm_holding_resources_must_sit_on_a_server(world):
    rejected(set_attr(world.vm, baremetal_id=None))
    world.vm.status = "deleted"
    world.vm.baremetal_id = None
    db.session.commit()


# --- maintainers -------------------------------------------------------------------------


def test_assignment_has_exactly_one_assignee(world):
    w = world
    rejected(add(ResourceMaintainer(resource_type="rack", resource_id=w.rack.id)))
    rejected(
        add(
            ResourceMaintainer(
                resource_type="rack",
                resource_id=w.rack.id,
                maintainer_id=w.person.id,
                maintainer_group_id=w.team.id,
            )
        )
    )


def test_duplicate_assignment_refused(world):
    w = world
    for kw in ({"maintainer_id": w.person.id}, {"maintainer_group_id": w.team.id}):
        db.session.add(ResourceMaintainer(resource_type="rack", resource_id=w.rack.id, **kw))
        db.session.commit()
        rejected(add(ResourceMaintainer(resource_type="rack", resource_id=w.rack.id, **kw)))
    # The same person on another resource is fine.
    db.session.add(
        ResourceMaintainer(
            resource_type="baremetal", resource_id=w.srv.id, maintainer_id=w.person.id
        )
    )
    db.session.commit()


# --- kubernetes --------------------------------------------------------------------------


def test_at_most_one_primary_mesh_per_cluster(world):
    w = world
    other = f.mesh()
    rejected(
        add(
            K8sClusterToServiceMesh(
                cluster_id=w.cluster.id, service_mesh_id=other.id, role="primary"
            )
        )
    )
    db.session.add(
        K8sClusterToServiceMesh(
            cluster_id=w.cluster.id, service_mesh_id=f.mesh().id, role="secondary"
        )
    )
    db.session.commit()


def test_bastion_must_belong_to_the_clusters_tenant(world):
    w = world
    rejected(
        add(
            BastionClusterAssociation(
                vm_id=w.other_vm.id, cluster_id=w.cluster.id, tenant_id=w.tenant.id
            )
        )
    )
    rejected(
        add(
            BastionClusterAssociation(
                vm_id=w.other_vm.id, cluster_id=w.cluster.id, tenant_id=w.other_tenant.id
            )
        )
    )
    db.session.add(
        BastionClusterAssociation(vm_id=w.vm.id, cluster_id=w.cluster.id, tenant_id=w.tenant.id)
    )
    db.session.commit()
    rejected(
        add(
            BastionClusterAssociation(vm_id=w.vm.id, cluster_id=w.cluster.id, tenant_id=w.tenant.id)
        )
    )


# --- deletes -----------------------------------------------------------------------------


def test_deletes_that_would_orphan_rows_are_refused(world):
    w = world
    rejected(lambda: db.session.execute(delete(Rack).where(Rack.id == w.rack.id)))
    rejected(lambda: db.session.delete(w.grp))
    rejected(lambda: db.session.delete(w.tenant))
    rejected(lambda: db.session.delete(w.flavor))
    rejected(lambda: db.session.delete(w.mesh))
    # A server still hosting VMs that hold resources cannot go either.
    rejected(lambda: db.session.execute(delete(Baremetal).where(Baremetal.id == w.srv.id)))


def test_server_with_only_history_can_be_deleted(world):
    w = world
    for vm in (w.vm, w.other_vm):
        vm.status = "deleted"
    db.session.commit()
    db.session.execute(delete(Baremetal).where(Baremetal.id == w.srv.id))
    db.session.commit()
    assert db.session.get(VirtualMachine, w.vm.id).baremetal_id is None


def test_deleting_a_tenant_cascades_to_quotas_and_admins(world):
    tenant = f.tenant()
    f.quota(tenant, world.grp)
    f.user(tenants=(tenant.name,))
    db.session.commit()
    db.session.delete(tenant)
    db.session.commit()
    assert (
        db.session.scalar(
            select(BaremetalGroupTenantQuota).where(
                BaremetalGroupTenantQuota.tenant_id == tenant.id
            )
        )
        is None
    )


def test_deleting_a_user_keeps_the_audit_trail(world):
    user = f.user()
    db.session.add(
        AuditEvent(
            user_id=user.id,
            username=user.username,
            action="update",
            object_type="rack",
            object_id=1,
        )
    )
    db.session.commit()
    db.session.delete(user)
    db.session.commit()
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "rack"))
    assert event.user_id is None and event.username == user.username


def _resource(world, kind):
    w = world
    return {
        "rack": lambda: f.rack(),
        "baremetal": lambda: f.server(),
        "baremetal_group": lambda: f.group(),
        "tenant": lambda: f.tenant(),
        "virtual_machine": lambda: f.vm(w.tenant, w.srv, w.flavor, status="deleted"),
        "k8s_cluster": lambda: f.cluster(w.tenant, w.grp, status="deleted"),
        "service_mesh": lambda: f.mesh(),
    }[kind]()


@pytest.mark.parametrize("kind", ASSIGNABLE_TYPES)
@pytest.mark.parametrize("how", ["orm", "bulk"])
def test_deleting_a_resource_deletes_its_assignments(world, kind, how):
    w = world
    doomed, kept = _resource(w, kind), _resource(w, kind)
    for obj in (doomed, kept):
        db.session.add(
            ResourceMaintainer(resource_type=kind, resource_id=obj.id, maintainer_id=w.person.id)
        )
        db.session.add(
            ResourceMaintainer(
                resource_type=kind, resource_id=obj.id, maintainer_group_id=w.team.id
            )
        )
    db.session.commit()
    if how == "orm":
        db.session.delete(doomed)
    else:
        model = type(doomed)
        db.session.execute(delete(model).where(model.id == doomed.id))
    db.session.commit()
    remaining = (
        db.session.execute(
            select(ResourceMaintainer.resource_id).where(ResourceMaintainer.resource_type == kind)
        )
        .scalars()
        .all()
    )
    assert remaining == [kept.id, kept.id]


def test_deleting_a_maintainer_removes_memberships_assignments_and_management(world):
    w = world
    db.session.add(
        ResourceMaintainer(resource_type="rack", resource_id=w.rack.id, maintainer_id=w.person.id)
    )
    db.session.commit()
    db.session.execute(delete(type(w.person)).where(type(w.person).id == w.person.id))
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalar(select(ResourceMaintainer)) is None
    assert db.session.scalar(select(MaintainerToMaintainerGroup)) is None
    assert w.team.manager_id is None


def test_racks_never_overlap_on_postgresql(pg_app):
    """The exclusion constraint: even two transactions that both passed the service check
    cannot both take the same units."""
    rack = f.rack()
    f.server(rack=rack, rack_unit=10, size_u=2)  # units 10–11
    db.session.commit()
    rejected(lambda: f.server(rack=rack, rack_unit=11, size_u=1))
    rejected(lambda: f.server(rack=rack, rack_unit=8, size_u=3))  # 8–10
    f.server(rack=rack, rack_unit=12, size_u=1)
    f.server(rack=rack, rack_unit=8, size_u=2)
    db.session.commit()
