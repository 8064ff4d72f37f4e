"""The audit trail: every create, update, delete and placement, with what changed."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from portal.api import api
from portal.api.core import Access
from portal.api.listing import ApiFilter, list_query, run
from portal.api.problems import not_found
from portal.api.schemas import Stamped, page_of
from portal.audit import lists as pages
from portal.extensions import db
from portal.models import AuditEvent

TAGS = ("audit",)


class AuditEventOut(Stamped):
    user_id: int | None
    username: str = Field(description="Kept as text: the trail names people whose account "
                                      "is gone.")
    action: str
    object_type: str
    object_id: int | None
    object_label: str
    changes: dict[str, Any] = Field(description='{"field": {"from": old, "to": new}}')


AuditPage = page_of(AuditEventOut, "AuditEventPage")
AuditQuery = list_query(
    "AuditQuery", pages.events,
    (ApiFilter("object_type", "object_type", str, "rack, baremetal, quota, virtual_machine …"),
     ApiFilter("action", "action", str, "create, update, delete, place, provision …"),
     ApiFilter("user", "user", str, "Username.")),
    from_=(date | None, Field(None, alias="from", description="First day (inclusive).")),
    to=(date | None, Field(None, description="Last day (inclusive).")),
)


@api.operation("GET", "/audit-events", summary="List audit events", tags=TAGS,
               access=Access("audit"), query=AuditQuery, response=AuditPage)
def list_audit_events(query):
    """Newest first; filters and the from/to days as on the audit page."""
    return run(pages.events, query)


@api.operation("GET", "/audit-events/{event_id}", summary="Get an audit event", tags=TAGS,
               access=Access("audit"), response=AuditEventOut)
def get_audit_event(event_id: int):
    event = db.session.get(AuditEvent, event_id)
    if event is None:
        raise not_found()
    return event
