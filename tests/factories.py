"""Small builders for test data. Each adds to the session and flushes; tests commit."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from portal.auth import service as accounts
from portal.extensions import db
from portal.models import (
    HOLDING_STATUSES,
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    Maintainer,
    MaintainerGroup,
    Rack,
    ServiceMesh,
    Tenant,
    User,
    VirtualMachine,
    VirtualMachineSpecification,
)

_seq = itertools.count(1)


def n() -> int:
    return next(_seq)


def rack(**kw) -> Rack:
    obj = Rack(**{"name": f"rack-{n()}", "region": "r1", "dc": "dc1", "height_u": 42, **kw})
    db.session.add(obj)
    db.session.flush()
    return obj


def group(**kw) -> BaremetalGroup:
    obj = BaremetalGroup(**{"name": f"group-{n()}", **kw})
    db.session.add(obj)
    db.session.flush()
    return obj


def server(
    rack: Rack | None = None,
    group: BaremetalGroup | None = None,
    cpu=64,
    memory=256,
    storage=2000,
    **kw,
) -> Baremetal:
    i = n()
    obj = Baremetal(
        **{
            "name": f"server-{i}",
            "serial": f"SN-{i}",
            "region": "r1",
            "dc": "dc1",
            "total_cpu": cpu,
            "total_memory": memory,
            "total_storage": storage,
            "available_cpu": cpu,
            "available_memory": memory,
            "available_storage": storage,
            **kw,
        }
    )
    db.session.add(obj)
    with db.session.no_autoflush:
        if rack is not None:
            obj.rack = rack
            obj.rack_unit = kw.get("rack_unit", 1)
        if group is not None:
            obj.group = group
            for d, v in (("cpu", cpu), ("memory", memory), ("storage", storage)):
                setattr(group, f"total_{d}", getattr(group, f"total_{d}") + v)
                setattr(group, f"available_{d}", getattr(group, f"available_{d}") + v)
    db.session.flush()
    return obj


def acme_on_one_server() -> SimpleNamespace:
    """The smallest estate a page needs: tenant acme with a quota in group north, whose
    one server s-1 (rack r-a) holds 64 cores; flavor m.4; logins ops and admin (acme's)."""
    rack_ = rack(name="r-a")
    grp = group(name="north")
    server_ = server(rack=rack_, group=grp, name="s-1", cpu=64, memory=256, storage=2000)
    tenant_ = tenant(name="acme")
    quota(tenant_, grp)
    flavor_ = flavor(name="m.4", cpu=4, memory=8, storage=50)
    user("ops", operator=True)
    user("admin", tenants=("acme",))
    return SimpleNamespace(rack=rack_, grp=grp, server=server_, tenant=tenant_, flavor=flavor_)


def tenant(**kw) -> Tenant:
    obj = Tenant(**{"name": f"tenant-{n()}", **kw})
    db.session.add(obj)
    db.session.flush()
    return obj


def quota(tenant: Tenant, group: BaremetalGroup, **kw) -> BaremetalGroupTenantQuota:
    obj = BaremetalGroupTenantQuota(tenant=tenant, group=group, **kw)
    db.session.add(obj)
    db.session.flush()
    return obj


def flavor(cpu=4, memory=8, storage=80, **kw) -> VirtualMachineSpecification:
    obj = VirtualMachineSpecification(
        **{"name": f"flavor-{n()}", "cpu": cpu, "memory": memory, "storage": storage, **kw}
    )
    db.session.add(obj)
    db.session.flush()
    return obj


def vm(
    tenant: Tenant, server: Baremetal, spec: VirtualMachineSpecification, **kw
) -> VirtualMachine:
    obj = VirtualMachine(
        **{
            "name": f"vm-{n()}",
            "tenant": tenant,
            "baremetal": server,
            "spec": spec,
            "cpu": spec.cpu,
            "memory": spec.memory,
            "storage": spec.storage,
            "status": "active",
            **kw,
        }
    )
    db.session.add(obj)
    if obj.status in HOLDING_STATUSES:
        # Keep the estate consistent: the VM's resources come off its server and group.
        with db.session.no_autoflush:
            for d in ("cpu", "memory", "storage"):
                for holder in (server, server.group):
                    if holder is not None:
                        taken = getattr(holder, f"available_{d}") - getattr(obj, d)
                        setattr(holder, f"available_{d}", taken)
    db.session.flush()
    return obj


def cluster(tenant: Tenant, group: BaremetalGroup, **kw) -> K8sCluster:
    obj = K8sCluster(
        **{
            "name": f"cluster-{n()}",
            "tenant": tenant,
            "group": group,
            "version": "1.31.2",
            "status": "active",
            **kw,
        }
    )
    db.session.add(obj)
    db.session.flush()
    return obj


def mesh(**kw) -> ServiceMesh:
    obj = ServiceMesh(**{"name": f"mesh-{n()}", "mesh_type": "istio", "version": "1.23.2", **kw})
    db.session.add(obj)
    db.session.flush()
    return obj


def maintainer(**kw) -> Maintainer:
    i = n()
    obj = Maintainer(**{"name": f"Person {i}", "account": f"person{i}", **kw})
    db.session.add(obj)
    db.session.flush()
    return obj


def maintainer_group(**kw) -> MaintainerGroup:
    obj = MaintainerGroup(**{"name": f"team-{n()}", **kw})
    db.session.add(obj)
    db.session.flush()
    return obj


PASSWORD = "correct-horse-battery"


def user(username: str | None = None, **kw) -> User:
    return accounts.create_user(username or f"user{n()}", PASSWORD, **kw)
