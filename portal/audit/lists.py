"""The audit trail's list: what the page and the API both run."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app, request
from sqlalchemy import select

from portal.audit import presenter
from portal.i18n import _l
from portal.models import AuditEvent
from portal.web.labels import ACTION_LABELS, OBJECT_LABELS, choices
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values


def day_arg(name: str) -> date | None:
    """A yyyy-mm-dd query argument; anything else is ignored, like any unknown filter value."""
    try:
        return date.fromisoformat((request.args.get(name) or "").strip())
    except ValueError:
        return None


def _utc_midnight(day: date) -> datetime:
    """The stored (naive UTC) time at which ``day`` begins in the site's zone: the days of
    the filter are the days the page shows. At the ends of the calendar (0001-01-01 east
    of UTC begins before year 1) the UTC day itself."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(current_app.config["PORTAL_TIMEZONE"])
    local = datetime.combine(day, time.min, tzinfo=zone)
    try:
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    except OverflowError:
        return datetime.combine(day, time.min)


def _events():
    """Every event, within the from/to days (inclusive) when the query string names them."""
    stmt = select(AuditEvent)
    since, until = day_arg("from"), day_arg("to")
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= _utc_midnight(since))
    if until is not None and until < date.max:  # to=9999-12-31: no day follows it
        stmt = stmt.where(AuditEvent.created_at < _utc_midnight(until + timedelta(days=1)))
    return stmt


def _labelled(labels: dict[str, Any], column: Any):
    return lambda: choices(labels, [value for value, _label in distinct_values(column)])


events = Listing(
    name="audit-events",
    statement=_events,
    columns=[
        Column("created_at", _l("When"), AuditEvent.created_at),
        Column("username", _l("User"), AuditEvent.username),
        Column("action", _l("Action"), AuditEvent.action),
        Column("object_type", _l("Object type"), AuditEvent.object_type),
        Column("object_label", _l("Object"), AuditEvent.object_label),
        Column("changes", _l("Changes"), None, value=presenter.plain_changes),
    ],
    search=[AuditEvent.object_label, AuditEvent.username],
    filters=[
        Filter("object_type", _l("Object type"),
               lambda s, v: s.where(AuditEvent.object_type == v),
               _labelled(OBJECT_LABELS, AuditEvent.object_type)),
        Filter("action", _l("Action"), lambda s, v: s.where(AuditEvent.action == v),
               _labelled(ACTION_LABELS, AuditEvent.action)),
        Filter("user", _l("User"), lambda s, v: s.where(AuditEvent.username == v),
               lambda: distinct_values(AuditEvent.username)),
    ],
    default_sort="-created_at",
    extra_args=("from", "to"),
)
