"""Quota arithmetic (SPEC 2, "Tenancy and quota").

limit_d = d_limit, or floor(d_percent × group.total_d / 100), or None (unlimited);
used_d  = Σ d over the tenant's VMs on the group's servers whose status holds resources.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select, tuple_

from portal.extensions import db
from portal.models import (
    DIMENSIONS,
    HOLDING_STATUSES,
    Baremetal,
    BaremetalGroupTenantQuota,
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
