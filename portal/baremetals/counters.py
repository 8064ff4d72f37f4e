"""The stored capacity counters, checked against what they count.

available_d of a server = total_d − Σ d of the VMs on it that hold resources (a migrating
VM holds on its server and on its live migrate job's target, SPEC 8.1);
a group's total_d / available_d = Σ over its servers.
"""

from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    DIMENSIONS,
    HOLDING_STATUSES,
    LIVE_JOB_STATUSES,
    Baremetal,
    BaremetalGroup,
    ProvisionJob,
    VirtualMachine,
)


def counter_drift() -> list[str]:
    """Every counter that differs from the sum it stands for; empty when all are exact."""
    problems: list[str] = []
    held: dict[int, tuple[int, int, int]] = {}

    def add(rows) -> None:
        for server_id, *amounts in rows:
            before = held.get(server_id, (0, 0, 0))
            held[server_id] = tuple(a + (b or 0) for a, b in zip(before, amounts, strict=True))

    sums = (func.sum(VirtualMachine.cpu), func.sum(VirtualMachine.memory),
            func.sum(VirtualMachine.storage))
    add(db.session.execute(
        select(VirtualMachine.baremetal_id, *sums)
        .where(VirtualMachine.status.in_(HOLDING_STATUSES))
        .group_by(VirtualMachine.baremetal_id)
    ))
    add(db.session.execute(
        select(ProvisionJob.target_baremetal_id, *sums)
        .join(VirtualMachine, VirtualMachine.id == ProvisionJob.vm_id)
        .where(
            VirtualMachine.status == "migrating",
            ProvisionJob.action == "migrate",
            ProvisionJob.status.in_(LIVE_JOB_STATUSES),
        )
        .group_by(ProvisionJob.target_baremetal_id)
    ))
    group_sums: dict[int, dict[str, int]] = {}
    for server in db.session.scalars(select(Baremetal)):
        used = dict(zip(DIMENSIONS, held.get(server.id, (0, 0, 0)), strict=True))
        sums = group_sums.setdefault(server.group_id, {})
        for d in DIMENSIONS:
            total, free = getattr(server, f"total_{d}"), getattr(server, f"available_{d}")
            if free != total - used[d]:
                problems.append(
                    f"server {server.name}: available_{d} {free} != {total} - {used[d]}"
                )
            sums[f"total_{d}"] = sums.get(f"total_{d}", 0) + total
            sums[f"available_{d}"] = sums.get(f"available_{d}", 0) + free
    for group in db.session.scalars(select(BaremetalGroup)):
        sums = group_sums.get(group.id, {})
        for field in (f"{k}_{d}" for k in ("total", "available") for d in DIMENSIONS):
            if getattr(group, field) != sums.get(field, 0):
                problems.append(
                    f"group {group.name}: {field} {getattr(group, field)} != {sums.get(field, 0)}"
                )
    return problems
