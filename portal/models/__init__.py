"""The data model of SPEC section 2, one module per area."""

from portal.extensions import db
from portal.models import ddl
from portal.models.automation import (
    DELIVERY_STATUSES,
    IDEMPOTENCY_STATES,
    WEBHOOK_EVENTS,
    ClusterKubeconfig,
    ControllerLease,
    IdempotencyKey,
    Webhook,
    WebhookDelivery,
)
from portal.models.autoscaling import (
    DECISION_ACTIONS,
    DECISION_OUTCOMES,
    POLICY_MODES,
    POLICY_TARGETS,
    ScalingDecision,
    ScalingPolicy,
    VmGroup,
    VmGroupMember,
)
from portal.models.base import utcnow
from portal.models.compute import (
    HOLDING_STATUSES,
    VM_ROLES,
    VM_STATUSES,
    VirtualMachine,
    VirtualMachineSpecification,
)
from portal.models.inventory import (
    BAREMETAL_STATUSES,
    DIMENSIONS,
    PLANNED_COLUMNS,
    Baremetal,
    BaremetalGroup,
    HostsVersion,
    Rack,
)
from portal.models.kubernetes import (
    CLUSTER_STATUSES,
    MESH_ROLES,
    MESH_STATUSES,
    MESH_TYPES,
    PLUGIN_CATEGORIES,
    PLUGIN_STATUSES,
    BastionClusterAssociation,
    K8sCluster,
    K8sClusterPlugin,
    K8sClusterToServiceMesh,
    ServiceMesh,
)
from portal.models.maintainers import (
    ASSIGNABLE_TYPES,
    MAINTAINER_STATUSES,
    Maintainer,
    MaintainerGroup,
    MaintainerToMaintainerGroup,
    ResourceMaintainer,
)
from portal.models.metrics import (
    AGGREGATE_SCOPES,
    ALL_METRICS,
    MACHINE_METRICS,
    METRIC_OBJECT_TYPES,
    METRICS_BY_TYPE,
    AgentPresence,
    MetricRollup,
    metric_1d,
    metric_15m,
    metric_aggregate_1d,
    metric_aggregate_1m,
    metric_aggregate_15m,
    metric_latest,
    metric_raw,
)
from portal.models.operations import (
    JOB_ACTIONS,
    JOB_STATUSES,
    LIVE_JOB_STATUSES,
    AuditEvent,
    ProvisionJob,
)
from portal.models.tenancy import BaremetalGroupTenantQuota, Tenant
from portal.models.users import ApiToken, LoginThrottle, TenantAdmin, User

ddl.listen(db.metadata)

__all__ = [
    "DELIVERY_STATUSES", "IDEMPOTENCY_STATES", "WEBHOOK_EVENTS",
    "DECISION_ACTIONS", "DECISION_OUTCOMES", "POLICY_MODES", "POLICY_TARGETS",
    "ScalingDecision", "ScalingPolicy", "VmGroup", "VmGroupMember",
    "ClusterKubeconfig", "ControllerLease", "IdempotencyKey", "Webhook", "WebhookDelivery",
    "ASSIGNABLE_TYPES", "BAREMETAL_STATUSES", "CLUSTER_STATUSES", "DIMENSIONS",
    "HOLDING_STATUSES", "JOB_ACTIONS", "JOB_STATUSES", "LIVE_JOB_STATUSES",
    "MAINTAINER_STATUSES", "MESH_ROLES", "MESH_STATUSES", "MESH_TYPES", "PLUGIN_CATEGORIES",
    "PLUGIN_STATUSES", "VM_ROLES", "VM_STATUSES",
    "AGGREGATE_SCOPES", "ALL_METRICS", "MACHINE_METRICS", "METRIC_OBJECT_TYPES",
    "METRICS_BY_TYPE",
    "AgentPresence", "MetricRollup", "metric_1d", "metric_aggregate_1d", "metric_aggregate_1m",
    "metric_aggregate_15m", "metric_15m", "metric_latest", "metric_raw",
    "PLANNED_COLUMNS", "HostsVersion",
    "ApiToken", "AuditEvent", "Baremetal", "BaremetalGroup", "BaremetalGroupTenantQuota",
    "BastionClusterAssociation", "K8sCluster", "K8sClusterPlugin", "K8sClusterToServiceMesh",
    "LoginThrottle", "Maintainer", "MaintainerGroup", "MaintainerToMaintainerGroup",
    "ProvisionJob", "Rack", "ResourceMaintainer", "ServiceMesh", "Tenant", "TenantAdmin",
    "User", "VirtualMachine", "VirtualMachineSpecification", "utcnow",
]
