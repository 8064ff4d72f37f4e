"""Flavors and virtual machines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped, one_of
from portal.models.inventory import Baremetal
from portal.models.tenancy import Tenant

if TYPE_CHECKING:
    from portal.models.kubernetes import K8sCluster
    from portal.models.users import User

VM_ROLES = ("standalone", "control-plane", "worker", "management", "bastion")
VM_STATUSES = (
    "pending", "provisioning", "active", "error", "deleting", "deleted", "migrating",
)
# Statuses whose VMs count against quotas and server capacity (SPEC 8.1). A migrating VM
# holds on its server and on its migrate job's target.
HOLDING_STATUSES = ("pending", "provisioning", "active", "deleting", "migrating")


class VirtualMachineSpecification(Timestamped, db.Model):
    """A flavor. Retired flavors (is_active False) stay for history but cannot be chosen."""

    __tablename__ = "virtual_machine_specification"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    cpu: Mapped[int] = mapped_column()
    memory: Mapped[int] = mapped_column()
    storage: Mapped[int] = mapped_column()
    generation: Mapped[int] = mapped_column(default=1)
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(default=True)

    __table_args__ = (
        CheckConstraint("cpu >= 1", name="cpu_positive"),
        CheckConstraint("memory >= 1", name="memory_positive"),
        CheckConstraint("storage >= 0", name="storage_nonneg"),
        CheckConstraint("generation >= 1", name="generation_positive"),
    )

    def __repr__(self) -> str:
        return f"<Flavor {self.name}>"


VM_LIST_SORTS = (
    "created_at", "name", "status", "role", "cpu", "memory", "storage",
    "tenant_id", "spec_id", "baremetal_id",
)


class VirtualMachine(Timestamped, db.Model):
    __tablename__ = "virtual_machine"

    name: Mapped[str] = mapped_column(String(128))
    # Indexed with the id below (the list's sort by tenant / flavor / server and its
    # filters walk them in order).
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="RESTRICT"))
    # Nullable so that a server can be deleted once only history (deleted/error VMs) is left
    # on it; a CHECK keeps every VM that holds resources on a server.
    baremetal_id: Mapped[int | None] = mapped_column(
        ForeignKey("baremetal.id", ondelete="SET NULL")
    )
    spec_id: Mapped[int] = mapped_column(
        ForeignKey("virtual_machine_specification.id", ondelete="RESTRICT")
    )
    cpu: Mapped[int] = mapped_column()
    memory: Mapped[int] = mapped_column()
    storage: Mapped[int] = mapped_column()
    k8s_cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("k8s_cluster.id", ondelete="RESTRICT"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="standalone")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_message: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    tenant: Mapped[Tenant] = relationship()
    baremetal: Mapped[Baremetal | None] = relationship(back_populates="virtual_machines")
    spec: Mapped[VirtualMachineSpecification] = relationship()
    cluster: Mapped[K8sCluster | None] = relationship(back_populates="nodes")
    requester: Mapped[User | None] = relationship()

    __table_args__ = (
        one_of("role", VM_ROLES),
        one_of("status", VM_STATUSES),
        CheckConstraint("cpu >= 0 AND memory >= 0 AND storage >= 0", name="resources_nonneg"),
        CheckConstraint(
            "status IN ('error', 'deleted') OR baremetal_id IS NOT NULL",
            name="holding_vm_has_server",
        ),
        # Target of the bastion association's same-tenant foreign key.
        UniqueConstraint("id", "tenant_id", name="uq_virtual_machine_id_tenant"),
        Index(
            "uq_virtual_machine_live_name",
            "tenant_id",
            "name",
            unique=True,
            sqlite_where=text("status != 'deleted'"),
            postgresql_where=text("status != 'deleted'"),
        ),
        # Every sort of the VM list on 100,000 rows, the id breaking ties (read forwards or
        # backwards, one index serves both directions; bench/pages measures them).
        *(Index(f"ix_virtual_machine_{column}", column, "id") for column in VM_LIST_SORTS),
    )

    @property
    def holds_resources(self) -> bool:
        return self.status in HOLDING_STATUSES

    def __repr__(self) -> str:
        return f"<VM {self.name}>"
