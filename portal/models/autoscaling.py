"""Autoscaling (SPEC 8.5): VM groups, the scaling policies on them and on clusters' worker
pools, and the record of every decision a policy took."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from portal.extensions import db
from portal.models.base import Timestamped, one_of
from portal.models.compute import VirtualMachine, VirtualMachineSpecification
from portal.models.inventory import BaremetalGroup
from portal.models.kubernetes import K8sCluster
from portal.models.tenancy import Tenant
from portal.scheduler.data import ANTI_AFFINITY

VM_GROUP_STATUSES = ("active", "deleting", "deleted")
POLICY_TARGETS = ("vm_group", "cluster")
POLICY_MODES = ("off", "dry_run", "active")
DECISION_SOURCES = ("controller", "cluster-autoscaler")
DECISION_ACTIONS = ("scale_up", "scale_down", "none")
# acted: done through the scheduler and the lifecycle; dry_run: recorded, not done; held:
# a change was wanted but a rule (stabilisation, warm-up, missing data, a limit, a backoff)
# kept the size; refused: the scheduler refused (quota, capacity); failed: anything else.
DECISION_OUTCOMES = ("acted", "dry_run", "held", "refused", "failed")
# Members that count in a group's size: everything not on its way out.
MEMBER_STATUSES = ("pending", "provisioning", "active", "error", "migrating")


class VmGroup(Timestamped, db.Model):
    """A named set of identical VMs of one tenant in one group: members <name>-1 … <name>-N,
    spread over servers (soft anti-affinity by default, SPEC 8.2)."""

    __tablename__ = "vm_group"

    name: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="RESTRICT"), index=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("baremetal_group.id", ondelete="RESTRICT"), index=True
    )
    spec_id: Mapped[int] = mapped_column(
        ForeignKey("virtual_machine_specification.id", ondelete="RESTRICT"), index=True
    )
    anti_affinity: Mapped[str] = mapped_column(String(8), default="soft")
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    tenant: Mapped[Tenant] = relationship()
    group: Mapped[BaremetalGroup] = relationship()
    spec: Mapped[VirtualMachineSpecification] = relationship()
    memberships: Mapped[list[VmGroupMember]] = relationship(
        back_populates="vm_group", passive_deletes=True
    )

    __table_args__ = (
        one_of("status", VM_GROUP_STATUSES),
        one_of("anti_affinity", ANTI_AFFINITY),
        Index(
            "uq_vm_group_live_name",
            "tenant_id",
            "name",
            unique=True,
            sqlite_where=text("status != 'deleted'"),
            postgresql_where=text("status != 'deleted'"),
        ),
        Index("ix_vm_group_created_at", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<VmGroup {self.name}>"


class VmGroupMember(Timestamped, db.Model):
    """A VM that belongs to a VM group. Rows stay when the VM is deleted (history)."""

    __tablename__ = "vm_group_member"

    vm_group_id: Mapped[int] = mapped_column(ForeignKey("vm_group.id", ondelete="CASCADE"))
    vm_id: Mapped[int] = mapped_column(
        ForeignKey("virtual_machine.id", ondelete="CASCADE"), unique=True
    )

    vm_group: Mapped[VmGroup] = relationship(back_populates="memberships")
    vm: Mapped[VirtualMachine] = relationship()

    __table_args__ = (Index("ix_vm_group_member_group", "vm_group_id", "vm_id"),)


# The group's size in the same query as the group (lists sort on it, no N+1).
VmGroup.size = column_property(
    select(func.count(VmGroupMember.id))
    .join(VirtualMachine, VirtualMachine.id == VmGroupMember.vm_id)
    .where(VmGroupMember.vm_group_id == VmGroup.id,
           VirtualMachine.status.in_(MEMBER_STATUSES))
    .correlate_except(VmGroupMember, VirtualMachine)
    .scalar_subquery()
)


class ScalingPolicy(Timestamped, db.Model):
    """How a VM group or a cluster's worker pool follows its load. A VM group follows a
    metric the HPA way (the controller evaluates it every 30 s); a worker pool follows
    cluster-autoscaler, which asks over externalgrpc within this policy's min and max."""

    __tablename__ = "scaling_policy"

    target_type: Mapped[str] = mapped_column(String(16))
    vm_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("vm_group.id", ondelete="CASCADE"), unique=True
    )
    k8s_cluster_id: Mapped[int | None] = mapped_column(
        ForeignKey("k8s_cluster.id", ondelete="CASCADE"), unique=True
    )
    # The target's tenant, for scoping lists and webhooks without a join.
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    min_size: Mapped[int] = mapped_column()
    max_size: Mapped[int] = mapped_column()
    metric: Mapped[str] = mapped_column(String(64))
    target: Mapped[float] = mapped_column(Float)
    tolerance: Mapped[float] = mapped_column(Float, default=0.1)
    scale_down_stabilization_seconds: Mapped[int] = mapped_column(default=300)
    warmup_seconds: Mapped[int] = mapped_column(default=300)
    mode: Mapped[str] = mapped_column(String(8), default="dry_run")
    last_evaluated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The scale-down stabilisation window: [[ISO time, recommended size], …], newest last.
    recommendations: Mapped[list] = mapped_column(JSON, default=list)
    # After a refused scale-up: no new attempt before backoff_until; the next refusal
    # doubles backoff_seconds (5 min up to 30 min), a successful scale-up resets it.
    backoff_until: Mapped[datetime | None] = mapped_column(DateTime)
    backoff_seconds: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    vm_group: Mapped[VmGroup | None] = relationship()
    cluster: Mapped[K8sCluster | None] = relationship()
    tenant: Mapped[Tenant] = relationship()

    __table_args__ = (
        one_of("target_type", POLICY_TARGETS),
        one_of("mode", POLICY_MODES),
        CheckConstraint(
            "(target_type = 'vm_group' AND vm_group_id IS NOT NULL AND k8s_cluster_id IS NULL)"
            " OR (target_type = 'cluster' AND k8s_cluster_id IS NOT NULL"
            " AND vm_group_id IS NULL)",
            name="one_target",
        ),
        CheckConstraint("min_size >= 0 AND max_size >= min_size", name="size_range"),
        CheckConstraint("target > 0", name="target_positive"),
        CheckConstraint("tolerance >= 0 AND tolerance < 1", name="tolerance_range"),
        CheckConstraint(
            "scale_down_stabilization_seconds >= 0 AND warmup_seconds >= 0", name="windows_nonneg"
        ),
        CheckConstraint("backoff_seconds >= 0", name="backoff_nonneg"),
        Index("ix_scaling_policy_created_at", "created_at"),
    )

    @property
    def target_id(self) -> int:
        return self.vm_group_id if self.target_type == "vm_group" else self.k8s_cluster_id

    @property
    def target_name(self) -> str:
        target = self.vm_group if self.target_type == "vm_group" else self.cluster
        return target.name if target is not None else ""


