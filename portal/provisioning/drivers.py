"""Provisioning drivers: what an agent does for a job. The reference `simulate` driver
waits a configurable delay and fails at a configurable rate, so the demo is alive and
failures can be exercised; a real deployment plugs in its own (libvirt, OpenStack, …)."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from portal.provisioning.jobs import ClaimedJob


class ProvisionFailed(Exception):
    """The driver could not do the job; the message goes to the VM's status_message."""


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


class Driver(Protocol):
    def run(self, job: ClaimedJob) -> str | tuple[str, str | None]:
        """Do the job; return a success message — or (message, kubeconfig) when a cluster's
        control plane is up — or raise ProvisionFailed."""

    def measure(self, targets: Sequence[MetricTarget]) -> list[dict]:
        """Samples for whichever of ``targets`` this driver can see, each in the shape of
        POST /api/v1/metrics: {"object_type", "object_id", "ts", "values": {...}}. A
        driver that measures nothing returns []."""


class SimulateDriver:
    def __init__(self, delay: float = 2.0, failure_rate: float = 0.0, seed: int | None = None):
        if delay < 0 or not 0 <= failure_rate <= 1:
            raise ValueError("delay must be >= 0 and failure_rate within 0..1")
        self.delay = delay
        self.failure_rate = failure_rate
        self.random = random.Random(seed)

    def measure(self, targets: Sequence[MetricTarget]) -> list[dict]:
        return []

    def run(self, job: ClaimedJob) -> str | tuple[str, str | None]:
        time.sleep(self.delay)
        if self.random.random() < self.failure_rate:
            raise ProvisionFailed(f"simulated failure while trying to {job.action} {job.vm_name}")
        if job.action == "migrate":
            return f"simulated: {job.vm_name} migrated to {job.target_baremetal_id}"
        verb = "created" if job.action == "create" else "deleted"
        if job.action == "create" and job.role == "control-plane":
            return f"simulated: {job.vm_name} {verb}", simulated_kubeconfig(job)
        return f"simulated: {job.vm_name} {verb}"


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


DRIVERS = {"simulate": SimulateDriver}
