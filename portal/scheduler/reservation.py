"""The reservation layer (SPEC 3.5): read what a placement depends on, ask the pure core for
a plan, and commit it atomically.

One transaction per reservation:

1. lock the tenant's quota row in the group (``SELECT … FOR UPDATE`` on PostgreSQL; on
   SQLite a first write takes the database's write lock), so that requests of one tenant in
   one group are serialised and the quota is checked against usage nobody else can change;
2. read usage and the group's active servers, and plan with the core;
3. lock the chosen servers (in id order) and re-validate them: another tenant may have
   taken the room since step 2. If so, plan again inside the same call with fresh numbers
   rather than refuse;
4. create the VMs (``provisioning``), decrement server and group counters with atomic
   ``UPDATE … SET available = available - n``, enqueue ProvisionJobs, write audit events,
   commit.

Deadlocks between tenants locking overlapping servers (PostgreSQL detects them) are retried.
The database's CHECK constraints (counters never below zero) are the last line behind this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from portal.extensions import begin_write, db
from portal.i18n import _, _n
from portal.models import (
    DIMENSIONS,
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    K8sCluster,
    ProvisionJob,
    Tenant,
    User,
    VirtualMachine,
    VirtualMachineSpecification,
    utcnow,
)
from portal.scheduler import (
    DEFAULT_STRATEGY,
    Constraints,
    Host,
    HostTable,
    NodeDemand,
    PlacementRequest,
    Plan,
    Refusal,
    Resources,
    plan,
    statements,
)
from portal.signals import placement_decided
from portal.vms.labels import enum_label

# SPEC 8.2: replicas spread by default; a single VM is a set of one, so it changes nothing.
DEFAULT_ANTI_AFFINITY = "soft"
# A dimension without a limit: larger than any group could ever hold.
UNLIMITED = 10**15
# Constraints are frozen: one empty instance serves as every default.
NO_CONSTRAINTS = Constraints()
NO_QUOTA = "no_quota"
MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class NodeSpec:
    """One VM to create: its name, role and flavor. A bastion placed with a cluster is
    not one of its nodes (cluster_member False): it may serve other clusters too."""

    name: str
    role: str
    flavor: VirtualMachineSpecification
    cluster_member: bool = True

    @property
    def resources(self) -> Resources:
        return Resources(self.flavor.cpu, self.flavor.memory, self.flavor.storage)


@dataclass(frozen=True)
class QuotaLine:
    """One dimension of the quota as a request would change it."""

    dimension: str
    used: int
    request: int
    limit: int | None

    @property
    def fits(self) -> bool:
        return self.limit is None or self.used + self.request <= self.limit


@dataclass
class Placement:
    """What the decision depends on, read from the database. ``limits`` holds the quota's
    limit per dimension in units (None: unlimited), and is None when the tenant has no quota
    in the group; ``quota`` is the quota's row for pages to show (previews read it; a
    reservation reads only the limits, under the row's lock)."""

    tenant: Tenant
    group: BaremetalGroup
    quota: BaremetalGroupTenantQuota | None
    used: dict[str, int] = field(default_factory=dict)
    hosts: Sequence[Host] = field(default_factory=list)
    inactive: dict[str, int] = field(default_factory=dict)
    limits: dict[str, int | None] | None = None

    @property
    def has_quota(self) -> bool:
        return self.limits is not None

    def limit(self, dimension: str) -> int | None:
        return None if self.limits is None else self.limits[dimension]

    def headroom(self) -> Resources | None:
        if self.limits is None:
            return None
        left = []
        for d in DIMENSIONS:
            limit = self.limit(d)
            left.append(UNLIMITED if limit is None else limit - self.used[d])
        return Resources(*left)

    def quota_lines(self, demand: Resources) -> list[QuotaLine]:
        return [
            QuotaLine(d, self.used.get(d, 0), getattr(demand, d), self.limit(d)) for d in DIMENSIONS
        ]

    def host_by_id(self, host_id: int) -> Host:
        if isinstance(self.hosts, HostTable):
            return self.hosts[self.hosts.id_list.index(host_id)]
        return next(h for h in self.hosts if h.id == host_id)


