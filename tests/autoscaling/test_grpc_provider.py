"""cluster-autoscaler's externalgrpc protocol, driven over a real gRPC channel the way
cluster-autoscaler drives its cloud provider: a scripted session (refresh, node groups,
target size, template node, options, increase, nodes, node group for node, delete nodes,
a refused increase beyond quota), then mTLS."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portal.autoscaling import service
from portal.autoscaling.protos import externalgrpc_pb2 as pb
from portal.autoscaling.protos import externalgrpc_pb2_grpc as pb_grpc
from portal.autoscaling.protos import k8s_node_pb2 as k8s
from portal.autoscaling.provider import build_server
from portal.autoscaling.service import PolicyFields
from portal.extensions import db
from portal.models import ScalingDecision
from tests import factories as f
from tests.provisioning.invariants import lifecycle_violations

State = pb.InstanceStatus.InstanceState


@pytest.fixture
def cluster(estate):
    cluster = f.cluster(estate.tenant, estate.group, name="shop-k8s")
    f.vm(estate.tenant, estate.servers[0], estate.flavor, name="shop-k8s-cp-1",
         role="control-plane", cluster=cluster)
    f.vm(estate.tenant, estate.servers[1], estate.flavor, name="shop-k8s-worker-1",
         role="worker", cluster=cluster)
    db.session.commit()
    return cluster


@pytest.fixture
def provider(estate, cluster):
    server, port = build_server(estate.app, cluster.id, "127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield CA(pb_grpc.CloudProviderStub(channel), f"cluster-{cluster.id}-workers")
    channel.close()
    server.stop(grace=None).wait()


class CA:
    """What cluster-autoscaler sends, one call at a time (5 s, its default timeout)."""

    def __init__(self, stub, group_id) -> None:
        self.stub, self.id = stub, group_id

    def __call__(self, method, request):
        try:
            return getattr(self.stub, method)(request, timeout=5)
        finally:
            db.session.rollback()  # read what the provider committed

    def refused(self, method, request) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as error:
            self(method, request)
        return error.value

    def nodes(self):
        return [(i.id, i.status.instanceState)
                for i in self("NodeGroupNodes", pb.NodeGroupNodesRequest(id=self.id)).instances]

    def target(self):
        return self("NodeGroupTargetSize", pb.NodeGroupTargetSizeRequest(id=self.id)).targetSize


def worker_ids(cluster):
    db.session.expire_all()
    return sorted(vm.id for vm in cluster.nodes if vm.role == "worker" and vm.status != "deleted")


def decisions(cluster):
    return [(d.action, d.outcome, d.current, d.desired) for d in
            db.session.query(ScalingDecision).order_by(ScalingDecision.id)]


def test_a_scripted_cluster_autoscaler_session(estate, cluster, provider):
    ca = provider
    assert ca("Refresh", pb.RefreshRequest()) == pb.RefreshResponse()
    # Without a policy the pool is not offered.
    assert list(ca("NodeGroups", pb.NodeGroupsRequest()).nodeGroups) == []
    policy = service.create_policy(estate.operator, PolicyFields(
        target_type="cluster", target_id=cluster.id, min=1, max=4, mode="active"))
    (group,) = ca("NodeGroups", pb.NodeGroupsRequest()).nodeGroups
    assert (group.id, group.minSize, group.maxSize) == (ca.id, 1, 4)
    assert "shop-k8s workers" in group.debug
    assert ca.target() == 1

    template = ca("NodeGroupTemplateNodeInfo", pb.NodeGroupTemplateNodeInfoRequest(id=ca.id))
    node = k8s.Node.FromString(template.nodeBytes)
    assert node.status.capacity["cpu"].string == "4"
    assert node.status.allocatable["memory"].string == "8Gi"
    assert node.metadata.labels["node.kubernetes.io/instance-type"] == "std-4"
    assert [(c.type, c.status) for c in node.status.conditions] == [("Ready", "True")]

    defaults = pb.NodeGroupAutoscalingOptions(scaleDownUtilizationThreshold=0.5)
    defaults.scaleDownUnneededDuration.FromSeconds(600)
    options = ca("NodeGroupGetOptions", pb.NodeGroupAutoscalingOptionsRequest(
        id=ca.id, defaults=defaults)).nodeGroupAutoscalingOptions
    assert options.scaleDownUtilizationThreshold == 0.5
    assert options.scaleDownUnneededDuration.seconds == 300  # the policy's window

    ca("NodeGroupIncreaseSize", pb.NodeGroupIncreaseSizeRequest(id=ca.id, delta=2))
    assert ca.target() == 3
    states = dict(ca.nodes())
    assert sorted(states.values()) == [State.instanceRunning, State.instanceCreating,
                                       State.instanceCreating]
    assert decisions(cluster) == [("scale_up", "acted", 1, 3)]
    assert lifecycle_violations() == []
    estate.run_agent()
    assert {s for _, s in ca.nodes()} == {State.instanceRunning}

    first, *_, newest = worker_ids(cluster)
    found = ca("NodeGroupForNode", pb.NodeGroupForNodeRequest(
        node=pb.ExternalGrpcNode(providerID=f"portal://vm/{newest}", name="whatever")))
    assert found.nodeGroup.id == ca.id
    control_plane = ca("NodeGroupForNode", pb.NodeGroupForNodeRequest(
        node=pb.ExternalGrpcNode(name="shop-k8s-cp-1")))
    assert control_plane.nodeGroup.id == ""

    ca("NodeGroupDeleteNodes", pb.NodeGroupDeleteNodesRequest(
        id=ca.id, nodes=[pb.ExternalGrpcNode(providerID=f"portal://vm/{newest}")]))
    assert ca.target() == 2
    assert dict(ca.nodes())[f"portal://vm/{newest}"] == State.instanceDeleting
    estate.run_agent()
    assert len(ca.nodes()) == 2 and lifecycle_violations() == []

    too_many = ca.refused("NodeGroupIncreaseSize",
                          pb.NodeGroupIncreaseSizeRequest(id=ca.id, delta=3))
    assert too_many.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "maximum of 4" in too_many.details()
    below_min = ca.refused("NodeGroupDeleteNodes", pb.NodeGroupDeleteNodesRequest(
        id=ca.id, nodes=[pb.ExternalGrpcNode(providerID=f"portal://vm/{i}")
                         for i in worker_ids(cluster)]))
    assert below_min.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "minimum of 1" in below_min.details()

    # Quota for one more worker only: asking for two is refused, explained, backed off.
    estate.quota.cpu_limit = 16
    db.session.commit()
    refused = ca.refused("NodeGroupIncreaseSize",
                         pb.NodeGroupIncreaseSizeRequest(id=ca.id, delta=2))
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "needs 8 cores, 4 cores of quota left" in refused.details()
    decision = db.session.query(ScalingDecision).order_by(ScalingDecision.id.desc()).first()
    assert (decision.source, decision.outcome, decision.refusal["code"]) == (
        "cluster-autoscaler", "refused", "quota_exceeded")
    assert decision.refusal["details"]["dimension"] == "cpu"
    assert (decision.refusal["details"]["requested"], decision.refusal["details"]["headroom"]) == (
        8, 4)
    db.session.refresh(policy)
    assert policy.backoff_seconds == 300
    assert ca.target() == 2 and lifecycle_violations() == []
    # The refused nodes show as instances that failed for lack of resources …
    failed = [i for i in ca("NodeGroupNodes", pb.NodeGroupNodesRequest(id=ca.id)).instances
              if i.status.errorInfo.errorCode]
    assert len(failed) == 2
    assert {(i.status.errorInfo.instanceErrorClass, i.status.errorInfo.errorCode)
            for i in failed} == {(1, "QUOTA_EXCEEDED")}
    assert failed[0].status.errorInfo.errorMessage == decision.refusal["message"]
    # … which cluster-autoscaler deletes: they are gone, the workers are untouched.
    ca("NodeGroupDeleteNodes", pb.NodeGroupDeleteNodesRequest(
        id=ca.id, nodes=[pb.ExternalGrpcNode(providerID=i.id) for i in failed]))
    assert len(ca.nodes()) == 2
    backing_off = ca.refused("NodeGroupIncreaseSize",
                             pb.NodeGroupIncreaseSizeRequest(id=ca.id, delta=1))
    assert backing_off.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert backing_off.details().startswith("Backing off until")

    unknown = ca.refused("NodeGroupTargetSize", pb.NodeGroupTargetSizeRequest(id="other"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    priced = ca.refused("PricingNodePrice", pb.PricingNodePriceRequest())
    assert priced.code() == grpc.StatusCode.UNIMPLEMENTED
    assert decisions(cluster)[:2] == [("scale_up", "acted", 1, 3), ("scale_down", "acted", 3, 2)]


def test_dry_run_records_and_refuses_and_off_hides_the_pool(estate, cluster, provider):
    ca = provider
    policy = service.create_policy(estate.operator, PolicyFields(
        target_type="cluster", target_id=cluster.id, min=0, max=5))
    refused = ca.refused("NodeGroupIncreaseSize",
                         pb.NodeGroupIncreaseSizeRequest(id=ca.id, delta=1))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "dry_run" in refused.details()
    assert decisions(cluster) == [("scale_up", "dry_run", 1, 2)]
    assert ca.target() == 1
    # A worker not built yet is given up; a built one is not.
    service.update_policy(policy, estate.operator, PolicyFields(mode="active"))
    existing = ca.refused("NodeGroupDecreaseTargetSize",
                          pb.NodeGroupDecreaseTargetSizeRequest(id=ca.id, delta=-1))
    assert "attempt to delete existing nodes" in existing.details()
    ca("NodeGroupIncreaseSize", pb.NodeGroupIncreaseSizeRequest(id=ca.id, delta=1))
    ca("NodeGroupDecreaseTargetSize", pb.NodeGroupDecreaseTargetSizeRequest(id=ca.id, delta=-1))
    assert ca.target() == 1 and lifecycle_violations() == []
    service.update_policy(policy, estate.operator, PolicyFields(mode="off"))
    assert list(ca("NodeGroups", pb.NodeGroupsRequest()).nodeGroups) == []


def _certificate(name, key, issuer=None, issuer_key=None, ca=False):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def _key():
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())


def test_mutual_tls_lets_in_only_clients_the_ca_signed(estate, cluster):
    ca_key, _ = _key()
    ca_pem = _certificate("portal test CA", ca_key, ca=True)
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    server_key, server_key_pem = _key()
    client_key, client_key_pem = _key()
    server_pem = _certificate("localhost", server_key, ca_cert, ca_key)
    client_pem = _certificate("cluster-autoscaler", client_key, ca_cert, ca_key)
    server, port = build_server(estate.app, cluster.id, "127.0.0.1:0", tls_cert=server_pem,
                                tls_key=server_key_pem, client_ca=ca_pem)
    server.start()
    try:
        def ask(credentials):
            channel = grpc.secure_channel(f"localhost:{port}", credentials)
            try:
                return pb_grpc.CloudProviderStub(channel).Refresh(pb.RefreshRequest(), timeout=5)
            finally:
                channel.close()

        assert ask(grpc.ssl_channel_credentials(ca_pem, client_key_pem, client_pem)) == (
            pb.RefreshResponse())
        with pytest.raises(grpc.RpcError) as anonymous:
            ask(grpc.ssl_channel_credentials(ca_pem))
        assert anonymous.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.RpcError):
            pb_grpc.CloudProviderStub(grpc.insecure_channel(f"127.0.0.1:{port}")).Refresh(
                pb.RefreshRequest(), timeout=5)
    finally:
        server.stop(grace=None).wait()


def test_serve_grpc_offers_the_pool_until_it_is_stopped(estate, cluster):
    """`flask --app wsgi autoscaler serve-grpc`, as an operator starts it: it says where it
    listens once it does, answers cluster-autoscaler there, and stops on SIGTERM."""
    import select
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.api.live import free_port
    from tests.deploy.processes import portal_env

    service.create_policy(estate.operator, PolicyFields(
        target_type="cluster", target_id=cluster.id, min=1, max=4, mode="active"))
    port = free_port()
    env = portal_env(db.engine.url.render_as_string(hide_password=False))
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "autoscaler", "serve-grpc",
         "--cluster", str(cluster.id), "--bind", f"127.0.0.1:{port}"],
        cwd=Path(__file__).resolve().parents[2], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stderr], [], [], 60)
        assert ready, "serve-grpc said nothing within 60 s"
        assert server.stderr.readline().strip() == (
            f"externalgrpc provider for cluster shop-k8s (node group cluster-{cluster.id}-"
            f"workers) on 127.0.0.1:{port} (plaintext).")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            (group,) = pb_grpc.CloudProviderStub(channel).NodeGroups(
                pb.NodeGroupsRequest(), timeout=5).nodeGroups
        assert (group.id, group.minSize, group.maxSize) == (f"cluster-{cluster.id}-workers", 1, 4)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stderr.close()


@pytest.mark.parametrize("arguments, message", [
    (["--cluster", "99999"], "No cluster 99999."),
    (["--cluster", "{cluster}", "--tls-cert", "{file}"], "--tls-cert and --tls-key go together."),
    (["--cluster", "{cluster}", "--tls-client-ca", "{file}"],
     "--tls-client-ca needs --tls-cert and --tls-key."),
])
def test_serve_grpc_refuses_what_it_cannot_serve(estate, cluster, tmp_path, arguments, message):
    pem = tmp_path / "some.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    args = [a.format(cluster=cluster.id, file=pem) for a in arguments]
    result = estate.app.test_cli_runner().invoke(args=["autoscaler", "serve-grpc", *args])
    assert result.exit_code == 2 and message in result.output


def test_a_worker_that_failed_to_build_is_listed_with_its_error_and_deleted_on_request(
        estate, cluster, provider):
    """cluster-autoscaler sees a node that failed as an instance still creating with an
    error (class "other", the VM's message), and deletes it: the failed worker goes."""
    from portal.provisioning.agent import Agent, DatabaseQueue
    from portal.provisioning.drivers import SimulateDriver

    ca = provider
    service.create_policy(estate.operator, PolicyFields(
        target_type="cluster", target_id=cluster.id, min=1, max=4, mode="active"))
    ca("NodeGroupIncreaseSize", pb.NodeGroupIncreaseSizeRequest(id=ca.id, delta=1))
    failing = Agent(DatabaseQueue(estate.app), SimulateDriver(delay=0, failure_rate=1),
                    name="failing-agent")
    assert failing.run_once() == 1
    db.session.rollback()
    newest = worker_ids(cluster)[-1]
    (failed,) = [i for i in ca("NodeGroupNodes", pb.NodeGroupNodesRequest(id=ca.id)).instances
                 if i.id == f"portal://vm/{newest}"]
    assert failed.status.instanceState == State.instanceCreating
    assert (failed.status.errorInfo.instanceErrorClass, failed.status.errorInfo.errorCode) == (
        99, "provisioningFailed")
    assert "simulated failure" in failed.status.errorInfo.errorMessage
    assert ca.target() == 2 and lifecycle_violations() == []
    ca("NodeGroupDeleteNodes", pb.NodeGroupDeleteNodesRequest(
        id=ca.id, nodes=[pb.ExternalGrpcNode(providerID=failed.id)]))
    assert ca.target() == 1 and len(worker_ids(cluster)) == 1
    assert lifecycle_violations() == []
