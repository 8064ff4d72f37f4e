"""cluster-autoscaler's ``externalgrpc`` cloud provider, served by the portal (SPEC 8.5).

Kubernetes worker pools scale the way Kubernetes does it: a stock cluster-autoscaler in
the tenant's cluster sees pods that cannot be scheduled and asks its cloud provider for
nodes. Here the portal is that provider, for one cluster per server process
(``flask --app wsgi autoscaler serve-grpc --cluster ID``): a cluster-autoscaler of one
tenant must never see, or grow, another tenant's node groups.

- node group = the cluster's worker pool, served while its scaling policy is not ``off``,
  with the policy's min and max; id ``cluster-<id>-workers``;
- instances = worker VMs, id ``portal://vm/<vm id>`` (the provider ID the kubelet should
  carry); node name = VM name is accepted too. provisioning → creating, active → running,
  deleting → deleting, error → creating with an error (class "other");
- IncreaseSize places the new workers through the scheduler, all or none; a refusal by
  quota or capacity answers RESOURCE_EXHAUSTED with the scheduler's explanation, backs off
  (5 min doubling to 30), and until the backoff ends the refused nodes show as instances
  failing with the out-of-resources error class — how cluster-autoscaler learns of
  stockouts from clouds, and what its status ConfigMap then explains;
- DeleteNodes deletes the named workers through the guarded lifecycle; DecreaseTargetSize
  gives up workers not built yet, never an existing node;
- TemplateNodeInfo describes a new worker from the pool's flavor (scale from zero);
- a policy in ``dry_run`` records what it would do and answers FAILED_PRECONDITION.

Every change it is asked for is recorded as a decision of the cluster's policy (source
``cluster-autoscaler``), in the transaction of the change.
"""

from __future__ import annotations

import logging
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime

import grpc
from flask import Flask
from sqlalchemy import select

from portal.autoscaling import engine
from portal.autoscaling import service as policies
from portal.autoscaling.protos import externalgrpc_pb2 as pb
from portal.autoscaling.protos import externalgrpc_pb2_grpc as pb_grpc
from portal.autoscaling.protos import k8s_node_pb2 as k8s
from portal.clusters import service as clusters
from portal.extensions import begin_write, db
from portal.models import K8sCluster, ScalingDecision, ScalingPolicy, VirtualMachine, utcnow
from portal.provisioning import messages as words
from portal.scheduler.reservation import PlacementRefused

log = logging.getLogger(__name__)

PROVIDER_ID = "portal://vm/{}"
PLACEHOLDER_ID = "portal://refused/{}/{}"
# cluster-autoscaler's InstanceErrorClass values.
OUT_OF_RESOURCES, OTHER_ERROR = 1, 99
State = pb.InstanceStatus.InstanceState
STATES = {"pending": State.instanceCreating, "provisioning": State.instanceCreating,
          "error": State.instanceCreating, "active": State.instanceRunning,
          "migrating": State.instanceRunning, "deleting": State.instanceDeleting}
COUNTED = ("pending", "provisioning", "active", "error", "migrating")
REFUSAL_STATUS = {"quota_exceeded": grpc.StatusCode.RESOURCE_EXHAUSTED,
                  "insufficient_capacity": grpc.StatusCode.RESOURCE_EXHAUSTED,
                  "no_quota": grpc.StatusCode.RESOURCE_EXHAUSTED}
N_ = engine.N_


