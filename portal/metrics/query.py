"""The read interface of measured utilisation (SPEC 8.4), whatever the source.

``latest`` and ``series`` read the embedded store, or Prometheus when the app's
``PORTAL_PROMETHEUS_URL`` is set (``portal.metrics.prometheus.PrometheusSource``, imported
only then). Times are naive UTC. A source that cannot answer raises
:class:`SourceUnavailable`; an object without samples is absent from the answer: pages show
"no data" for both, never zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Double, literal, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from portal.extensions import db
from portal.i18n import _
from portal.metrics import presence, store
from portal.metrics.presence import Agent
from portal.models import METRIC_OBJECT_TYPES, METRICS_BY_TYPE

__all__ = ["Agent", "SourceUnavailable", "agents", "latest", "latest_exceeding", "series",
           "stale_agents"]


class SourceUnavailable(Exception):
    """reason in str(); pages show "no data", never zero"""


def _store_failed(error: Exception) -> SourceUnavailable:
    return SourceUnavailable(_("The metrics store failed: %(error)s",
                               error=type(error).__name__))


def _check(object_type: str, metrics: Sequence[str]) -> None:
    if object_type not in METRIC_OBJECT_TYPES:
        raise ValueError(f"Unknown object type {object_type!r}: one of "
                         f"{', '.join(METRIC_OBJECT_TYPES)}.")
    unknown = [m for m in metrics if m not in METRICS_BY_TYPE[object_type]]
    if unknown:
        raise ValueError(f"A {object_type} has no metric {unknown[0]!r}: one of "
                         f"{', '.join(METRICS_BY_TYPE[object_type])}.")


def _prometheus():
    url = current_app.config.get("PORTAL_PROMETHEUS_URL")
    if not url:
        return None
    try:
        from portal.metrics.prometheus import PrometheusSource
    except ImportError as error:  # configured, but this installation cannot read it
        raise SourceUnavailable(_("PORTAL_PROMETHEUS_URL is set, but the Prometheus source "
                                  "is not installed (%(error)s).", error=error)) from error
    return PrometheusSource.from_config(current_app.config)


def latest(object_type: str, ids: Sequence[int], metric: str,
           since: datetime) -> dict[int, tuple[datetime, float]]:
    """Each object's newest sample of ``metric`` at or after ``since`` (naive UTC):
    {object id: (sample time, value)}; an object without one is absent (no data)."""
    _check(object_type, [metric])
    if not ids:
        return {}
    source = _prometheus()
    if source is not None:
        return source.latest(object_type, ids, metric, since)
    try:
        return store.latest(object_type, ids, metric, since)
    except SQLAlchemyError as error:
        db.session.rollback()
        raise _store_failed(error) from error


def latest_exceeding(object_type: str, metric: str, since: datetime, bound,
                     where: ColumnElement | None = None, also: Sequence[ColumnElement] = (),
                     margin: ColumnElement | None = None, limit: int | None = None
                     ) -> tuple[int, list[tuple]]:
    """The objects whose newest ``metric`` at or after ``since`` exceeds ``bound`` — a
    number, or an expression over the object's model (a server's allocation) — among the
    object type's rows matching ``where``: how many, and their ``(id, value, *also)`` rows,
    ``also`` being further expressions over the model. Without ``limit`` all the rows, in
    no order; with it the first ``limit`` by the largest excess of the value over
    ``margin`` (an expression over the model, default 0), then the smallest id. The
    embedded store compares, orders and counts in the database, so that only those rows
    come back, not the estate; Prometheus' newest values are compared here."""
    _check(object_type, [metric])
    from portal.models import Baremetal, K8sCluster, VirtualMachine

    model = {"baremetal": Baremetal, "vm": VirtualMachine, "cluster": K8sCluster}[object_type]
    if not isinstance(bound, ColumnElement):
        bound = literal(float(bound), Double)
    if margin is None:
        margin = literal(0.0, Double)
    source = _prometheus()
    if source is None:
        try:
            return store.latest_exceeding(object_type, model, metric, since, bound, where,
                                          also, margin, limit)
        except SQLAlchemyError as error:
            db.session.rollback()
            raise _store_failed(error) from error
    rows = select(model.id, bound, margin, *also)
    if where is not None:
        rows = rows.where(where)
    candidates = db.session.execute(rows).all()
    found = source.latest(object_type, [row[0] for row in candidates], metric, since)
    over = [(object_id, found[object_id][1], excess, *rest)
            for object_id, limit_value, excess, *rest in candidates
            if object_id in found and found[object_id][1] > limit_value]
    if limit is not None:
        over.sort(key=lambda row: (-(row[1] - row[2]), row[0]))
        return len(over), [(i, v, *rest) for i, v, _margin, *rest in over[:limit]]
    return len(over), [(i, v, *rest) for i, v, _margin, *rest in over]


def series(object_type: str, ids: Sequence[int], metrics: Sequence[str], start: datetime,
           end: datetime, step: int | None = None
           ) -> dict[tuple[int, str], list[tuple[datetime, float]]]:
    """{(object id, metric): [(time, value), …]} in time order within [start, end].
    The resolution follows the range (raw ≤ 48 h, 15-minute ≤ 30 days, daily beyond) or,
    with ``step`` (seconds), the step: points are then averages per step-long bucket.
    A pair without points is absent."""
    _check(object_type, metrics)
    if end < start:
        raise ValueError("The range ends before it starts.")
    if step is not None and step <= 0:
        raise ValueError("step must be a positive number of seconds.")
    if not ids or not metrics:
        return {}
    source = _prometheus()
    if source is not None:
        return source.series(object_type, ids, metrics, start, end, step)
    try:
        return store.series(object_type, ids, metrics, start, end, step)
    except SQLAlchemyError as error:
        db.session.rollback()
        raise _store_failed(error) from error


def agents(now: datetime | None = None) -> list[Agent]:
    """The agent presence table: (name, last_seen, scope, driver), newest first."""
    return presence.agents(now)


def stale_agents(now: datetime, window: timedelta = timedelta(minutes=15)) -> list[Agent]:
    """Agents heard from before, but not within ``window`` of ``now``."""
    return presence.stale_agents(now, window)
