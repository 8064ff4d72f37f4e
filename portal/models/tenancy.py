"""Tenants and their per-group quotas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped
from portal.models.inventory import DIMENSIONS, BaremetalGroup

if TYPE_CHECKING:
    from portal.models.users import User


class Tenant(Timestamped, db.Model):
    __tablename__ = "tenant"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(255), default="")

    quotas: Mapped[list[BaremetalGroupTenantQuota]] = relationship(
        back_populates="tenant", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Tenant {self.name}>"


def _quota_checks() -> list[CheckConstraint]:
    checks = []
    for d in DIMENSIONS:
        checks.append(
            CheckConstraint(
                f"{d}_limit IS NULL OR {d}_percent IS NULL", name=f"{d}_limit_xor_percent"
            )
        )
        checks.append(
            CheckConstraint(f"{d}_limit IS NULL OR {d}_limit >= 0", name=f"{d}_limit_nonneg")
        )
        checks.append(
            CheckConstraint(
                f"{d}_percent IS NULL OR ({d}_percent >= 0 AND {d}_percent <= 100)",
                name=f"{d}_percent_range",
            )
        )
    return checks


class BaremetalGroupTenantQuota(Timestamped, db.Model):
    """A tenant's limit in one group: per dimension an absolute limit, a percentage of the
    group's total, or neither (unlimited). No row at all means the tenant may not place there."""

    __tablename__ = "baremetal_group_tenant_quota"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(
        ForeignKey("baremetal_group.id", ondelete="CASCADE"), index=True
    )
    cpu_limit: Mapped[int | None] = mapped_column()
    cpu_percent: Mapped[int | None] = mapped_column()
    memory_limit: Mapped[int | None] = mapped_column()
    memory_percent: Mapped[int | None] = mapped_column()
    storage_limit: Mapped[int | None] = mapped_column()
    storage_percent: Mapped[int | None] = mapped_column()
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    tenant: Mapped[Tenant] = relationship(back_populates="quotas")
    group: Mapped[BaremetalGroup] = relationship()
    updated_by_user: Mapped[User | None] = relationship()

    __table_args__ = (
        UniqueConstraint("tenant_id", "group_id", name="uq_quota_tenant_group"),
        *_quota_checks(),
    )

    def effective_limit(self, dimension: str) -> int | None:
        """The limit in units: absolute as written, or floor(percent × group total / 100)."""
        absolute = getattr(self, f"{dimension}_limit")
        if absolute is not None:
            return absolute
        percent = getattr(self, f"{dimension}_percent")
        if percent is None:
            return None
        return percent * getattr(self.group, f"total_{dimension}") // 100
