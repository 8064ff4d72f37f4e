"""The libvirt driver end to end through the job queue, against libvirt's own test
hypervisor (real API calls, no daemon): each hypervisor is a node XML file, so that two
servers are two hypervisors and state lasts as long as the driver's connection.

What could not be exercised here: a live migration (the test hypervisor has no
virDomainMigrate — the tests check that the driver says so and leaves everything as it
was, and they move a domain on shared storage by defining it on the target), keepalives
(local connections have none), and qemu's own bulk statistics (the test hypervisor
reports state only, so measure() falls back to the one-domain calls tested here; the
bulk keys are tested through vm_values)."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import replace

import libvirt
import pytest
from sqlalchemy import select, update

from portal.baremetals import evacuation
from portal.extensions import db
from portal.models import Baremetal, ProvisionJob, utcnow
from portal.provisioning import jobs
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import MetricTarget, Work
from portal.provisioning.libvirt_driver import (
    METADATA_NS,
    LibvirtDriver,
    domain_xml,
    node_values,
    vm_values,
)
from portal.vms import service as vms
from tests import factories as f
from tests.provisioning.drivers_estate import (
    NETWORK,
    POOL,
    build_estate,
    drain,
    fresh,
    hypervisor_node,
    last_job,
    place,
)
from tests.provisioning.invariants import lifecycle_violations


@pytest.fixture
def driver():
    made = LibvirtDriver(pool=POOL, network=NETWORK, call_timeout=5, timeout=60)
    yield made
    made.close()


def agent_for(app, driver, name="kvm-agent"):
    return Agent(DatabaseQueue(app), driver, name=name, lease_seconds=30)


def domain_of(conn, vm):
    return conn.lookupByName(f"portal-{vm.id}-{vm.name}")


def volumes(conn, pool=POOL):
    pool = conn.storagePoolLookupByName(pool)
    pool.refresh(0)
    return sorted(pool.listVolumes())


def test_create_builds_the_flavor_and_delete_removes_everything(any_app, driver, tmp_path):
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    agent = agent_for(any_app, driver)
    assert drain(agent) == 1

    vm = fresh(vm)
    assert vm.status == "active"
    assert vm.status_message == (
        f"Domain portal-{vm.id}-web-01 running on {uri}: 4 vCPUs, 8 GiB memory, 50 GiB "
        f"volume in pool {POOL}.")
    conn = driver.hypervisor(uri)
    domain = domain_of(conn, vm)
    state, max_kib, _memory, vcpus, _cpu = domain.info()
    assert (state, max_kib, vcpus) == (libvirt.VIR_DOMAIN_RUNNING, 8 * 1024 * 1024, 4)
    assert domain.autostart() == 1
    described = ET.fromstring(domain.XMLDesc(0))
    assert described.find("devices/interface/source").get("network") == NETWORK
    source = described.find("devices/disk/source")
    assert (source.get("pool"), source.get("volume")) == (POOL, f"portal-{vm.id}-web-01.qcow2")
    owner = ET.fromstring(domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS))
    assert (owner.get("id"), owner.get("tenant")) == (str(vm.id), "acme")
    volume = conn.storagePoolLookupByName(POOL).storageVolLookupByName(
        f"portal-{vm.id}-web-01.qcow2")
    assert volume.info()[1] == 50 * 1024**3
    job = last_job(vm)
    assert "defined domain" in job.output and "created volume" in job.output

    vms.delete_vm(vm, None)
    assert drain(agent) == 1
    assert fresh(vm).status == "deleted"
    with pytest.raises(libvirt.libvirtError):
        domain_of(conn, vm)
    assert volumes(conn) == []
    assert "removed volume" in last_job(vm).output


def test_a_retried_create_finds_its_own_domain_and_finishes_it(app, driver, tmp_path):
    """An agent died after defining the domain (no volume yet, not started): the job's
    lease expires, another agent claims it, and the driver carries on with that domain."""
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    (claimed,) = jobs.claim("crashed", lease_seconds=30)
    driver.run(claimed, Work())  # the first try built it all ...
    conn = driver.hypervisor(uri)
    domain = domain_of(conn, vm)
    domain.destroy()  # ... and we roll it back to "defined, no volume, not started"
    conn.storagePoolLookupByName(POOL).storageVolLookupByName(
        f"portal-{vm.id}-web-01.qcow2").delete(0)
    db.session.execute(update(ProvisionJob).values(lease_expires_at=utcnow()))
    db.session.commit()

    assert drain(agent_for(app, driver, "second")) == 1
    job = last_job(vm)
    assert (job.status, job.attempts, job.claimed_by) == ("succeeded", 2, "second")
    assert "is this VM's (an earlier try made it)" in job.output
    assert fresh(vm).status == "active"
    assert [d.name() for d in conn.listAllDomains()] == [f"portal-{vm.id}-web-01"]
    assert domain_of(conn, vm).isActive()
    assert volumes(conn) == [f"portal-{vm.id}-web-01.qcow2"]

    # A second delete of what is gone succeeds (the retry of a delete that had finished).
    vms.delete_vm(fresh(vm), None)
    drain(agent_for(app, driver))
    delete = jobs.ClaimedJob(999, "delete", vm.id, "web-01", vm.tenant_id, vm.baremetal_id,
                             4, 8, 50, 2, hypervisor_uri=uri)
    assert driver.run(delete) == (
        f"Domain portal-{vm.id}-web-01 is not on {uri} (any more): nothing to delete.")


def test_a_foreign_domain_of_the_same_name_fails_the_job_and_is_left_alone(
        app, driver, tmp_path):
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    first, second = place(estate, "web-01", "web-02")
    conn = driver.hypervisor(uri)
    conn.defineXML(f"<domain type='test'><name>portal-{first.id}-web-01</name>"
                   "<memory unit='GiB'>1</memory><os><type>hvm</type></os></domain>")
    conn.defineXML(domain_xml(
        name=f"portal-{second.id}-web-02", vm_id=4242, vm_name="other", tenant="x", cpu=1,
        memory=1, pool=POOL, volume="other.qcow2", disk_format="qcow2", network=NETWORK,
        domain_type="test"))
    assert drain(agent_for(app, driver)) == 2

    first, second = fresh(first), fresh(second)
    assert first.status == second.status == "error"
    assert first.status_message == (
        f"A domain named portal-{first.id}-web-01 already exists on {uri} and carries no "
        "Resource Portal metadata: it is not this VM's, so it is left alone. Rename or "
        "remove it (or give this portal its own --domain-prefix), then retry.")
    assert "belongs to the portal's VM 4242" in second.status_message
    foreign = domain_of(conn, first)
    assert not foreign.isActive() and foreign.info()[1] == 1024 * 1024  # untouched
    assert volumes(conn) == []
    server = db.session.get(Baremetal, first.baremetal_id)
    assert server.available_cpu == server.total_cpu  # both failed VMs released


def test_a_volume_nobody_claims_is_never_taken_over(app, driver, tmp_path):
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    conn = driver.hypervisor(uri)
    conn.storagePoolLookupByName(POOL).createXML(
        f"<volume><name>portal-{vm.id}-web-01.qcow2</name><capacity>1</capacity></volume>", 0)
    drain(agent_for(app, driver))
    assert fresh(vm).status == "error"
    assert fresh(vm).status_message.startswith(
        f"Volume portal-{vm.id}-web-01.qcow2 already exists in pool {POOL} on {uri} and no "
        "domain of this VM uses it")
    assert conn.listAllDomains() == []


@pytest.mark.parametrize("setting, message", [
    ({"pool": "ssd"}, "Storage pool ssd does not exist on {uri}: define it there, or start "
                      "the agent with the pool that holds VM volumes (--pool)."),
    ({"network": "vlan-210"}, "Network vlan-210 does not exist on {uri}: define it there, or "
                              "start the agent with the VMs' network (--network)."),
    ({"image": "debian-12"}, "Image volume debian-12 is not in pool vms on {uri}: upload it "
                             "there, or start the agent with another --image."),
])
def test_a_missing_pool_network_or_image_fails_with_what_to_do(app, tmp_path, setting,
                                                               message):
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    options = {"pool": POOL, "network": NETWORK, **setting}
    driver = LibvirtDriver(call_timeout=5, **options)
    try:
        drain(agent_for(app, driver))
    finally:
        driver.close()
    vm = fresh(vm)
    assert (vm.status, vm.status_message) == ("error", message.format(uri=uri))


def test_a_create_that_fails_halfway_leaves_nothing_on_the_hypervisor(app, driver, tmp_path):
    """The domain is defined, then its volume does not fit the pool: the job fails, the VM
    holds nothing in the portal — and nothing on the hypervisor either, so that a retry
    placed on another server leaves no orphan behind (and one placed here starts clean)."""
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    conn = driver.hypervisor(uri)
    pool = conn.storagePoolLookupByName(POOL)  # the test hypervisor's pools hold 100 GiB
    filler = pool.createXML(
        "<volume><name>backups.qcow2</name><capacity unit='GiB'>60</capacity></volume>", 0)
    drain(agent_for(app, driver))
    vm = fresh(vm)
    assert vm.status == "error"
    assert vm.status_message.startswith(f"creating volume portal-{vm.id}-web-01.qcow2 on {uri}")
    output = last_job(vm).output
    assert "defined domain" in output
    assert f"the create failed: removed domain portal-{vm.id}-web-01" in output
    assert conn.listAllDomains() == [] and volumes(conn) == ["backups.qcow2"]

    filler.delete(0)
    vms.retry_vm(vm, None)
    drain(agent_for(app, driver))
    assert fresh(vm).status == "active"
    assert "an earlier try made it" not in last_job(vm).output


def test_a_missing_image_is_found_before_anything_is_built(app, tmp_path):
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    driver = LibvirtDriver(pool=POOL, network=NETWORK, image="debian-12", call_timeout=5)
    try:
        drain(agent_for(app, driver))
        assert fresh(vm).status == "error"
        assert "defined domain" not in last_job(vm).output
        assert driver.hypervisor(uri).listAllDomains() == []
    finally:
        driver.close()


def test_a_new_volume_is_cloned_from_the_image(app, driver, tmp_path):
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    conn = driver.hypervisor(uri)
    conn.storagePoolLookupByName(POOL).createXML(
        "<volume><name>debian-12.qcow2</name><capacity unit='GiB'>2</capacity></volume>", 0)
    driver.image = "debian-12.qcow2"
    drain(agent_for(app, driver))
    assert fresh(vm).status == "active"
    assert "cloned debian-12.qcow2 into volume" in last_job(vm).output
    assert volumes(conn) == ["debian-12.qcow2", f"portal-{vm.id}-web-01.qcow2"]


def silent_listener():
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def test_silent_and_unreachable_hypervisors_fail_the_job_never_hang(app):
    listener = silent_listener()
    silent = f"qemu+tcp://127.0.0.1:{listener.getsockname()[1]}/system"
    estate = build_estate([silent])
    (first,) = place(estate, "web-01")
    driver = LibvirtDriver(pool=POOL, network=NETWORK, call_timeout=1, timeout=30)
    finished = threading.Event()

    def work():
        with app.app_context():
            drain(agent_for(app, driver))
        finished.set()

    worker = threading.Thread(target=work, daemon=True)
    try:
        worker.start()
        worker.join(60)
        assert finished.is_set(), "the agent hung on a silent hypervisor"
    finally:
        listener.close()
    first = fresh(first)
    assert (first.status, first.status_message) == (
        "error", f"connecting: {silent} did not answer within 1 s.")

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"qemu+tcp://127.0.0.1:{closed.getsockname()[1]}/system"
    closed.close()
    db.session.get(Baremetal, estate.servers[0].id).hypervisor_uri = refused
    db.session.commit()
    (second,) = place(estate, "web-02")
    drain(agent_for(app, driver))
    driver.close()
    second = fresh(second)
    assert second.status == "error"
    assert second.status_message.startswith(f"connecting on {refused}: ")
    assert "Connection refused" in second.status_message
    assert lifecycle_violations() == []


def test_the_jobs_own_timeout_bounds_every_call(app):
    """A call may take --call-timeout, but never more than what is left of the job's
    --timeout: a job of 1 s on a silent hypervisor fails after 1 s, not 30."""
    listener = silent_listener()
    silent = f"qemu+tcp://127.0.0.1:{listener.getsockname()[1]}/system"
    estate = build_estate([silent])
    (vm,) = place(estate, "web-01")
    driver = LibvirtDriver(pool=POOL, network=NETWORK, call_timeout=30, timeout=1)
    started = time.monotonic()
    try:
        drain(agent_for(app, driver))
    finally:
        listener.close()
        driver.close()
    assert time.monotonic() - started < 20
    assert (fresh(vm).status, fresh(vm).status_message) == (
        "error", f"connecting: {silent} did not answer within 1 s.")


def test_a_server_without_uri_fails_unless_the_agent_knows_where(app, tmp_path):
    estate = build_estate([None])
    (vm,) = place(estate, "web-01")
    driver = LibvirtDriver(pool=POOL, network=NETWORK, call_timeout=5)
    drain(agent_for(app, driver))
    assert fresh(vm).status_message == (
        "Server kvm-1 has no hypervisor URI: set one on the server's page (or start the agent "
        "with --libvirt-uri).")
    vms.retry_vm(fresh(vm), None)
    hypervisor_node(tmp_path, "kvm-1")  # the file the URI template names for kvm-1
    driver = LibvirtDriver(libvirt_uri=f"test://{tmp_path}/{{server}}.xml", pool=POOL,
                           network=NETWORK, call_timeout=5)
    drain(agent_for(app, driver))
    assert fresh(vm).status == "active"
    assert f"running on test://{tmp_path}/kvm-1.xml" in fresh(vm).status_message
    driver.close()


def evacuate_first_server(estate):
    """kvm-2 back in service, then kvm-1 drained: a migrate job per VM to kvm-2."""
    db.session.get(Baremetal, estate.servers[1].id).status = "active"
    db.session.commit()
    operator = f.user(operator=True)
    db.session.commit()
    first = db.session.get(Baremetal, estate.servers[0].id)
    done = evacuation.evacuate([first], operator, label=("baremetal", first.id, first.name))
    assert len(done.moves) == 1 and not done.stuck


def test_migrate_on_shared_storage_moves_the_domain_to_the_target(app, tmp_path):
    source_uri, target_uri = hypervisor_node(tmp_path, "a"), hypervisor_node(tmp_path, "b")
    estate = build_estate([source_uri, target_uri])
    (vm,) = place(estate, "web-01")
    driver = LibvirtDriver(pool=POOL, network=NETWORK, call_timeout=5, shared_storage=True)
    agent = agent_for(app, driver)
    drain(agent)
    source, target = driver.hypervisor(source_uri), driver.hypervisor(target_uri)
    # Shared storage: the volume the source made is the one the target sees.
    target.storagePoolLookupByName(POOL).createXML(
        f"<volume><name>portal-{vm.id}-web-01.qcow2</name><capacity unit='GiB'>50</capacity>"
        "</volume>", 0)
    evacuate_first_server(estate)
    assert fresh(vm).status == "migrating"
    drain(agent)

    vm = fresh(vm)
    assert (vm.status, vm.baremetal_id) == ("active", estate.servers[1].id)
    assert vm.status_message == (f"Domain portal-{vm.id}-web-01 moved from {source_uri} to "
                                 f"{target_uri} (started).")
    assert "cannot migrate live" in last_job(vm).output
    assert source.listAllDomains() == []
    assert volumes(source) == [f"portal-{vm.id}-web-01.qcow2"]  # shared: it stays
    moved = domain_of(target, vm)
    assert moved.isActive() and moved.info()[3] == 4
    # Retrying the finished migrate changes nothing and says so.
    again = jobs.ClaimedJob(
        999, "migrate", vm.id, "web-01", vm.tenant_id, estate.servers[0].id, 4, 8, 50, 2,
        target_baremetal_id=vm.baremetal_id, hypervisor_uri=source_uri,
        target_hypervisor_uri=target_uri)
    assert driver.run(again) == f"Domain portal-{vm.id}-web-01 is on {target_uri} already."

    vms.delete_vm(vm, None)  # the delete goes to the server it is on now
    drain(agent)
    assert fresh(vm).status == "deleted"
    assert target.listAllDomains() == [] and volumes(target) == []
    driver.close()


def test_migrate_without_shared_storage_fails_cleanly_where_it_cannot_migrate(app, tmp_path):
    source_uri, target_uri = hypervisor_node(tmp_path, "a"), hypervisor_node(tmp_path, "b")
    estate = build_estate([source_uri, target_uri])
    (vm,) = place(estate, "web-01")
    driver = LibvirtDriver(pool=POOL, network=NETWORK, call_timeout=5)
    agent = agent_for(app, driver)
    drain(agent)
    evacuate_first_server(estate)
    drain(agent)

    vm = fresh(vm)
    assert (vm.status, vm.baremetal_id) == ("active", estate.servers[0].id)
    assert vm.status_message.startswith(
        f"Migration failed: migrating domain portal-{vm.id}-web-01 on {source_uri}: ")
    assert "this hypervisor cannot migrate a running domain" in vm.status_message
    source, target = driver.hypervisor(source_uri), driver.hypervisor(target_uri)
    assert domain_of(source, vm).isActive()
    assert target.listAllDomains() == [] and volumes(target) == []  # left as it was
    target_server = db.session.get(Baremetal, estate.servers[1].id)
    assert target_server.available_cpu == target_server.total_cpu
    driver.close()


def test_measure_reports_vms_from_domain_stats_and_servers_from_node_info(app, driver,
                                                                          tmp_path):
    uri = hypervisor_node(tmp_path, "a", cpus=16, memory_gib=64)
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    drain(agent_for(app, driver))
    server = estate.servers[0]
    targets = [
        MetricTarget("vm", vm.id, "web-01", 4, 8, 50, uri, server.id),
        MetricTarget("vm", 9999, "gone", 4, 8, 50, uri, server.id),  # no such domain
        MetricTarget("baremetal", server.id, "kvm-1", 32, 128, 1000, uri),
        MetricTarget("vm", 77, "elsewhere", 1, 1, 1, "qemu+tcp://127.0.0.1:9/system", 1),
        MetricTarget("cluster", 1, "k", 1, 1, 1),
    ]
    first = driver.measure(targets)
    assert [(s["object_type"], s["object_id"]) for s in first] == [
        ("vm", vm.id), ("baremetal", server.id)]
    vm_sample, server_sample = first
    assert set(vm_sample["values"]) == {"memory_used_gib", "storage_used_gib"}  # no CPU yet
    assert vm_sample["values"]["storage_used_gib"] == 50.0
    assert 0 < vm_sample["values"]["memory_used_gib"] <= 8
    assert vm_sample["ts"].endswith("Z")
    assert server_sample["values"]["storage_used_gib"] == 50.0
    assert 0 < server_sample["values"]["memory_used_gib"] <= 64
    second = driver.measure(targets[:1])
    assert 0 <= second[0]["values"]["cpu_util"] <= 1


def test_vm_values_read_the_bulk_statistics_keys():
    stats = {"cpu.time": 30_000_000_000, "vcpu.current": 4, "balloon.available": 8 * 1024**2,
             "balloon.unused": 6 * 1024**2, "balloon.rss": 7 * 1024**2, "block.count": 2,
             "block.0.allocation": 10 * 1024**3, "block.1.allocation": 2 * 1024**3}
    assert vm_values(stats, None, 100.0) == {"memory_used_gib": 2.0, "storage_used_gib": 12.0}
    # 2 cores' worth of CPU time over 10 s on 4 vCPUs: half busy.
    assert vm_values(stats, (10_000_000_000, 90.0), 100.0)["cpu_util"] == 0.5
    no_guest = {k: v for k, v in stats.items() if k != "balloon.unused"}
    assert vm_values(no_guest, None, 0)["memory_used_gib"] == 7.0  # host-side resident
    assert vm_values({"cpu.time": 5, "vcpu.current": 1}, (10, 1.0), 2.0)["cpu_util"] == 0


def test_node_values_from_two_readings_of_the_host_cpu_times():
    before = {"user": 100, "kernel": 100, "idle": 700, "iowait": 100}
    after = {"user": 400, "kernel": 200, "idle": 900, "iowait": 100}
    assert node_values(after, before, 3 * 1024**3, 512 * 1024**3) == {
        "cpu_util": 0.6667, "memory_used_gib": 3.0, "storage_used_gib": 512.0}
    assert node_values(after, None, None, None) == {}


def test_domain_xml_for_kvm_has_the_machine_devices():
    xml = ET.fromstring(domain_xml(
        name="portal-7-db", vm_id=7, vm_name="db", tenant="研發中心", cpu=8, memory=32,
        pool="ssd", volume="portal-7-db", disk_format="raw", network="vlan-210",
        domain_type="kvm"))
    assert xml.get("type") == "kvm" and xml.find("cpu").get("mode") == "host-passthrough"
    assert (xml.findtext("vcpu"), xml.findtext("memory"), xml.find("memory").get("unit")) == (
        "8", "32", "GiB")
    assert xml.find("devices/disk/driver").get("type") == "raw"
    assert xml.find("devices/memballoon/stats").get("period") == "10"
    assert xml.find(f"metadata/{{{METADATA_NS}}}vm").get("tenant") == "研發中心"


def test_bad_settings_are_refused_at_start():
    with pytest.raises(ValueError, match="prefix"):
        LibvirtDriver(domain_prefix="has space")
    with pytest.raises(ValueError, match="timeouts"):
        LibvirtDriver(call_timeout=0)


def test_the_agent_command_runs_the_libvirt_driver(app, tmp_path):
    uri = hypervisor_node(tmp_path, "a")
    estate = build_estate([uri])
    (vm,) = place(estate, "web-01")
    result = app.test_cli_runner().invoke(args=[
        "agent", "run", "--once", "--driver", "libvirt", "--pool", POOL, "--network",
        NETWORK, "--call-timeout", "5", "--domain-prefix", "lab-"])
    assert result.exit_code == 0, result.output
    assert "1 job(s) done" in result.output
    assert fresh(vm).status_message.startswith(f"Domain lab-{vm.id}-web-01 running on {uri}")
    result = app.test_cli_runner().invoke(args=[
        "agent", "run", "--once", "--driver", "libvirt", "--domain-prefix", "bad prefix"])
    assert result.exit_code == 2 and "domain prefix" in result.output


def test_a_claimed_job_carries_the_servers_hypervisor_uris(app, tmp_path):
    source_uri, target_uri = hypervisor_node(tmp_path, "a"), hypervisor_node(tmp_path, "b")
    estate = build_estate([source_uri, target_uri])
    (vm,) = place(estate, "web-01")
    (job,) = jobs.claim("a")
    assert (job.baremetal_name, job.hypervisor_uri, job.tenant_name, job.spec_name) == (
        "kvm-1", source_uri, "acme", "Standard-4C8G")
    jobs.complete(job.id, "a", True)
    evacuate_first_server(estate)
    (move,) = jobs.claim("a")
    assert (move.action, move.target_baremetal_name, move.target_hypervisor_uri) == (
        "migrate", "kvm-2", target_uri)
    document = move.document()
    assert document["server"] == {"id": estate.servers[0].id, "name": "kvm-1",
                                  "hypervisor_uri": source_uri}
    assert document["target_server"]["hypervisor_uri"] == target_uri
    assert replace(move, cluster_nodes=()).document()["cluster"] is None
    assert db.session.scalar(select(ProvisionJob.status).where(
        ProvisionJob.id == move.id)) == "claimed"


def test_the_agent_posts_libvirt_measurements_into_the_metrics_store(app, driver, tmp_path):
    """SPEC 8.8 with 8.4: a VM the driver built is measured from its domain by the agent's
    metrics step (targets named as the domains are) and lands in the store, as does its
    server; a second round adds the VM's CPU (it needs two readings)."""
    from datetime import timedelta

    from portal.metrics import query

    uri = hypervisor_node(tmp_path, "m", cpus=16, memory_gib=64)
    estate = build_estate([uri])
    (vm,) = place(estate, "api-01")
    agent = agent_for(app, driver)
    drain(agent)
    assert agent.measure_once() >= 2
    assert agent.measure_once() >= 2
    db.session.rollback()
    since = utcnow() - timedelta(minutes=1)
    memory = query.latest("vm", [vm.id], "memory_used_gib", since)
    assert 0 < memory[vm.id][1] <= 8
    assert 0 <= query.latest("vm", [vm.id], "cpu_util", since)[vm.id][1] <= 1
    server = estate.servers[0].id
    assert query.latest("baremetal", [server], "storage_used_gib", since)[server][1] > 0
