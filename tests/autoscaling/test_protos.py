"""The externalgrpc stubs: regenerated from the committed .proto files they are the same
(a .proto change without `make protos` fails here), and the wire names and numbers that a
stock cluster-autoscaler depends on are the protocol's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from grpc_tools import protoc

from portal.autoscaling.protos import externalgrpc_pb2 as pb
from portal.autoscaling.protos import k8s_node_pb2 as k8s

ROOT = Path(__file__).resolve().parents[2]
PROTOS = Path("portal/autoscaling/protos")
GENERATED = ["externalgrpc_pb2.py", "externalgrpc_pb2.pyi", "externalgrpc_pb2_grpc.py",
             "k8s_node_pb2.py", "k8s_node_pb2.pyi"]


def test_committed_stubs_match_the_proto_files(tmp_path):
    (tmp_path / PROTOS).mkdir(parents=True)
    for name in ("externalgrpc.proto", "k8s_node.proto"):
        shutil.copy(ROOT / PROTOS / name, tmp_path / PROTOS / name)
    include = str(Path(protoc.__file__).parent / "_proto")
    for name, grpc_out in (("externalgrpc.proto", True), ("k8s_node.proto", False)):
        args = ["protoc", f"-I{tmp_path}", f"-I{include}", f"--python_out={tmp_path}",
                f"--pyi_out={tmp_path}", str(tmp_path / PROTOS / name)]
        if grpc_out:
            args.insert(3, f"--grpc_python_out={tmp_path}")
        assert protoc.main(args) == 0
    for name in GENERATED:
        assert (tmp_path / PROTOS / name).read_text() == (ROOT / PROTOS / name).read_text(), (
            f"{name} is stale: run `make protos`")


def test_the_service_is_where_cluster_autoscaler_calls_it():
    service = pb.DESCRIPTOR.services_by_name["CloudProvider"]
    assert service.full_name == "clusterautoscaler.cloudprovider.v1.externalgrpc.CloudProvider"
    assert {m.name for m in service.methods} == {
        "NodeGroups", "NodeGroupForNode", "PricingNodePrice", "PricingPodPrice", "GPULabel",
        "GetAvailableGPUTypes", "Cleanup", "Refresh", "NodeGroupTargetSize",
        "NodeGroupIncreaseSize", "NodeGroupDeleteNodes", "NodeGroupDecreaseTargetSize",
        "NodeGroupNodes", "NodeGroupTemplateNodeInfo", "NodeGroupGetOptions"}


@pytest.mark.parametrize("message, numbers", [
    (pb.NodeGroup, {"id": 1, "minSize": 2, "maxSize": 3, "debug": 4}),
    (pb.ExternalGrpcNode, {"providerID": 1, "name": 2, "labels": 3, "annotations": 4}),
    (pb.NodeGroupIncreaseSizeRequest, {"delta": 1, "id": 2}),
    (pb.NodeGroupDeleteNodesRequest, {"nodes": 1, "id": 2}),
    (pb.NodeGroupDecreaseTargetSizeRequest, {"delta": 1, "id": 2}),
    (pb.Instance, {"id": 1, "status": 2}),
    (pb.InstanceStatus, {"instanceState": 1, "errorInfo": 2}),
    (pb.InstanceErrorInfo, {"errorCode": 1, "errorMessage": 2, "instanceErrorClass": 3}),
    (pb.NodeGroupTemplateNodeInfoResponse, {"nodeBytes": 2, "resourceSliceBytes": 3}),
    (pb.PricingPodPriceRequest, {"pod_bytes": 4, "startTimestamp": 5, "endTimestamp": 6}),
    (pb.NodeGroupAutoscalingOptions, {"scaleDownUtilizationThreshold": 1,
                                      "scaleDownUnneededDuration": 8,
                                      "MaxNodeProvisionDuration": 10,
                                      "allowNonAtomicScaleUpToMax": 12}),
    # v1.Node as k8s.io/api and k8s.io/apimachinery number it.
    (k8s.Node, {"metadata": 1, "spec": 2, "status": 3}),
    (k8s.ObjectMeta, {"name": 1, "labels": 11, "annotations": 12}),
    (k8s.NodeStatus, {"capacity": 1, "allocatable": 2, "conditions": 4, "nodeInfo": 7}),
    (k8s.NodeSpec, {"providerID": 3, "taints": 5}),
    (k8s.Quantity, {"string": 1}),
])
def test_field_numbers_are_the_protocols(message, numbers):
    fields = message.DESCRIPTOR.fields_by_name
    assert {name: fields[name].number for name in numbers} == numbers


def test_instance_states_are_the_protocols():
    states = pb.InstanceStatus.InstanceState
    assert (states.unspecified, states.instanceRunning, states.instanceCreating,
            states.instanceDeleting) == (0, 1, 2, 3)
