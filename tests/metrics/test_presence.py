"""The agent presence table: written on claims, heartbeats and metrics posts, read by the
status endpoint (agents_seen) and the dashboard (stale_agents)."""

from __future__ import annotations

from datetime import timedelta

from portal.extensions import db
from portal.health import service
from portal.metrics import presence, query
from portal.models import AgentPresence, utcnow
from portal.provisioning import jobs
from portal.provisioning.jobs import ClaimScope
from tests import factories as f


def test_claims_and_heartbeats_record_the_agent_and_its_scope(any_app):
    group = f.group()
    server, tenant, flavor = f.server(group=group), f.tenant(), f.flavor()
    job = jobs.enqueue(f.vm(tenant, server, flavor, status="provisioning"), "create")
    db.session.commit()
    jobs.claim("edge-1", scope=ClaimScope(groups=(group.name,)))
    row = db.session.get(AgentPresence, "edge-1")
    assert row.scope == f"group={group.name}"
    # An idle poll of an empty queue counts as being seen, too.
    jobs.claim("idle-1")
    assert set(service.agents_seen()) == {"edge-1", "idle-1"}
    db.session.execute(AgentPresence.__table__.update().values(
        last_seen=utcnow() - timedelta(hours=1)))
    db.session.commit()
    jobs.heartbeat(job.id, "edge-1")
    db.session.expire_all()
    assert set(service.agents_seen()) == {"edge-1"}


def test_a_fresh_presence_is_not_rewritten_and_stale_agents_are_listed(any_app):
    now = utcnow().replace(microsecond=0)
    presence.touch("a", now - timedelta(hours=2), driver="libvirt")
    presence.touch("b", now - timedelta(seconds=5))
    db.session.commit()
    presence.touch("b", now, driver="simulate")  # within FRESH of the last: skipped
    db.session.commit()
    rows = {agent.name: agent for agent in query.agents(now)}
    assert rows["b"].last_seen == now - timedelta(seconds=5) and rows["b"].driver is None
    presence.touch("b", now + timedelta(minutes=1), driver="simulate")
    db.session.commit()
    rows = {agent.name: agent for agent in query.agents(now)}
    assert rows["b"].last_seen == now + timedelta(minutes=1) and rows["b"].driver == "simulate"
    assert [a.name for a in query.stale_agents(now, timedelta(minutes=15))] == ["a"]
    assert rows["a"].driver == "libvirt"
