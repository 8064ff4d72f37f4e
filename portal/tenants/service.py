"""Tenants: what one tenant holds and where; creating, editing and deleting tenants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal import text
from portal.audit.service import created, diff, history_of, record, removed, snapshot
from portal.auth.access import visible_only
from portal.extensions import db
from portal.i18n import _, _n
from portal.models import (
    HOLDING_STATUSES,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    Tenant,
    User,
    VirtualMachine,
)
from portal.tenants.quotas import quota_usages

TENANT_FIELDS = ("name", "contact", "description")
MAX_NAME = 64
MAX_CONTACT = 255

# Per tenant: live VMs, and the CPU / memory its VMs hold. Joined into the list's id query
# when it sorts by them, and read for the rows shown — never one query per row. Live VMs
# are counted per tenant and status first, then the few (tenant, status) rows are combined:
# on PostgreSQL the first step reads the live VMs' index by tenant and status
# (pgx_virtual_machine_live_tenant, migration 0016) in order, without touching the table or
# hashing; the holding statuses are picked out of ~1,000 rows, not of every VM.
def _vm_totals(tenant_ids: list[int] | None = None):
    live = select(
        VirtualMachine.tenant_id,
        VirtualMachine.status,
        func.count().label("vms"),
        func.sum(VirtualMachine.cpu).label("cpu"),
        func.sum(VirtualMachine.memory).label("memory"),
    ).where(VirtualMachine.status != "deleted")
    if tenant_ids is not None:
        live = live.where(VirtualMachine.tenant_id.in_(tenant_ids))
    by_status = live.group_by(VirtualMachine.tenant_id, VirtualMachine.status).subquery(
        "tenant_vm_statuses")
    holding = by_status.c.status.in_(HOLDING_STATUSES)

    def total(value):  # a sum of sums is numeric on PostgreSQL; the totals are integers
        return cast(func.sum(value), BigInteger)

    return select(
        by_status.c.tenant_id.label("tenant_id"),
        total(by_status.c.vms).label("vms"),
        total(case((holding, by_status.c.cpu), else_=0)).label("cpu"),
        total(case((holding, by_status.c.memory), else_=0)).label("memory"),
    ).group_by(by_status.c.tenant_id).subquery("tenant_vm_totals")


def _cluster_totals(tenant_ids: list[int] | None = None):
    stmt = select(K8sCluster.tenant_id.label("tenant_id"), func.count().label("clusters")).where(
        K8sCluster.status != "deleted"
    )
    if tenant_ids is not None:
        stmt = stmt.where(K8sCluster.tenant_id.in_(tenant_ids))
    return stmt.group_by(K8sCluster.tenant_id).subquery("tenant_cluster_totals")


def _stat_columns(vm_totals, cluster_totals) -> dict:
    return {
        "vms": func.coalesce(vm_totals.c.vms, 0),
        "clusters": func.coalesce(cluster_totals.c.clusters, 0),
        "cpu": func.coalesce(vm_totals.c.cpu, 0),
        "memory": func.coalesce(vm_totals.c.memory, 0),
    }


vm_totals, cluster_totals = _vm_totals(), _cluster_totals()
STAT_COLUMNS = _stat_columns(vm_totals, cluster_totals)
EMPTY_STATS = dict.fromkeys(STAT_COLUMNS, 0)


class TenantInvalid(ValueError):
    """The tenant cannot be saved or deleted; ``errors`` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def with_totals(stmt, vms=vm_totals, clusters=cluster_totals):
    """A select of tenants with the per-tenant totals joined in (for sorting)."""
    return stmt.outerjoin(vms, vms.c.tenant_id == Tenant.id).outerjoin(
        clusters, clusters.c.tenant_id == Tenant.id
    )


