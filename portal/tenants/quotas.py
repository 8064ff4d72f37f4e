"""Quota arithmetic (SPEC 2, "Tenancy and quota").

limit_d = d_limit, or floor(d_percent × group.total_d / 100), or None (unlimited);
used_d  = Σ d over the tenant's VMs on the group's servers whose status holds resources.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError

from portal.audit.service import created, diff, record, removed, snapshot
from portal.extensions import begin_write, db
from portal.i18n import _, _l
from portal.models import (
    DIMENSIONS,
    HOLDING_STATUSES,
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    Tenant,
    User,
    VirtualMachine,
)


@dataclass(frozen=True)
class DimensionUsage:
    dimension: str
    written: str  # the limit as written: "64", "50 %" or "No limit"
    limit: int | None
    used: int

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else self.limit - self.used

    @property
    def over(self) -> bool:
        return self.limit is not None and self.used > self.limit


@dataclass(frozen=True)
class QuotaUsage:
    quota: BaremetalGroupTenantQuota
    dimensions: dict[str, DimensionUsage]


def written_limit(quota: BaremetalGroupTenantQuota, dimension: str) -> str:
    absolute = getattr(quota, f"{dimension}_limit")
    if absolute is not None:
        return str(absolute)
    percent = getattr(quota, f"{dimension}_percent")
    return f"{percent} %" if percent is not None else "No limit"


def used_by(pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], dict[str, int]]:
    """Usage per (tenant_id, group_id) pair, in one query."""
    pairs = list(pairs)
    if not pairs:
        return {}
    rows = db.session.execute(
        select(
            VirtualMachine.tenant_id,
            Baremetal.group_id,
            func.coalesce(func.sum(VirtualMachine.cpu), 0),
            func.coalesce(func.sum(VirtualMachine.memory), 0),
            func.coalesce(func.sum(VirtualMachine.storage), 0),
        )
        .join(Baremetal, VirtualMachine.baremetal_id == Baremetal.id)
        .where(
            VirtualMachine.status.in_(HOLDING_STATUSES),
            tuple_(VirtualMachine.tenant_id, Baremetal.group_id).in_(pairs),
        )
        .group_by(VirtualMachine.tenant_id, Baremetal.group_id)
    ).all()
    usage = {pair: dict.fromkeys(DIMENSIONS, 0) for pair in pairs}
    for tenant_id, group_id, cpu, memory, storage in rows:
        usage[(tenant_id, group_id)] = {"cpu": cpu, "memory": memory, "storage": storage}
    return usage


def quota_usages(quotas: list[BaremetalGroupTenantQuota]) -> list[QuotaUsage]:
    """Limits and usage for many quota rows (groups must be loaded with them)."""
    usage = used_by((q.tenant_id, q.group_id) for q in quotas)
    result = []
    for quota in quotas:
        used = usage[(quota.tenant_id, quota.group_id)]
        result.append(
            QuotaUsage(
                quota,
                {
                    d: DimensionUsage(d, written_limit(quota, d), quota.effective_limit(d), used[d])
                    for d in DIMENSIONS
                },
            )
        )
    return result


# ---- Editing quotas ------------------------------------------------------------------------
# Pages and the API share these: the rules (per dimension an absolute limit XOR a percentage,
# percentages 0–100, non-negative whole numbers, one row per tenant and group) are checked
# here with messages a person can act on; the database's CHECK constraints stay behind them.

QUOTA_FIELDS = tuple(f"{d}_{kind}" for d in DIMENSIONS for kind in ("limit", "percent"))
DIMENSION_NOUNS = {"cpu": _l("CPU"), "memory": _l("memory"), "storage": _l("storage")}
UNITS = {"cpu": "", "memory": " GiB", "storage": " GiB"}
MAX_LIMIT = 2_147_483_647  # a PostgreSQL integer


class QuotaInvalid(ValueError):
    """The quota cannot be saved; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class QuotaChange:
    """A saved quota, what changed, and plain warnings (limits now below usage)."""

    quota: BaremetalGroupTenantQuota
    changes: dict
    warnings: list[str]