@dataclass
class Preview:
    """A plan or a refusal, with what a wizard shows beside it."""

    placement: Placement
    nodes: list[NodeSpec]
    result: Plan | Refusal
    suggestions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return isinstance(self.result, Plan)

    @property
    def demand(self) -> Resources:
        return total_demand(self.nodes)

    @property
    def quota_lines(self) -> list[QuotaLine]:
        return self.placement.quota_lines(self.demand)

    def chosen(self) -> list[tuple[NodeSpec, Host]]:
        assert isinstance(self.result, Plan)
        return [
            (node, self.placement.host_by_id(host_id))
            for node, host_id in zip(self.nodes, self.result.assignments, strict=True)
        ]


class PlacementRefused(Exception):
    """The request cannot be placed; ``refusal`` says why, with numbers."""

    def __init__(self, refusal: Refusal, suggestions: Sequence[str] = ()) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal
        self.suggestions = list(suggestions)


def total_demand(nodes: Sequence[NodeSpec]) -> Resources:
    total = Resources(0, 0, 0)
    for node in nodes:
        total = total + node.resources
    return total


def _no_quota(tenant: Tenant, group: BaremetalGroup) -> Refusal:
    return Refusal(
        NO_QUOTA,
        # The group is not named: a tenant admin may not know of groups without its quota.
        _("Tenant %(tenant)s has no quota in this group, so nothing can be placed there. Ask an "
          "operator for a quota, or choose a group where the tenant has one.", tenant=tenant.name),
        {"tenant": tenant.name, "group_id": group.id},
    )


def _usage(tenant_id: int, group_id: int) -> dict[str, int]:
    _autoflush()
    (row,) = statements.USAGE.rows({"tenant": tenant_id, "group": group_id})
    return dict(zip(DIMENSIONS, row, strict=True))


def _hosts(group_id: int, rows: Sequence[tuple] | None = None) -> HostTable:
    """The group's active servers as the planner sees them: all of them, full ones too —
    the default strategy reads the group's workload mix from their usage. Read afresh, in
    one query whose rows go from the driver straight into the table's arrays. rows: the
    group's server rows when already read."""
    if rows is None:
        _autoflush()
        rows = statements.HOSTS.rows({"group": group_id})
    return HostTable.from_rows(rows)


# Group id -> (HostsVersion, the group's servers as read under it). Per process; a table
# kept here is only ever read (with_free shares it), never changed.
_KEPT: dict[int, tuple[int, HostTable]] = {}


def _current_hosts(group_id: int, version: int | None, free: Sequence[tuple]) -> HostTable:
    """The group's servers for a reservation: what was read under the group's current
    HostsVersion, with the free counters just read (``free``); read afresh, and kept, when
    the version has changed (or when the counters' rows are not of the same servers: a
    change committed between the version's read and theirs).

    Reading a thousand servers' names, places and totals for every decision was the
    largest part of a reservation's cost, in the database and in the client, for columns
    that change only when an operator changes a server. Every such change gives the group
    a new version in its own transaction (the database's triggers, portal/models/ddl.py),
    so a kept table is never used past the change; the free counters are read every time,
    and the locked updates at the end of a reservation re-check them anyway."""
    kept = _KEPT.get(group_id)
    if version is not None and kept is not None and kept[0] == version:
        table = kept[1].with_free(free)
        if table is not None:
            return table
    rows = statements.VERSIONED_HOSTS.rows({"group": group_id})
    table = HostTable.from_rows([row[:-1] for row in rows])
    if rows and rows[0][-1] is not None:
        _KEPT[group_id] = (rows[0][-1], table)
    return table


def _autoflush() -> None:
    """What session.execute() does before a query: pending changes of the caller count."""
    if db.session.autoflush:
        db.session.flush()


def _inactive(group_id: int) -> dict[str, int]:
    """Servers of the group left out for their status, counted for refusals."""
    return dict(
        db.session.execute(
            select(Baremetal.status, func.count())
            .where(Baremetal.group_id == group_id, Baremetal.status != "active")
            .group_by(Baremetal.status)
        ).all()
    )


