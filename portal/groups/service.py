"""Baremetal groups: what a group holds, who may use how much of it, what still fits; and
creating, editing and deleting groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import format_decimal as format_number
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import text
from portal.audit.service import created, diff, history_of, record, removed, snapshot
from portal.extensions import db
from portal.i18n import _, _l, _n
from portal.models import (
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    Tenant,
    User,
)
from portal.models import VirtualMachineSpecification as Flavor
from portal.tenants.quotas import QuotaUsage, commitments, quota_usages

GROUP_FIELDS = ("name", "dimension", "description")
MAX_NAME = 64
NAMES_SHOWN = 10


class GroupInvalid(ValueError):
    """The group cannot be saved or deleted; ``errors`` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


DIMENSIONS = ("cpu", "memory", "storage")
DIMENSION_NAMES = {"cpu": _l("CPU"), "memory": _l("memory"), "storage": _l("storage")}


def amount(dimension: str, value: int) -> str:
    """12 cores, 96 GiB."""
    if dimension == "cpu":
        return _n("%(num)s core", "%(num)s cores", value)
    return _("%(num)s GiB", num=format_number(value))


@dataclass(frozen=True)
class FlavorHeadroom:
    flavor_id: int
    name: str
    cpu: int
    memory: int
    storage: int
    generation: int
    fits: int  # more single VMs of this flavor that fit on the group's active servers now
    # Free capacity of the group's active servers, per dimension.
    free_cpu: int = 0
    free_memory: int = 0
    free_storage: int = 0

    def free(self, dimension: str) -> int:
        return getattr(self, f"free_{dimension}")

    @property
    def limit(self) -> str | None:
        """The dimension that runs out first over the whole group (a flavor without
        storage is not limited by storage); None without active servers."""
        if not (self.free_cpu or self.free_memory or self.free_storage):
            return None
        needed = [d for d in DIMENSIONS if getattr(self, d) > 0]
        return min(needed, key=lambda d: (self.free(d) // getattr(self, d),
                                          DIMENSIONS.index(d)))

    @property
    def pooled(self) -> int:
        """How many would fit if the free capacity were on one server."""
        if self.limit is None:
            return 0
        return self.free(self.limit) // getattr(self, self.limit)

    def explain(self) -> str:
        """The figure in words: "Room for 12 more Standard-4C8G: memory is the limit,
        96 GiB left." """
        if self.limit is None:
            return _("No room: the group has no active server with free capacity.")
        limit = DIMENSION_NAMES[self.limit]
        left = amount(self.limit, self.free(self.limit))
        if self.fits:
            words = _n("Room for %(num)s more %(flavor)s: %(dimension)s is the limit, "
                       "%(left)s left.",
                       "Room for %(num)s more %(flavor)s: %(dimension)s is the limit, "
                       "%(left)s left.", self.fits,
                       flavor=self.name, dimension=limit, left=left)
        else:
            words = _("No room for another %(flavor)s: %(dimension)s is the limit, "
                      "%(left)s left.", flavor=self.name, dimension=limit, left=left)
        if self.pooled > self.fits:
            words += " " + _n(
                "The free capacity is spread over several servers: on one server it would "
                "hold %(num)s.",
                "The free capacity is spread over several servers: on one server it would "
                "hold %(num)s.", self.pooled)
        return words