def quota_label(quota: BaremetalGroupTenantQuota) -> str:
    return f"{quota.tenant.name} in {quota.group.name}"


def change_messages(change: QuotaChange, verb: str = "saved") -> list[tuple[str, str]]:
    """What to tell the operator after an edit: (message, category) pairs."""
    from portal.audit.presenter import change_text

    names = {"tenant": change.quota.tenant.name, "group": change.quota.group.name}
    if not change.changes:
        return [(_("Quota of %(tenant)s in %(group)s: nothing changed.", **names), "info")]
    texts = ", ".join(change_text(k, v) for k, v in change.changes.items())
    if verb == "added":
        said = _("Quota of %(tenant)s in %(group)s added: %(changes)s.", changes=texts, **names)
    else:
        said = _("Quota of %(tenant)s in %(group)s saved: %(changes)s.", changes=texts, **names)
    return [(said, "success"),
            *((warning, "warning") for warning in change.warnings)]


def check_values(values: Mapping[str, Any]) -> dict[str, int | None]:
    """The six limit fields, validated; QuotaInvalid names every bad one."""
    errors: dict[str, str] = {}
    clean: dict[str, int | None] = {}
    for name in QUOTA_FIELDS:
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            errors[name] = _("Enter a whole number.")
            continue
        clean[name] = value
    for d in DIMENSIONS:
        noun = DIMENSION_NOUNS[d]
        limit, percent = clean.get(f"{d}_limit"), clean.get(f"{d}_percent")
        if limit is not None and limit < 0:
            errors[f"{d}_limit"] = _("A %(noun)s limit cannot be negative.", noun=noun)
        elif limit is not None and limit > MAX_LIMIT:
            most = f"{MAX_LIMIT:,}"
            errors[f"{d}_limit"] = _("A %(noun)s limit is at most %(max)s.", noun=noun,
                                     max=most)
        if percent is not None and not 0 <= percent <= 100:
            errors[f"{d}_percent"] = _("A %(noun)s percentage is between 0 and 100.",
                                       noun=noun)
        if limit is not None and percent is not None:
            errors.setdefault(f"{d}_limit", _(
                "Set an absolute %(noun)s limit or a percentage, not both.", noun=noun))
    if errors:
        raise QuotaInvalid(errors)
    return clean


def below_usage_warnings(quota: BaremetalGroupTenantQuota, dimensions: Iterable[str]) -> list[str]:
    """Plain words for each of these dimensions whose limit is now below what the tenant
    already uses: existing VMs stay, new requests fail."""
    dimensions = list(dimensions)
    if not dimensions:
        return []
    used = used_by([(quota.tenant_id, quota.group_id)])[(quota.tenant_id, quota.group_id)]
    warnings = []
    for d in dimensions:
        limit = quota.effective_limit(d)
        if limit is not None and used[d] > limit:
            unit, noun = UNITS[d], DIMENSION_NOUNS[d]
            now, new = f"{used[d]:,}{unit}", f"{limit:,}{unit}"
            warnings.append(_(
                "%(tenant)s already uses %(used)s %(noun)s in this group; the new limit "
                "%(limit)s stops new VMs but keeps the existing ones.", tenant=quota.tenant.name,
                used=now, noun=noun, limit=new))
    return warnings


def _locked_quota(quota_id: int) -> BaremetalGroupTenantQuota | None:
    """The quota row, locked as a reservation locks it, so an edit and a placement in the
    same group never interleave."""
    begin_write()
    return db.session.scalar(
        select(BaremetalGroupTenantQuota)
        .where(BaremetalGroupTenantQuota.id == quota_id)
        .with_for_update()
    )


def _changed_dimensions(changes: dict) -> set[str]:
    return {name.split("_", 1)[0] for name in changes}


