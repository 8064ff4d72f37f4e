"""Login accounts, tenant-admin memberships and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped
from portal.models.tenancy import Tenant

if TYPE_CHECKING:
    from portal.models.maintainers import Maintainer


class User(UserMixin, Timestamped, db.Model):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    is_operator: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    # Part of every session and remember-me cookie: bumping it (logout, password change)
    # invalidates all of them at once.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # The interface language the user chose ("en", "zh-TW"); None: cookie or browser decide.
    locale: Mapped[str | None] = mapped_column(String(8))

    tenant_links: Mapped[list[TenantAdmin]] = relationship(
        back_populates="user", passive_deletes=True, cascade="all, delete-orphan"
    )
    maintainer: Mapped[Maintainer | None] = relationship(back_populates="user")
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", passive_deletes=True, order_by="ApiToken.id"
    )

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class TenantAdmin(Timestamped, db.Model):
    """Membership: the user administers the tenant."""

    __tablename__ = "tenant_admin"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )

    user: Mapped[User] = relationship(back_populates="tenant_links")
    tenant: Mapped[Tenant] = relationship()

    __table_args__ = (UniqueConstraint("user_id", "tenant_id", name="uq_tenant_admin_pair"),)


class ApiToken(Timestamped, db.Model):
    """A bearer token. Only its SHA-256 is stored; the token is shown once, at creation."""

    __tablename__ = "api_token"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    # SPEC 8.6: space-separated scopes out of read, write, admin; an optional tenant the
    # token is restricted to; an expiry (default 90 days, at most 365).
    scopes: Mapped[str] = mapped_column(
        String(32), default="read write", server_default="read write"
    )
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="tokens")
    tenant: Mapped[Tenant | None] = relationship()


class LoginThrottle(db.Model):
    """Failed logins per account and per address, for rate limiting with backoff. Kept in
    the database so that every web replica sees the same counts."""

    __tablename__ = "login_throttle"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "user:<username>" or "addr:<ip>"
    key: Mapped[str] = mapped_column(String(200), unique=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)

