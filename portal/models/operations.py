"""Provisioning jobs (the outbox to the agents) and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped, one_of

if TYPE_CHECKING:
    from portal.models.compute import VirtualMachine
    from portal.models.users import User

JOB_ACTIONS = ("create", "delete", "migrate")
JOB_STATUSES = ("queued", "claimed", "succeeded", "failed", "cancelled")
# A job an agent may still act on. A VM has at most one (a partial unique index).
LIVE_JOB_STATUSES = ("queued", "claimed")


class ProvisionJob(Timestamped, db.Model):
    __tablename__ = "provision_job"

    vm_id: Mapped[int] = mapped_column(
        ForeignKey("virtual_machine.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    # Where a migrate job moves the VM (SPEC 8.1/8.2); the VM holds there meanwhile.
    target_baremetal_id: Mapped[int | None] = mapped_column(
        ForeignKey("baremetal.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    result_message: Mapped[str] = mapped_column(Text, default="")
    # What the driver printed (an exec command's output, the libvirt driver's steps),
    # kept truncated to its start and end (portal.provisioning.jobs.OUTPUT_LIMIT).
    output: Mapped[str] = mapped_column(Text, default="", server_default="")

    vm: Mapped[VirtualMachine] = relationship()

    __table_args__ = (
        one_of("action", JOB_ACTIONS),
        one_of("status", JOB_STATUSES),
        CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        Index("ix_provision_job_status", "status", "id"),
        CheckConstraint(
            "(action = 'migrate') = (target_baremetal_id IS NOT NULL)",
            name="migrate_has_target",
        ),
        Index(
            "uq_provision_job_live",
            "vm_id",
            unique=True,
            sqlite_where=text("status IN ('queued', 'claimed')"),
            postgresql_where=text("status IN ('queued', 'claimed')"),
        ),
    )


class AuditEvent(Timestamped, db.Model):
    """Who did what to which object, with the before/after of the fields that changed."""

    __tablename__ = "audit_event"

    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Kept as text too, so the trail still names the person after the account is gone.
    username: Mapped[str] = mapped_column(String(64), default="system")
    action: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column()
    object_label: Mapped[str] = mapped_column(String(255), default="")
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user: Mapped[User | None] = relationship()

    __table_args__ = (
        Index("ix_audit_event_object", "object_type", "object_id"),
        # The audit list: newest first, alone or filtered by object type, action or user
        # (the id breaks ties in the same direction).
        Index("ix_audit_event_created_at", "created_at", "id"),
        Index("ix_audit_event_type_created", "object_type", "created_at", "id"),
        Index("ix_audit_event_action_created", "action", "created_at", "id"),
        Index("ix_audit_event_username_created", "username", "created_at", "id"),
    )
