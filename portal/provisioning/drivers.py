"""Provisioning drivers: what an agent does for a job. The reference `simulate` driver
waits a configurable delay and fails at a configurable rate, so the demo is alive and
failures can be exercised; a real deployment plugs in its own (libvirt, OpenStack, …)."""

from __future__ import annotations

import random
import time
from typing import Protocol

from portal.provisioning.jobs import ClaimedJob


class ProvisionFailed(Exception):
    """The driver could not do the job; the message goes to the VM's status_message."""


class Driver(Protocol):
    def run(self, job: ClaimedJob) -> str:
        """Do the job; return a success message or raise ProvisionFailed."""


class SimulateDriver:
    def __init__(self, delay: float = 2.0, failure_rate: float = 0.0, seed: int | None = None):
        if delay < 0 or not 0 <= failure_rate <= 1:
            raise ValueError("delay must be >= 0 and failure_rate within 0..1")
        self.delay = delay
        self.failure_rate = failure_rate
        self.random = random.Random(seed)

    def run(self, job: ClaimedJob) -> str:
        time.sleep(self.delay)
        if self.random.random() < self.failure_rate:
            raise ProvisionFailed(f"simulated failure while trying to {job.action} {job.vm_name}")
        if job.action == "migrate":
            return f"simulated: {job.vm_name} migrated to {job.target_baremetal_id}"
        verb = "created" if job.action == "create" else "deleted"
        return f"simulated: {job.vm_name} {verb}"


DRIVERS = {"simulate": SimulateDriver}
