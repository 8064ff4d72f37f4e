"""The audit trail: every create, update, delete and placement, with what changed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import has_request_context
from flask_login import current_user

from portal.extensions import db
from portal.models import AuditEvent, User


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(obj, name)) for name in fields}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{"field": {"from": old, "to": new}} for the fields that changed."""
    return {
        name: {"from": before.get(name), "to": after.get(name)}
        for name in after
        if before.get(name) != after.get(name)
    }


def record(
    action: str,
    object_type: str,
    object_id: int | None,
    label: str,
    changes: dict[str, Any] | None = None,
    user: User | None = None,
) -> AuditEvent:
    """Add an event to the current transaction: it commits or rolls back with the change."""
    if user is None and has_request_context() and current_user.is_authenticated:
        user = current_user
    event = AuditEvent(
        user_id=user.id if user is not None else None,
        username=user.username if user is not None else "system",
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_label=label[:255],
        changes=changes or {},
    )
    db.session.add(event)
    return event


def history(object_type: str, object_id: int, limit: int = 20) -> list[AuditEvent]:
    """The latest events about one object, for the history panel of its page."""
    from sqlalchemy import select

    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def created(after: dict[str, Any]) -> dict[str, Any]:
    """The changes of a new object: every field that holds something, from nothing."""
    return {name: {"from": None, "to": v} for name, v in after.items() if v not in (None, "")}


def removed(before: dict[str, Any]) -> dict[str, Any]:
    """The changes of a deleted object: every field that held something, to nothing."""
    return {name: {"from": v, "to": None} for name, v in before.items() if v not in (None, "")}


def history_of(
    object_type: str, object_id: int, related: Any = (), limit: int = 20
) -> list[AuditEvent]:
    """Like history(), plus events about related objects: ``related`` holds
    (object_type, select of ids) pairs — e.g. a group's page also shows its quotas' edits."""
    from sqlalchemy import and_, or_, select

    about = [and_(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id)]
    about += [
        and_(AuditEvent.object_type == kind, AuditEvent.object_id.in_(ids))
        for kind, ids in related
    ]
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(or_(*about))
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def audited_create(obj: Any, object_type: str, fields: tuple[str, ...],
                   user: User | None) -> Any:
    """Add a new object and its "create" event (every field it was given) to the session."""
    db.session.add(obj)
    db.session.flush()
    record("create", object_type, obj.id, getattr(obj, "name", str(obj.id)),
           created(snapshot(obj, fields)), user=user)
    return obj


def audited_update(obj: Any, object_type: str, fields: tuple[str, ...],
                   values: dict[str, Any], user: User | None) -> dict[str, Any]:
    """Apply values and record an "update" event with the fields that changed (none: no
    event). Returns the changes; the caller commits."""
    before = snapshot(obj, fields)
    for name, value in values.items():
        setattr(obj, name, value)
    changes = diff(before, snapshot(obj, fields))
    if changes:
        record("update", object_type, obj.id, getattr(obj, "name", str(obj.id)), changes,
               user=user)
    return changes