class Refuse(Exception):
    """Answer the call with this gRPC status and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Pool:
    cluster: K8sCluster
    policy: ScalingPolicy
    workers: list[VirtualMachine]

    @property
    def counted(self) -> list[VirtualMachine]:
        return [vm for vm in self.workers if vm.status in COUNTED]

    @property
    def target_size(self) -> int:
        return len(self.counted)


def node_group_id(cluster_id: int) -> str:
    return f"cluster-{cluster_id}-workers"


class Provider(pb_grpc.CloudProviderServicer):
    """The CloudProvider service; its methods carry the protocol's own names."""

    def __init__(self, app: Flask, cluster_id: int) -> None:
        self.app, self.cluster_id = app, cluster_id
        self.group_id = node_group_id(cluster_id)

    # --------------------------------------------------------------------- plumbing

    def _call(self, context, work, *args):
        """Run ``work`` in its own app context and database session; a Refuse becomes
        the call's gRPC status."""
        with self.app.app_context():
            try:
                return work(*args)
            except Refuse as refused:
                db.session.rollback()
                context.abort(refused.code, refused.message)
            except Exception:
                db.session.rollback()
                log.exception("externalgrpc call failed")
                context.abort(grpc.StatusCode.INTERNAL, "The portal failed to answer.")
            finally:
                db.session.remove()

    def _pool(self, lock: bool = False) -> Pool | None:
        cluster = db.session.get(K8sCluster, self.cluster_id)
        if cluster is None or cluster.status in ("deleting", "deleted"):
            return None
        stmt = select(ScalingPolicy).where(ScalingPolicy.k8s_cluster_id == cluster.id)
        if lock:
            stmt = stmt.with_for_update()
        policy = db.session.scalar(stmt)
        if policy is None or policy.mode == "off":
            return None
        workers = list(db.session.scalars(
            select(VirtualMachine).where(VirtualMachine.k8s_cluster_id == cluster.id,
                                         VirtualMachine.role == "worker",
                                         VirtualMachine.status != "deleted")
            .order_by(VirtualMachine.id)))
        return Pool(cluster, policy, workers)

    def _served(self, group_id: str, lock: bool = False) -> Pool:
        pool = self._pool(lock) if group_id == self.group_id else None
        if pool is None:
            raise Refuse(grpc.StatusCode.NOT_FOUND,
                         f"No node group {group_id!r} here: this provider serves "
                         f"{self.group_id} while its cluster's scaling policy is not off.")
        return pool

    def _node_group(self, pool: Pool) -> pb.NodeGroup:
        flavor = _worker_flavor(pool)
        debug = (f"{pool.cluster.name} workers (portal cluster {pool.cluster.id}): "
                 f"{pool.target_size} nodes, flavor {flavor.name if flavor else 'unknown'}, "
                 f"policy {pool.policy.mode} {pool.policy.min_size}-{pool.policy.max_size}")
        return pb.NodeGroup(id=self.group_id, minSize=pool.policy.min_size,
                            maxSize=pool.policy.max_size, debug=debug)

    # ----------------------------------------------------------------- the protocol

    def NodeGroups(self, request, context):
        def work():
            pool = self._pool()
            return pb.NodeGroupsResponse(nodeGroups=[self._node_group(pool)] if pool else [])
        return self._call(context, work)

    def NodeGroupForNode(self, request, context):
        def work():
            pool = self._pool()
            if pool is not None and _worker_of(pool, request.node) is not None:
                return pb.NodeGroupForNodeResponse(nodeGroup=self._node_group(pool))
            # Control planes, other clusters' nodes, unknown nodes: not ours to scale.
            return pb.NodeGroupForNodeResponse(nodeGroup=pb.NodeGroup(id=""))
        return self._call(context, work)

    def NodeGroupTargetSize(self, request, context):
        def work():
            return pb.NodeGroupTargetSizeResponse(targetSize=self._served(request.id).target_size)
        return self._call(context, work)

    def NodeGroupIncreaseSize(self, request, context):
        return self._call(context, self._increase, request.id, request.delta)

    def _increase(self, group_id: str, delta: int):
        if delta <= 0:
            raise Refuse(grpc.StatusCode.INVALID_ARGUMENT,
                         f"delta must be positive (got {delta}).")
        begin_write()
        pool = self._served(group_id, lock=True)
        policy, current, now = pool.policy, pool.target_size, utcnow()
        wanted = current + delta
        asked = (N_("cluster-autoscaler asked for %(delta)s more workers (%(current)s → "
                    "%(wanted)s)."), {"delta": delta, "current": current, "wanted": wanted})
        facts = dict(source="cluster-autoscaler", action="scale_up", current=current,
                     raw_desired=wanted)
        if wanted > policy.max_size:
            note = (N_("Capped at the policy's maximum of %(max)s."), {"max": policy.max_size})
            self._decide(policy, now, outcome="held", desired=current, limits=["max"],
                         notes=[asked, note], **facts)
            raise Refuse(grpc.StatusCode.FAILED_PRECONDITION,
                         f"size increase too large: {current} + {delta} is above the "
                         f"policy's maximum of {policy.max_size}.")
        if policies.backing_off(policy, now):
            last = _last_refusal(policy)
            note = (N_("Backing off after a refused scale-up: next attempt after "
                       "%(until)s UTC."),
                    {"until": policy.backoff_until.isoformat(sep=" ", timespec="minutes")})
            self._decide(policy, now, outcome="held", desired=current, limits=["backoff"],
                         notes=[asked, note], **facts)
            raise Refuse(grpc.StatusCode.RESOURCE_EXHAUSTED,
                         f"Backing off until {policy.backoff_until:%Y-%m-%d %H:%M} UTC after: "
                         f"{last.refusal['message'] if last and last.refusal else 'a refusal'}")
        if policy.mode == "dry_run":
            self._decide(policy, now, outcome="dry_run", desired=wanted, notes=[asked], **facts)
            raise Refuse(grpc.StatusCode.FAILED_PRECONDITION,
                         f"The scaling policy of {pool.cluster.name} is in dry_run: the "
                         "increase is recorded, not done.")
        cluster, policy_id = pool.cluster, policy.id
        db.session.commit()  # scale_workers owns its transaction

        def decided(vms):
            fresh = db.session.get(ScalingPolicy, policy_id)
            fresh.backoff_until, fresh.backoff_seconds = None, 0
            policies.record_decision(fresh, now, outcome="acted", desired=wanted,
                                     notes=[asked], vms=vms, **facts)

        try:
            clusters.scale_workers(db.session.get(K8sCluster, cluster.id), wanted, None,
                                   and_then=decided)
        except PlacementRefused as refused:
            db.session.rollback()
            begin_write()
            policy = db.session.get(ScalingPolicy, policy_id)
            refusal = {**policies.refusal_of(refused), "delta": delta}
            notes = [asked, (N_("The scheduler refused: %(message)s"),
                             {"message": refusal["message"]}), policies.back_off(policy, now)]
            self._decide(policy, now, outcome="refused", desired=current, notes=notes,
                         refusal=refusal, **facts)
            status = REFUSAL_STATUS.get(refusal["code"], grpc.StatusCode.FAILED_PRECONDITION)
            raise Refuse(status, refusal["message"]) from None
        except clusters.ClusterError as error:
            raise Refuse(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from None
        return pb.NodeGroupIncreaseSizeResponse()

    def _decide(self, policy, now, **fields) -> ScalingDecision:
        decision = policies.record_decision(policy, now, **fields)
        db.session.commit()
        return decision

    def NodeGroupDeleteNodes(self, request, context):
        return self._call(context, self._delete, request.id, list(request.nodes))

    def _delete(self, group_id: str, nodes):
        begin_write()
        pool = self._served(group_id, lock=True)
        going, unknown = [], []
        for node in nodes:
            if _clear_placeholder(pool, node.providerID):
                continue
            vm = _worker_of(pool, node)
            if vm is None or vm.status not in COUNTED:
                unknown.append(node.name or node.providerID)
            elif vm not in going:
                going.append(vm)
        if unknown:
            raise Refuse(grpc.StatusCode.INVALID_ARGUMENT,
                         f"Not workers of node group {self.group_id} (or already being "
                         f"deleted): {', '.join(unknown)}.")
        if not going:
            db.session.commit()
            return pb.NodeGroupDeleteNodesResponse()
        return self._shrink(pool, going, N_("cluster-autoscaler asked to delete %(names)s."))

    def _shrink(self, pool: Pool, going: list[VirtualMachine], message: str):
        policy, current, now = pool.policy, pool.target_size, utcnow()
        wanted = current - len(going)
        asked = (message, {"names": ", ".join(vm.name for vm in going), "current": current,
                           "wanted": wanted})
        facts = dict(source="cluster-autoscaler", action="scale_down", current=current,
                     raw_desired=wanted)
        if wanted < policy.min_size:
            note = (N_("Raised to the policy's minimum of %(min)s."), {"min": policy.min_size})
            self._decide(policy, now, outcome="held", desired=current, limits=["min"],
                         notes=[asked, note], **facts)
            raise Refuse(grpc.StatusCode.FAILED_PRECONDITION,
                         f"min size reached: deleting {len(going)} of {current} workers would "
                         f"go below the policy's minimum of {policy.min_size}.")
        if policy.mode == "dry_run":
            self._decide(policy, now, outcome="dry_run", desired=wanted, notes=[asked], **facts)
            raise Refuse(grpc.StatusCode.FAILED_PRECONDITION,
                         f"The scaling policy of {pool.cluster.name} is in dry_run: the "
                         "deletion is recorded, not done.")
        cluster, policy_id = pool.cluster, policy.id

        def decided(vms):
            policies.record_decision(db.session.get(ScalingPolicy, policy_id), now,
                                     outcome="acted", desired=wanted, notes=[asked], vms=vms,
                                     **facts)

        try:
            clusters.scale_workers(cluster, wanted, None, remove=[vm.id for vm in going],
                                   and_then=decided)
        except clusters.ClusterError as error:
            raise Refuse(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from None
        return pb.NodeGroupDeleteNodesResponse()

    def NodeGroupDecreaseTargetSize(self, request, context):
        def work():
            if request.delta >= 0:
                raise Refuse(grpc.StatusCode.INVALID_ARGUMENT,
                             f"delta must be negative (got {request.delta}).")
            begin_write()
            pool = self._served(request.id, lock=True)
            unbuilt = [vm for vm in reversed(pool.counted)
                       if vm.status in ("pending", "provisioning", "error")]
            if len(unbuilt) < -request.delta:
                raise Refuse(grpc.StatusCode.FAILED_PRECONDITION,
                             f"attempt to delete existing nodes: only {len(unbuilt)} requested "
                             f"workers are not built yet, {-request.delta} asked.")
            self._shrink(pool, unbuilt[:-request.delta],
                         N_("cluster-autoscaler gave up %(names)s, not built yet."))
            return pb.NodeGroupDecreaseTargetSizeResponse()
        return self._call(context, work)

    def NodeGroupNodes(self, request, context):
        def work():
            pool = self._served(request.id)
            instances = []
            for vm in pool.workers:
                status = pb.InstanceStatus(instanceState=STATES[vm.status])
                if vm.status == "error":
                    status.errorInfo.CopyFrom(pb.InstanceErrorInfo(
                        errorCode="provisioningFailed", instanceErrorClass=OTHER_ERROR,
                        errorMessage=vm.status_message or words.PROVISIONING_FAILED()))
                instances.append(pb.Instance(id=PROVIDER_ID.format(vm.id), status=status))
            instances += _placeholders(pool, utcnow())
            return pb.NodeGroupNodesResponse(instances=instances)
        return self._call(context, work)

    def NodeGroupTemplateNodeInfo(self, request, context):
        def work():
            pool = self._served(request.id)
            flavor = _worker_flavor(pool)
            if flavor is None:
                raise Refuse(grpc.StatusCode.FAILED_PRECONDITION,
                             f"Cluster {pool.cluster.name} has no worker flavor yet.")
            return pb.NodeGroupTemplateNodeInfoResponse(
                nodeBytes=template_node(pool.cluster, self.group_id, flavor).SerializeToString())
        return self._call(context, work)

    def NodeGroupGetOptions(self, request, context):
        def work():
            pool = self._served(request.id)
            options = pb.NodeGroupAutoscalingOptions()
            options.CopyFrom(request.defaults)
            # The policy's scale-down window is how long a node must be unneeded.
            options.scaleDownUnneededDuration.FromSeconds(
                pool.policy.scale_down_stabilization_seconds)
            return pb.NodeGroupAutoscalingOptionsResponse(nodeGroupAutoscalingOptions=options)
        return self._call(context, work)

    def Refresh(self, request, context):
        return pb.RefreshResponse()  # every answer reads the database afresh: nothing cached

    def Cleanup(self, request, context):
        return pb.CleanupResponse()

    def GPULabel(self, request, context):
        return pb.GPULabelResponse(label="portal.io/gpu")

    def GetAvailableGPUTypes(self, request, context):
        return pb.GetAvailableGPUTypesResponse()

    def PricingNodePrice(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "The portal has no prices.")

    def PricingPodPrice(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "The portal has no prices.")


# ------------------------------------------------------------------------------ helpers


def _worker_of(pool: Pool, node) -> VirtualMachine | None:
    """The pool's worker a node names: by provider ID, else by node name."""
    if node.providerID.startswith("portal://vm/"):
        key = node.providerID.removeprefix("portal://vm/")
        return next((vm for vm in pool.workers if str(vm.id) == key), None)
    if node.providerID:
        return None
    return next((vm for vm in pool.workers if vm.name == node.name), None)


def _worker_flavor(pool: Pool):
    if pool.workers:
        return pool.workers[-1].spec
    from portal.clusters.service import _last_worker_flavor

    return _last_worker_flavor(pool.cluster)


def _last_refusal(policy: ScalingPolicy) -> ScalingDecision | None:
    return db.session.scalar(
        select(ScalingDecision).where(ScalingDecision.policy_id == policy.id,
                                      ScalingDecision.outcome == "refused")
        .order_by(ScalingDecision.id.desc()).limit(1))


def _placeholders(pool: Pool, now: datetime) -> list[pb.Instance]:
    """The nodes of the last refused increase, while its backoff lasts: instances that
    failed to be created for lack of resources."""
    if not policies.backing_off(pool.policy, now):
        return []
    last = _last_refusal(pool.policy)
    if last is None or not last.refusal or last.inputs.get("placeholders_cleared"):
        return []
    info = pb.InstanceErrorInfo(errorCode=last.refusal["code"].upper(),
                                errorMessage=last.refusal["message"],
                                instanceErrorClass=OUT_OF_RESOURCES)
    return [pb.Instance(id=PLACEHOLDER_ID.format(last.id, i),
                        status=pb.InstanceStatus(instanceState=State.instanceCreating,
                                                 errorInfo=info))
            for i in range(1, int(last.refusal.get("delta", 1)) + 1)]


def _clear_placeholder(pool: Pool, provider_id: str) -> bool:
    """cluster-autoscaler deletes instances that failed to be created: for a refused
    node that only means not listing it again."""
    if not provider_id.startswith("portal://refused/"):
        return False
    last = _last_refusal(pool.policy)
    if last is not None and provider_id.startswith(f"portal://refused/{last.id}/"):
        last.inputs = {**last.inputs, "placeholders_cleared": True}
    return True


def template_node(cluster: K8sCluster, group_id: str, flavor) -> k8s.Node:
    """A worker as it looks when it has just joined: the flavor's capacity, ready."""
    name = f"{cluster.name}-worker-template"
    quantities = {"cpu": str(flavor.cpu), "memory": f"{flavor.memory}Gi",
                  "ephemeral-storage": f"{flavor.storage}Gi", "pods": "110"}
    node = k8s.Node()
    node.metadata.name = name
    node.metadata.labels.update({
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": flavor.name,
        "portal.io/node-group": group_id, "portal.io/cluster": cluster.name,
    })
    for key, value in quantities.items():
        node.status.capacity[key].string = value
        node.status.allocatable[key].string = value
    node.status.conditions.add(type="Ready", status="True", reason="KubeletReady",
                               message="template node")
    node.status.nodeInfo.kubeletVersion = f"v{cluster.version}"
    node.status.nodeInfo.operatingSystem = "linux"
    node.status.nodeInfo.architecture = "amd64"
    return node


def build_server(app: Flask, cluster_id: int, bind: str, *, tls_cert: bytes | None = None,
                 tls_key: bytes | None = None, client_ca: bytes | None = None,
                 workers: int = 8) -> tuple[grpc.Server, int]:
    """A gRPC server for one cluster's worker pool, not started; and its port. With a
    certificate and key it speaks TLS; with a client CA too, only clients holding a
    certificate that CA signed get in (mTLS)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    pb_grpc.add_CloudProviderServicer_to_server(Provider(app, cluster_id), server)
    if tls_cert is not None and tls_key is not None:
        credentials = grpc.ssl_server_credentials(
            [(tls_key, tls_cert)], root_certificates=client_ca,
            require_client_auth=client_ca is not None)
        port = server.add_secure_port(bind, credentials)
    else:
        port = server.add_insecure_port(bind)
    if port == 0:
        raise OSError(f"cannot listen on {bind}")
    return server, port
