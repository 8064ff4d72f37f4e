"""Measured utilisation (SPEC 8.4): the embedded metrics store and the agents' presence.

Designed for write volume (dataset L reporting every minute is ~1,800 samples/s): one wide
row per object and timestamp — a nullable column per metric — so that a sample of three
values is one row and one index entry, not three. The primary key (object_type,
object_id, ts) is the only b-tree (no surrogate id): it serves the upsert of a duplicate
sample and every chart's range read. Rows arrive in time order, so on PostgreSQL a BRIN
index on ``ts`` (a few pages for millions of rows) serves the rollups' and the pruning's
time-range scans.

- ``metric_raw``: samples as reported, kept 48 h.
- ``metric_15m``: 15-minute buckets (bucket start), mean and maximum of each metric and the
  number of samples rolled up, kept 30 days.
- ``metric_1d``: daily buckets (UTC days) of the same shape, kept a year.
- ``metric_aggregate_15m`` and ``metric_aggregate_1d``: each group's and each rack's servers
  combined per bucket (their mean CPU, their summed memory and storage), written by the
  same rollup step from the servers' rollups, so that a group's or a rack's chart reads
  one row a bucket instead of one per server and bucket; ``metric_aggregate_1m`` the same
  per minute from the raw samples, kept a few hours, for the charts of the last hours.
- ``metric_latest``: each object's newest value of each metric (one row an object), kept
  in step by every write: the dashboard's hot spots and the autoscaler read "the latest
  value of 10,000 servers" from 10,000 rows, not from the 48 h of raw samples.
Values are REAL (4 bytes): utilisation needs no more precision.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import REAL, Column, DateTime, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.base import one_of

METRIC_OBJECT_TYPES = ("baremetal", "vm", "cluster")
MACHINE_METRICS = ("cpu_util", "memory_used_gib", "storage_used_gib")
CLUSTER_METRICS = ("nodes_ready", "nodes_total", "pods_pending", "cpu_requested",
                   "memory_requested_gib")
# What each object type reports (SPEC 8.4).
METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "baremetal": MACHINE_METRICS, "vm": MACHINE_METRICS, "cluster": CLUSTER_METRICS,
}
ALL_METRICS = MACHINE_METRICS + CLUSTER_METRICS


def _key() -> list[Column]:
    return [
        Column("object_type", String(16), primary_key=True),
        Column("object_id", Integer, primary_key=True, autoincrement=False),
        Column("ts", DateTime, primary_key=True),
    ]


metric_raw = Table(
    "metric_raw", db.metadata,
    *_key(),
    *(Column(name, REAL) for name in ALL_METRICS),
    one_of("object_type", METRIC_OBJECT_TYPES),
    Index("ix_metric_raw_ts", "ts", postgresql_using="brin"),
)


# Each metric with the time of its own newest sample: an agent may report a metric alone.
metric_latest = Table(
    "metric_latest", db.metadata,
    Column("object_type", String(16), primary_key=True),
    Column("object_id", Integer, primary_key=True, autoincrement=False),
    Column("ts", DateTime, nullable=False),  # the newest sample of any metric (pruning)
    *(column for name in ALL_METRICS
      for column in (Column(name, REAL), Column(f"{name}_ts", DateTime))),
    one_of("object_type", METRIC_OBJECT_TYPES),
)


def _rollup(name: str) -> Table:
    columns: list[Column] = []
    for metric in ALL_METRICS:
        columns.append(Column(metric, REAL))  # the mean over the bucket
        columns.append(Column(f"{metric}_max", REAL))
    return Table(
        name, db.metadata,
        *_key(),
        *columns,
        Column("samples", Integer, nullable=False),  # raw samples rolled into the bucket
        one_of("object_type", METRIC_OBJECT_TYPES),
        Index(f"ix_{name}_ts", "ts", postgresql_using="brin"),
    )


metric_15m = _rollup("metric_15m")
metric_1d = _rollup("metric_1d")

# The servers of a group or a rack, combined.
AGGREGATE_SCOPES = ("group", "rack")


def _aggregate(name: str) -> Table:
    """A bucket of a scope's servers (from their rollups of the same level): ``cpu_util`` the
    servers' mean, ``cpu_util_max`` the busiest one's peak; memory and storage the sums of
    the servers' means, ``…_max`` the sums of their peaks (at least the peak of the sum)."""
    columns: list[Column] = []
    for metric in MACHINE_METRICS:
        columns += [Column(metric, REAL), Column(f"{metric}_max", REAL)]
    return Table(
        name, db.metadata,
        *_key(),
        *columns,
        Column("servers", Integer, nullable=False),  # servers that reported in the bucket
        Column("samples", Integer, nullable=False),  # their raw samples
        one_of("object_type", AGGREGATE_SCOPES),
        Index(f"ix_{name}_ts", "ts", postgresql_using="brin"),
    )


# Per minute, for the charts within six hours (portal.metrics.store.rollup_minutes).
metric_aggregate_1m = _aggregate("metric_aggregate_1m")
metric_aggregate_15m = _aggregate("metric_aggregate_15m")
metric_aggregate_1d = _aggregate("metric_aggregate_1d")


class MetricRollup(db.Model):
    """How far each rollup level is done: buckets before ``done_until`` are rolled up (the
    controller re-rolls a little before it, for samples that came late)."""

    __tablename__ = "metric_rollup"

    level: Mapped[str] = mapped_column(String(8), primary_key=True)  # "15m" | "1d"
    done_until: Mapped[datetime] = mapped_column(DateTime)


class AgentPresence(db.Model):
    """When each provisioning/metrics agent was last heard from: upserted on every metrics
    POST and on job claims (at most every few seconds per agent)."""

    __tablename__ = "agent_presence"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    driver: Mapped[str | None] = mapped_column(String(32))
    # What the agent serves, as it said (its claim scope: regions, DCs, groups).
    scope: Mapped[str | None] = mapped_column(String(512))

    __table_args__ = (Index("ix_agent_presence_last_seen", "last_seen"),)
