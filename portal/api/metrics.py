"""Measured utilisation (SPEC 8.4): agents POST samples, anyone who may read an object GETs
its series — from the embedded store, or Prometheus where the site has one."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Literal

from flask import current_app
from pydantic import Field, model_validator
from sqlalchemy import select

from portal.api import api
from portal.api.core import OPERATORS_ONLY, Access
from portal.api.problems import VALIDATION_ERROR, ApiError, not_found, unavailable
from portal.api.schemas import INT32, Id, Input, Output, Query, UtcDatetime
from portal.auth.access import can, visible_only
from portal.extensions import db
from portal.i18n import _
from portal.metrics import ingest
from portal.metrics import query as metrics_query
from portal.metrics.ingest import MAX_SAMPLES, BatchInvalid, parse_ts
from portal.metrics.targets import targets
from portal.models import (
    ALL_METRICS,
    METRIC_OBJECT_TYPES,
    METRICS_BY_TYPE,
    Baremetal,
    K8sCluster,
    VirtualMachine,
    utcnow,
)
from portal.provisioning.jobs import ClaimScope

TAGS = ("metrics",)
ObjectType = Literal[METRIC_OBJECT_TYPES]  # type: ignore[valid-type]
Metric = Literal[ALL_METRICS]  # type: ignore[valid-type]
METRICS_HELP = "; ".join(f"{t}: {', '.join(m)}" for t, m in METRICS_BY_TYPE.items()
                         if t != "vm").replace("baremetal:", "baremetal and vm:")
DEFAULT_RANGE = timedelta(hours=1)
MAX_RANGE = timedelta(days=366)


class MetricSampleIn(Input):
    object_type: ObjectType
    object_id: Id
    ts: str = Field(max_length=64, description=(
        "When it was measured, ISO-8601 (`2026-01-31T08:00:00Z`; without an offset: UTC); "
        "at most 5 minutes ahead of the portal's clock, at most 48 hours old."))
    values: dict[str, float] = Field(min_length=1, max_length=len(ALL_METRICS), description=(
        f"Metric → value ({METRICS_HELP}). cpu_util is a fraction 0–1; the others are "
        "GiB or counts; none negative, NaN or infinite."))


class MetricsIn(Input):
    agent: str | None = Field(None, min_length=1, max_length=255, description=(
        "The reporting agent's name: recorded as seen (GET /status, the dashboard)."))
    driver: str | None = Field(None, min_length=1, max_length=32, description=(
        "The agent's driver (simulate, libvirt, …), shown with it."))
    samples: list[MetricSampleIn] = Field(max_length=MAX_SAMPLES, description=(
        f"At most {MAX_SAMPLES:,} samples. One bad sample refuses the whole batch (422, "
        "`errors` keyed `samples.<index>.<field>`), and nothing is written. Two samples "
        "of one object at one time: the later wins, metric by metric."))


class MetricsAccepted(Output):
    accepted: int = Field(ge=0, description="Samples written (duplicates counted once).")


@api.operation("POST", "/metrics", summary="Report measured utilisation (agents)", tags=TAGS,
               access=OPERATORS_ONLY, body=MetricsIn, response=MetricsAccepted,
               idempotent=False)
def post_metrics(body: MetricsIn):
    """A batch of samples ``{"agent"?, "driver"?, "samples": [{"object_type",
    "object_id", "ts", "values": {...}}]}`` — an object, not a bare list. Every sample is
    checked (object type, metric names, ranges, time, that the object exists) before
    anything is written; a batch with a bad one is refused whole. Re-sending a batch is
    harmless (upsert)."""
    samples = [sample.model_dump() for sample in body.samples]
    try:
        accepted = ingest.ingest(samples, agent=body.agent, driver=body.driver)
    except BatchInvalid as invalid:
        raise ApiError(VALIDATION_ERROR, str(invalid), errors=invalid.errors) from None
    return {"accepted": accepted}


class TargetsQuery(Query):
    region: str | list[str] | None = Field(None, max_length=64, description="Repeatable.")
    dc: str | list[str] | None = Field(None, max_length=64, description="Repeatable.")
    group: str | list[str] | None = Field(None, max_length=128, description=(
        "A server group's name; repeatable."))
    limit: int = Field(5000, ge=1, le=50_000)
    offset: int = Field(0, ge=0, le=INT32)


class TargetOut(Output):
    object_type: ObjectType
    object_id: int
    name: str
    cpu: int
    memory: int
    storage: int
    hypervisor_uri: str | None = None
    baremetal_id: int | None = None
    nodes_total: int | None = None
    nodes_ready: int | None = None


class TargetPage(Output):
    items: list[TargetOut]
    total: int


def _listed(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@api.operation("GET", "/metrics/targets", summary="What an agent measures (agents)",
               tags=TAGS, access=OPERATORS_ONLY, query=TargetsQuery, response=TargetPage)
def metric_targets(query: TargetsQuery):
    """The servers, running VMs and clusters on servers of the scope (regions, DCs,
    groups — as for claiming jobs; none: everything), with what the portal allocated to
    each (a server: its total; a VM: its flavor; a cluster: the sum of its nodes), and for
    VMs the hypervisor of their server. Ordered by type and id; page with limit/offset."""
    scope = ClaimScope(_listed(query.region), _listed(query.dc), _listed(query.group))
    found = targets(scope)
    page = found[query.offset:query.offset + query.limit]
    return {"items": [asdict(t) for t in page], "total": len(found)}


class MetricsQuery(Query):
    object_type: ObjectType
    object_id: int = Field(ge=1, le=INT32)
    metric: Metric | list[Metric] | None = Field(None, description=(
        "Repeatable; default: every metric of the object type."))
    from_: str | None = Field(None, alias="from", max_length=64, description=(
        "ISO-8601; default: an hour before `to`."))
    to: str | None = Field(None, max_length=64, description="ISO-8601; default: now.")
    step: int | None = Field(None, ge=1, le=366 * 86400, description=(
        "Seconds per point: averages per bucket. Default: the stored resolution — raw "
        "samples for ranges up to 48 hours, 15-minute rollups up to 30 days, daily "
        "beyond."))

    @model_validator(mode="after")
    def _times(self):
        for name in ("from_", "to"):
            value = getattr(self, name)
            if value is not None:
                try:
                    parse_ts(value)
                except ValueError as error:
                    raise ValueError(f"{name.rstrip('_')}: {error}") from None
        return self


class Point(Output):
    t: UtcDatetime
    v: float


class MetricSeries(Output):
    metric: str
    points: list[Point]


class MetricsOut(Output):
    object_type: str
    object_id: int
    source: Literal["embedded", "prometheus"]
    start: UtcDatetime = Field(description="The range read (`from`).")
    end: UtcDatetime = Field(description="The range read (`to`).")
    step: int | None
    series: list[MetricSeries] = Field(description=(
        "One per metric asked for, in that order; a metric without samples in the range "
        "has no points (no data — not zero)."))


def _readable(object_type: str, object_id: int) -> None:
    """404 unless the caller may read the object: servers are staff's; VMs and clusters
    their tenants' (and staff's)."""
    if object_type == "baremetal":
        if not can("baremetals") or db.session.get(Baremetal, object_id) is None:
            raise not_found(_("No server %(id)s.", id=object_id))
        return
    model = VirtualMachine if object_type == "vm" else K8sCluster
    if db.session.scalar(visible_only(select(model.id).where(model.id == object_id),
                                      model)) is None:
        raise not_found(_("No VM %(id)s.", id=object_id) if object_type == "vm"
                        else _("No cluster %(id)s.", id=object_id))


@api.operation("GET", "/metrics", summary="A measured series", tags=TAGS,
               access=Access("vms"), query=MetricsQuery, response=MetricsOut,
               errors=(404, 503))
def get_metrics(query: MetricsQuery):
    """Points of each metric for one object in [from, to]. A VM or cluster of another
    tenant (for a tenant admin or a tenant-restricted token) is 404, as is a server for
    anyone but staff. 503 (with the reason) when the source — the store, or Prometheus —
    cannot answer."""
    wanted = query.metric
    metrics = (list(METRICS_BY_TYPE[query.object_type]) if wanted is None
               else [wanted] if isinstance(wanted, str) else list(dict.fromkeys(wanted)))
    unknown = [m for m in metrics if m not in METRICS_BY_TYPE[query.object_type]]
    if unknown:
        raise ApiError(VALIDATION_ERROR, _("A %(type)s has no metric %(metric)s.",
                                                 type=query.object_type, metric=unknown[0]),
                       errors={"query.metric": _("One of %(metrics)s.", metrics=", ".join(
                           METRICS_BY_TYPE[query.object_type]))})
    end = parse_ts(query.to) if query.to else utcnow()
    start = parse_ts(query.from_) if query.from_ else end - DEFAULT_RANGE
    if start > end:
        raise ApiError(VALIDATION_ERROR, _("The range ends before it starts."),
                       errors={"query.from": _("Before `to`.")})
    if end - start > MAX_RANGE:
        raise ApiError(VALIDATION_ERROR, _("At most 366 days at a time."),
                       errors={"query.from": _("At most 366 days before `to`.")})
    _readable(query.object_type, query.object_id)
    try:
        found = metrics_query.series(query.object_type, [query.object_id], metrics, start,
                                     end, query.step)
    except metrics_query.SourceUnavailable as error:
        return unavailable(str(error))
    finally:
        db.session.rollback()  # a read: no transaction left open
    prometheus = bool(current_app.config.get("PORTAL_PROMETHEUS_URL"))
    return {
        "object_type": query.object_type, "object_id": query.object_id,
        "source": "prometheus" if prometheus else "embedded",
        "start": start, "end": end, "step": query.step,
        "series": [{"metric": m, "points": [{"t": t, "v": v} for t, v in
                                            found.get((query.object_id, m), [])]}
                   for m in metrics],
    }
