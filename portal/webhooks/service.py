"""Webhooks (SPEC 8.6): the outbox, its signed delivery with retries, and the hooks' rules.

:func:`emit` adds one delivery row per matching hook in the caller's transaction, so a
change that is rolled back sends nothing (netbox#9466). :func:`deliver_due` (run by the
controller) claims due rows with a short lease — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
serialised by ``begin_write`` on SQLite — commits, and only then POSTs, so no database
transaction is held open while a receiver answers and two controllers never send the same
delivery twice. A failed attempt is retried after 30 s, 2 min, 10 min, 30 min and 2 h,
then the delivery is failed (netbox#12327 has no retries at all).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from sqlalchemy import Select, or_, select, update
from sqlalchemy import delete as sa_delete

from portal.audit.service import record
from portal.auth.access import administered_tenant_ids
from portal.extensions import begin_write, db
from portal.i18n import _
from portal.models import WEBHOOK_EVENTS, Tenant, Webhook, WebhookDelivery, utcnow

# Seconds to wait after the 1st, 2nd, … failed attempt; after the last, the delivery fails.
RETRY_DELAYS = (30, 120, 600, 1800, 7200)
SEND_TIMEOUT = 10
# A claimed delivery is the claimer's for this long: more than a send can take.
CLAIM_SECONDS = 60
RESOURCE_PATHS = {"vm": "/api/v1/vms/{}", "cluster": "/api/v1/clusters/{}",
                  "job": "/api/v1/provision-jobs/{}",
                  "scaling_policy": "/api/v1/scaling-policies/{}"}


class WebhookError(ValueError):
    """A hook or a request about one that cannot be accepted; the message says why."""


# ------------------------------------------------------------------------------- outbox


def emit(event_type: str, resource_type: str, resource_id: int, tenant_id: int | None,
         previous_status: str | None, data: dict) -> int:
    """Queue ``event_type`` for every enabled hook that wants it (operator hooks: every
    tenant; a tenant's hooks: that tenant's events only), in the caller's transaction. One
    query; returns how many deliveries were queued."""
    scope = Webhook.tenant_id.is_(None)
    if tenant_id is not None:
        scope = or_(scope, Webhook.tenant_id == tenant_id)
    hooks = db.session.execute(
        select(Webhook.id, Webhook.events).where(Webhook.enabled.is_(True), scope)
    ).all()
    wanted = [hook_id for hook_id, events in hooks if event_type in (events or ())]
    if not wanted:
        return 0
    now = utcnow()
    event_id = str(uuid.uuid4())
    body = json.dumps({
        "id": event_id,
        "type": event_type,
        "occurred_at": now.isoformat(timespec="seconds") + "Z",
        "resource": {"type": resource_type, "id": resource_id,
                     "url": resource_url(resource_type, resource_id)},
        "previous_status": previous_status,
        "data": data,
    }, separators=(",", ":"), default=str)
    db.session.add_all(
        WebhookDelivery(webhook_id=hook_id, event_id=event_id, event_type=event_type,
                        body=body, status="pending", attempts=0, next_attempt_at=now,
                        last_error="")
        for hook_id in wanted
    )
    return len(wanted)


def resource_url(resource_type: str, resource_id: int) -> str:
    """The resource's API URL: absolute when PORTAL_URL is configured, else a path."""
    base = current_app.config.get("PORTAL_URL", "") if has_app_context() else ""
    return (base or "").rstrip("/") + RESOURCE_PATHS[resource_type].format(resource_id)


# ----------------------------------------------------------------------------- delivery


def sign(secret: str, body: bytes) -> str:
    """Hex HMAC-SHA512 of the exact body bytes (NetBox's X-Hook-Signature)."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


@dataclass(frozen=True)
class Sent:
    """What a receiver answered: its status code, or why there was none."""

    status_code: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS to an address already checked, verifying the certificate for the URL's host."""

    def __init__(self, address: str, port: int, server_name: str, **kw) -> None:
        super().__init__(address, port, **kw)
        self.server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_name)


