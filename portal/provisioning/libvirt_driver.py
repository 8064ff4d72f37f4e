"""The `libvirt` driver: VMs as KVM/QEMU domains through libvirt's API (SPEC 8.8).

Each server's ``hypervisor_uri`` (e.g. ``qemu+ssh://root@host/system``) says where its
domains live. For a VM the driver keeps, on that hypervisor:

- a domain named ``<prefix><vm id>-<vm name>`` with the flavor's vCPUs and memory, its
  interface on the configured network, and a ``<metadata>`` element carrying the portal's
  VM id — how a retried create knows the domain is its own. A domain of that name without
  it (or with another VM's id) is a clash: the job fails, the domain is never adopted;
- a volume of the flavor's storage in the configured pool (cloned from ``image`` when one
  is set), named after the domain.

Every step is idempotent, so a retried or re-claimed job carries on where the last try
stopped: a create defines the domain *before* it makes the volume (a volume without its
domain is never ours) and a delete removes the volume *before* it undefines the domain. A
delete of a domain that is gone succeeds. A create that fails after defining the domain
removes what it built (the failed VM's resources are released, and its retry may land
elsewhere), unless the agent lost the job to another. A migrate moves the domain to the target
server's hypervisor: live (virDomainMigrate, copying the volume unless the pool is shared
storage), or — on shared storage, where the hypervisor cannot migrate — by defining it on
the target and starting it there.

No libvirt call can hang a job: each runs in a worker thread with a deadline (the call
timeout, and what is left of the job's), connections send keepalives, and a hypervisor
that does not answer fails the job with a message that says so. Tested against libvirt's
test hypervisor (test:///default and test:///<node.xml>): real API calls, no daemon.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import libvirt

from portal.provisioning.drivers import (
    Answer,
    BaseDriver,
    MetricTarget,
    ProvisionFailed,
    Work,
)
from portal.provisioning.jobs import ClaimedJob

log = logging.getLogger(__name__)

METADATA_NS = "urn:resource-portal:vm:1"
METADATA_PREFIX = "portal"
FILE_POOLS = ("dir", "fs", "netfs")  # pools whose volumes are files: qcow2 there, raw elsewhere
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9._-]{0,32}$")
KEEPALIVE = (5, 3)  # seconds between keepalives, missed ones before the connection is closed
GiB = 1024**3
KiB_PER_GiB = 1024**2
UNDEFINE_FLAGS = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                  | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
# The hypervisor cannot do this at all (as opposed to: it tried and failed).
UNSUPPORTED = (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
               libvirt.VIR_ERR_OPERATION_UNSUPPORTED)
VM_STATS = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
            | libvirt.VIR_DOMAIN_STATS_BALLOON | libvirt.VIR_DOMAIN_STATS_VCPU
            | libvirt.VIR_DOMAIN_STATS_BLOCK)

ET.register_namespace(METADATA_PREFIX, METADATA_NS)
_process_setup = threading.Lock()
_event_loop: threading.Thread | None = None


def _setup_process() -> None:
    """Once per process: libvirt's event loop (keepalives need one, registered before any
    connection opens) in a daemon thread, and errors as exceptions only — not also
    printed on stderr."""
    global _event_loop
    with _process_setup:
        if _event_loop is not None:
            return
        libvirt.registerErrorHandler(lambda _ctx, _error: None, None)
        libvirt.virEventRegisterDefaultImpl()

        def loop() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        _event_loop = threading.Thread(target=loop, name="libvirt-events", daemon=True)
        _event_loop.start()


class LibvirtFailure(ProvisionFailed):
    """A libvirt call failed; ``code`` is libvirt's error code."""

    def __init__(self, what: str, uri: str, error: libvirt.libvirtError) -> None:
        self.code = error.get_error_code()
        detail = error.get_error_message() or str(error)
        super().__init__(f"{what} on {uri}: {detail}")


class DomainClash(ProvisionFailed):
    """A domain of the VM's name that is not the VM's: never adopted, never touched."""


def _no_credentials(credentials: list, _data: Any) -> int:
    return -1  # never prompt: a connection needing a password fails instead of waiting


