"""Provisioning drivers: what an agent does for a job (SPEC 3, 8.8).

The interface every driver implements (``simulate`` here; ``libvirt`` and ``exec`` in
their own modules, loaded by name when chosen):

- ``create(job, work)``, ``delete(job, work)``, ``migrate(job, work)`` do the job and
  return a success message — for a control plane's create, ``(message, kubeconfig)`` —
  or raise :class:`ProvisionFailed` with the message the VM shows, or :class:`Deferred`
  when the job cannot be done *yet* (it goes back to the queue for later). Each is called
  again for the same VM when a job is retried or re-claimed after a crash, so each must be
  idempotent: a create finds what an earlier try built, a delete of what is gone succeeds.
- ``measure(targets)`` returns samples of what the driver can see (SPEC 8.4).
- While a job runs, the agent renews the job's lease (its heartbeat, every third of the
  lease). The driver must bound its own time — timeouts on everything it waits for — so
  that a wedged hypervisor or script fails the job instead of holding it forever, and
  should stop when ``work.lost`` is set: the lease was lost, another agent has the job.
  ``work.log(...)`` collects the job's output, kept with the job (truncated).
"""

from __future__ import annotations

import importlib
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from portal.provisioning.jobs import OUTPUT_HEAD, OUTPUT_LIMIT, ClaimedJob, clean_output

Answer = str | tuple[str, str | None]  # a message, or (message, kubeconfig)
TAIL_KEPT = OUTPUT_LIMIT - OUTPUT_HEAD - 64  # room for the line that says what was cut


class ProvisionFailed(Exception):
    """The driver could not do the job; the message goes to the VM's status_message."""


class Deferred(Exception):
    """Not yet (a worker whose control plane is not up): the job returns to the queue and
    is claimed again after ``seconds``; the message says what it waits for."""

    def __init__(self, message: str, seconds: int = 30) -> None:
        super().__init__(message)
        self.seconds = max(1, int(seconds))


