"""Operations on racks, and what a rack page shows: usage, elevation, blast radius."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Float, case, cast, func, select, update
from sqlalchemy.orm import joinedload

from portal.audit.service import diff, record, snapshot
from portal.auth.access import visible_only
from portal.baremetals.service import unit_span
from portal.extensions import db
from portal.i18n import _, _n
from portal.models import (
    DIMENSIONS,
    HOLDING_STATUSES,
    Baremetal,
    K8sCluster,
    Rack,
    Tenant,
    VirtualMachine,
)
from portal.text import clean, name_problem, too_long

AUDITED = ("name", "region", "dc", "location", "height_u", "bgp_asn", "network_notes")
MAX_ASN = 4294967295
MAX_NOTES = 20_000
NAMED = 10
BLAST_VM_ROWS = 200  # VMs listed on the rack page; tenants and clusters are always complete


class RackInvalid(ValueError):
    """The change is refused; ``errors`` maps each field ("rack" for the whole rack) to
    what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class RackFields:
    name: str
    region: str
    dc: str
    location: str = ""
    height_u: int = 42
    bgp_asn: int | None = None
    network_notes: str = ""


# ---- Usage (aggregated in SQL: one query whatever the number of racks) --------------------


def _sums():
    return (
        func.count(Baremetal.id),
        func.coalesce(func.sum(Baremetal.size_u), 0),
        *(func.coalesce(func.sum(getattr(Baremetal, f"total_{d}")), 0) for d in DIMENSIONS),
        *(func.coalesce(func.sum(getattr(Baremetal, f"available_{d}")), 0) for d in DIMENSIONS),
    )


def _percent(part, whole):
    return case((whole > 0, cast(part, Float) * 100.0 / whole), else_=0.0)


def units_used_sort():
    """Units used %, per rack, as a correlated subquery the rack list can ORDER BY."""
    used = (
        select(func.coalesce(func.sum(Baremetal.size_u), 0))
        .where(Baremetal.rack_id == Rack.id)
        .correlate(Rack)
        .scalar_subquery()
    )
    return _percent(used, Rack.height_u)


def allocated_sort(dimension: str):
    """CPU / memory allocated % (total − available over total), per rack, for ORDER BY."""
    total = getattr(Baremetal, f"total_{dimension}")
    free = getattr(Baremetal, f"available_{dimension}")
    used = (
        select(func.coalesce(func.sum(total - free), 0))
        .where(Baremetal.rack_id == Rack.id).correlate(Rack).scalar_subquery()
    )
    whole = (
        select(func.coalesce(func.sum(total), 0))
        .where(Baremetal.rack_id == Rack.id).correlate(Rack).scalar_subquery()
    )
    return _percent(used, whole)


@dataclass
class RackUsage:
    height_u: int
    servers: int = 0
    units: int = 0
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0))
    available: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0))

    @property
    def used(self) -> dict[str, int]:
        return {d: self.total[d] - self.available[d] for d in DIMENSIONS}

    @property
    def free_units(self) -> int:
        return self.height_u - self.units

    @property
    def units_pct(self) -> float:
        return self.units * 100 / self.height_u if self.height_u else 0.0

    def pct(self, dimension: str) -> float:
        total = self.total[dimension]
        return self.used[dimension] * 100 / total if total else 0.0


def rack_usage(racks: list[Rack]) -> dict[int, RackUsage]:
    """Servers, units and capacity of each rack, in one grouped query."""
    usage = {r.id: RackUsage(r.height_u) for r in racks}
    if not usage:
        return usage
    n = len(DIMENSIONS)
    for rack_id, count, units, *sums in db.session.execute(
        select(Baremetal.rack_id, *_sums())
        .where(Baremetal.rack_id.in_(list(usage)))
        .group_by(Baremetal.rack_id)
    ):
        u = usage[rack_id]
        u.servers, u.units = count, units
        u.total = dict(zip(DIMENSIONS, sums[:n], strict=True))
        u.available = dict(zip(DIMENSIONS, sums[n:], strict=True))
    return usage


# ---- The rack page --------------------------------------------------------------------------


@dataclass
class Unit:
    """One row of the elevation. `server` is set on the top unit a server occupies, with
    `span` its height; units under it have span 0; an empty unit has no server, span 1."""

    number: int
    server: Baremetal | None = None
    span: int = 1


@dataclass
class BlastRadius:
    tenants: list = field(default_factory=list)   # rows: id, name, vms, cpu, memory
    clusters: list = field(default_factory=list)  # rows: id, name, tenant, status, here, cp
    # rows: id, name, tenant, server_id, server, cluster_id, cluster, role, status, cpu, memory
    vms: list = field(default_factory=list)
    vm_count: int = 0