class ScalingDecision(Timestamped, db.Model):
    """What one evaluation of a policy wanted and did, with everything it was based on.
    The same decision taken again (same action, outcome, sizes and limits) updates its row
    (``repeats``, ``last_seen_at``) instead of adding one every 30 s."""

    __tablename__ = "scaling_decision"

    policy_id: Mapped[int] = mapped_column(ForeignKey("scaling_policy.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(64))
    target: Mapped[float | None] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(default=0)
    sample_age_seconds: Mapped[float | None] = mapped_column(Float)
    current: Mapped[int] = mapped_column()
    raw_desired: Mapped[int] = mapped_column()
    desired: Mapped[int] = mapped_column()
    # The rules that changed the formula's answer: "min", "max", "tolerance",
    # "stabilization", "warmup", "missing_data", "no_data", "backoff".
    limits: Mapped[list] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text, default="")
    # A refusal by the scheduler: its code, message, details (numbers) and suggestions.
    refusal: Mapped[dict | None] = mapped_column(JSON)
    # Per member: value, sample age, and whether it was warming up or had no sample.
    inputs: Mapped[dict] = mapped_column(JSON, default=dict)
    # The provisioning jobs it queued.
    jobs: Mapped[list] = mapped_column(JSON, default=list)
    repeats: Mapped[int] = mapped_column(default=1)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)

    policy: Mapped[ScalingPolicy] = relationship()

    __table_args__ = (
        one_of("source", DECISION_SOURCES),
        one_of("mode", POLICY_MODES),
        one_of("action", DECISION_ACTIONS),
        one_of("outcome", DECISION_OUTCOMES),
        CheckConstraint("repeats >= 1", name="repeats_positive"),
        Index("ix_scaling_decision_policy", "policy_id", "id"),
    )