def read_placement(tenant: Tenant, group: BaremetalGroup, lock: bool = False) -> Placement:
    """Everything the decision depends on. With lock=True (inside a reservation, after
    begin_write()) the quota row is locked first, so usage cannot change under us; the
    group's totals (which scale percentage quotas) are read with it. Usage is read by the
    next statement, never by the locking one: on PostgreSQL a statement sees the data as of
    its start, and the lock may be granted only after another reservation committed."""
    if lock:
        # The three in one round trip (statements.together): usage and servers are still
        # read after the lock is granted, each by a statement of its own.
        _autoflush()
        rows, usage, free = statements.together([
            (statements.LOCK_QUOTA, {"tenant": tenant.id, "group": group.id}),
            (statements.USAGE, {"tenant": tenant.id, "group": group.id}),
            (statements.FREE, {"group": group.id}),
        ])
        placement = Placement(tenant, group, None)
        if not rows:
            return placement
        # (limit, percent) per dimension, the group's total per dimension, its version
        limits_and_percents, totals, version = rows[0][:6], rows[0][6:9], rows[0][9]
        placement.limits = {
            d: _effective_limit(*limits_and_percents[2 * i: 2 * i + 2], totals[i])
            for i, d in enumerate(DIMENSIONS)
        }
        placement.used = dict(zip(DIMENSIONS, usage[0], strict=True))
        placement.hosts = _current_hosts(group.id, version, free)
        return placement
    else:
        quota = db.session.scalar(
            select(BaremetalGroupTenantQuota).where(
                BaremetalGroupTenantQuota.tenant_id == tenant.id,
                BaremetalGroupTenantQuota.group_id == group.id,
            )
        )
        placement = Placement(tenant, group, quota)
        if quota is None:
            return placement
        placement.limits = {d: quota.effective_limit(d) for d in DIMENSIONS}
    placement.used = _usage(tenant.id, group.id)
    placement.hosts = _hosts(group.id)
    return placement


def _effective_limit(absolute: int | None, percent: int | None, total: int) -> int | None:
    """BaremetalGroupTenantQuota.effective_limit over the columns of a row."""
    if absolute is not None:
        return absolute
    return None if percent is None else percent * total // 100


def explain_refusal(
    placement: Placement,
    nodes: Sequence[NodeSpec],
    strategy: str,
    constraints: Constraints,
    anti_affinity: str = DEFAULT_ANTI_AFFINITY,
    occupied: Mapping[int, int] | None = None,
) -> Plan | Refusal:
    """Plan again with the group's inactive servers counted, so that a refusal accounts
    for every server of the group."""
    placement.inactive = _inactive(placement.group.id)
    return plan(
        _request(nodes, strategy, constraints, anti_affinity, occupied),
        placement.hosts,
        placement.headroom(),
        inactive=placement.inactive,
    )


def _request(
    nodes: Sequence[NodeSpec],
    strategy: str,
    constraints: Constraints,
    anti_affinity: str = DEFAULT_ANTI_AFFINITY,
    occupied: Mapping[int, int] | None = None,
) -> PlacementRequest:
    return PlacementRequest(
        nodes=tuple(NodeDemand(n.role, n.resources) for n in nodes),
        strategy=strategy,
        constraints=constraints,
        anti_affinity=anti_affinity,
        occupied=occupied or {},
    )