class Work:
    """What a driver gets with each job besides the job itself: ``log`` for its output
    (the start and the end are kept, like the job's record keeps them) and ``lost``, set
    when the agent's lease on the job was lost."""

    def __init__(self) -> None:
        self.lost = threading.Event()
        self._head: list[str] = []
        self._head_size = 0
        self._tail: list[str] = []
        self._tail_size = 0
        self._cut = 0
        self._lock = threading.Lock()

    def log(self, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            if self._head_size < OUTPUT_HEAD:
                room = OUTPUT_HEAD - self._head_size
                self._head.append(text[:room])
                self._head_size += len(text[:room])
                text = text[room:]
            if text:
                self._tail.append(text)
                self._tail_size += len(text)
                while self._tail_size - len(self._tail[0]) >= TAIL_KEPT:
                    self._cut += len(self._tail[0])
                    self._tail_size -= len(self._tail.pop(0))

    @property
    def output(self) -> str:
        """What was logged, at most OUTPUT_LIMIT characters: the start and the end."""
        with self._lock:
            tail = "".join(self._tail)
            cut = self._cut + max(0, len(tail) - TAIL_KEPT)
            if cut:
                tail = f"[… {cut:,} characters cut …]\n" + tail[-TAIL_KEPT:]
            return clean_output("".join(self._head) + tail)


@dataclass(frozen=True)
class MetricTarget:
    """Something a driver may measure (SPEC 8.4): a server, a VM or a cluster, with what
    the portal allocated to it (a server: its total; a VM: its flavor; a cluster: the sum
    of its nodes) so that a driver can express use against it."""

    object_type: str  # "baremetal" | "vm" | "cluster"
    object_id: int
    name: str
    cpu: int
    memory: int
    storage: int
    hypervisor_uri: str | None = None  # a server's; for a VM, the server it runs on
    baremetal_id: int | None = None  # a VM's server
    nodes_total: int | None = None  # a cluster's nodes (not deleted)
    nodes_ready: int | None = None  # … of which active


class Driver(Protocol):
    def run(self, job: ClaimedJob, work: Work | None = None) -> Answer:
        """Do the job; return a success message — or (message, kubeconfig) when a cluster's
        control plane is up — or raise ProvisionFailed (or Deferred)."""

    def measure(self, targets: Sequence[MetricTarget]) -> list[dict]:
        """Samples for whichever of ``targets`` this driver can see, each in the shape of
        POST /api/v1/metrics: {"object_type", "object_id", "ts", "values": {...}}. A
        driver that measures nothing returns []."""


class BaseDriver:
    """Dispatches a job to ``create``, ``delete`` or ``migrate`` by its action."""

    def run(self, job: ClaimedJob, work: Work | None = None) -> Answer:
        actions: dict[str, Callable[[ClaimedJob, Work], Answer]] = {
            "create": self.create, "delete": self.delete, "migrate": self.migrate,
        }
        if job.action not in actions:
            raise ProvisionFailed(f"This driver cannot {job.action} a VM.")
        return actions[job.action](job, work if work is not None else Work())

    def create(self, job: ClaimedJob, work: Work) -> Answer:
        raise NotImplementedError

    def delete(self, job: ClaimedJob, work: Work) -> Answer:
        raise NotImplementedError

    def migrate(self, job: ClaimedJob, work: Work) -> Answer:
        raise NotImplementedError

    def measure(self, targets: Sequence[MetricTarget]) -> list[dict]:
        return []


class SimulateDriver(BaseDriver):
    def __init__(self, delay: float = 2.0, failure_rate: float = 0.0, seed: int | None = None):
        if delay < 0 or not 0 <= failure_rate <= 1:
            raise ValueError("delay must be >= 0 and failure_rate within 0..1")
        self.delay = delay
        self.failure_rate = failure_rate
        self.random = random.Random(seed)

    def measure(self, targets: Sequence[MetricTarget]) -> list[dict]:
        """Plausible load for the demo's charts (portal.provisioning.simulated_load)."""
        from portal.provisioning.simulated_load import simulated_samples

        return simulated_samples(targets, self.random)

    def _work(self, job: ClaimedJob, work: Work) -> None:
        work.log(f"simulate: {job.action} {job.vm_name} ({self.delay:g} s)")
        time.sleep(self.delay)
        if self.random.random() < self.failure_rate:
            raise ProvisionFailed(f"simulated failure while trying to {job.action} {job.vm_name}")

    def create(self, job: ClaimedJob, work: Work) -> Answer:
        self._work(job, work)
        if job.role == "control-plane":
            return f"simulated: {job.vm_name} created", simulated_kubeconfig(job)
        return f"simulated: {job.vm_name} created"

    def delete(self, job: ClaimedJob, work: Work) -> Answer:
        self._work(job, work)
        return f"simulated: {job.vm_name} deleted"

    def migrate(self, job: ClaimedJob, work: Work) -> Answer:
        self._work(job, work)
        return f"simulated: {job.vm_name} migrated to {job.target_baremetal_id}"


def simulated_kubeconfig(job: ClaimedJob) -> str:
    """A syntactically valid kubeconfig for a simulated cluster: its API server on the
    control-plane node, a token that opens nothing."""
    name = f"cluster-{job.k8s_cluster_id}"
    return f"""apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: https://{job.vm_name}.cluster.invalid:6443
    insecure-skip-tls-verify: true
users:
- name: {name}-admin
  user:
    token: simulated-{secrets.token_hex(16)}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}-admin
current-context: {name}
preferences: {{}}
"""


# Drivers by name, as `agent run --driver NAME` chooses them: "module:Class", imported when
# chosen (the libvirt binding is an optional install).
DRIVERS = {
    "simulate": f"{__name__}:SimulateDriver",
    "libvirt": "portal.provisioning.libvirt_driver:LibvirtDriver",
    "exec": "portal.provisioning.exec_driver:ExecDriver",
}


def driver_class(name: str) -> type:
    """The driver class registered as ``name``."""
    module, _, attribute = DRIVERS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