def update_quota(quota_id: int, values: Mapping[str, Any], user: User | None) -> QuotaChange:
    """Set a quota's six limit fields (None: not set). Raises QuotaInvalid, changing nothing."""
    clean = check_values(values)
    quota = _locked_quota(quota_id)
    if quota is None:
        db.session.rollback()
        raise QuotaInvalid({"quota": _("This quota no longer exists.")})
    before = snapshot(quota, QUOTA_FIELDS)
    for name, value in clean.items():
        setattr(quota, name, value)
    changes = diff(before, snapshot(quota, QUOTA_FIELDS))
    if not changes:
        db.session.rollback()
        return QuotaChange(quota, {}, [])
    quota.updated_by = user.id if user is not None else None
    record("update", "quota", quota.id, quota_label(quota), changes, user=user)
    db.session.flush()
    warnings = below_usage_warnings(quota, _changed_dimensions(changes))
    db.session.commit()
    return QuotaChange(quota, changes, warnings)


def create_quota(
    tenant_id: int | None, group_id: int | None, values: Mapping[str, Any], user: User | None
) -> QuotaChange:
    """A new quota row for a tenant in a group. Raises QuotaInvalid, changing nothing."""
    errors: dict[str, str] = {}
    tenant = db.session.get(Tenant, tenant_id) if isinstance(tenant_id, int) else None
    group = db.session.get(BaremetalGroup, group_id) if isinstance(group_id, int) else None
    if tenant is None:
        errors["tenant_id"] = _("Choose an existing tenant.")
    if group is None:
        errors["group_id"] = _("Choose an existing group.")
    try:
        clean = check_values(values)
    except QuotaInvalid as invalid:
        errors.update(invalid.errors)
    if not errors and has_quota(tenant.id, group.id):
        errors["tenant_id"] = _("%(tenant)s already has a quota in group %(group)s: edit that "
                                "row instead.", tenant=tenant.name, group=group.name)
    if errors:
        raise QuotaInvalid(errors)
    quota = BaremetalGroupTenantQuota(
        tenant=tenant, group=group, updated_by=user.id if user is not None else None, **clean
    )
    db.session.add(quota)
    try:
        db.session.flush()
    except IntegrityError:
        # Another operator added the same pair a moment ago.
        db.session.rollback()
        raise QuotaInvalid(
            {"tenant_id": _("This tenant already has a quota in this group.")}
        ) from None
    changes = created(clean)
    record("create", "quota", quota.id, quota_label(quota), changes, user=user)
    warnings = below_usage_warnings(quota, _changed_dimensions(changes))
    db.session.commit()
    return QuotaChange(quota, changes, warnings)


def delete_quota(quota_id: int, user: User | None) -> str:
    """Remove a quota row: the tenant can no longer place anything in that group (existing
    VMs stay). Returns the label of what was removed."""
    quota = _locked_quota(quota_id)
    if quota is None:
        db.session.rollback()
        raise QuotaInvalid({"quota": _("This quota no longer exists.")})
    label = quota_label(quota)
    record("delete", "quota", quota.id, label, removed(snapshot(quota, QUOTA_FIELDS)), user=user)
    db.session.delete(quota)
    db.session.commit()
    return label


def has_quota(tenant_id: int, group_id: int) -> bool:
    return db.session.scalar(
        select(BaremetalGroupTenantQuota.id).where(
            BaremetalGroupTenantQuota.tenant_id == tenant_id,
            BaremetalGroupTenantQuota.group_id == group_id,
        )
    ) is not None


@dataclass(frozen=True)
class Commitment:
    """How much of one dimension of a group the quotas promise away."""

    dimension: str
    total: int
    committed: int  # Σ effective limits of the quotas that have one
    unlimited: int  # quotas without a limit in this dimension
    used: int  # Σ usage of the tenants holding quota


def commitments(group: BaremetalGroup, usages: list[QuotaUsage]) -> list[Commitment]:
    """Per dimension: the group's total, the sum of its quotas' limits, how many tenants
    have none, and what the quota holders use."""
    result = []
    for d in DIMENSIONS:
        dims = [u.dimensions[d] for u in usages]
        result.append(
            Commitment(
                d,
                getattr(group, f"total_{d}"),
                sum(x.limit for x in dims if x.limit is not None),
                sum(1 for x in dims if x.limit is None),
                sum(x.used for x in dims),
            )
        )
    return result