@dataclass
class RackOverview:
    servers: list[Baremetal]
    elevation: list[Unit]
    usage: RackUsage
    blast: BlastRadius


def elevation(rack: Rack, servers: list[Baremetal]) -> list[Unit]:
    """Units from the top down; each server drawn once, over the units it occupies."""
    by_top = {s.top_unit: s for s in servers if s.rack_unit is not None}
    units: list[Unit] = []
    covered = 0
    for number in range(rack.height_u, 0, -1):
        server = by_top.get(number)
        if server is not None:
            units.append(Unit(number, server, server.size_u))
            covered = server.size_u - 1
        elif covered:
            units.append(Unit(number, None, 0))
            covered -= 1
        else:
            units.append(Unit(number))
    return units


def blast_radius(rack: Rack) -> BlastRadius:
    """Tenants, clusters and VMs that lose something if this rack goes dark."""
    in_rack = (
        VirtualMachine.baremetal_id == Baremetal.id,
        Baremetal.rack_id == rack.id,
        VirtualMachine.status.in_(HOLDING_STATUSES),
    )
    tenants = db.session.execute(
        select(Tenant.id, Tenant.name, func.count(VirtualMachine.id).label("vms"),
               func.sum(VirtualMachine.cpu).label("cpu"),
               func.sum(VirtualMachine.memory).label("memory"))
        .join(VirtualMachine, VirtualMachine.tenant_id == Tenant.id)
        .join(Baremetal, VirtualMachine.baremetal_id == Baremetal.id)
        .where(*in_rack)
        .group_by(Tenant.id, Tenant.name)
        .order_by(Tenant.name)
    ).all()
    # The rack's cluster nodes counted first (from its servers' VMs), then named: joined
    # the other way round, PostgreSQL walked every cluster's nodes of the estate.
    here = (
        select(VirtualMachine.k8s_cluster_id.label("id"),
               func.count(VirtualMachine.id).label("here"),
               func.sum(case((VirtualMachine.role == "control-plane", 1), else_=0)).label("cp"))
        .join(Baremetal, VirtualMachine.baremetal_id == Baremetal.id)
        .where(*in_rack, VirtualMachine.k8s_cluster_id.is_not(None))
        .group_by(VirtualMachine.k8s_cluster_id)
        .subquery()
    )
    clusters = db.session.execute(
        select(K8sCluster.id, K8sCluster.name, K8sCluster.status, Tenant.name.label("tenant"),
               here.c.here, here.c.cp)
        .join(here, here.c.id == K8sCluster.id)
        .join(Tenant, K8sCluster.tenant_id == Tenant.id)
        .order_by(K8sCluster.name)
    ).all()
    # The columns the table shows, not two hundred VMs with their tenants, servers and
    # clusters as objects (that cost more than the rest of the page).
    vms = db.session.execute(
        visible_only(select(
            VirtualMachine.id, VirtualMachine.name, Tenant.name.label("tenant"),
            Baremetal.id.label("server_id"), Baremetal.name.label("server"),
            K8sCluster.id.label("cluster_id"), K8sCluster.name.label("cluster"),
            VirtualMachine.role, VirtualMachine.status, VirtualMachine.cpu,
            VirtualMachine.memory,
        ), VirtualMachine)
        .join(Baremetal, VirtualMachine.baremetal_id == Baremetal.id)
        .join(Tenant, VirtualMachine.tenant_id == Tenant.id)
        .outerjoin(K8sCluster, VirtualMachine.k8s_cluster_id == K8sCluster.id)
        .where(*in_rack)
        .order_by(Baremetal.rack_unit.desc(), VirtualMachine.name)
        .limit(BLAST_VM_ROWS)
    ).all()
    return BlastRadius(tenants, clusters, vms, sum(t.vms for t in tenants))


def rack_overview(rack: Rack) -> RackOverview:
    servers = list(db.session.scalars(
        select(Baremetal).where(Baremetal.rack_id == rack.id)
        .options(joinedload(Baremetal.group))
        .order_by(Baremetal.rack_unit.desc())
    ))
    return RackOverview(
        servers, elevation(rack, servers), rack_usage([rack])[rack.id], blast_radius(rack)
    )


# ---- Writes ---------------------------------------------------------------------------------


def _names(names: list[str]) -> str:
    """The first NAMED names, and how many more."""
    shown = _(", ").join(names[:NAMED])
    if len(names) > NAMED:
        return _("%(names)s and %(num)s more", names=shown, num=len(names) - NAMED)
    return shown


