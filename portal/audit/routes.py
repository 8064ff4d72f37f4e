from flask import Blueprint
from sqlalchemy import select

from portal.auth.access import requires
from portal.models import AuditEvent
from portal.web import list_page
from portal.web.listing import Column, Filter, Listing
from portal.web.options import distinct_values

bp = Blueprint("audit", __name__, url_prefix="/audit")

events = Listing(
    name="audit-events",
    statement=lambda: select(AuditEvent),
    columns=[
        Column("created_at", "When", AuditEvent.created_at),
        Column("username", "User", AuditEvent.username),
        Column("action", "Action", AuditEvent.action),
        Column("object_type", "Object type", AuditEvent.object_type),
        Column("object_label", "Object", AuditEvent.object_label),
        Column("changes", "Changes", None, value=lambda e: e.changes),
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
)


@bp.route("/")
@requires("audit")
def list():  # noqa: A001
    return list_page(events, "audit/list.html")
