"""An estate for autoscaling: servers in one group, a tenant with quota there, a flavor,
an operator; the reference agent to finish jobs; samples fed as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from portal.extensions import db
from portal.provisioning.agent import Agent, DatabaseQueue
from portal.provisioning.drivers import SimulateDriver
from portal.vm_groups import service as vm_groups
from tests import factories as f


@dataclass
class Estate:
    app: Any
    group: Any
    servers: list
    tenant: Any
    quota: Any
    flavor: Any
    operator: Any

    def vm_group(self, name="web", size=2, **kw):
        request = vm_groups.build_request(
            self.operator, name=name, tenant_id=self.tenant.id, group_id=self.group.id,
            spec_id=self.flavor.id, size=size, **kw)
        return vm_groups.create_group(request, self.operator)

    def run_agent(self) -> int:
        """Finish every queued job, as the reference agent does."""
        agent = Agent(DatabaseQueue(self.app), SimulateDriver(delay=0), name="test-agent")
        done = 0
        while agent.run_once():
            done += 1
        db.session.rollback()
        return done


@pytest.fixture
def estate(any_app) -> Estate:
    group = f.group(name="pool")
    rack = f.rack()
    servers = [f.server(group=group, rack=rack, rack_unit=u, cpu=32, memory=128, storage=1000)
               for u in (1, 3, 5, 7)]
    tenant = f.tenant(name="shop")
    quota = f.quota(tenant, group, cpu_limit=40)
    flavor = f.flavor(cpu=4, memory=8, storage=50, name="std-4")
    operator = f.user("ops", operator=True)
    db.session.commit()
    return Estate(any_app, group, servers, tenant, quota, flavor, operator)


class Samples:
    """A SampleSource: every VM asked about reports ``value`` (None: nothing), sampled
    ``age`` seconds before the evaluation."""

    def __init__(self, value: float | None = None, at: datetime | None = None) -> None:
        self.value, self.at, self.asked = value, at, []

    def __call__(self, vm_ids, metric, since):
        self.asked.append((tuple(vm_ids), metric, since))
        if self.value is None:
            return {}
        return {vm_id: (self.at or since + timedelta(seconds=170), self.value)
                for vm_id in vm_ids}