def domain_xml(*, name: str, vm_id: int, vm_name: str, tenant: str, cpu: int, memory: int,
               pool: str, volume: str, disk_format: str, network: str,
               domain_type: str) -> str:
    """The domain of a VM: vCPUs and memory of its flavor, its volume, its network, and
    the metadata that says it is the portal's VM ``vm_id``."""
    domain = ET.Element("domain", type=domain_type)
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "title").text = vm_name
    ET.SubElement(domain, "description").text = (
        f"Resource Portal VM {vm_id} ({vm_name}, tenant {tenant})")
    metadata = ET.SubElement(domain, "metadata")
    ET.SubElement(metadata, f"{{{METADATA_NS}}}vm", id=str(vm_id), name=vm_name, tenant=tenant)
    ET.SubElement(domain, "memory", unit="GiB").text = str(memory)
    ET.SubElement(domain, "vcpu").text = str(cpu)
    os_ = ET.SubElement(domain, "os")
    ET.SubElement(os_, "type").text = "hvm"
    ET.SubElement(os_, "boot", dev="hd")
    ET.SubElement(os_, "boot", dev="network")  # a blank volume installs over PXE
    machine = domain_type in ("kvm", "qemu")
    if machine:
        features = ET.SubElement(domain, "features")
        ET.SubElement(features, "acpi")
        ET.SubElement(features, "apic")
        if domain_type == "kvm":
            ET.SubElement(domain, "cpu", mode="host-passthrough")
    devices = ET.SubElement(domain, "devices")
    disk = ET.SubElement(devices, "disk", type="volume", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type=disk_format)
    ET.SubElement(disk, "source", pool=pool, volume=volume)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    interface = ET.SubElement(devices, "interface", type="network")
    ET.SubElement(interface, "source", network=network)
    ET.SubElement(interface, "model", type="virtio")
    if machine:
        ET.SubElement(devices, "serial", type="pty")
        ET.SubElement(devices, "console", type="pty")
        channel = ET.SubElement(devices, "channel", type="unix")
        ET.SubElement(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
        balloon = ET.SubElement(devices, "memballoon", model="virtio")
        ET.SubElement(balloon, "stats", period="10")  # guest memory use, for measure()
    return ET.tostring(domain, encoding="unicode")


def volume_xml(name: str, storage_gib: int, disk_format: str | None) -> str:
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="GiB").text = str(storage_gib)
    if disk_format is not None:
        target = ET.SubElement(volume, "target")
        ET.SubElement(target, "format", type=disk_format)
    return ET.tostring(volume, encoding="unicode")


def vm_values(stats: dict[str, Any], previous: tuple[int, float] | None,
              now: float) -> dict[str, float]:
    """A VM's sample from its domain statistics (the keys of virConnectGetAllDomainStats):
    CPU use since ``previous`` (cpu time in ns, when), memory the guest uses, storage its
    volumes take."""
    values: dict[str, float] = {}
    vcpus = stats.get("vcpu.current") or 0
    if previous is not None and "cpu.time" in stats and vcpus and now > previous[1]:
        used = (stats["cpu.time"] - previous[0]) / ((now - previous[1]) * 1e9 * vcpus)
        values["cpu_util"] = round(min(max(used, 0.0), 1.0), 4)
    if "balloon.available" in stats and "balloon.unused" in stats:
        memory_kib = stats["balloon.available"] - stats["balloon.unused"]
    else:
        memory_kib = stats.get("balloon.rss", stats.get("balloon.current"))
    if memory_kib is not None:
        values["memory_used_gib"] = round(max(memory_kib, 0) / KiB_PER_GiB, 3)
    blocks = [stats[f"block.{i}.allocation"] for i in range(stats.get("block.count", 0))
              if f"block.{i}.allocation" in stats]
    if blocks:
        values["storage_used_gib"] = round(sum(blocks) / GiB, 3)
    return values


def node_values(cpu: dict[str, int] | None, previous: dict[str, int] | None,
                memory_used_bytes: int | None, storage_used_bytes: int | None
                ) -> dict[str, float]:
    """A server's sample: CPU busy share between two readings of the host's CPU times,
    memory and storage in use."""
    values: dict[str, float] = {}
    if cpu and previous:
        busy = sum(cpu.get(k, 0) - previous.get(k, 0) for k in ("user", "kernel"))
        total = busy + sum(cpu.get(k, 0) - previous.get(k, 0) for k in ("idle", "iowait"))
        if total > 0:
            values["cpu_util"] = round(min(max(busy / total, 0.0), 1.0), 4)
    if memory_used_bytes is not None:
        values["memory_used_gib"] = round(max(memory_used_bytes, 0) / GiB, 3)
    if storage_used_bytes is not None:
        values["storage_used_gib"] = round(max(storage_used_bytes, 0) / GiB, 3)
    return values