def quota_room(room: FlavorHeadroom, usage: QuotaUsage) -> str:
    """What a tenant's own quota leaves for one more VM of a flavor, in words: "Your quota
    allows 6 more: its CPU limit leaves 24 cores." """
    left = {d: max(usage.dimensions[d].remaining, 0) for d in DIMENSIONS
            if usage.dimensions[d].limit is not None and getattr(room, d) > 0}
    if not left:
        return _("Your quota sets no limit here: the group's room is yours.")
    limit = min(left, key=lambda d: (left[d] // getattr(room, d), DIMENSIONS.index(d)))
    allows = left[limit] // getattr(room, limit)
    return _n("Your quota allows %(num)s more: its %(dimension)s limit leaves %(left)s.",
              "Your quota allows %(num)s more: its %(dimension)s limit leaves %(left)s.",
              allows, dimension=DIMENSION_NAMES[limit], left=amount(limit, left[limit]))


def headroom(group: BaremetalGroup) -> list[FlavorHeadroom]:
    """For each active flavor, Σ over the group's active servers of
    min_d floor(available_d / flavor_d): how many more single VMs of it fit right now,
    quotas aside; and the servers' free capacity, to say which dimension is the limit.
    One query."""
    per_cpu = Baremetal.available_cpu // Flavor.cpu
    per_memory = Baremetal.available_memory // Flavor.memory
    # A flavor without storage is not limited by storage.
    per_storage = case(
        (Flavor.storage == 0, per_cpu), else_=Baremetal.available_storage // Flavor.storage
    )
    fits = case(
        ((per_cpu <= per_memory) & (per_cpu <= per_storage), per_cpu),
        (per_memory <= per_storage, per_memory),
        else_=per_storage,
    )
    rows = db.session.execute(
        select(
            Flavor.id, Flavor.name, Flavor.cpu, Flavor.memory, Flavor.storage,
            Flavor.generation, func.coalesce(func.sum(fits), 0),
            *(func.coalesce(func.sum(getattr(Baremetal, f"available_{d}")), 0)
              for d in DIMENSIONS),
        )
        .outerjoin(
            Baremetal, (Baremetal.group_id == group.id) & (Baremetal.status == "active")
        )
        .where(Flavor.is_active.is_(True))
        .group_by(Flavor.id, Flavor.name, Flavor.cpu, Flavor.memory, Flavor.storage,
                  Flavor.generation)
        .order_by(Flavor.cpu, Flavor.memory, Flavor.storage, Flavor.name)
    ).all()
    return [FlavorHeadroom(*row) for row in rows]


def _group_quotas(group: BaremetalGroup, tenant_scope: frozenset[int] | None):
    stmt = (
        select(BaremetalGroupTenantQuota)
        .join(BaremetalGroupTenantQuota.tenant)
        .options(
            joinedload(BaremetalGroupTenantQuota.tenant),
            joinedload(BaremetalGroupTenantQuota.group),
            joinedload(BaremetalGroupTenantQuota.updated_by_user),
        )
        .where(BaremetalGroupTenantQuota.group_id == group.id)
        .order_by(Tenant.name)
    )
    if tenant_scope is not None:
        stmt = stmt.where(BaremetalGroupTenantQuota.tenant_id.in_(tenant_scope))
    return list(db.session.scalars(stmt))


def group_totals(group: BaremetalGroup, usages: list[QuotaUsage] | None = None) -> dict:
    """The summary at the top of a group's page: capacity, servers per status, and how much
    of each dimension the quotas promise away (refreshed after every quota edit)."""
    if usages is None:
        usages = quota_usages(_group_quotas(group, None))
    statuses = dict(
        db.session.execute(
            select(Baremetal.status, func.count())
            .where(Baremetal.group_id == group.id)
            .group_by(Baremetal.status)
        ).all()
    )
    return {
        "commitments": commitments(group, usages),
        "quota_count": len(usages),
        "server_statuses": statuses,
    }


def group_history(group: BaremetalGroup, tenant_scope: frozenset[int] | None = None) -> list:
    """Events about the group and about its quotas (a tenant admin's own quotas only)."""
    quota_ids = select(BaremetalGroupTenantQuota.id).where(
        BaremetalGroupTenantQuota.group_id == group.id
    )
    if tenant_scope is not None:
        quota_ids = quota_ids.where(BaremetalGroupTenantQuota.tenant_id.in_(tenant_scope))
    return history_of("baremetal_group", group.id, [("quota", quota_ids)])


# Servers drawn on the group's page; the server list filtered by group has them all.
SERVER_ROWS = 50


def group_detail(
    group: BaremetalGroup, tenant_scope: frozenset[int] | None, show_servers: bool
) -> dict:
    """Everything the group's page shows, in a fixed number of queries. A tenant admin
    (tenant_scope set) sees capacity and their own tenants' quotas only."""
    all_quotas = _group_quotas(group, tenant_scope)
    usages = quota_usages(all_quotas)
    servers = []
    if show_servers:
        servers = list(db.session.scalars(
            select(Baremetal)
            .options(joinedload(Baremetal.rack))
            .where(Baremetal.group_id == group.id)
            .order_by(Baremetal.name)
            .limit(SERVER_ROWS)
        ))
    tenants_without_quota = []
    if tenant_scope is None:
        tenants_without_quota = [
            (row.id, row.name)
            for row in db.session.execute(
                select(Tenant.id, Tenant.name)
                .where(~Tenant.id.in_(
                    select(BaremetalGroupTenantQuota.tenant_id)
                    .where(BaremetalGroupTenantQuota.group_id == group.id)
                ))
                .order_by(Tenant.name)
            )
        ]
    rooms = headroom(group)
    # A tenant admin's own quota may leave less than the group: said per flavor.
    quota_words = {}
    if tenant_scope is not None and len(usages) == 1:
        quota_words = {room.flavor_id: quota_room(room, usages[0]) for room in rooms}
    return {
        "quotas": usages,
        "servers": servers,
        "headroom": rooms,
        "quota_words": quota_words,
        "tenants_without_quota": tenants_without_quota,
        "events": group_history(group, tenant_scope),
        **group_totals(group, usages if tenant_scope is None else None),
    }


# ---- Create, edit, delete ---------------------------------------------------------------

def _clean(values: Mapping[str, Any]) -> dict[str, str]:
    return {name: text.clean(values.get(name)) for name in GROUP_FIELDS}


def _check(clean: dict[str, str], group: BaremetalGroup | None = None) -> None:
    errors = {}
    name = clean["name"]
    if not name:
        errors["name"] = _("Give the group a name.")
    elif hidden := text.name_problem(name, _("The group name")):
        errors["name"] = hidden
    elif len(name) > MAX_NAME:
        errors["name"] = _("A group name has at most %(max)s characters.", max=MAX_NAME)
    else:
        clash = db.session.scalar(select(BaremetalGroup.id).where(BaremetalGroup.name == name))
        if clash is not None and (group is None or clash != group.id):
            errors["name"] = _("A group named %(name)s already exists.", name=name)
    if hidden := text.name_problem(clean["dimension"], _("The dimension")):
        errors["dimension"] = hidden
    elif len(clean["dimension"]) > 64:
        errors["dimension"] = _("A dimension has at most %(max)s characters.", max=64)
    if problem := text.too_long(clean["description"], text.MAX_DESCRIPTION):
        errors["description"] = problem
    if errors:
        raise GroupInvalid(errors)


def _commit() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise GroupInvalid({"name": _("A group with this name already exists.")}) from None


def create_group(values: Mapping[str, Any], user: User | None) -> BaremetalGroup:
    """A new, empty group: servers join it from their own pages."""
    clean = _clean(values)
    _check(clean)
    group = BaremetalGroup(**clean)
    db.session.add(group)
    db.session.flush()
    record("create", "baremetal_group", group.id, group.name,
           created(snapshot(group, GROUP_FIELDS)), user=user)
    _commit()
    return group


def update_group(group: BaremetalGroup, values: Mapping[str, Any], user: User | None) -> dict:
    clean = _clean(values)
    _check(clean, group)
    before = snapshot(group, GROUP_FIELDS)
    for name, value in clean.items():
        setattr(group, name, value)
    changes = diff(before, snapshot(group, GROUP_FIELDS))
    if changes:
        record("update", "baremetal_group", group.id, group.name, changes, user=user)
        _commit()
    return changes


def _names(names: list[str], total: int) -> str:
    listed = ", ".join(names[:NAMES_SHOWN])
    if total > NAMES_SHOWN:
        return _("%(names)s and %(num)s more", names=listed, num=total - NAMES_SHOWN)
    return listed


def delete_group(group: BaremetalGroup, user: User | None) -> None:
    """Refused while servers belong to the group or clusters (even deleted ones, kept for
    history) refer to it, naming them. Its quotas go with it."""
    servers = list(db.session.scalars(
        select(Baremetal.name).where(Baremetal.group_id == group.id).order_by(Baremetal.name)
    ))
    clusters = list(db.session.scalars(
        select(K8sCluster.name).where(K8sCluster.group_id == group.id).order_by(K8sCluster.name)
    ))
    problems = []
    if servers:
        problems.append(_n("%(num)s server (%(names)s): move it to another group first",
                           "%(num)s servers (%(names)s): move them to another group first",
                           len(servers), names=_names(servers, len(servers))))
    if clusters:
        problems.append(_n("%(num)s cluster (%(names)s), deleted ones kept for history "
                           "included",
                           "%(num)s clusters (%(names)s), deleted ones kept for history "
                           "included", len(clusters), names=_names(clusters, len(clusters))))
    if problems:
        raise GroupInvalid({"group": _("Group %(name)s still has %(problems)s.",
                                       name=group.name, problems=_("; and ").join(problems))})
    record("delete", "baremetal_group", group.id, group.name,
           removed(snapshot(group, GROUP_FIELDS)), user=user)
    db.session.delete(group)
    db.session.commit()