def send_http(url: str, body: bytes, headers: dict[str, str],
              timeout: float = SEND_TIMEOUT, address: str | None = None) -> Sent:
    """POST ``body`` to ``url``, connecting to ``address`` when given (the one the URL
    check approved: a second DNS lookup could answer an internal address). Follows no
    redirect (it could lead where the check refused). Never raises."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = address or parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPS(
                host, port, parts.hostname or "", timeout=timeout,
                context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("POST", target, body=body, headers={"Host": parts.netloc, **headers})
            response = conn.getresponse()
            response.read(65536)
        finally:
            conn.close()
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Sent(None, f"Could not reach {url}: {error}"[:500])
    if 200 <= response.status < 300:
        return Sent(response.status)
    return Sent(response.status, f"HTTP {response.status} {response.reason}"[:500])


Sender = Callable[[str, bytes, dict[str, str]], Sent]


def deliver_due(now: datetime | None = None, send: Sender | None = None, limit: int = 50,
                resolve: Callable[[str], list[str]] | None = None) -> int:
    """Send every delivery that is due at ``now`` (up to ``limit``); returns how many were
    attempted. Safe to run from any number of controllers at once."""
    now = now or utcnow()
    claimed = _claim(now, limit)
    for delivery_id, attempt, url, secret, allow_private, body, event_type, event_id in claimed:
        try:
            address = checked_address(url, allow_private, resolve=resolve)
        except WebhookError as refused:
            outcome = Sent(None, str(refused))
        else:
            raw = body.encode()
            sender = send or partial(send_http, address=address)
            outcome = sender(url, raw, {
                "Content-Type": "application/json",
                "User-Agent": "resource-portal-webhooks",
                "X-Hook-Signature": sign(secret, raw),
                "X-Hook-Timestamp": str(int(now.replace(tzinfo=UTC).timestamp())),
                "X-Hook-Event": event_type,
                "X-Hook-Delivery": event_id,
            })
        _record(delivery_id, attempt, outcome, now)
    return len(claimed)


def _claim(now: datetime, limit: int) -> list[tuple]:
    begin_write()  # SQLite has no SKIP LOCKED: claims are serialised instead
    due = (WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
    ids = db.session.scalars(
        select(WebhookDelivery.id).where(*due).order_by(WebhookDelivery.next_attempt_at,
                                                        WebhookDelivery.id)
        .limit(limit).with_for_update(skip_locked=True)
    ).all()
    if not ids:
        db.session.rollback()
        return []
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids), *due)
        .values(attempts=WebhookDelivery.attempts + 1,
                next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempts, Webhook.url, Webhook.secret,
               Webhook.allow_private, WebhookDelivery.body, WebhookDelivery.event_type,
               WebhookDelivery.event_id)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.id)
    ).all()
    db.session.commit()
    return [tuple(row) for row in rows]


def _record(delivery_id: int, attempt: int, outcome: Sent, now: datetime) -> None:
    """The attempt's answer; guarded on the attempt number, so a resend or another claim
    made meanwhile is not overwritten."""
    values: dict = {"last_status_code": outcome.status_code, "last_error": outcome.error,
                    "updated_at": utcnow()}
    if outcome.ok:
        values.update(status="delivered", delivered_at=now, next_attempt_at=None)
    elif attempt > len(RETRY_DELAYS):
        values.update(status="failed", next_attempt_at=None)
    else:
        values["next_attempt_at"] = now + timedelta(seconds=RETRY_DELAYS[attempt - 1])
    begin_write()
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempt,
               WebhookDelivery.status == "pending")
        .values(**values).execution_options(synchronize_session=False)
    )
    db.session.commit()


def resend(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again as soon as the controller runs: same event id, so a receiver
    that already has it can tell. The caller commits."""
    if delivery.status == "pending" and delivery.attempts == 0:
        raise WebhookError(_("Delivery %(id)s has not been attempted yet: it goes out with "
                             "the controller's next pass.", id=delivery.id))
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.delivered_at = None
    return delivery


# ------------------------------------------------------------------------- hooks, SSRF


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise WebhookError(_("The host %(host)s does not resolve (%(error)s).", host=host,
                             error=error)) from None
    return [info[4][0] for info in infos]