def sample_time() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class _Calls:
    """The libvirt calls of one job (or one measurement): each bounded by the driver's
    call timeout and by what is left of the job's time, and stopped once the job is lost."""

    def __init__(self, driver: LibvirtDriver, work: Work | None, seconds: float) -> None:
        self.driver, self.work = driver, work
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def call(self, uri: str, what: str, fn: Callable, *args: Any, slow: bool = False) -> Any:
        """``fn(*args)``; ``slow`` calls (cloning a volume, migrating) may take all the
        job's remaining time rather than one call's."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ProvisionFailed(
                f"The job took longer than {self.seconds:g} s; stopped before: {what}.")
        if self.work is not None and self.work.lost.is_set():
            raise ProvisionFailed(f"This agent lost the job to another one; stopped before: "
                                  f"{what}.")
        limit = left if slow else min(self.driver.call_timeout, left)
        return self.driver.bounded(uri, what, limit, fn, *args)

    def connection(self, uri: str) -> libvirt.virConnect:
        return self.driver.connection(uri, self)

    def log(self, text: str) -> None:
        if self.work is not None:
            self.work.log(text)


class LibvirtDriver(BaseDriver):
    def __init__(self, libvirt_uri: str | None = None, pool: str = "default",
                 network: str = "default", image: str | None = None,
                 domain_prefix: str = "portal-", call_timeout: float = 60.0,
                 timeout: float = 600.0, shared_storage: bool = False) -> None:
        if not PREFIX_PATTERN.match(domain_prefix):
            raise ValueError("the domain prefix has at most 32 letters, digits, '.', '-', '_'.")
        if not pool or not network:
            raise ValueError("name the storage pool and the network.")
        if call_timeout <= 0 or timeout <= 0:
            raise ValueError("timeouts are positive numbers of seconds.")
        self.libvirt_uri = libvirt_uri or None
        self.pool, self.network, self.image = pool, network, image or None
        self.domain_prefix = domain_prefix
        self.call_timeout, self.timeout = float(call_timeout), float(timeout)
        self.shared_storage = shared_storage
        self._connections: dict[str, libvirt.virConnect] = {}
        self._domain_types: dict[str, str] = {}
        self._lock = threading.Lock()
        self._vm_cpu: dict[tuple[str, str], tuple[int, float]] = {}
        self._node_cpu: dict[str, dict[str, int]] = {}
        _setup_process()

    # ---- connections and bounded calls --------------------------------------------------

    def bounded(self, uri: str, what: str, seconds: float, fn: Callable, *args: Any) -> Any:
        """Run one libvirt call in a worker thread; past ``seconds`` give up on it (and on
        the connection, which may be wedged) and fail with a message that says so."""
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                outcome["value"] = fn(*args)
            except BaseException as error:  # handed to the waiting thread
                outcome["error"] = error
            finally:
                done.set()

        threading.Thread(target=work, name=f"libvirt: {what}", daemon=True).start()
        if not done.wait(seconds):
            self.forget(uri)
            raise ProvisionFailed(f"{what}: {uri} did not answer within {round(seconds, 1):g} s.")
        error = outcome.get("error")
        if isinstance(error, libvirt.libvirtError):
            if error.get_error_code() in (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC,
                                          libvirt.VIR_ERR_NO_CONNECT):
                self.forget(uri)  # the connection is broken: the next call opens a new one
            raise LibvirtFailure(what, uri, error)
        if error is not None:
            raise error
        return outcome.get("value")

    def connection(self, uri: str, calls: _Calls) -> libvirt.virConnect:
        """The open connection to ``uri`` (one per hypervisor, reopened when it died)."""
        with self._lock:
            conn = self._connections.get(uri)
        if conn is not None:
            try:
                if conn.isAlive():
                    return conn
            except libvirt.libvirtError:
                pass
            self.forget(uri)
        conn = calls.call(uri, "connecting", self._open, uri)
        with self._lock:
            self._connections[uri] = conn
        return conn

    @staticmethod
    def _open(uri: str) -> libvirt.virConnect:
        conn = libvirt.openAuth(
            uri, [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], _no_credentials,
                  None], 0)
        try:
            conn.setKeepAlive(*KEEPALIVE)
        except libvirt.libvirtError:
            pass  # local drivers (test:///, qemu:///system) have no keepalive to set
        return conn

    def hypervisor(self, uri: str) -> libvirt.virConnect:
        """The driver's own connection to ``uri`` (opened if need be, within the call
        timeout): what it sees there, for tools and tests."""
        return self.connection(uri, _Calls(self, None, self.call_timeout))

    def forget(self, uri: str) -> None:
        """Drop a connection; closed in the background, as closing may block too."""
        with self._lock:
            conn = self._connections.pop(uri, None)
        if conn is not None:
            threading.Thread(target=_close_quietly, args=(conn,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            uris = list(self._connections)
        for uri in uris:
            self.forget(uri)

    def server_uri(self, name: str | None, uri: str | None) -> str:
        if uri:
            return uri
        if self.libvirt_uri:
            return self.libvirt_uri.replace("{server}", name or "")
        raise ProvisionFailed(
            f"Server {name} has no hypervisor URI: set one on the server's page (or start "
            "the agent with --libvirt-uri).")

    # ---- naming and ownership -----------------------------------------------------------

    def domain_name(self, vm_id: int, vm_name: str) -> str:
        return f"{self.domain_prefix}{vm_id}-{vm_name}"

    def _own_domain(self, calls: _Calls, conn: libvirt.virConnect, uri: str, vm_id: int,
                    name: str) -> libvirt.virDomain | None:
        """The domain ``name`` if it is VM ``vm_id``'s; None if there is none; a failure
        if it belongs to someone else (never adopted)."""
        try:
            domain = calls.call(uri, f"looking up domain {name}", conn.lookupByName, name)
        except LibvirtFailure as failure:
            if failure.code == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise
        owner = self._owner(calls, uri, domain)
        if owner != vm_id:
            whose = ("carries no Resource Portal metadata" if owner is None
                     else f"belongs to the portal's VM {owner}")
            raise DomainClash(
                f"A domain named {name} already exists on {uri} and {whose}: it is not this "
                "VM's, so it is left alone. Rename or remove it (or give this portal its "
                "own --domain-prefix), then retry.")
        return domain

    def _owner(self, calls: _Calls, uri: str, domain: libvirt.virDomain) -> int | None:
        try:
            text = calls.call(uri, "reading the domain's metadata", domain.metadata,
                              libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
        except LibvirtFailure as failure:
            if failure.code == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return None
            raise
        try:
            return int(ET.fromstring(text).get("id", ""))
        except (ET.ParseError, ValueError):
            return None

    def _pool(self, calls: _Calls, conn: libvirt.virConnect, uri: str
              ) -> tuple[libvirt.virStoragePool, str]:
        """The configured pool, active and refreshed, and its type."""
        try:
            pool = calls.call(uri, f"looking up storage pool {self.pool}",
                              conn.storagePoolLookupByName, self.pool)
        except LibvirtFailure as failure:
            if failure.code == libvirt.VIR_ERR_NO_STORAGE_POOL:
                raise ProvisionFailed(
                    f"Storage pool {self.pool} does not exist on {uri}: define it there, or "
                    "start the agent with the pool that holds VM volumes (--pool).") from None
            raise
        if not calls.call(uri, f"checking storage pool {self.pool}", pool.isActive):
            raise ProvisionFailed(f"Storage pool {self.pool} on {uri} is not active: start it "
                                  f"(virsh pool-start {self.pool}).")
        calls.call(uri, f"refreshing storage pool {self.pool}", pool.refresh, 0)
        kind = ET.fromstring(calls.call(uri, "reading the pool", pool.XMLDesc, 0)).get("type")
        return pool, kind or "dir"

    def _check_network(self, calls: _Calls, conn: libvirt.virConnect, uri: str) -> None:
        try:
            network = calls.call(uri, f"looking up network {self.network}",
                                 conn.networkLookupByName, self.network)
        except LibvirtFailure as failure:
            if failure.code == libvirt.VIR_ERR_NO_NETWORK:
                raise ProvisionFailed(
                    f"Network {self.network} does not exist on {uri}: define it there, or "
                    "start the agent with the VMs' network (--network).") from None
            raise
        if not calls.call(uri, f"checking network {self.network}", network.isActive):
            raise ProvisionFailed(f"Network {self.network} on {uri} is not active: start it "
                                  f"(virsh net-start {self.network}).")

    @staticmethod
    def _volume_of(name: str, pool_type: str) -> tuple[str, str, str | None]:
        """The volume's name, the disk's format, and the format to ask the pool for."""
        if pool_type in FILE_POOLS:
            return f"{name}.qcow2", "qcow2", "qcow2"
        return name, "raw", None

    @staticmethod
    def _lookup_volume(calls: _Calls, uri: str, pool: libvirt.virStoragePool,
                       name: str) -> libvirt.virStorageVol | None:
        try:
            return calls.call(uri, f"looking up volume {name}", pool.storageVolLookupByName,
                              name)
        except LibvirtFailure as failure:
            if failure.code == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise

    def _domain_type(self, calls: _Calls, conn: libvirt.virConnect, uri: str) -> str:
        """kvm where the hypervisor offers it, else qemu, else what it has (test)."""
        if uri not in self._domain_types:
            caps = ET.fromstring(calls.call(uri, "reading capabilities", conn.getCapabilities))
            offered = [d.get("type") for d in caps.iterfind("guest/arch/domain")]
            self._domain_types[uri] = next(
                (t for t in ("kvm", "qemu") if t in offered), offered[0] if offered else "kvm")
        return self._domain_types[uri]

    # ---- the jobs -----------------------------------------------------------------------

    def create(self, job: ClaimedJob, work: Work) -> Answer:
        calls = _Calls(self, work, self.timeout)
        uri = self.server_uri(job.baremetal_name, job.hypervisor_uri)
        conn = calls.connection(uri)
        pool, pool_type = self._pool(calls, conn, uri)
        self._check_network(calls, conn, uri)
        name = self.domain_name(job.vm_id, job.vm_name)
        volume, disk_format, volume_format = self._volume_of(name, pool_type)
        domain = self._own_domain(calls, conn, uri, job.vm_id, name)
        if domain is None:
            if self._lookup_volume(calls, uri, pool, volume) is not None:
                raise ProvisionFailed(
                    f"Volume {volume} already exists in pool {self.pool} on {uri} and no "
                    f"domain of this VM uses it: it is left alone. Remove it, then retry.")
            if self.image is not None:  # before anything is built: nothing to undo
                self._image(calls, uri, pool)
            xml = domain_xml(
                name=name, vm_id=job.vm_id, vm_name=job.vm_name, tenant=job.tenant_name,
                cpu=job.cpu, memory=job.memory, pool=self.pool, volume=volume,
                disk_format=disk_format, network=self.network,
                domain_type=self._domain_type(calls, conn, uri))
            domain = calls.call(uri, f"defining domain {name}", conn.defineXML, xml)
            calls.log(f"defined domain {name} on {uri}: {job.cpu} vCPUs, {job.memory} GiB")
        else:
            calls.log(f"domain {name} on {uri} is this VM's (an earlier try made it)")
        try:
            if self._lookup_volume(calls, uri, pool, volume) is None:
                self._make_volume(calls, uri, pool, volume, job.storage, volume_format)
            else:
                calls.log(f"volume {volume} is there already")
            if not calls.call(uri, f"checking domain {name}", domain.isActive):
                calls.call(uri, f"starting domain {name}", domain.create, slow=True)
                calls.log(f"started domain {name}")
            calls.call(uri, f"setting autostart of {name}", domain.setAutostart, 1)
        except ProvisionFailed:
            # A failed create releases the VM's resources (SPEC 8.1), and a retry may place
            # it elsewhere: what this VM holds on the hypervisor goes too — unless another
            # agent has the job now, and the domain is its work.
            if not work.lost.is_set():
                self._undo(calls, uri, conn, domain, name)
            raise
        return (f"Domain {name} running on {uri}: {job.cpu} vCPUs, {job.memory} GiB memory, "
                f"{job.storage} GiB volume in pool {self.pool}.")

    def _undo(self, calls: _Calls, uri: str, conn: libvirt.virConnect,
              domain: libvirt.virDomain, name: str) -> None:
        """Best effort, with a call's time of its own (the job's may be spent): remove the
        domain and its volumes; what cannot be removed is said in the job's output."""
        undo = _Calls(self, None, self.call_timeout * 4)
        try:
            self._remove(undo, uri, conn, domain, name)
            calls.log(f"the create failed: removed domain {name} and its volume from {uri}")
        except ProvisionFailed as failure:
            calls.log(f"the create failed, and removing domain {name} failed too: {failure}")

    def _image(self, calls: _Calls, uri: str,
               pool: libvirt.virStoragePool) -> libvirt.virStorageVol:
        base = self._lookup_volume(calls, uri, pool, self.image)
        if base is None:
            raise ProvisionFailed(f"Image volume {self.image} is not in pool {self.pool} on "
                                  f"{uri}: upload it there, or start the agent with another "
                                  "--image.")
        return base

    def _make_volume(self, calls: _Calls, uri: str, pool: libvirt.virStoragePool, name: str,
                     storage: int, volume_format: str | None) -> libvirt.virStorageVol:
        xml = volume_xml(name, storage, volume_format)
        if self.image is None:
            volume = calls.call(uri, f"creating volume {name}", pool.createXML, xml, 0,
                                slow=True)
            calls.log(f"created volume {name} ({storage} GiB) in pool {self.pool}")
            return volume
        base = self._image(calls, uri, pool)
        volume = calls.call(uri, f"cloning {self.image} into volume {name}",
                            pool.createXMLFrom, xml, base, 0, slow=True)
        calls.log(f"cloned {self.image} into volume {name} ({storage} GiB)")
        return volume

    def delete(self, job: ClaimedJob, work: Work) -> Answer:
        calls = _Calls(self, work, self.timeout)
        uri = self.server_uri(job.baremetal_name, job.hypervisor_uri)
        conn = calls.connection(uri)
        name = self.domain_name(job.vm_id, job.vm_name)
        try:
            domain = self._own_domain(calls, conn, uri, job.vm_id, name)
        except DomainClash as clash:
            # Ours is gone (or never was): someone else's of that name stays untouched.
            calls.log(str(clash))
            return f"No domain of this VM on {uri}; a foreign domain named {name} was left alone."
        if domain is None:
            return f"Domain {name} is not on {uri} (any more): nothing to delete."
        self._remove(calls, uri, conn, domain, name)
        return f"Domain {name} and its volume removed from {uri}."

    def _remove(self, calls: _Calls, uri: str, conn: libvirt.virConnect,
                domain: libvirt.virDomain, name: str, keep_volumes: bool = False) -> None:
        """Stop, remove the volumes (this domain's own), undefine — in that order, so that
        a try that stops halfway is finished by the next one."""
        if calls.call(uri, f"checking domain {name}", domain.isActive):
            calls.call(uri, f"stopping domain {name}", domain.destroy)
            calls.log(f"stopped domain {name}")
        if not keep_volumes:
            self._remove_volumes(calls, uri, conn, self._own_volumes(calls, uri, domain, name))
        self._undefine(calls, uri, domain, name)

    @staticmethod
    def _undefine(calls: _Calls, uri: str, domain: libvirt.virDomain, name: str) -> None:
        try:
            calls.call(uri, f"undefining domain {name}", domain.undefineFlags, UNDEFINE_FLAGS)
        except LibvirtFailure as failure:
            if failure.code not in (*UNSUPPORTED, libvirt.VIR_ERR_INVALID_ARG):
                raise
            calls.call(uri, f"undefining domain {name}", domain.undefine)
        calls.log(f"undefined domain {name} on {uri}")

    def _remove_volumes(self, calls: _Calls, uri: str, conn: libvirt.virConnect,
                        volumes: list[tuple[str, str]]) -> None:
        for pool_name, volume_name in volumes:
            try:
                pool = calls.call(uri, f"looking up storage pool {pool_name}",
                                  conn.storagePoolLookupByName, pool_name)
            except LibvirtFailure as failure:
                if failure.code == libvirt.VIR_ERR_NO_STORAGE_POOL:
                    continue
                raise
            volume = self._lookup_volume(calls, uri, pool, volume_name)
            if volume is not None:
                calls.call(uri, f"removing volume {volume_name}", volume.delete, 0, slow=True)
                calls.log(f"removed volume {volume_name} from pool {pool_name} on {uri}")

    @staticmethod
    def _own_volumes(calls: _Calls, uri: str, domain: libvirt.virDomain,
                     name: str) -> list[tuple[str, str]]:
        """The pool volumes of the domain's disks that are named after it (what the
        driver made; a disk the operator attached from elsewhere is not removed)."""
        xml = ET.fromstring(calls.call(uri, f"reading domain {name}", domain.XMLDesc, 0))
        found = []
        for source in xml.iterfind("devices/disk[@type='volume']/source"):
            pool, volume = source.get("pool"), source.get("volume") or ""
            if pool and (volume == name or volume.startswith(f"{name}.")):
                found.append((pool, volume))
        return found

    def migrate(self, job: ClaimedJob, work: Work) -> Answer:
        calls = _Calls(self, work, self.timeout)
        source_uri = self.server_uri(job.baremetal_name, job.hypervisor_uri)
        target_uri = self.server_uri(job.target_baremetal_name, job.target_hypervisor_uri)
        name = self.domain_name(job.vm_id, job.vm_name)
        if source_uri == target_uri:
            raise ProvisionFailed(
                f"Servers {job.baremetal_name} and {job.target_baremetal_name} have the same "
                f"hypervisor URI ({source_uri}): give each server its own.")
        source, target = calls.connection(source_uri), calls.connection(target_uri)
        here = self._own_domain(calls, source, source_uri, job.vm_id, name)
        there = self._own_domain(calls, target, target_uri, job.vm_id, name)
        if here is None and there is None:
            raise ProvisionFailed(f"Domain {name} is on neither {source_uri} nor {target_uri}.")
        if here is None:  # an earlier try moved it
            if not calls.call(target_uri, f"checking domain {name}", there.isActive):
                calls.call(target_uri, f"starting domain {name}", there.create, slow=True)
            return f"Domain {name} is on {target_uri} already."
        running_here = calls.call(source_uri, f"checking domain {name}", here.isActive)
        if there is not None and calls.call(target_uri, f"checking domain {name}",
                                            there.isActive):
            if running_here:
                raise ProvisionFailed(
                    f"Domain {name} runs on both {source_uri} and {target_uri}: stop the one "
                    "that should not run, then retry.")
            # An earlier try moved it and stopped before cleaning up the source.
            self._remove(calls, source_uri, source, here, name, keep_volumes=self.shared_storage)
            return f"Domain {name} runs on {target_uri}; its old definition was removed."
        target_pool, pool_type = self._pool(calls, target, target_uri)
        self._check_network(calls, target, target_uri)
        if self.shared_storage:
            return self._move_shared(calls, job, name, source_uri, target_uri, source, target,
                                     here, there, running_here)
        if not running_here:
            raise ProvisionFailed(
                f"Domain {name} is shut off on {source_uri}: a stopped domain's volume is "
                "not copied. Start it (or use shared storage, --shared-storage), then retry.")
        volume, _disk_format, volume_format = self._volume_of(name, pool_type)
        made = None
        if self._lookup_volume(calls, target_uri, target_pool, volume) is None:
            made = self._make_empty(calls, target_uri, target_pool, volume, job.storage,
                                    volume_format)
        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
                 | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE | libvirt.VIR_MIGRATE_NON_SHARED_DISK
                 | libvirt.VIR_MIGRATE_AUTO_CONVERGE)
        left_behind = self._own_volumes(calls, source_uri, here, name)  # before it is gone
        try:
            self._live(calls, source_uri, here, target, name, flags)
        except ProvisionFailed as failure:
            if made is not None:  # leave the target as it was
                self._try(calls, target_uri, f"removing volume {volume}", made.delete, 0)
            if getattr(failure, "code", None) in UNSUPPORTED:
                raise ProvisionFailed(
                    f"{failure} — this hypervisor cannot migrate a running domain; where the "
                    "pool is shared storage, --shared-storage moves it stopped instead."
                ) from None
            raise
        self._remove_volumes(calls, source_uri, source, left_behind)
        return f"Domain {name} migrated live from {source_uri} to {target_uri}, its volume copied."

    def _make_empty(self, calls: _Calls, uri: str, pool: libvirt.virStoragePool, name: str,
                    storage: int, volume_format: str | None) -> libvirt.virStorageVol:
        volume = calls.call(uri, f"creating volume {name}", pool.createXML,
                            volume_xml(name, storage, volume_format), 0, slow=True)
        calls.log(f"created volume {name} on {uri} for the migration")
        return volume

    def _live(self, calls: _Calls, uri: str, domain: libvirt.virDomain,
              target: libvirt.virConnect, name: str, flags: int) -> None:
        try:
            calls.call(uri, f"migrating domain {name}", domain.migrate, target, flags, None,
                       None, 0, slow=True)
        except LibvirtFailure:
            raise
        except ProvisionFailed:  # out of time: stop the migration rather than leave it going
            self._try(calls, uri, f"aborting the migration of {name}", domain.abortJob)
            raise
        calls.log(f"migrated domain {name} from {uri}")

    def _move_shared(self, calls: _Calls, job: ClaimedJob, name: str, source_uri: str,
                     target_uri: str, source: libvirt.virConnect, target: libvirt.virConnect,
                     here: libvirt.virDomain, there: libvirt.virDomain | None,
                     running: bool) -> Answer:
        """On shared storage: live migration where the hypervisor can; else (or for a
        stopped domain) define it on the target, stop it here, start it there."""
        if running:
            flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
                     | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE | libvirt.VIR_MIGRATE_AUTO_CONVERGE)
            try:
                self._live(calls, source_uri, here, target, name, flags)
                return f"Domain {name} migrated live from {source_uri} to {target_uri}."
            except LibvirtFailure as failure:
                if failure.code not in UNSUPPORTED:
                    raise
                calls.log(f"{source_uri} cannot migrate live ({failure}); moving it stopped")
        defined_here = there is None
        if defined_here:
            xml = calls.call(source_uri, f"reading domain {name}", here.XMLDesc,
                             libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            there = calls.call(target_uri, f"defining domain {name}", target.defineXML, xml)
            calls.log(f"defined domain {name} on {target_uri}")
        if running:  # one disk, one running domain: stop it here before it starts there
            calls.call(source_uri, f"stopping domain {name}", here.destroy)
            calls.log(f"stopped domain {name} on {source_uri}")
            try:
                calls.call(target_uri, f"starting domain {name}", there.create, slow=True)
            except ProvisionFailed:  # back to where it was: running here, nothing there
                if defined_here:
                    self._try(calls, target_uri, f"undefining domain {name}", there.undefine)
                self._try(calls, source_uri, f"starting domain {name} again", here.create)
                raise
            calls.log(f"started domain {name} on {target_uri}")
        self._undefine(calls, source_uri, here, name)
        calls.call(target_uri, f"setting autostart of {name}", there.setAutostart, 1)
        state = "started" if running else "stopped, as it was"
        return f"Domain {name} moved from {source_uri} to {target_uri} ({state})."

    @staticmethod
    def _try(calls: _Calls, uri: str, what: str, fn: Callable, *args: Any) -> None:
        """Best effort, on the way out of a failure: its own failure is only logged."""
        try:
            calls.driver.bounded(uri, what, calls.driver.call_timeout, fn, *args)
        except ProvisionFailed as failure:
            log.warning("libvirt driver: %s", failure)

    # ---- measurements (SPEC 8.4) --------------------------------------------------------

    def measure(self, targets: Sequence[MetricTarget]) -> list[dict]:
        """VMs from their domains' statistics, servers from their hypervisor's node
        statistics. A hypervisor that does not answer is skipped, never fatal; the first
        measurement of a domain or server has no cpu_util yet (it needs two readings)."""
        by_uri: dict[str, list[MetricTarget]] = {}
        for target in targets:
            if target.object_type not in ("vm", "baremetal"):
                continue
            uri = target.hypervisor_uri or (
                self.libvirt_uri if self.libvirt_uri and "{server}" not in self.libvirt_uri
                else None)
            if uri:
                by_uri.setdefault(uri, []).append(target)
        samples: list[dict] = []
        for uri, group in by_uri.items():
            calls = _Calls(self, None, self.call_timeout * 3)
            try:
                conn = calls.connection(uri)
                samples += self._measure_vms(calls, uri, conn,
                                             [t for t in group if t.object_type == "vm"])
                samples += self._measure_nodes(calls, uri, conn,
                                               [t for t in group if t.object_type != "vm"])
            except ProvisionFailed as failure:
                log.warning("libvirt driver: no measurements from %s: %s", uri, failure)
        return samples

    def _measure_vms(self, calls: _Calls, uri: str, conn: libvirt.virConnect,
                     targets: list[MetricTarget]) -> list[dict]:
        if not targets:
            return []
        domains = {}
        for target in targets:
            name = self.domain_name(target.object_id, target.name)
            try:
                domains[name] = (target, calls.call(uri, f"looking up domain {name}",
                                                    conn.lookupByName, name))
            except LibvirtFailure as failure:
                if failure.code != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
        if not domains:
            return []
        listed = calls.call(uri, "reading domain statistics", conn.domainListGetStats,
                            [d for _, d in domains.values()], VM_STATS)
        now, ts, samples = time.monotonic(), sample_time(), []
        for domain, stats in listed:
            target, _ = domains[domain.name()]
            stats = dict(stats)
            if "cpu.time" not in stats:  # hypervisors (the test one) without bulk stats
                stats.update(self._stats_one_by_one(calls, uri, domain))
            key = (uri, domain.name())
            values = vm_values(stats, self._vm_cpu.get(key), now)
            if "cpu.time" in stats:
                self._vm_cpu[key] = (stats["cpu.time"], now)
            if values:
                samples.append({"object_type": "vm", "object_id": target.object_id, "ts": ts,
                                "values": values})
        return samples

    @staticmethod
    def _stats_one_by_one(calls: _Calls, uri: str, domain: libvirt.virDomain
                          ) -> dict[str, Any]:
        """The keys of the bulk statistics, from the older one-domain calls."""
        name = domain.name()
        _state, _max_kib, memory_kib, vcpus, cpu_time = calls.call(
            uri, f"reading domain {name}", domain.info)
        stats: dict[str, Any] = {"cpu.time": cpu_time, "vcpu.current": vcpus,
                                 "balloon.current": memory_kib}
        if calls.call(uri, f"checking domain {name}", domain.isActive):
            memory = calls.call(uri, f"reading memory of {name}", domain.memoryStats)
            stats.update({f"balloon.{k}": v for k, v in memory.items()
                          if k in ("available", "unused", "rss")})
        xml = ET.fromstring(calls.call(uri, f"reading domain {name}", domain.XMLDesc, 0))
        disks = xml.findall("devices/disk[@device='disk']")
        stats["block.count"] = len(disks)
        conn = domain.connect()
        for i, disk in enumerate(disks):
            source, device = disk.find("source"), disk.find("target")
            try:
                if disk.get("type") == "volume" and source is not None:
                    pool = calls.call(uri, "looking up a pool", conn.storagePoolLookupByName,
                                      source.get("pool"))
                    volume = calls.call(uri, "looking up a volume", pool.storageVolLookupByName,
                                        source.get("volume"))
                    allocation = calls.call(uri, "reading a volume", volume.info)[2]
                elif device is not None:
                    allocation = calls.call(uri, f"reading disk of {name}", domain.blockInfo,
                                            device.get("dev"))[1]
                else:
                    continue
            except LibvirtFailure:
                continue  # a disk whose source is gone says nothing
            stats[f"block.{i}.allocation"] = allocation
        return stats

    def _measure_nodes(self, calls: _Calls, uri: str, conn: libvirt.virConnect,
                       targets: list[MetricTarget]) -> list[dict]:
        if not targets:
            return []
        cpu = calls.call(uri, "reading host CPU times", conn.getCPUStats,
                         libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)
        previous, self._node_cpu[uri] = self._node_cpu.get(uri), cpu
        try:
            memory = calls.call(uri, "reading host memory", conn.getMemoryStats,
                                libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
            used_kib = memory["total"] - memory["free"] - memory.get("buffers", 0) \
                - memory.get("cached", 0)
            memory_used = used_kib * 1024
        except LibvirtFailure:  # not every hypervisor has it: total less free, then
            total_mib = calls.call(uri, "reading host info", conn.getInfo)[1]
            memory_used = total_mib * 1024**2 - calls.call(uri, "reading free memory",
                                                           conn.getFreeMemory)
        storage_used = None
        try:
            pool, _ = self._pool(calls, conn, uri)
            storage_used = calls.call(uri, f"reading pool {self.pool}", pool.info)[2]
        except ProvisionFailed:
            pass  # no pool there: storage unknown
        values = node_values(cpu, previous, memory_used, storage_used)
        ts = sample_time()
        return [{"object_type": "baremetal", "object_id": t.object_id, "ts": ts,
                 "values": values} for t in targets]


def _close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        pass
