"""What the driver tests share: a small estate whose servers carry hypervisor URIs, and
libvirt test-hypervisor nodes described by XML files (each file its own hypervisor)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    Baremetal,
    BaremetalGroup,
    K8sCluster,
    ProvisionJob,
    Tenant,
    VirtualMachine,
    VirtualMachineSpecification,
)
from portal.provisioning.agent import Agent
from portal.scheduler.reservation import NodeSpec, reserve
from tests import factories as f
from tests.provisioning.invariants import lifecycle_violations

POOL, NETWORK = "vms", "portal-net"


def hypervisor_node(directory: Path, name: str, pool: str = POOL, network: str = NETWORK,
                    cpus: int = 16, memory_gib: int = 64) -> str:
    """A libvirt test hypervisor with a directory pool and a bridged network: its URI.
    Every connection opened to a file URI starts from the file's state."""
    path = directory / f"{name}.xml"
    path.write_text(f"""<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
    <active>{cpus}</active><mhz>2400</mhz><model>x86_64</model></cpu>
  <memory>{memory_gib * 1024 * 1024}</memory>
  <network><name>{network}</name><bridge name='br-{name[:8]}'/><forward mode='bridge'/></network>
  <pool type='dir'><name>{pool}</name><capacity unit='GiB'>2000</capacity>
    <allocation unit='GiB'>0</allocation><available unit='GiB'>2000</available>
    <target><path>/{pool}-{name}</path></target></pool>
</node>
""")
    return f"test://{path}"


@dataclass
class Estate:
    group: BaremetalGroup
    servers: list[Baremetal]
    tenant: Tenant
    flavor: VirtualMachineSpecification


def build_estate(uris: list[str | None]) -> Estate:
    """One group with a server per URI (kvm-1, kvm-2 …; all but the first in maintenance,
    so that placements land on kvm-1), tenant acme with quota, a 4-core flavor."""
    group = f.group(name="kvm-pool")
    servers = [
        f.server(group=group, name=f"kvm-{i}", hypervisor_uri=uri, cpu=32, memory=128,
                 storage=1000, status="active" if i == 1 else "maintenance")
        for i, uri in enumerate(uris, start=1)
    ]
    tenant = f.tenant(name="acme")
    flavor = f.flavor(cpu=4, memory=8, storage=50, name="Standard-4C8G")
    f.quota(tenant, group)
    db.session.commit()
    return Estate(group, servers, tenant, flavor)


def place(estate: Estate, *names: str) -> list[VirtualMachine]:
    return reserve(estate.tenant, estate.group,
                   [NodeSpec(name, "standalone", estate.flavor) for name in names], user=None)


def place_cluster(estate: Estate, name: str, workers: int) -> K8sCluster:
    cluster = K8sCluster(name=name, tenant_id=estate.tenant.id, group_id=estate.group.id,
                         version="1.31.2", status="provisioning")
    nodes = [NodeSpec(f"{name}-cp-1", "control-plane", estate.flavor)] + [
        NodeSpec(f"{name}-worker-{i}", "worker", estate.flavor) for i in range(1, workers + 1)]
    reserve(estate.tenant, estate.group, nodes, user=None, cluster=cluster,
            anti_affinity="none")
    return db.session.get(K8sCluster, cluster.id)


def fresh(vm: VirtualMachine) -> VirtualMachine:
    db.session.expire_all()
    return db.session.get(VirtualMachine, vm.id)


def last_job(vm: VirtualMachine) -> ProvisionJob:
    db.session.expire_all()
    return db.session.scalars(select(ProvisionJob).where(ProvisionJob.vm_id == vm.id)
                              .order_by(ProvisionJob.id.desc())).first()


def drain(agent: Agent, most: int = 20) -> int:
    """Let the agent work until the queue has nothing for it; how many jobs it took. The
    invariant of SPEC 8.1 is checked after every job."""
    done = 0
    while done < most and agent.run_once():
        done += 1
        db.session.expire_all()
        assert lifecycle_violations() == []
    db.session.rollback()
    return done