def _forbidden(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, what in ((ip.is_loopback, _("a loopback")),
                       (ip.is_link_local, _("a link-local (cloud metadata)")),
                       (ip.is_unspecified, _("an unspecified")),
                       (ip.is_multicast, _("a multicast")),
                       (ip.is_private, _("a private")), (ip.is_reserved, _("a reserved"))):
        if test:
            return what
    return None


def _checked(url: str, allow_private: bool,
             resolve: Callable[[str], list[str]] | None) -> tuple[str, str | None]:
    """``url`` and an approved address if a hook may POST to it: http(s) only and, unless
    ``allow_private``, no host that resolves to a loopback, private, link-local/metadata,
    multicast or unspecified address. Run at creation and again before each delivery (DNS
    may have changed); the delivery then connects to the address checked here."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise WebhookError(_("The URL is not valid: %(error)s.", error=error)) from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError(_("The URL must start with http:// or https://."))
    host = parts.hostname
    if not host:
        raise WebhookError(_("The URL has no host."))
    if parts.username or parts.password:
        raise WebhookError(_("The URL must not carry a user name or password; sign with the "
                             "secret instead."))
    if allow_private:
        return url, None
    addresses = resolve(host) if resolve else _resolve(host, port)
    for address in addresses:
        what = _forbidden(address)
        if what:
            raise WebhookError(
                _("The host %(host)s resolves to %(address)s, %(what)s address: hooks may not "
                  "call into the portal's own network unless an operator allows private "
                  "addresses.", host=host, address=address, what=what)
            )
    if not addresses:
        raise WebhookError(_("The host %(host)s does not resolve.", host=host))
    return url, addresses[0]


def check_url(url: str, allow_private: bool = False,
              resolve: Callable[[str], list[str]] | None = None) -> str:
    """``url`` if a hook may POST to it (see :func:`_checked`); WebhookError says why not."""
    return _checked(url, allow_private, resolve)[0]


def checked_address(url: str, allow_private: bool = False,
                    resolve: Callable[[str], list[str]] | None = None) -> str | None:
    """The address to connect to for ``url``, checked now; None (connect by name) when
    private addresses are allowed."""
    return _checked(url, allow_private, resolve)[1]


def check_events(events: Iterable[str]) -> list[str]:
    events = list(dict.fromkeys(events))
    unknown = [e for e in events if e not in WEBHOOK_EVENTS]
    if unknown:
        raise WebhookError(_("Unknown event %(events)s: choose from %(known)s.",
                             events=", ".join(unknown), known=", ".join(WEBHOOK_EVENTS)))
    if not events:
        raise WebhookError(_("Choose at least one event out of %(known)s.",
                             known=", ".join(WEBHOOK_EVENTS)))
    return events


# ------------------------------------------------------------------- managing the hooks


class HookError(WebhookError):
    """A refused hook field: ``field`` names it for the form or the API's errors."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def hooks_of(user) -> Select:
    """The hooks ``user`` may see and manage: operators all; a tenant admin their tenants'
    (never the operators' own hooks, which see every tenant)."""
    stmt = select(Webhook).order_by(Webhook.id)
    tenants = administered_tenant_ids(user)
    if tenants is not None:
        stmt = stmt.where(Webhook.tenant_id.in_(tenants))
    return stmt


def hook_of(user, hook_id: int) -> Webhook | None:
    return db.session.scalar(hooks_of(user).where(Webhook.id == hook_id))


def delivery_of(user, delivery_id: int) -> WebhookDelivery | None:
    hooks = hooks_of(user).with_only_columns(Webhook.id).order_by(None)
    return db.session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id.in_(hooks)))


def save_hook(user, hook: Webhook | None, *, name: str, url: str, events: Iterable[str],
              enabled: bool, tenant_id: int | None, allow_private: bool,
              secret: str | None = None) -> tuple[Webhook, str | None]:
    """Create (``hook`` None) or change a hook; returns it and the secret when one was made
    or replaced (shown once: it is never returned again). Refusals change nothing. The
    caller commits."""
    operator = administered_tenant_ids(user) is None
    if allow_private and not operator:
        raise HookError("allow_private", _("Only operators may allow private, loopback or "
                                           "link-local addresses."))
    if tenant_id is None and not operator:
        raise HookError("tenant_id", _("Choose the tenant whose events this hook receives."))
    if tenant_id is not None and (
            (not operator and tenant_id not in administered_tenant_ids(user))
            or db.session.get(Tenant, tenant_id) is None):
        raise HookError("tenant_id", _("No tenant %(id)s that you administer.", id=tenant_id))
    try:
        url = check_url(url, allow_private)
    except WebhookError as error:
        raise HookError("url", str(error)) from None
    try:
        events = check_events(events)
    except WebhookError as error:
        raise HookError("events", str(error)) from None
    if secret is not None and not 16 <= len(secret) <= 255:
        raise HookError("secret", _("A secret has 16 to 255 characters; leave it out to get a "
                                    "random one."))
    created = hook is None
    if created:
        secret = secret or secrets.token_urlsafe(32)
        hook = Webhook(created_by=user.id, secret=secret)
        db.session.add(hook)
    elif secret:
        hook.secret = secret
    before = {name: getattr(hook, name) for name in AUDITED}
    hook.name, hook.url, hook.events, hook.enabled = name.strip(), url, events, enabled
    hook.tenant_id, hook.allow_private = tenant_id, allow_private
    db.session.flush()
    changes = {name: {"from": None if created else before[name], "to": getattr(hook, name)}
               for name in AUDITED if created or before[name] != getattr(hook, name)}
    if secret:  # never the secret itself
        changes["secret"] = {"from": None, "to": "(new secret)"}
    record("create" if created else "update", "webhook", hook.id, hook.name or hook.url,
           changes, user=user)
    return hook, secret


AUDITED = ("name", "url", "events", "enabled", "tenant_id", "allow_private")


def delete_hook(hook: Webhook, user) -> None:
    """The hook and its delivery log. The caller commits."""
    record("delete", "webhook", hook.id, hook.name or hook.url,
           {"url": {"from": hook.url, "to": None}}, user=user)
    db.session.execute(sa_delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    db.session.delete(hook)
    db.session.flush()
