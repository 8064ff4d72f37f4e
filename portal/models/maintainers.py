"""Maintainers, their groups, and assignments of either to any resource."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped, one_of, utcnow

if TYPE_CHECKING:
    from portal.models.users import User

MAINTAINER_STATUSES = ("active", "inactive")
# resource_type → table. They coincide by design: the delete triggers rely on it.
ASSIGNABLE_TYPES = (
    "rack",
    "baremetal",
    "baremetal_group",
    "tenant",
    "virtual_machine",
    "k8s_cluster",
    "service_mesh",
)


class Maintainer(Timestamped, db.Model):
    __tablename__ = "maintainer"

    name: Mapped[str] = mapped_column(String(128))
    account: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True
    )

    user: Mapped[User | None] = relationship(back_populates="maintainer")
    memberships: Mapped[list[MaintainerToMaintainerGroup]] = relationship(
        back_populates="maintainer", passive_deletes=True
    )

    __table_args__ = (one_of("status", MAINTAINER_STATUSES),)

    def __repr__(self) -> str:
        return f"<Maintainer {self.account}>"


class MaintainerGroup(Timestamped, db.Model):
    __tablename__ = "maintainer_group"

    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("maintainer.id", ondelete="SET NULL"), index=True
    )

    manager: Mapped[Maintainer | None] = relationship()
    memberships: Mapped[list[MaintainerToMaintainerGroup]] = relationship(
        back_populates="group", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<MaintainerGroup {self.name}>"


class MaintainerToMaintainerGroup(Timestamped, db.Model):
    __tablename__ = "maintainer_to_maintainer_group"

    maintainer_id: Mapped[int] = mapped_column(ForeignKey("maintainer.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(
        ForeignKey("maintainer_group.id", ondelete="CASCADE"), index=True
    )
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    maintainer: Mapped[Maintainer] = relationship(back_populates="memberships")
    group: Mapped[MaintainerGroup] = relationship(back_populates="memberships")

    __table_args__ = (
        UniqueConstraint("maintainer_id", "group_id", name="uq_maintainer_membership"),
    )


class ResourceMaintainer(Timestamped, db.Model):
    """A person or a group assigned to any resource. Polymorphic, so no foreign key on
    resource_id: delete triggers on every resource table remove the rows instead."""

    __tablename__ = "resource_maintainer"

    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[int] = mapped_column()
    maintainer_id: Mapped[int | None] = mapped_column(
        ForeignKey("maintainer.id", ondelete="CASCADE"), index=True
    )
    maintainer_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("maintainer_group.id", ondelete="CASCADE"), index=True
    )
    responsibility: Mapped[str] = mapped_column(String(255), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    maintainer: Mapped[Maintainer | None] = relationship()
    maintainer_group: Mapped[MaintainerGroup | None] = relationship()

    __table_args__ = (
        one_of("resource_type", ASSIGNABLE_TYPES),
        CheckConstraint(
            "(maintainer_id IS NULL AND maintainer_group_id IS NOT NULL)"
            " OR (maintainer_id IS NOT NULL AND maintainer_group_id IS NULL)",
            name="exactly_one_assignee",
        ),
        Index("ix_resource_maintainer_resource", "resource_type", "resource_id"),
        # NULLs never collide in a plain unique constraint, so each kind of assignee gets
        # its own partial unique index.
        Index(
            "uq_resource_maintainer_person",
            "resource_type",
            "resource_id",
            "maintainer_id",
            unique=True,
            sqlite_where=text("maintainer_id IS NOT NULL"),
            postgresql_where=text("maintainer_id IS NOT NULL"),
        ),
        Index(
            "uq_resource_maintainer_group",
            "resource_type",
            "resource_id",
            "maintainer_group_id",
            unique=True,
            sqlite_where=text("maintainer_group_id IS NOT NULL"),
            postgresql_where=text("maintainer_group_id IS NOT NULL"),
        ),
    )
