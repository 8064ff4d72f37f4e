from datetime import date, datetime, timedelta

from flask import Blueprint, request
from sqlalchemy import select

from portal.audit import presenter
from portal.auth.access import requires
from portal.models import AuditEvent
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.app_template_filter("audit_changes")
def _audit_changes(event: AuditEvent) -> list[str]:
    return presenter.change_texts(event)


@bp.app_template_filter("audit_sentence")
def _audit_sentence(event: AuditEvent) -> str:
    return presenter.sentence(event)


@bp.app_template_filter("audit_field")
def _audit_field(name: str) -> str:
    return presenter.field_label(name)


@bp.app_template_global("audit_object_url")
def _audit_object_url(event: AuditEvent) -> str | None:
    return presenter.object_url(event)


def day_arg(name: str) -> date | None:
    """A yyyy-mm-dd query argument; anything else is ignored, like any unknown filter value."""
    try:
        return date.fromisoformat((request.args.get(name) or "").strip())
    except ValueError:
        return None


def _events():
    """Every event, within the from/to days (inclusive) when the query string names them."""
    stmt = select(AuditEvent)
    since, until = day_arg("from"), day_arg("to")
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= datetime.combine(since, datetime.min.time()))
    if until is not None and until < date.max:  # to=9999-12-31: no day follows it
        stmt = stmt.where(
            AuditEvent.created_at < datetime.combine(until + timedelta(days=1), datetime.min.time())
        )
    return stmt


events = Listing(
    name="audit-events",
    statement=_events,
    columns=[
        Column("created_at", "When", AuditEvent.created_at),
        Column("username", "User", AuditEvent.username),
        Column("action", "Action", AuditEvent.action),
        Column("object_type", "Object type", AuditEvent.object_type),
        Column("object_label", "Object", AuditEvent.object_label),
        Column("changes", "Changes", None, value=lambda e: "; ".join(presenter.change_texts(e))),
    ],
    search=[AuditEvent.object_label, AuditEvent.username],
    filters=[
        Filter("object_type", "Object type", lambda s, v: s.where(AuditEvent.object_type == v),
               lambda: distinct_values(AuditEvent.object_type)),
        Filter("action", "Action", lambda s, v: s.where(AuditEvent.action == v),
               lambda: distinct_values(AuditEvent.action)),
        Filter("user", "User", lambda s, v: s.where(AuditEvent.username == v),
               lambda: distinct_values(AuditEvent.username)),
    ],
    default_sort="-created_at",
    extra_args=("from", "to"),
)


@bp.route("/")
@requires("audit")
def list():  # noqa: A001
    return list_page(events, "audit/list.html", since=day_arg("from"), until=day_arg("to"))
