"""The utilisation panel of the server, VM, cluster, group and rack pages: measured use
(portal.metrics.query, or a group's or a rack's servers combined by the store) beside
what the portal allocated, as charts (portal.metrics.chart) over a chosen range.

Views call ``utilisation_panel(kind, obj, request.args.get("range"))`` and the page includes
``templates/metrics/_chart.html`` (``page_panel`` does both for the page being requested).
A constant number of statements whatever the size of the estate: one for the allocation,
one or two for the series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup
from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.i18n import _, _l
from portal.metrics import chart as charts
from portal.metrics import query
from portal.metrics.query import SourceUnavailable
from portal.models import HOLDING_STATUSES, Baremetal, VirtualMachine
from portal.models.base import utcnow

# ?range= key -> (span, link label), in the order the links are offered.
RANGES: dict[str, tuple[timedelta, object]] = {
    "1h": (timedelta(hours=1), _l("1 hour")),
    "24h": (timedelta(hours=24), _l("24 hours")),
    "7d": (timedelta(days=7), _l("7 days")),
    "30d": (timedelta(days=30), _l("30 days")),
}
DEFAULT_RANGE = "24h"
MACHINE = ("cpu_util", "memory_used_gib", "storage_used_gib")
CLUSTER = ("nodes_ready", "pods_pending", "cpu_requested", "memory_requested_gib")


@dataclass(frozen=True)
class RangeLink:
    key: str
    label: str
    current: bool


@dataclass(frozen=True)
class PanelChart:
    chart: charts.Chart
    svg: Markup
    rows: list
    legend_allocated: bool
    legend_capacity: bool

    @property
    def title(self) -> str:
        return self.chart.title

    @property
    def unit(self) -> str:
        return self.chart.unit

    def value(self, number: float) -> str:
        return charts.number(number, self.chart.unit)


@dataclass(frozen=True)
class Panel:
    kind: str
    range: str
    ranges: list[RangeLink]
    charts: list[PanelChart]
    reason: str | None
    aggregate: bool


def chosen_range(value: str | None) -> str:
    """The range asked for in ``?range=``; anything unknown is the default."""
    return value if value in RANGES else DEFAULT_RANGE


def step_for(span: timedelta) -> int:
    """Seconds per point: about one point per chart slice."""
    return max(60, int(span.total_seconds() // charts.MAX_POINTS))


# ---- measured series ------------------------------------------------------------------------


def _aggregate_series(kind: str, obj_id: int, condition, start: datetime, end: datetime,
                      step: int) -> dict[str, list[tuple[datetime, float]]]:
    if not _prometheus_configured():
        from portal.metrics import store

        try:
            return store.aggregate_series(kind, obj_id, start, end, step)
        except SQLAlchemyError as error:
            db.session.rollback()
            raise SourceUnavailable(
                _("The metrics store failed: %(error)s", error=type(error).__name__)
            ) from error
    # Prometheus: the servers' series, combined here per timestamp (its steps align).
    ids = list(db.session.scalars(select(Baremetal.id).where(condition)))
    per_server = query.series("baremetal", ids, MACHINE, start, end, step)
    out: dict[str, list[tuple[datetime, float]]] = {}
    for metric in MACHINE:
        combined: dict[datetime, list[float]] = {}
        for (_id, name), points in per_server.items():
            if name == metric:
                for at, value in points:
                    combined.setdefault(at, []).append(value)
        reduce = (lambda v: sum(v) / len(v)) if metric == "cpu_util" else sum
        out[metric] = [(at, reduce(v)) for at, v in sorted(combined.items())]
    return out


def _prometheus_configured() -> bool:
    from flask import current_app

    return bool(current_app.config.get("PORTAL_PROMETHEUS_URL"))


# ---- allocation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    cpu_share: float | None  # allocated vCPUs over cores, in % (None: not meaningful)
    memory: float | None
    memory_total: float | None
    storage: float | None
    storage_total: float | None


def _server_allocation(condition) -> Allocation:
    cpu, cpu_free, mem, mem_free, disk, disk_free = db.session.execute(
        select(*(func.coalesce(func.sum(c), 0) for c in (
            Baremetal.total_cpu, Baremetal.available_cpu, Baremetal.total_memory,
            Baremetal.available_memory, Baremetal.total_storage, Baremetal.available_storage,
        ))).where(condition)
    ).one()
    return Allocation((cpu - cpu_free) * 100.0 / cpu if cpu else None,
                      float(mem - mem_free), float(mem), float(disk - disk_free), float(disk))


def _machine_charts(series: dict[str, list], allocation: Allocation, start, end, reason,
                    ident: str, cpu_capacity: float | None = None) -> list[charts.Chart]:
    common = {"start": start, "end": end, "reason": reason}
    return [
        charts.Chart("cpu_util", _("CPU"), "%", points=series.get("cpu_util", ()),
                     scale=100.0, allocated=allocation.cpu_share, capacity=cpu_capacity,
                     allocated_label=_("Allocated vCPUs"), ident=f"{ident}-cpu", **common),
        charts.Chart("memory_used_gib", _("Memory"), "GiB",
                     points=series.get("memory_used_gib", ()), allocated=allocation.memory,
                     capacity=allocation.memory_total, ident=f"{ident}-memory", **common),
        charts.Chart("storage_used_gib", _("Storage"), "GiB",
                     points=series.get("storage_used_gib", ()), allocated=allocation.storage,
                     capacity=allocation.storage_total, ident=f"{ident}-storage", **common),
    ]


def _one(object_type: str, object_id: int, metrics: Sequence[str], start, end, step):
    # The embedded store's own resolution for the range (raw within 48 h, 15-minute
    # rollups within 30 days) is at most a few thousand points, which the chart thins;
    # Prometheus computes at the step asked for.
    step = step if _prometheus_configured() else None
    found = query.series(object_type, [object_id], metrics, start, end, step)
    return {metric: found.get((object_id, metric), []) for metric in metrics}


def _measured(fetch):
    try:
        return fetch(), None
    except SourceUnavailable as unavailable:
        return {}, str(unavailable) or _("the metrics source did not answer")


def utilisation_panel(kind: str, obj, range_key: str | None = None,
                      now: datetime | None = None) -> Panel:
    """The panel for a "baremetal", "vm", "cluster", "group" or "rack" page."""
    key = chosen_range(range_key)
    span = RANGES[key][0]
    end = now or utcnow()
    start = end - span
    step = step_for(span)
    ident = f"{kind}-{obj.id}"
    if kind == "baremetal":
        series, reason = _measured(lambda: _one("baremetal", obj.id, MACHINE, start, end, step))
        built = _machine_charts(series, _server_allocation(Baremetal.id == obj.id), start, end,
                                reason, ident)
    elif kind in ("group", "rack"):
        condition = (Baremetal.group_id if kind == "group" else Baremetal.rack_id) == obj.id
        series, reason = _measured(
            lambda: _aggregate_series(kind, obj.id, condition, start, end, step))
        built = _machine_charts(series, _server_allocation(condition), start, end, reason,
                                ident)
    elif kind == "vm":
        series, reason = _measured(lambda: _one("vm", obj.id, MACHINE, start, end, step))
        # A VM's CPU is measured against its own vCPUs: 100 % is all of them.
        built = _machine_charts(
            series, Allocation(None, float(obj.memory), None, float(obj.storage), None),
            start, end, reason, ident, cpu_capacity=100.0)
    elif kind == "cluster":
        series, reason = _measured(lambda: _one("cluster", obj.id, CLUSTER, start, end, step))
        built = _cluster_charts(obj, series, start, end, reason, ident)
    elif kind == "policy":
        built, reason = _policy_charts(obj, start, end, step, ident)
    else:
        raise ValueError(f"unknown utilisation panel {kind!r}")
    return Panel(
        kind=kind, range=key,
        ranges=[RangeLink(k, str(RANGES[k][1]), k == key) for k in RANGES],
        charts=[PanelChart(c, charts.svg(c), charts.table_rows(c), c.allocated is not None,
                           c.capacity is not None) for c in built],
        reason=reason, aggregate=kind in ("group", "rack"),
    )


def _cluster_charts(cluster, series, start, end, reason, ident) -> list[charts.Chart]:
    nodes, cpu, memory = db.session.execute(
        select(func.count(VirtualMachine.id), func.coalesce(func.sum(VirtualMachine.cpu), 0),
               func.coalesce(func.sum(VirtualMachine.memory), 0))
        .where(and_(VirtualMachine.k8s_cluster_id == cluster.id,
                    VirtualMachine.status.in_(HOLDING_STATUSES)))
    ).one()
    common = {"start": start, "end": end, "reason": reason}
    return [
        charts.Chart("nodes_ready", _("Nodes ready"), _("nodes"),
                     points=series.get("nodes_ready", ()), capacity=float(nodes),
                     ident=f"{ident}-nodes", **common),
        charts.Chart("pods_pending", _("Pending pods"), _("pods"),
                     points=series.get("pods_pending", ()), ident=f"{ident}-pending", **common),
        charts.Chart("cpu_requested", _("CPU requested"), _("cores"),
                     points=series.get("cpu_requested", ()), allocated=float(cpu),
                     allocated_label=_("Allocated vCPUs"), ident=f"{ident}-cpu", **common),
        charts.Chart("memory_requested_gib", _("Memory requested"), "GiB",
                     points=series.get("memory_requested_gib", ()), allocated=float(memory),
                     ident=f"{ident}-memory", **common),
    ]


POLICY_UNITS = {"cpu_util": ("%", 100.0), "memory_used_gib": ("GiB", 1.0),
                "storage_used_gib": ("GiB", 1.0)}


def _members_mean(vm_ids: list[int], metric: str, start, end, step: int
                  ) -> list[tuple[datetime, float]]:
    """The members' mean of ``metric`` per step-long bucket: what the policy compares with
    its target (each member's samples averaged in the bucket first, then across members)."""
    if not vm_ids:
        return []
    found = query.series("vm", vm_ids, [metric], start, end,
                         step if _prometheus_configured() else None)
    buckets: dict[int, dict[int, list[float]]] = {}
    for (vm_id, _metric), points in found.items():
        for at, value in points:
            index = int((at - start).total_seconds() // step)
            buckets.setdefault(index, {}).setdefault(vm_id, []).append(value)
    return [(start + timedelta(seconds=index * step),
             sum(sum(v) / len(v) for v in members.values()) / len(members))
            for index, members in sorted(buckets.items())]


def _policy_charts(policy, start, end, step, ident) -> tuple[list[charts.Chart], str | None]:
    """A scaling policy's page: the series it decides on, with its target as a line — a VM
    group's members' mean of the policy's metric; a worker pool's pending pods."""
    from portal.models import VirtualMachine, VmGroupMember
    from portal.models.autoscaling import MEMBER_STATUSES

    common = {"start": start, "end": end}
    if policy.target_type == "cluster":
        series, reason = _measured(
            lambda: _one("cluster", policy.k8s_cluster_id, ("pods_pending", "nodes_ready"),
                         start, end, step))
        return [charts.Chart("pods_pending", _("Pending pods"), _("pods"),
                             points=series.get("pods_pending", ()), reason=reason,
                             ident=f"{ident}-pending", **common),
                charts.Chart("nodes_ready", _("Nodes ready"), _("nodes"),
                             points=series.get("nodes_ready", ()), reason=reason,
                             ident=f"{ident}-nodes", **common)], reason
    vm_ids = list(db.session.scalars(
        select(VmGroupMember.vm_id).join(VirtualMachine, VirtualMachine.id == VmGroupMember.vm_id)
        .where(VmGroupMember.vm_group_id == policy.vm_group_id,
               VirtualMachine.status.in_(MEMBER_STATUSES))))
    unit, scale = POLICY_UNITS.get(policy.metric, ("", 1.0))
    points, reason = _measured(lambda: _members_mean(vm_ids, policy.metric, start, end, step))
    return [charts.Chart(policy.metric, _("Members' mean %(metric)s", metric=policy.metric),
                         unit, points=points or (), scale=scale,
                         allocated=float(policy.target) * scale, allocated_label=_("Target value"),
                         allocated_is_target=True,
                         reason=reason, ident=f"{ident}-metric", **common)], reason


def page_panel(kind: str, obj) -> Panel | None:
    """The panel for the page being requested (its ``?range=``); None for an htmx fragment
    of the page, which does not show it."""
    from flask import request

    from portal.web import is_partial

    if is_partial():
        return None
    return utilisation_panel(kind, obj, request.args.get("range"))