def _check(data: RackFields, rack: Rack | None) -> dict[str, str]:
    """Every rule for one rack (its text tidied first: trimmed, NFC)."""
    data.name, data.region, data.dc, data.location, data.network_notes = (
        clean(v) for v in (data.name, data.region, data.dc, data.location, data.network_notes))
    errors: dict[str, str] = {}
    if not data.name:
        errors["name"] = _("Give the rack a name.")
    elif hidden := name_problem(data.name, _("The rack name")):
        errors["name"] = hidden
    elif len(data.name) > 64:
        errors["name"] = _("A rack name has at most %(max)s characters.", max=64)
    else:
        other = db.session.scalar(
            select(Rack.id).where(Rack.name == data.name, Rack.id != (rack.id if rack else 0))
        )
        if other is not None:
            errors["name"] = _("Rack %(name)s already exists.", name=data.name)
    for key, missing, label in (
        ("region", _("Say which region the rack is in."), _("The region")),
        ("dc", _("Say which DC the rack is in."), _("The DC")),
    ):
        value = getattr(data, key)
        if not value:
            errors[key] = missing
        elif hidden := name_problem(value, label):
            errors[key] = hidden
        elif len(value) > 64:
            errors[key] = _("At most %(max)s characters.", max=64)
    if len(data.location) > 255:
        errors["location"] = _("At most %(max)s characters.", max=255)
    if problem := too_long(data.network_notes, MAX_NOTES, _("The network notes")):
        errors["network_notes"] = problem
    if not isinstance(data.height_u, int) or not 1 <= data.height_u <= 60:
        errors["height_u"] = _("A rack is 1 to 60 U high.")
    elif rack is not None and data.height_u < rack.height_u:
        above = db.session.execute(
            select(Baremetal.name, Baremetal.rack_unit, Baremetal.size_u)
            .where(Baremetal.rack_id == rack.id,
                   Baremetal.rack_unit + Baremetal.size_u - 1 > data.height_u)
            .order_by(Baremetal.rack_unit.desc())
        ).all()
        if above:
            named = _names([f"{n} ({unit_span(u, s)})" for n, u, s in above])
            errors["height_u"] = _(
                "At %(height)s U these servers would stick out of the rack: %(servers)s. "
                "Move them down first.", height=data.height_u, servers=named)
    if data.bgp_asn is not None and not 1 <= data.bgp_asn <= MAX_ASN:
        errors["bgp_asn"] = _("An ASN is between 1 and %(max)s.", max=MAX_ASN)
    return errors


def create_rack(data: RackFields) -> Rack:
    errors = _check(data, None)
    if errors:
        raise RackInvalid(errors)
    rack = Rack(**vars(data))
    db.session.add(rack)
    db.session.flush()
    record("create", "rack", rack.id, rack.name, diff({}, snapshot(rack, AUDITED)))
    db.session.commit()
    return rack


def update_rack(rack: Rack, data: RackFields) -> Rack:
    """Edit a rack. Its servers follow a change of region or dc (they take the rack's)."""
    errors = _check(data, rack)
    if errors:
        raise RackInvalid(errors)
    before = snapshot(rack, AUDITED)
    for key, value in vars(data).items():
        setattr(rack, key, value)
    db.session.flush()
    if (before["region"], before["dc"]) != (rack.region, rack.dc):
        db.session.execute(
            update(Baremetal).where(Baremetal.rack_id == rack.id)
            .values(region=rack.region, dc=rack.dc)
            .execution_options(synchronize_session="fetch")
        )
    changes = diff(before, snapshot(rack, AUDITED))
    if changes:
        record("update", "rack", rack.id, rack.name, changes)
    db.session.commit()
    return rack


def delete_rack(rack: Rack) -> None:
    """Delete an empty rack; one that holds servers is refused, naming them."""
    names = db.session.scalars(
        select(Baremetal.name).where(Baremetal.rack_id == rack.id)
        .order_by(Baremetal.rack_unit.desc())
    ).all()
    if names:
        raise RackInvalid({"rack": _n(
            "Rack %(name)s still holds %(num)s server: %(servers)s. Move or delete it first.",
            "Rack %(name)s still holds %(num)s servers: %(servers)s. Move or delete them first.",
            len(names), name=rack.name, servers=_names(names))})
    record("delete", "rack", rack.id, rack.name,
           diff(snapshot(rack, AUDITED), dict.fromkeys(AUDITED)))
    db.session.delete(rack)
    db.session.commit()
