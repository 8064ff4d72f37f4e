"""Kubernetes clusters, their plugins, bastions and service meshes."""

from __future__ import annotations

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped, one_of
from portal.models.compute import VirtualMachine
from portal.models.inventory import BaremetalGroup
from portal.models.tenancy import Tenant

CLUSTER_STATUSES = (
    "provisioning",
    "active",
    "maintenance",
    "offline",
    "error",
    "deleting",
    "deleted",
)
PLUGIN_CATEGORIES = ("network", "monitoring", "storage", "ingress", "other")
PLUGIN_STATUSES = ("active", "inactive", "error")
MESH_TYPES = ("cilium", "istio", "other")
MESH_STATUSES = ("active", "inactive", "error")
MESH_ROLES = ("primary", "secondary")


class K8sCluster(Timestamped, db.Model):
    __tablename__ = "k8s_cluster"

    name: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="RESTRICT"), index=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("baremetal_group.id", ondelete="RESTRICT"), index=True
    )
    version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="provisioning")
    description: Mapped[str] = mapped_column(Text, default="")

    tenant: Mapped[Tenant] = relationship()
    group: Mapped[BaremetalGroup] = relationship()
    nodes: Mapped[list[VirtualMachine]] = relationship(
        back_populates="cluster", passive_deletes="all"
    )
    plugins: Mapped[list[K8sClusterPlugin]] = relationship(
        back_populates="cluster", passive_deletes=True, order_by="K8sClusterPlugin.name"
    )
    mesh_links: Mapped[list[K8sClusterToServiceMesh]] = relationship(
        back_populates="cluster", passive_deletes=True
    )
    bastion_links: Mapped[list[BastionClusterAssociation]] = relationship(
        back_populates="cluster", passive_deletes=True, overlaps="vm"
    )

    __table_args__ = (
        one_of("status", CLUSTER_STATUSES),
        UniqueConstraint("id", "tenant_id", name="uq_k8s_cluster_id_tenant"),
        Index(
            "uq_k8s_cluster_live_name",
            "tenant_id",
            "name",
            unique=True,
            sqlite_where=text("status != 'deleted'"),
            postgresql_where=text("status != 'deleted'"),
        ),
        Index("ix_k8s_cluster_created_at", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<K8sCluster {self.name}>"


class K8sClusterPlugin(Timestamped, db.Model):
    __tablename__ = "k8s_cluster_plugin"

    cluster_id: Mapped[int] = mapped_column(ForeignKey("k8s_cluster.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(16), default="other")
    version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")

    cluster: Mapped[K8sCluster] = relationship(back_populates="plugins")

    __table_args__ = (
        UniqueConstraint("cluster_id", "name", name="uq_k8s_cluster_plugin_cluster_name"),
        one_of("category", PLUGIN_CATEGORIES),
        one_of("status", PLUGIN_STATUSES),
    )


class BastionClusterAssociation(Timestamped, db.Model):
    """A bastion VM serving a cluster. tenant_id is part of both foreign keys, so the
    database itself refuses a bastion of another tenant."""

    __tablename__ = "bastion_cluster_association"

    vm_id: Mapped[int] = mapped_column()
    cluster_id: Mapped[int] = mapped_column(index=True)
    tenant_id: Mapped[int] = mapped_column()
    # True for the bastion the cluster wizard built with the cluster: deleting the cluster
    # offers to delete it too. Bastions linked later were there before and stay.
    created_with_cluster: Mapped[bool] = mapped_column(default=False, server_default=false())

    vm: Mapped[VirtualMachine] = relationship(overlaps="cluster,bastion_links")
    cluster: Mapped[K8sCluster] = relationship(back_populates="bastion_links", overlaps="vm")

    __table_args__ = (
        UniqueConstraint("vm_id", "cluster_id", name="uq_bastion_cluster_association_pair"),
        ForeignKeyConstraint(
            ["vm_id", "tenant_id"],
            ["virtual_machine.id", "virtual_machine.tenant_id"],
            ondelete="CASCADE",
            name="fk_bastion_vm_same_tenant",
        ),
        ForeignKeyConstraint(
            ["cluster_id", "tenant_id"],
            ["k8s_cluster.id", "k8s_cluster.tenant_id"],
            ondelete="CASCADE",
            name="fk_bastion_cluster_same_tenant",
        ),
    )


class ServiceMesh(Timestamped, db.Model):
    __tablename__ = "service_mesh"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    mesh_type: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    description: Mapped[str] = mapped_column(Text, default="")

    cluster_links: Mapped[list[K8sClusterToServiceMesh]] = relationship(
        back_populates="service_mesh", passive_deletes="all"
    )

    __table_args__ = (
        one_of("mesh_type", MESH_TYPES),
        one_of("status", MESH_STATUSES),
    )

    def __repr__(self) -> str:
        return f"<ServiceMesh {self.name}>"


class K8sClusterToServiceMesh(Timestamped, db.Model):
    __tablename__ = "k8s_cluster_to_service_mesh"

    cluster_id: Mapped[int] = mapped_column(ForeignKey("k8s_cluster.id", ondelete="CASCADE"))
    service_mesh_id: Mapped[int] = mapped_column(
        ForeignKey("service_mesh.id", ondelete="RESTRICT"), index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="primary")

    cluster: Mapped[K8sCluster] = relationship(back_populates="mesh_links")
    service_mesh: Mapped[ServiceMesh] = relationship(back_populates="cluster_links")

    __table_args__ = (
        UniqueConstraint(
            "cluster_id", "service_mesh_id", name="uq_k8s_cluster_to_service_mesh_pair"
        ),
        one_of("role", MESH_ROLES),
        # At most one primary mesh per cluster.
        Index(
            "uq_k8s_cluster_one_primary_mesh",
            "cluster_id",
            unique=True,
            sqlite_where=text("role = 'primary'"),
            postgresql_where=text("role = 'primary'"),
        ),
    )
