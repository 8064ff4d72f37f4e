"""What pipelines lean on (SPEC 8.6, 8.7): idempotency keys, webhooks with their outbox of
deliveries, and the leases that let several controllers run side by side."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped, one_of

IDEMPOTENCY_STATES = ("in_flight", "done")
WEBHOOK_EVENTS = ("vm.status_changed", "cluster.status_changed", "job.finished",
                  "scaling.decision")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class IdempotencyKey(Timestamped, db.Model):
    """The first answer to a creating, scaling or deleting request, kept so that a retry with
    the same key and body gets it again instead of acting twice. Scoped to the user."""

    __tablename__ = "idempotency_key"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    # SHA-256 of method, path and body: another body under the same key is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="in_flight")
    response_status: Mapped[int | None] = mapped_column()
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_idempotency_key_user_key"),
        one_of("state", IDEMPOTENCY_STATES),
        Index("ix_idempotency_key_created_at", "created_at"),
    )


class Webhook(Timestamped, db.Model):
    """Where to POST events. A tenant admin's hook sees only its tenant's events."""

    __tablename__ = "webhook"

    name: Mapped[str] = mapped_column(String(128), default="")
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(255))
    # The event types it wants, out of WEBHOOK_EVENTS.
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    # An operator may allow private, link-local or metadata addresses for this hook.
    allow_private: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    deliveries: Mapped[list[WebhookDelivery]] = relationship(
        back_populates="webhook", passive_deletes=True
    )


class WebhookDelivery(Timestamped, db.Model):
    """The outbox: one row per event and hook, written in the transaction of the change it
    reports (a rolled-back change sends nothing), delivered by the controller."""

    __tablename__ = "webhook_delivery"

    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)

    webhook: Mapped[Webhook] = relationship(back_populates="deliveries")

    __table_args__ = (
        one_of("status", DELIVERY_STATUSES),
        CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_webhook_id", "webhook_id", "id"),
    )


class ControllerLease(db.Model):
    """One row per controller loop: whoever holds an unexpired lease runs it, so any number
    of controller copies are safe."""

    __tablename__ = "controller_lease"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    holder: Mapped[str] = mapped_column(String(128), default="")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class ClusterKubeconfig(Timestamped, db.Model):
    """A cluster's kubeconfig as the agent returned it, encrypted at rest."""

    __tablename__ = "cluster_kubeconfig"

    cluster_id: Mapped[int] = mapped_column(
        ForeignKey("k8s_cluster.id", ondelete="CASCADE"), unique=True
    )
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
