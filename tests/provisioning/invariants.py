"""The invariant of SPEC 8.1, as one function the lifecycle tests call after every step."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from portal.baremetals.counters import counter_drift
from portal.extensions import db
from portal.models import (
    DIMENSIONS,
    HOLDING_STATUSES,
    LIVE_JOB_STATUSES,
    Baremetal,
    BaremetalGroupTenantQuota,
    K8sCluster,
    ProvisionJob,
    VirtualMachine,
)


def lifecycle_violations() -> list[str]:
    """Everything that breaks the invariant; empty when it holds.

    - every server and group counter equals the sum of what it counts (counter_drift);
    - every tenant's use in a group stays within its quota;
    - a VM has at most one live job, and its status agrees with its jobs: provisioning has
      a live create, migrating a live migrate; active, error and deleted have none;
      deleting has a live delete, a
      claimed create (the delete follows it), or a failed delete awaiting a retry;
    - a deleted cluster has no live node.
    """
    problems = list(counter_drift())
    used: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    rows = db.session.execute(
        select(VirtualMachine.tenant_id, Baremetal.group_id, VirtualMachine.cpu,
               VirtualMachine.memory, VirtualMachine.storage)
        .join(Baremetal, Baremetal.id == VirtualMachine.baremetal_id)
        .where(VirtualMachine.status.in_(HOLDING_STATUSES))
    )
    for tenant_id, group_id, *amounts in rows:
        for i, amount in enumerate(amounts):
            used[tenant_id, group_id][i] += amount
    for quota in db.session.scalars(select(BaremetalGroupTenantQuota)):
        for i, d in enumerate(DIMENSIONS):
            limit = quota.effective_limit(d)
            have = used[quota.tenant_id, quota.group_id][i]
            if limit is not None and have > limit:
                problems.append(f"tenant {quota.tenant_id} uses {have} {d} of {limit}")

    live: dict[int, list[tuple[str, str]]] = defaultdict(list)
    last: dict[int, tuple[str, str]] = {}
    for vm_id, action, status in db.session.execute(
        select(ProvisionJob.vm_id, ProvisionJob.action, ProvisionJob.status)
        .order_by(ProvisionJob.id)
    ):
        last[vm_id] = (action, status)
        if status in LIVE_JOB_STATUSES:
            live[vm_id].append((action, status))
    for vm_id, name, status in db.session.execute(
        select(VirtualMachine.id, VirtualMachine.name, VirtualMachine.status)
    ):
        jobs = live.get(vm_id, [])
        if len(jobs) > 1:
            problems.append(f"VM {name} has {len(jobs)} live jobs: {jobs}")
        actions = {action for action, _ in jobs}
        if status == "provisioning" and actions != {"create"}:
            problems.append(f"VM {name} is provisioning with live jobs {jobs}")
        elif status == "migrating" and actions != {"migrate"}:
            problems.append(f"VM {name} is migrating with live jobs {jobs}")
        elif status in ("active", "error", "deleted") and jobs:
            problems.append(f"VM {name} is {status} with live jobs {jobs}")
        elif status == "deleting" and not (
            actions == {"delete"}
            or jobs == [("create", "claimed")]
            or (not jobs and last.get(vm_id) == ("delete", "failed"))
        ):
            problems.append(f"VM {name} is deleting with live jobs {jobs}, last {last.get(vm_id)}")
    for cluster_id, name in db.session.execute(
        select(K8sCluster.id, K8sCluster.name).where(K8sCluster.status == "deleted")
    ):
        count = db.session.scalar(
            select(func.count(VirtualMachine.id)).where(
                VirtualMachine.k8s_cluster_id == cluster_id, VirtualMachine.status != "deleted"
            )
        )
        if count:
            problems.append(f"cluster {name} is deleted with {count} live nodes")
    return problems