def cluster_occupancy(cluster_id: int) -> dict[int, int]:
    """Where a cluster's live nodes are, as the members of its anti-affinity set: server id
    -> nodes there. A node being built, running or moving counts (a moving one on both its
    servers); one being deleted or failed does not — it is leaving or holds nothing."""
    members = Counter(
        db.session.scalars(
            select(VirtualMachine.baremetal_id).where(
                VirtualMachine.k8s_cluster_id == cluster_id,
                VirtualMachine.status.in_(("provisioning", "active", "migrating")),
                VirtualMachine.baremetal_id.is_not(None),
            )
        )
    )
    members.update(
        db.session.scalars(
            select(ProvisionJob.target_baremetal_id)
            .join(VirtualMachine, ProvisionJob.vm_id == VirtualMachine.id)
            .where(
                VirtualMachine.k8s_cluster_id == cluster_id,
                VirtualMachine.status == "migrating",
                ProvisionJob.action == "migrate",
                ProvisionJob.status.in_(("queued", "claimed")),
                ProvisionJob.target_baremetal_id.is_not(None),
            )
        )
    )
    return dict(members)


def preview(
    tenant: Tenant,
    group: BaremetalGroup,
    nodes: Sequence[NodeSpec],
    strategy: str = DEFAULT_STRATEGY,
    constraints: Constraints = NO_CONSTRAINTS,
    anti_affinity: str = DEFAULT_ANTI_AFFINITY,
    occupied: Mapping[int, int] | None = None,
) -> Preview:
    """The same decision as reserve(), without reserving anything."""
    placement = read_placement(tenant, group)
    if not placement.has_quota:
        result: Plan | Refusal = _no_quota(tenant, group)
    else:
        request = _request(nodes, strategy, constraints, anti_affinity, occupied)
        result = plan(request, placement.hosts, placement.headroom())
        if isinstance(result, Refusal):
            result = explain_refusal(
                placement, nodes, strategy, constraints, anti_affinity, occupied
            )
    shown = Preview(placement, list(nodes), result)
    if not shown.ok:
        shown.suggestions = suggestions(
            tenant, group, nodes, strategy, constraints, placement, anti_affinity
        )
    return shown


def suggestions(
    tenant: Tenant,
    group: BaremetalGroup,
    nodes: Sequence[NodeSpec],
    strategy: str,
    constraints: Constraints,
    placement: Placement,
    anti_affinity: str = DEFAULT_ANTI_AFFINITY,
) -> list[str]:
    """What would work instead: another group where the tenant has quota and the request
    fits, or the largest flavor that fits here."""
    found = []
    others = db.session.scalars(
        select(BaremetalGroupTenantQuota).where(
            BaremetalGroupTenantQuota.tenant_id == tenant.id,
            BaremetalGroupTenantQuota.group_id != group.id,
        )
    ).all()
    for quota in sorted(others, key=lambda q: q.group.name):
        other = read_placement(tenant, quota.group)
        result = plan(
            _request(nodes, strategy, Constraints(), anti_affinity), other.hosts, other.headroom()
        )
        if isinstance(result, Plan):
            found.append(_("The same request fits in group %(group)s.", group=quota.group.name))
            break
    if placement.has_quota and len({n.flavor.id for n in nodes}) == 1:
        role = nodes[0].role
        flavors = db.session.scalars(
            select(VirtualMachineSpecification)
            .where(VirtualMachineSpecification.is_active.is_(True))
            .order_by(
                VirtualMachineSpecification.cpu.desc(),
                VirtualMachineSpecification.memory.desc(),
                VirtualMachineSpecification.name,
            )
        ).all()
        for flavor in flavors:
            if flavor.id == nodes[0].flavor.id:
                continue
            trial = [NodeSpec(n.name, role, flavor) for n in nodes]
            result = plan(
                _request(trial, strategy, constraints, anti_affinity),
                placement.hosts,
                placement.headroom(),
            )
            if isinstance(result, Plan):
                found.append(_n(
                    # The count in the singular too: a language of one plural form (Chinese)
                    # says it in every case, and pybabel checks against the singular.
                    "%(num)s × %(flavor)s (%(cpu)s CPU, %(memory)s GiB) fits in group "
                    "%(group)s right now.",
                    "%(num)s × %(flavor)s (%(cpu)s CPU, %(memory)s GiB) fit in group %(group)s "
                    "right now.", len(nodes), flavor=flavor.name, cpu=flavor.cpu,
                    memory=flavor.memory, group=group.name))
                break
    return found


