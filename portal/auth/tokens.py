"""API tokens (SPEC 8.6): shown once and stored hashed, scoped, optionally restricted to
one tenant, always expiring.

Scopes are cumulative — ``read`` (GET only), ``write`` (may change what the user's roles
allow), ``admin`` (write, and may mint and manage tokens) — and stored with everything they
include ("read write admin"), so that a check is a plain membership test. A token never
grants more than its user's roles: a scope only narrows them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import joinedload

from portal.auth.service import AccountError
from portal.extensions import db
from portal.i18n import _
from portal.models import ApiToken, Tenant, User, utcnow

TOKEN_PREFIX = "rp_"
SCOPES = ("read", "write", "admin")  # each includes the ones before it
DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=365)
MAX_LIVE_TOKENS = 50
# At most one write a minute per token: otherwise every API read is also a write.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class TokenError(AccountError):
    """A token request that cannot be carried out; ``field`` names what to correct."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class TooManyTokens(TokenError):
    """The user already holds MAX_LIVE_TOKENS live tokens."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def scope_string(scopes: Iterable[str]) -> str:
    """The highest scope asked for and every scope it includes: ["admin"] → "read write
    admin"."""
    asked = set(scopes)
    unknown = sorted(asked - set(SCOPES))
    if unknown or not asked:
        raise TokenError(_("Scopes are %(scopes)s; got %(got)s.", scopes=", ".join(SCOPES),
                           got=", ".join(unknown) or _("none")),
                         "scopes")
    top = max(SCOPES.index(s) for s in asked)
    return " ".join(SCOPES[: top + 1])


def has_scope(token: ApiToken, scope: str) -> bool:
    return scope in token.scopes.split()


def top_scope(token: ApiToken) -> str:
    return token.scopes.split()[-1]


def cli_scope(user: User) -> str:
    """What `users create --token` gives: operators an admin token, anyone else write."""
    return "admin" if user.is_operator else "write"


def expires(token: ApiToken) -> datetime:
    """When the token stops working. Tokens from before expiry existed (no expires_at)
    expire the default lifetime after their creation."""
    return token.expires_at or token.created_at + DEFAULT_LIFETIME


def _live(now: datetime):
    """SQL: the token is neither revoked nor expired."""
    return and_(
        ApiToken.revoked_at.is_(None),
        or_(
            ApiToken.expires_at > now,
            and_(ApiToken.expires_at.is_(None), ApiToken.created_at > now - DEFAULT_LIFETIME),
        ),
    )


def is_live(token: ApiToken, now: datetime | None = None) -> bool:
    return token.revoked_at is None and expires(token) > (now or utcnow())


def state(token: ApiToken) -> str:
    """live, expired or revoked: what a token list shows."""
    if token.revoked_at is not None:
        return "revoked"
    return "live" if is_live(token) else "expired"


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens, newest first, with their tenants (one query)."""
    return list(db.session.scalars(
        select(ApiToken).options(joinedload(ApiToken.tenant))
        .where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    ))


def restrictable_tenants(user: User) -> list[Tenant]:
    """The tenants a token of this user may be restricted to: any for an operator, else
    those the user administers (a restriction never adds rights)."""
    stmt = select(Tenant).order_by(Tenant.name)
    if not user.is_operator:
        stmt = stmt.where(Tenant.id.in_([link.tenant_id for link in user.tenant_links]))
    return list(db.session.scalars(stmt))


def _expiry(expires_at: datetime | None, now: datetime) -> datetime:
    if expires_at is None:
        return now + DEFAULT_LIFETIME
    if expires_at.tzinfo is not None:  # stored as naive UTC
        try:
            expires_at = expires_at.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # past year 9999 in UTC
            raise TokenError(_("A token lives at most %(num)s days.", num=MAX_LIFETIME.days),
                             "expires_at") from None
    if expires_at <= now:
        raise TokenError(_("The expiry must be in the future."), "expires_at")
    if expires_at > now + MAX_LIFETIME:
        raise TokenError(_("A token lives at most %(num)s days.", num=MAX_LIFETIME.days),
                         "expires_at")
    return expires_at


def issue_token(
    user: User,
    name: str = "",
    *,
    scopes: Iterable[str] = ("write",),
    expires_at: datetime | None = None,
    tenant_id: int | None = None,
) -> IssuedToken:
    """A new bearer token, or TokenError. 256 random bits, so a plain SHA-256 is a safe
    stored form."""
    name = (name or "").strip() or "token"
    if len(name) > 64:
        raise TokenError(_("A token name has at most 64 characters."), "name")
    scope = scope_string(scopes)
    now = utcnow()
    expiry = _expiry(expires_at, now)
    if tenant_id is not None and tenant_id not in {t.id for t in restrictable_tenants(user)}:
        # An unknown tenant and one the user may not act for get the same answer.
        raise TokenError(_("Restrict the token to one of your tenants, or to none."), "tenant_id")
    # Serialise a user's token creations, so that two at once cannot pass the cap.
    db.session.execute(select(User.id).where(User.id == user.id).with_for_update())
    live = db.session.scalar(
        select(func.count(ApiToken.id)).where(ApiToken.user_id == user.id, _live(now))
    )
    if live >= MAX_LIVE_TOKENS:
        raise TooManyTokens(
            _("You have %(num)s live tokens, the most allowed: revoke tokens you no longer "
              "use first.", num=live), "name"
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name, token_hash=_digest(secret), prefix=secret[:10], scopes=scope,
        expires_at=expiry, tenant_id=tenant_id,
    )
    db.session.add(token)
    db.session.flush()
    from portal.audit.service import record

    # Codes, names and a date: portal/audit/presenter.py words them in the reader's language.
    changes = {"token": {"from": None, "to": f"{token.prefix}…"},
               "scopes": {"from": None, "to": scope.split()},
               "expires_at": {"from": None, "to": f"{expiry:%Y-%m-%d}"}}
    if token.tenant is not None:
        changes["tenant"] = {"from": None, "to": token.tenant.name}
    record("create", "api_token", token.id, f"{user.username}: {token.name}", changes,
           user=user)
    return IssuedToken(token, secret)


def live_token(secret: str) -> ApiToken | None:
    """The token with this secret if it may be used now: not revoked, not expired, its
    account active. Notes when it was last used."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    now = utcnow()
    if token is None or not is_live(token, now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        token.last_used_at = now
    return token


def _record_revoke(user: User, token: ApiToken) -> None:
    from portal.audit.service import record

    record("revoke", "api_token", token.id, f"{user.username}: {token.name}",
           {"token": {"from": f"{token.prefix}…", "to": "revoked"}}, user=user)


def revoke_token(user: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise TokenError(_("No such token."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        _record_revoke(user, token)
    return token


def revoke_all(user: User) -> int:
    """Revoke every token of the user that is not revoked yet (the one in use too);
    returns how many."""
    now = utcnow()
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ).all()
    for token in tokens:
        token.revoked_at = now
        _record_revoke(user, token)
    return len(tokens)
