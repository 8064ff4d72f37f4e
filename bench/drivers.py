"""What a provisioning driver costs per job, beyond the work it orders (SPEC 8.8).

    .venv/bin/python -m bench.drivers [--vms 50]

On a throwaway SQLite database in a temporary directory, N VMs are placed and then built
and deleted by one agent through the job queue (claim, heartbeat, driver, answer):

1. ``exec`` with a command that does nothing (`true`): the agent's overhead plus one
   process start per job;
2. ``libvirt`` on libvirt's test hypervisor (a node XML file): define, volume, start —
   and stop, remove, undefine — as real API calls through the driver's bounded calls;
3. ``simulate`` with no delay, as the floor: the queue alone.

Prints the time per job (p50/p95) and jobs per second for each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return f"p50 {at(0.50):7.2f} ms  p95 {at(0.95):7.2f} ms"


def node_file(directory: Path) -> str:
    path = directory / "bench-node.xml"
    path.write_text("""<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>64</cores><threads>1</threads>
    <active>64</active><mhz>2400</mhz><model>x86_64</model></cpu>
  <memory>1073741824</memory>
  <network><name>bench-net</name><bridge name='br-bench'/><forward mode='bridge'/></network>
  <pool type='dir'><name>vms</name><capacity unit='TiB'>100</capacity>
    <allocation>0</allocation><available unit='TiB'>100</available>
    <target><path>/bench</path></target></pool>
</node>
""")
    return f"test://{path}"


def run(name: str, driver, vms: int, directory: Path, uri: str | None) -> None:
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db
    from portal.models import (
        Baremetal,
        BaremetalGroup,
        BaremetalGroupTenantQuota,
        Tenant,
        VirtualMachine,
        VirtualMachineSpecification,
    )
    from portal.provisioning import jobs
    from portal.provisioning.agent import Agent, DatabaseQueue
    from portal.scheduler.reservation import NodeSpec, reserve

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory / (name + '.db')}",
                      "PORTAL_AGENT": "off", "TESTING": True, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        group = BaremetalGroup(name="bench", total_cpu=4096, available_cpu=4096,
                               total_memory=16384, available_memory=16384,
                               total_storage=10**6, available_storage=10**6)
        server = Baremetal(name="kvm-bench", serial="SN-BENCH", group=group,
                           hypervisor_uri=uri, total_cpu=4096, available_cpu=4096,
                           total_memory=16384, available_memory=16384,
                           total_storage=10**6, available_storage=10**6)
        tenant = Tenant(name="bench")
        flavor = VirtualMachineSpecification(name="b1", cpu=1, memory=1, storage=10)
        db.session.add_all([group, server, tenant, flavor,
                            BaremetalGroupTenantQuota(tenant=tenant, group=group)])
        db.session.commit()
        placed = reserve(tenant, group, [NodeSpec(f"vm-{i}", "standalone", flavor)
                                         for i in range(vms)], user=None)
        ids = [vm.id for vm in placed]
        db.session.remove()
    agent = Agent(DatabaseQueue(app), driver, name=f"bench-{name}", lease_seconds=60)
    timings = {"create": [], "delete": []}
    for action in ("create", "delete"):
        if action == "delete":
            with app.app_context():
                for vm_id in ids:
                    jobs.request_delete(db.session.get(VirtualMachine, vm_id), None)
                db.session.commit()
        started = time.perf_counter()
        while True:
            begun = time.perf_counter()
            if not agent.run_once():
                break
            timings[action].append(time.perf_counter() - begun)
        elapsed = time.perf_counter() - started
        print(f"{name:9} {action:6}  {percentiles(timings[action])}  "
              f"{len(timings[action]) / elapsed:7.1f} jobs/s")
    with app.app_context():
        statuses = set(db.session.scalars(db.select(VirtualMachine.status)))
        assert statuses == {"deleted"}, statuses
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=50)
    args = parser.parse_args()
    from portal.provisioning.drivers import SimulateDriver
    from portal.provisioning.exec_driver import ExecDriver
    from portal.provisioning.libvirt_driver import LibvirtDriver

    with tempfile.TemporaryDirectory(prefix="bench-drivers-") as scratch:
        directory = Path(scratch)
        print(f"{args.vms} VMs, one agent, SQLite queue; time per job (claim to answer)")
        run("simulate", SimulateDriver(delay=0), args.vms, directory, None)
        run("exec", ExecDriver(command="true"), args.vms, directory, None)
        uri = node_file(directory)
        libvirt = LibvirtDriver(pool="vms", network="bench-net")
        run("libvirt", libvirt, args.vms, directory, uri)
        libvirt.close()


if __name__ == "__main__":
    main()