def reserve(
    tenant: Tenant,
    group: BaremetalGroup,
    nodes: Sequence[NodeSpec],
    *,
    user: User | None,
    strategy: str = DEFAULT_STRATEGY,
    constraints: Constraints = NO_CONSTRAINTS,
    cluster: K8sCluster | None = None,
    before_commit: Callable[[list[VirtualMachine]], None] | None = None,
    reuse: Sequence[int] = (),
    anti_affinity: str = DEFAULT_ANTI_AFFINITY,
    occupied: Mapping[int, int] | None = None,
) -> list[VirtualMachine]:
    """Place and create every node, all or nothing, in one transaction; raise
    PlacementRefused otherwise. The caller's session must hold no pending changes: this
    function owns the transaction (``cluster``, if given, is added inside it, and
    ``before_commit`` may add more rows that must commit with the VMs). ``reuse`` gives
    the ids of existing VMs (failed ones being retried), one per node, to place again
    instead of creating new rows. ``anti_affinity`` and ``occupied`` are the core's (SPEC
    8.2); for an existing ``cluster`` its live nodes join ``occupied``, read under the
    cluster's lock so that two scale-ups cannot both miss each other's nodes."""
    session = db.session()
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("reserve() owns the transaction: commit or roll back first")
    new_cluster = cluster is not None and cluster.id is None

    def once() -> list[VirtualMachine] | None:
        vms = _reserve_once(
            tenant, group, nodes, user, strategy, constraints, cluster, reuse, new_cluster,
            anti_affinity, occupied,
            # Nothing else must commit with the VMs: their last round trip may commit.
            may_commit=before_commit is None and cluster is None,
        )
        if vms is not None and before_commit is not None:
            before_commit(vms)
        return vms

    try:
        vms = retried_transaction(once, PlacementRefused, lambda: PlacementRefused(Refusal(
            "conflict",
            _("The group is too busy right now: other requests kept taking the chosen servers. "
              "Try again in a moment."),
            {"attempts": MAX_ATTEMPTS},
        )))
    except PlacementRefused as refused:
        placement_decided.send(None, outcome=refused.refusal.code, nodes=len(nodes))
        raise
    placement_decided.send(None, outcome="placed", nodes=len(vms))
    return vms


T = TypeVar("T")


def retried_transaction(
    once: Callable[[], T | None],
    refused: type[Exception],
    too_busy: Callable[[], Exception],
    attempts: int = MAX_ATTEMPTS,
) -> T:
    """Run ``once`` as one write transaction and commit what it did. ``once`` returns None
    when another request took what it had chosen (its rows are rolled back and it plans
    again); ``refused`` exceptions roll back and propagate; deadlocks and serialisation
    failures are retried. After ``attempts`` lost races, ``too_busy()`` is raised."""
    for attempt in range(attempts):
        # On PostgreSQL a transaction that only read so far is fine to continue: every
        # decision reads under row locks. On SQLite this takes the write lock.
        begin_write()
        try:
            result = once()
            if result is None:
                db.session.rollback()
                continue
            db.session.commit()
            return result
        except refused:
            db.session.rollback()
            raise
        except Exception as error:
            db.session.rollback()
            if not _is_transient(error) or attempt == attempts - 1:
                raise
    raise too_busy()


