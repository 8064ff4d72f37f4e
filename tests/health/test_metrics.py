"""/metrics: what is counted as it happens (requests, placements), what is read at scrape
time (the queue, the agents), and that no label names an object."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.extensions import db
from portal.models import ProvisionJob, utcnow
from portal.provisioning import jobs
from tests import factories as f
from tests.api.conftest import vm_body


def scrape(client, **kw) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_rule_method_and_status(api, estate):
    client = api.client
    before = scrape(client)
    created = api.post("/vms", estate.admin_a, vm_body(estate)).get_json()["items"][0]
    for _ in range(3):
        assert api.get(f"/vms/{created['id']}", estate.admin_a).status_code == 200
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)

    rule = "/api/v1/vms/<int:vm_id>"
    assert value(after, "portal_http_requests_total", route=rule, method="GET",
                 status="200") - value(before, "portal_http_requests_total", route=rule,
                                       method="GET", status="200") == 3
    assert value(after, "portal_http_requests_total", route="/api/v1/vms", method="POST",
                 status="201") - value(before, "portal_http_requests_total",
                                       route="/api/v1/vms", method="POST", status="201") == 1
    # A path that matches no rule is one series, whatever the path.
    assert value(after, "portal_http_requests_total", route="(unmatched)", method="GET",
                 status="404") >= 1
    count = "portal_http_request_duration_seconds_count"
    assert value(after, count, route=rule, method="GET") - value(
        before, count, route=rule, method="GET") == 3
    assert value(after, "portal_http_request_duration_seconds_bucket", route=rule, method="GET",
                 le="+Inf") == value(after, count, route=rule, method="GET")


def test_placements_and_refusals_by_code(api, estate):
    before = scrape(api.client)
    assert api.post("/vms", estate.admin_a, vm_body(estate, count=2)).status_code == 201
    # Tenant A's quota is 16 CPU; 8 are used, a 4-VM request needs 16 more.
    refused = api.post("/vms", estate.admin_a, vm_body(estate, name="big", count=4))
    assert refused.status_code == 409 and refused.get_json()["code"] == "quota_exceeded"
    huge = f.flavor(cpu=64, memory=8, storage=50)
    db.session.commit()
    too_big = api.post("/vms", estate.admin_b, vm_body(estate, name="huge", spec_id=huge.id,
                                                        tenant_id=estate.tenant_b.id))
    assert too_big.get_json()["code"] == "insufficient_capacity", too_big.get_json()
    after = scrape(api.client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portal_placements_total") == 1
    assert delta("portal_placed_vms_total") == 2
    assert delta("portal_placement_refusals_total", code="quota_exceeded") == 1
    assert delta("portal_placement_refusals_total", code="insufficient_capacity") == 1


def test_queue_and_agents_are_read_at_scrape_time(any_app):
    server, tenant, flavor = f.server(group=f.group()), f.tenant(), f.flavor()
    created = [jobs.enqueue(f.vm(tenant, server, flavor, status="provisioning"), "create")
               for _ in range(4)]
    created[3].created_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    jobs.claim("agent-a", limit=1)
    jobs.claim("agent-b", limit=1)
    db.session.execute(ProvisionJob.__table__.update().where(ProvisionJob.claimed_by == "agent-b")
                       .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    samples = scrape(any_app.test_client())
    assert value(samples, "portal_database_up") == 1
    assert value(samples, "portal_provision_jobs", state="queued") == 2
    assert value(samples, "portal_provision_jobs", state="claimed") == 1
    assert value(samples, "portal_provision_jobs", state="expired") == 1
    assert 290 <= value(samples, "portal_provision_job_oldest_queued_age_seconds") <= 600
    assert value(samples, "portal_agents_seen") == 2
    assert value(samples, "portal_agent_last_seen_timestamp_seconds") > 1.7e9
    assert any(name == "portal_build_info" for name, _ in samples)


def test_an_empty_queue_reads_zero(any_app):
    samples = scrape(any_app.test_client())
    assert value(samples, "portal_provision_jobs", state="queued") == 0
    assert value(samples, "portal_provision_job_oldest_queued_age_seconds") == 0
    assert value(samples, "portal_agents_seen") == 0


def test_no_label_names_an_object(api, estate):
    """Series must not multiply with the estate: after requests about several objects, no
    portal_ label value holds an id, a name or a query string."""
    for i in range(3):
        vm = api.post("/vms", estate.admin_a, vm_body(estate, name=f"vm-{i}")).get_json()
        api.get(f"/vms/{vm['items'][0]['id']}?wait_for=active&timeout=0", estate.admin_a)
        api.client.get(f"/vms/{vm['items'][0]['id']}")
    allowed = {"route", "method", "status", "code", "state", "le", "version"}
    for (name, labels) in scrape(api.client):
        if not name.startswith("portal_"):
            continue
        for key, label in labels:
            assert key in allowed, (name, key)
            if key == "route":
                assert not re.search(r"/\d+(/|$)|\?", label), (name, label)
            assert not re.search(r"vm-\d", label), (name, label)


@pytest.fixture
def guarded(app):
    app.config["PORTAL_METRICS_TOKEN"] = "scrape-secret"
    yield app
    app.config["PORTAL_METRICS_TOKEN"] = None


def test_a_metrics_token_keeps_other_scrapers_out(guarded):
    client = guarded.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "portal_http_requests_total" in client.get(
        "/metrics", headers={"Authorization": "Bearer scrape-secret"}).get_data(as_text=True)
