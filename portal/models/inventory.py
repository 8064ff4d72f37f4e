"""Racks, baremetal servers and the groups quotas are expressed against."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped, counters, one_of

if TYPE_CHECKING:
    from portal.models.compute import VirtualMachine

BAREMETAL_STATUSES = ("active", "maintenance", "offline", "decommissioned")
DIMENSIONS = ("cpu", "memory", "storage")


class Rack(Timestamped, db.Model):
    __tablename__ = "rack"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    region: Mapped[str] = mapped_column(String(64))
    dc: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(255), default="")
    height_u: Mapped[int] = mapped_column(default=42)
    bgp_asn: Mapped[int | None] = mapped_column(BigInteger)
    network_notes: Mapped[str] = mapped_column(Text, default="")

    baremetals: Mapped[list[Baremetal]] = relationship(
        back_populates="rack", order_by="Baremetal.rack_unit.desc()", passive_deletes="all"
    )

    __table_args__ = (
        CheckConstraint("height_u BETWEEN 1 AND 60", name="height_u_range"),
        CheckConstraint(
            "bgp_asn IS NULL OR (bgp_asn >= 1 AND bgp_asn <= 4294967295)", name="bgp_asn_range"
        ),
        # Target of the servers' (rack_id, rack_height_u) foreign key: it lets the database
        # itself refuse a server that sticks out of its rack, even when the rack shrinks.
        UniqueConstraint("id", "height_u", name="uq_rack_id_height_u"),
    )

    def __repr__(self) -> str:
        return f"<Rack {self.name}>"


class BaremetalGroup(Timestamped, db.Model):
    __tablename__ = "baremetal_group"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    dimension: Mapped[str] = mapped_column(String(64), default="")
    total_cpu: Mapped[int] = mapped_column(default=0)
    total_memory: Mapped[int] = mapped_column(default=0)
    total_storage: Mapped[int] = mapped_column(default=0)
    available_cpu: Mapped[int] = mapped_column(default=0)
    available_memory: Mapped[int] = mapped_column(default=0)
    available_storage: Mapped[int] = mapped_column(default=0)

    baremetals: Mapped[list[Baremetal]] = relationship(
        back_populates="group", passive_deletes="all"
    )

    __table_args__ = tuple(counters())

    def __repr__(self) -> str:
        return f"<BaremetalGroup {self.name}>"


class Baremetal(Timestamped, db.Model):
    __tablename__ = "baremetal"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    region: Mapped[str] = mapped_column(String(64), default="")
    dc: Mapped[str] = mapped_column(String(64), default="")
    rack_id: Mapped[int | None] = mapped_column()
    # Copy of the rack's height, kept by the composite foreign key (ON UPDATE CASCADE).
    rack_height_u: Mapped[int | None] = mapped_column()
    rack_unit: Mapped[int | None] = mapped_column()
    size_u: Mapped[int] = mapped_column(default=1)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("baremetal_group.id", ondelete="RESTRICT"), index=True
    )
    total_cpu: Mapped[int] = mapped_column(default=0)
    total_memory: Mapped[int] = mapped_column(default=0)
    total_storage: Mapped[int] = mapped_column(default=0)
    available_cpu: Mapped[int] = mapped_column(default=0)
    available_memory: Mapped[int] = mapped_column(default=0)
    available_storage: Mapped[int] = mapped_column(default=0)
    # Where the libvirt driver reaches this server's hypervisor (SPEC 8.8), e.g.
    # qemu+ssh://root@host/system; None: not managed through libvirt.
    hypervisor_uri: Mapped[str | None] = mapped_column(String(512))

    rack: Mapped[Rack | None] = relationship(back_populates="baremetals")
    group: Mapped[BaremetalGroup | None] = relationship(back_populates="baremetals")
    virtual_machines: Mapped[list[VirtualMachine]] = relationship(
        back_populates="baremetal", passive_deletes="all"
    )

    __table_args__ = (
        ForeignKeyConstraint(
            ["rack_id", "rack_height_u"],
            ["rack.id", "rack.height_u"],
            onupdate="CASCADE",
            ondelete="RESTRICT",
            name="fk_baremetal_rack",
        ),
        one_of("status", BAREMETAL_STATUSES),
        CheckConstraint("size_u BETWEEN 1 AND 60", name="size_u_range"),
        CheckConstraint(
            "(rack_id IS NULL AND rack_unit IS NULL AND rack_height_u IS NULL)"
            " OR (rack_id IS NOT NULL AND rack_unit IS NOT NULL AND rack_height_u IS NOT NULL)",
            name="rack_position_complete",
        ),
        CheckConstraint(
            "rack_unit IS NULL OR (rack_unit >= 1 AND rack_unit + size_u - 1 <= rack_height_u)",
            name="rack_unit_inside_rack",
        ),
        Index("ix_baremetal_rack_id", "rack_id"),
        Index("ix_baremetal_status", "status"),
        *counters(),
    )

    @property
    def top_unit(self) -> int | None:
        return None if self.rack_unit is None else self.rack_unit + self.size_u - 1

    def __repr__(self) -> str:
        return f"<Baremetal {self.name}>"


# What the scheduler reads of a group's servers besides their free counters: a change to
# any of these (or a server joining or leaving the group) gives the group a new
# HostsVersion, in the changing statement's transaction (portal/models/ddl.py).
PLANNED_COLUMNS = ("name", "status", "region", "dc", "rack_id", "group_id",
                   "total_cpu", "total_memory", "total_storage")


class HostsVersion(db.Model):
    """A token that changes whenever a group's servers change as the scheduler sees them —
    a server added, removed, moved between groups, or one of its PLANNED_COLUMNS changed,
    or its rack renamed. The reservation layer keeps what it read of a group's servers
    under this token and re-reads only the free counters while the token stands
    (portal/scheduler/reservation.py).

    Written only by the database's triggers, never by the application; so not Timestamped,
    and not on the group's own row either, which every reservation locks: a change to two
    servers in one transaction would then wait for the group behind a reservation that
    waits for one of those servers. The token is random rather than counted, so that a
    database created again (as tests do) never repeats one a process still remembers."""

    __tablename__ = "baremetal_group_hosts_version"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("baremetal_group.id", ondelete="CASCADE"), primary_key=True,
        autoincrement=False,
    )
    version: Mapped[int] = mapped_column(BigInteger)