def _is_transient(error: Exception) -> bool:
    """A deadlock, a serialisation failure, a lock not granted in time, SQLite's busy
    database: as SQLAlchemy wraps them, or raised by the driver itself (the hot path's
    statements run on the driver's cursor, portal/scheduler/statements.py)."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    if not isinstance(orig, db.engine.dialect.dbapi.OperationalError):
        return False
    code = getattr(orig, "sqlstate", None)
    return code in ("40P01", "40001", "55P03") or "database is locked" in str(orig)


def _reserve_once(tenant, group, nodes, user, strategy, constraints, cluster, reuse,
                  new_cluster=False, anti_affinity=DEFAULT_ANTI_AFFINITY, occupied=None,
                  may_commit=False):
    """One attempt. Returns the VMs, or None when a chosen server lost its room to another
    request meanwhile (the caller rolls back and plans again). may_commit: the attempt may
    commit its own transaction with its last statements (PostgreSQL; the caller's commit
    then has nothing left to do)."""
    placement = read_placement(tenant, group, lock=True)
    if not placement.has_quota:
        raise PlacementRefused(_no_quota(tenant, group))
    if cluster is not None and not new_cluster:
        # Lock order: quota, cluster, VMs, servers, group (as the agents' answers do).
        status = db.session.scalar(
            select(K8sCluster.status).where(K8sCluster.id == cluster.id).with_for_update()
        )
        if status in ("deleting", "deleted"):
            raise PlacementRefused(Refusal(
                "conflict", _("Cluster %(cluster)s is %(status)s: nothing more is placed in it.",
                              cluster=cluster.name, status=enum_label("status", status)), {}
            ))
        occupied = dict(Counter(occupied or {}) + Counter(cluster_occupancy(cluster.id)))
    request = _request(nodes, strategy, constraints, anti_affinity, occupied)
    result = plan(request, placement.hosts, placement.headroom())
    if isinstance(result, Refusal):
        result = explain_refusal(placement, nodes, strategy, constraints, anti_affinity, occupied)
    if isinstance(result, Refusal):
        raise PlacementRefused(
            result,
            suggestions(tenant, group, nodes, strategy, constraints, placement, anti_affinity),
        )
    chosen = list(zip(nodes, result.assignments, strict=True))
    host_names = {i: placement.host_by_id(i).name for i in set(result.assignments)}

    # Rows first, server locks last: everything written before the locks runs in parallel
    # with other reservations; only the re-validation and the counters are serialised.
    if new_cluster:
        # An earlier attempt's rolled-back INSERT must not lend the new cluster its id.
        cluster.id = None
    if cluster is not None and cluster not in db.session:
        db.session.add(cluster)
        db.session.flush()
    rows = [
        {
            "baremetal_id": host_id, "spec_id": node.flavor.id, "cpu": node.flavor.cpu,
            "memory": node.flavor.memory, "storage": node.flavor.storage,
            "status": "provisioning", "status_message": "",
        }
        for node, host_id in chosen
    ]
    # Statements, not the unit of work (portal/scheduler/statements.py): one INSERT per new
    # VM (it returns the id), then one for all the jobs and one for all the audit events.
    retried: list[VirtualMachine] = []
    if reuse:
        for i, placed in enumerate(rows):
            # error → provisioning (SPEC 8.1), guarded like every transition: a VM deleted
            # or retried by someone else meanwhile is left alone.
            vm = db.session.get(VirtualMachine, reuse[i])
            moved = db.session.execute(
                update(VirtualMachine)
                .where(VirtualMachine.id == vm.id, VirtualMachine.status == "error")
                .values(updated_at=utcnow(), **placed)
                .execution_options(synchronize_session=False)
            ).rowcount
            if moved != 1:
                raise PlacementRefused(Refusal(
                    "conflict",
                    _("VM %(vm)s is no longer failed (deleted or retried meanwhile): "
                      "nothing to retry.", vm=vm.name),
                    {},
                ))
            for name, value in placed.items():
                set_committed_value(vm, name, value)
            retried.append(vm)
        written = [(vm.id, vm.name) for vm in retried]
    else:
        for node, placed in zip(nodes, rows, strict=True):
            placed.update(
                name=node.name,
                tenant_id=tenant.id,
                role=node.role,
                # By id, not through the relationship: a rolled-back attempt's nodes must
                # not stay in the cluster's collection and come back at the next flush.
                k8s_cluster_id=cluster.id if cluster is not None and node.cluster_member else None,
                requested_by=user.id if user is not None else None,
            )
        inserted = statements.together([(statements.INSERT_VM, row) for row in rows])
        written = [(ids[0][0], row["name"]) for ids, row in zip(inserted, rows, strict=True)]
    actor = _actor(user)
    statements.together([
        *((statements.INSERT_JOB, {"vm_id": i, "action": "create"}) for i, _ in written),
        *((statements.INSERT_AUDIT, {
            "user_id": actor.id if actor is not None else None,
            "username": actor.username if actor is not None else "system",
            "action": "retry" if reuse else "place",
            "object_type": "virtual_machine",
            "object_id": vm_id,
            "object_label": name[:255],
            "changes": {
                "baremetal": {"from": None, "to": host_names[host_id]},
                "status": {"from": None, "to": "provisioning"},
                "flavor": {"from": None, "to": node.flavor.name},
            },
        }) for (vm_id, name), (node, host_id) in zip(written, chosen, strict=True)),
    ])

    demand_by_host: dict[int, Resources] = {}
    for node, host_id in chosen:
        demand_by_host[host_id] = demand_by_host.get(host_id, Resources(0, 0, 0)) + node.resources
    # One guarded UPDATE per server, in id order: it takes the row lock (FOR NO KEY UPDATE,
    # which does not wait for the KEY SHARE locks that inserting VMs takes on their servers),
    # re-checks against the row as committed by whoever held the lock before — still active,
    # still in the group, room in every dimension — and moves the counters, all in one round
    # trip. No row changed: another request took the room meanwhile; plan again.
    # The group's row is shared by every reservation in the group: its lock comes last
    # and is held only until the commit. Servers and group go in one round trip; when a
    # server lost its room the group's update is rolled back with the rest.
    servers = [{"server": host_id, "group": group.id, **demand.as_dict()}
               for host_id, demand in sorted(demand_by_host.items())]
    group_demand = {"group": group.id, **total_demand(nodes).as_dict()}
    if may_commit and statements.pipelined():
        # The same, and COMMIT with them: the group's lock is not held across a round trip.
        if not statements.take_and_commit(servers, group_demand):
            return None
    else:
        *taken, group_taken = statements.together([
            *((statements.TAKE_FROM_SERVER, params) for params in servers),
            (statements.TAKE_FROM_GROUP, group_demand),
        ])
        if any(count != 1 for count in taken):
            return None
        if group_taken != 1:
            raise statements.drifted(group.id)
    if reuse:
        return retried
    # Only now, with the attempt through, do the new rows become session objects: a lost
    # attempt leaves none behind whose id SQLite could hand out again.
    return [
        _as_loaded(VirtualMachine(id=vm_id, **row))
        for (vm_id, _), row in zip(written, rows, strict=True)
    ]


def _as_loaded(vm: VirtualMachine) -> VirtualMachine:
    """A VM whose row is written already, in the session as if loaded from it (no flush)."""
    make_transient_to_detached(vm)
    db.session.add(vm)
    return vm


def _actor(user: User | None) -> User | None:
    """Who the audit trail names: the given user, else the one logged in (as record())."""
    if user is None and has_request_context() and current_user.is_authenticated:
        return current_user
    return user


def adjust_capacity(
    server_id: int | None, group_id: int | None, amount: Resources, sign: int
) -> None:
    """Move a server's and/or a group's free counters by ``sign × amount``, atomically in
    SQL (no read-modify-write), in the caller's transaction."""
    if server_id is not None:
        values = {
            f"available_{d}": getattr(Baremetal, f"available_{d}") + sign * getattr(amount, d)
            for d in DIMENSIONS
        }
        db.session.execute(update(Baremetal).where(Baremetal.id == server_id).values(**values))
    if group_id is not None:
        group_values = {
            f"available_{d}": getattr(BaremetalGroup, f"available_{d}") + sign * getattr(amount, d)
            for d in DIMENSIONS
        }
        db.session.execute(
            update(BaremetalGroup).where(BaremetalGroup.id == group_id).values(**group_values)
        )


def release(vm: VirtualMachine) -> None:
    """Give a VM's resources back to its server and group (caller's transaction)."""
    if vm.baremetal_id is None:
        return
    group_id = db.session.scalar(select(Baremetal.group_id).where(Baremetal.id == vm.baremetal_id))
    adjust_capacity(vm.baremetal_id, group_id, Resources(vm.cpu, vm.memory, vm.storage), sign=1)
