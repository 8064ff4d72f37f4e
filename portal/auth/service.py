"""Accounts: creation, password checks, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from portal.extensions import db
from portal.models import ApiToken, Maintainer, Tenant, TenantAdmin, User, utcnow

# A hash to compare against when the user does not exist, so that a wrong username takes
# as long as a wrong password and does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password")
TOKEN_PREFIX = "rp_"
MIN_PASSWORD_LENGTH = 8


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message says why."""


def hash_password(password: str) -> str:
    # scrypt: memory-hard, Werkzeug's default since 3.0.
    return generate_password_hash(password, method="scrypt")


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None (the caller shows one message for
    every failure)."""
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    return user


def create_user(
    username: str,
    password: str,
    *,
    display_name: str = "",
    operator: bool = False,
    tenants: tuple[str, ...] = (),
    maintainer_account: str | None = None,
) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("A username is 1 to 64 characters.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"A password has at least {MIN_PASSWORD_LENGTH} characters.")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"User {username!r} already exists.")
    user = User(
        username=username,
        password_hash=hash_password(password),
        display_name=display_name or username,
        is_operator=operator,
    )
    for name in tenants:
        tenant = db.session.scalar(select(Tenant).where(Tenant.name == name))
        if tenant is None:
            raise AccountError(f"No tenant named {name!r}.")
        user.tenant_links.append(TenantAdmin(tenant=tenant))
    if maintainer_account:
        maintainer = db.session.scalar(
            select(Maintainer).where(Maintainer.account == maintainer_account)
        )
        if maintainer is None:
            raise AccountError(f"No maintainer with account {maintainer_account!r}.")
        if maintainer.user_id is not None:
            raise AccountError(f"Maintainer {maintainer_account!r} is already linked to a user.")
        maintainer.user = user
    db.session.add(user)
    db.session.flush()
    from portal.audit.service import record

    roles = ["operator"] * operator + [f"admin of {t}" for t in tenants]
    roles += [f"maintainer {maintainer_account}"] * bool(maintainer_account)
    record("create", "user", user.id, user.username,
           {"roles": {"from": None, "to": ", ".join(roles) or "none"}})
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def issue_token(user: User, name: str = "") -> IssuedToken:
    """A new bearer token. 256 random bits, so a plain SHA-256 is a safe stored form."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name or "token", token_hash=_digest(secret), prefix=secret[:10]
    )
    db.session.add(token)
    db.session.flush()
    from portal.audit.service import record

    record("create", "api_token", token.id, f"{user.username}: {token.name}",
           {"token": {"from": None, "to": f"{token.prefix}…"}}, user=user)
    return IssuedToken(token, secret)


def user_for_token(secret: str) -> User | None:
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    now = utcnow()
    # At most one write a minute per token: otherwise every API read is also a write.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
    return token.user


def revoke_token(user: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise AccountError("No such token.")
    if token.revoked_at is None:
        from portal.audit.service import record

        token.revoked_at = utcnow()
        record("revoke", "api_token", token.id, f"{user.username}: {token.name}",
               {"token": {"from": f"{token.prefix}…", "to": "revoked"}}, user=user)
    return token