def tenant_stats(tenant_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    """VMs, clusters, CPU and memory in use per tenant, in one query (None: every tenant)."""
    ids = None if tenant_ids is None else list(tenant_ids)
    vms, clusters = _vm_totals(ids), _cluster_totals(ids)
    columns = _stat_columns(vms, clusters)
    stmt = with_totals(select(Tenant.id, *(c.label(k) for k, c in columns.items())),
                       vms, clusters)
    if ids is not None:
        stmt = stmt.where(Tenant.id.in_(ids))
    return {row.id: {k: getattr(row, k) for k in columns} for row in db.session.execute(stmt)}


def tenant_history(tenant: Tenant) -> list:
    """Events about the tenant and about its quotas."""
    quota_ids = select(BaremetalGroupTenantQuota.id).where(
        BaremetalGroupTenantQuota.tenant_id == tenant.id
    )
    return history_of("tenant", tenant.id, [("quota", quota_ids)])


def tenant_overview(tenant: Tenant) -> dict:
    """Quotas with usage, live VMs and clusters, history of one tenant (fixed query count)."""
    quotas = db.session.scalars(
        select(BaremetalGroupTenantQuota)
        .join(BaremetalGroupTenantQuota.group)
        .options(
            joinedload(BaremetalGroupTenantQuota.group),
            joinedload(BaremetalGroupTenantQuota.tenant),
            joinedload(BaremetalGroupTenantQuota.updated_by_user),
        )
        .where(BaremetalGroupTenantQuota.tenant_id == tenant.id)
        .order_by(BaremetalGroup.name)
    ).all()
    vms = db.session.scalars(
        visible_only(select(VirtualMachine), VirtualMachine)
        .options(joinedload(VirtualMachine.baremetal), joinedload(VirtualMachine.spec),
                 joinedload(VirtualMachine.cluster))
        .where(VirtualMachine.tenant_id == tenant.id, VirtualMachine.status != "deleted")
        .order_by(VirtualMachine.name)
    ).all()
    clusters = db.session.scalars(
        visible_only(select(K8sCluster), K8sCluster)
        .options(joinedload(K8sCluster.group))
        .where(K8sCluster.tenant_id == tenant.id, K8sCluster.status != "deleted")
        .order_by(K8sCluster.name)
    ).all()
    free_groups = db.session.execute(
        select(BaremetalGroup.id, BaremetalGroup.name)
        .where(~BaremetalGroup.id.in_(
            select(BaremetalGroupTenantQuota.group_id)
            .where(BaremetalGroupTenantQuota.tenant_id == tenant.id)
        ))
        .order_by(BaremetalGroup.name)
    ).all()
    return {
        "quotas": quota_usages(list(quotas)),
        "vms": vms,
        "clusters": clusters,
        "groups_without_quota": [(row.id, row.name) for row in free_groups],
        "events": tenant_history(tenant),
    }


def _check(values: Mapping[str, Any], tenant: Tenant | None = None) -> dict[str, str]:
    name, contact = text.clean(values.get("name")), text.clean(values.get("contact"))
    errors = {}
    if not name:
        errors["name"] = _("Give the tenant a name.")
    elif hidden := text.name_problem(name, _("The tenant name")):
        errors["name"] = hidden
    elif len(name) > MAX_NAME:
        errors["name"] = _("A tenant name has at most %(max)s characters.", max=MAX_NAME)
    else:
        clash = db.session.scalar(select(Tenant.id).where(Tenant.name == name))
        if clash is not None and (tenant is None or clash != tenant.id):
            errors["name"] = _("A tenant named %(name)s already exists.", name=name)
    if len(contact) > MAX_CONTACT:
        errors["contact"] = _("A contact has at most %(max)s characters.", max=MAX_CONTACT)
    if problem := text.too_long(text.clean(values.get("description")), text.MAX_DESCRIPTION):
        errors["description"] = problem
    return errors


def _clean(values: Mapping[str, Any]) -> dict[str, str]:
    return {name: text.clean(values.get(name)) for name in TENANT_FIELDS}


def _commit_or_name_clash() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise TenantInvalid({"name": _("A tenant with this name already exists.")}) from None


def create_tenant(values: Mapping[str, Any], user: User | None) -> Tenant:
    errors = _check(values)
    if errors:
        raise TenantInvalid(errors)
    tenant = Tenant(**_clean(values))
    db.session.add(tenant)
    db.session.flush()
    record("create", "tenant", tenant.id, tenant.name,
           created(snapshot(tenant, TENANT_FIELDS)), user=user)
    _commit_or_name_clash()
    return tenant


def update_tenant(tenant: Tenant, values: Mapping[str, Any], user: User | None) -> dict:
    errors = _check(values, tenant)
    if errors:
        raise TenantInvalid(errors)
    before = snapshot(tenant, TENANT_FIELDS)
    for name, value in _clean(values).items():
        setattr(tenant, name, value)
    changes = diff(before, snapshot(tenant, TENANT_FIELDS))
    if changes:
        record("update", "tenant", tenant.id, tenant.name, changes, user=user)
        _commit_or_name_clash()
    return changes


def delete_tenant(tenant: Tenant, user: User | None) -> None:
    """Refused while any VM or cluster row (even a deleted one, kept for history) refers to
    the tenant; its quotas and admin memberships go with it."""
    vms = db.session.scalar(
        select(func.count()).where(VirtualMachine.tenant_id == tenant.id)
    )
    clusters = db.session.scalar(select(func.count()).where(K8sCluster.tenant_id == tenant.id))
    if vms or clusters:
        raise TenantInvalid({"tenant": _(
            "Tenant %(name)s still has %(vms)s and %(clusters)s (deleted ones are kept for "
            "history and count too). It cannot be deleted while they refer to it.",
            name=tenant.name, vms=_n("%(num)s VM", "%(num)s VMs", vms),
            clusters=_n("%(num)s cluster", "%(num)s clusters", clusters))})
    record("delete", "tenant", tenant.id, tenant.name,
           removed(snapshot(tenant, TENANT_FIELDS)), user=user)
    db.session.delete(tenant)
    db.session.commit()
