"""Webhooks (SPEC 8.6): where events are POSTed, their delivery log, and resend.

Operators manage every hook (a hook without a tenant hears every tenant's events) and may
allow private addresses; a tenant admin manages the hooks of the tenants they administer.
The secret is write-only: returned once, when it is made, never again.
"""

from __future__ import annotations

from typing import Literal

from flask_login import current_user
from pydantic import Field
from sqlalchemy import func, select

from portal.api import api
from portal.api.core import Access
from portal.api.problems import invalid, not_found
from portal.api.schemas import Id, Input, Paging, Stamped, UtcDatetime, page_of
from portal.extensions import db
from portal.i18n import _
from portal.models import DELIVERY_STATUSES, WEBHOOK_EVENTS, WebhookDelivery
from portal.webhooks import service

TAGS = ("webhooks",)
READ, WRITE = Access("webhooks", "read"), Access("webhooks", "write")
Event = Literal[WEBHOOK_EVENTS]  # type: ignore[valid-type]


class Webhook(Stamped):
    name: str
    url: str
    events: list[Event]
    enabled: bool
    tenant_id: int | None = Field(description="Only this tenant's events; null: every "
                                              "tenant's (operators' hooks).")
    allow_private: bool
    created_by: int | None


class NewWebhook(Webhook):
    secret: str = Field(description="The signing secret, shown this once.")


class Delivery(Stamped):
    webhook_id: int
    event_id: str = Field(description="The event's id (X-Hook-Delivery); a resend keeps it.")
    event_type: Event
    body: str = Field(description="The exact bytes that are signed and sent.")
    status: Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]
    attempts: int
    next_attempt_at: UtcDatetime | None
    last_status_code: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str
    delivered_at: UtcDatetime | None


WebhookPage, DeliveryPage = page_of(Webhook), page_of(Delivery)


class WebhookIn(Input):
    name: str = Field("", max_length=128)
    url: str = Field(min_length=1, max_length=2048, description=(
        "http(s) only; hosts resolving to loopback, private, link-local (metadata), "
        "multicast or unspecified addresses are refused unless allow_private."))
    events: list[Event] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))
    enabled: bool = True
    tenant_id: Id | None = Field(None, description="Required for tenant admins.")
    allow_private: bool = Field(False, description="Operators only.")
    secret: str | None = Field(None, min_length=16, max_length=255, description=(
        "Default: a random one, returned once."))


def _save(hook, body: WebhookIn):
    try:
        return service.save_hook(
            current_user._get_current_object(), hook, name=body.name, url=body.url,
            events=body.events, enabled=body.enabled, tenant_id=body.tenant_id,
            allow_private=body.allow_private, secret=body.secret)
    except service.HookError as error:
        db.session.rollback()
        raise invalid(error.field, str(error)) from None


def _hook_or_404(webhook_id: int):
    hook = service.hook_of(current_user, webhook_id)
    if hook is None:
        raise not_found(_("No webhook %(id)s.", id=webhook_id))
    return hook


@api.operation("GET", "/webhooks", summary="List webhooks", tags=TAGS, access=READ,
               query=Paging, response=WebhookPage)
def list_webhooks(query: Paging):
    stmt = service.hooks_of(current_user)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return {"items": db.session.scalars(stmt.limit(query.limit).offset(query.offset)).all(),
            "total": total}


@api.operation("POST", "/webhooks", summary="Create a webhook", tags=TAGS, access=WRITE,
               body=WebhookIn, response=NewWebhook, status=201)
def create_webhook(body: WebhookIn):
    """The answer carries the secret, this once."""
    hook, secret = _save(None, body)
    db.session.commit()
    return NewWebhook.model_validate({**Webhook.model_validate(hook).model_dump(),
                                      "secret": secret})


@api.operation("GET", "/webhooks/{webhook_id}", summary="Read a webhook", tags=TAGS,
               access=READ, response=Webhook)
def get_webhook(webhook_id: int):
    return _hook_or_404(webhook_id)


@api.operation("PUT", "/webhooks/{webhook_id}", summary="Replace a webhook", tags=TAGS,
               access=WRITE, body=WebhookIn, response=Webhook)
def update_webhook(webhook_id: int, body: WebhookIn):
    """Every field as on creation; leave ``secret`` out to keep the current one."""
    _save(_hook_or_404(webhook_id), body)
    db.session.commit()
    return _hook_or_404(webhook_id)


@api.operation("DELETE", "/webhooks/{webhook_id}", summary="Delete a webhook", tags=TAGS,
               access=WRITE, status=204)
def delete_webhook(webhook_id: int):
    """With its delivery log."""
    service.delete_hook(_hook_or_404(webhook_id), current_user._get_current_object())
    db.session.commit()


@api.operation("GET", "/webhooks/{webhook_id}/deliveries", summary="A webhook's delivery log",
               tags=TAGS, access=READ, query=Paging, response=DeliveryPage)
def list_deliveries(webhook_id: int, query: Paging):
    """Newest first: each event, its status, attempts and the receiver's last answer."""
    hook = _hook_or_404(webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    items = db.session.scalars(stmt.order_by(WebhookDelivery.id.desc())
                               .limit(query.limit).offset(query.offset)).all()
    return {"items": items, "total": total}


@api.operation("POST", "/webhooks/deliveries/{delivery_id}/resend", summary="Send again",
               tags=TAGS, access=WRITE, response=Delivery)
def resend_delivery(delivery_id: int):
    """Queues the delivery for the controller's next pass, same event id."""
    delivery = service.delivery_of(current_user, delivery_id)
    if delivery is None:
        raise not_found(_("No delivery %(id)s.", id=delivery_id))
    try:
        service.resend(delivery)
    except service.WebhookError as error:
        raise invalid("delivery_id", str(error)) from None
    db.session.commit()
    return delivery
