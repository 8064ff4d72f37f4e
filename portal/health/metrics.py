"""The portal's own metrics in Prometheus' exposition format (SPEC 8.4), prefix ``portal_``,
base units (seconds), and labels drawn from small fixed sets only — a route rule, never an
id or a name, so that the number of series does not grow with the estate.

Counted as they happen: requests (by route rule, method and status) with their duration,
and reservations (placed, or refused by code; portal.signals.placement_decided). Read at
scrape time from the database: the provisioning queue and the agents working it.

Under gunicorn every worker counts in its own process. With PROMETHEUS_MULTIPROC_DIR set
(deploy/gunicorn.conf.py sets it) prometheus_client keeps each worker's values in a file
of that directory and a scrape, answered by any worker, adds them all up. The gunicorn
configuration names each worker's files after a reusable worker slot rather than its pid,
so a recycled worker continues its predecessor's counts in the same files instead of
leaving a new set behind (client_python#568: files pile up and scrapes slow down).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.exc import SQLAlchemyError

from portal.extensions import db
from portal.health import service
from portal.models import utcnow

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"
# Up to 25 s: a wait_for read of the API holds a request up to 20 s by design.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0)

REQUESTS = Counter(
    "portal_http_requests", "HTTP requests answered, by route rule, method and status.",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "portal_http_request_duration_seconds",
    "Time from the start of a request to its response, by route rule and method.",
    ["route", "method"], buckets=DURATION_BUCKETS,
)
PLACEMENTS = Counter("portal_placements", "Reservations that placed their VMs.")
PLACED_VMS = Counter("portal_placed_vms", "VMs placed by reservations (a cluster counts "
                                          "each node).")
REFUSALS = Counter("portal_placement_refusals", "Reservations refused, by refusal code.",
                   ["code"])


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    route = route or UNMATCHED
    method = method if method in METHODS else "other"
    REQUESTS.labels(route, method, str(status)).inc()
    DURATION.labels(route, method).observe(seconds)


def placement_decided(sender: object, outcome: str, nodes: int = 0, **_: object) -> None:
    """Receiver of portal.signals.placement_decided (sent by reserve())."""
    if outcome == "placed":
        PLACEMENTS.inc()
        PLACED_VMS.inc(nodes)
    else:
        REFUSALS.labels(outcome).inc()


def _timestamp(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


class DatabaseCollector:
    """The queue and the agents, read when Prometheus scrapes (two short queries), and
    whether the database answered them."""

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("portal_build_info", "The portal's version; always 1.",
                                 labels=["version"])
        info.add_metric([service.portal_version()], 1)
        yield info
        up = GaugeMetricFamily("portal_database_up",
                               "1 when the database answered this scrape's queries, else 0.")
        now = utcnow()
        try:
            queue = service.queue_stats(now)
            agents = service.agents_seen(now)
        except SQLAlchemyError:
            db.session.remove()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "portal_provision_jobs", "Live provisioning jobs: queued; claimed by an agent "
            "whose lease runs; expired (claimed, lease run out, claimable again).",
            labels=["state"])
        for state, count in (("queued", queue.queued), ("claimed", queue.claimed),
                             ("expired", queue.expired)):
            jobs.add_metric([state], count)
        yield jobs
        yield GaugeMetricFamily(
            "portal_provision_job_oldest_queued_age_seconds",
            "Age of the oldest queued provisioning job (0 when none is queued).",
            value=queue.oldest_queued_age(now) or 0.0)
        yield GaugeMetricFamily(
            "portal_agents_seen", "Provisioning agents seen in the last "
            f"{int(service.AGENT_WINDOW.total_seconds() // 60)} minutes.", value=len(agents))
        if agents:
            yield GaugeMetricFamily(
                "portal_agent_last_seen_timestamp_seconds",
                "When the most recently seen provisioning agent was last seen (Unix time).",
                value=_timestamp(max(agents.values())))


class _Scrape:
    """What one scrape reads: the counted metrics and the database's."""

    def __init__(self, sources: Iterable[object]) -> None:
        self.sources = tuple(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()  # type: ignore[attr-defined]


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> bytes:
    """The text a scrape gets: every worker's counts when several processes serve (the
    multiprocess directory), else this process's."""
    counted = MultiProcessCollector(None) if multiprocess_dir() else REGISTRY
    return generate_latest(_Scrape((counted, DatabaseCollector())))  # type: ignore[arg-type]
