"""GET /api/v1/metrics: one object's series, at the resolution its range asks for, only
for those who may read the object."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.extensions import db
from portal.metrics import store
from portal.models import metric_15m, utcnow
from tests.api.conftest import assert_problem
from tests.metrics.conftest import iso


def post(api, world, samples):
    response = api.post("/metrics", world.operator, {"samples": samples})
    assert response.status_code == 200, response.get_json()


def test_a_vms_series_for_the_last_hour(api, world):
    now = utcnow().replace(microsecond=0)
    post(api, world, [{"object_type": "vm", "object_id": world.vm.id,
                       "ts": iso(now - timedelta(minutes=m)),
                       "values": {"cpu_util": m / 100, "memory_used_gib": 2}}
                      for m in (50, 10, 70)])
    response = api.get(f"/metrics?object_type=vm&object_id={world.vm.id}&metric=cpu_util",
                       world.estate.admin_a)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["source"] == "embedded" and body["step"] is None
    [series] = body["series"]
    assert series["metric"] == "cpu_util"
    assert [p["v"] for p in series["points"]] == pytest.approx([0.5, 0.1])  # 70 min: outside
    assert series["points"][0]["t"].endswith(("Z", "+00:00"))


def test_every_metric_by_default_and_a_step(api, world):
    now = store.floor_bucket(utcnow())
    post(api, world, [{"object_type": "cluster", "object_id": world.cluster.id,
                       "ts": iso(now - timedelta(minutes=m)),
                       "values": {"nodes_ready": 3, "nodes_total": 3, "pods_pending": m % 2}}
                      for m in range(1, 21)])
    start, end = iso(now - timedelta(minutes=20)), iso(now)
    body = api.get(f"/metrics?object_type=cluster&object_id={world.cluster.id}"
                   f"&from={start}&to={end}&step=600", world.operator).get_json()
    assert [s["metric"] for s in body["series"]] == [
        "nodes_ready", "nodes_total", "pods_pending", "cpu_requested", "memory_requested_gib"]
    pending = body["series"][2]["points"]
    assert [p["v"] for p in pending] == pytest.approx([0.5, 0.5])
    assert body["series"][3]["points"] == []  # never reported: no data


def test_thirty_days_come_from_the_fifteen_minute_rollups(api, world):
    now = store.floor_bucket(utcnow())
    db.session.execute(metric_15m.insert(), [
        {"object_type": "baremetal", "object_id": world.server.id, "ts": now - timedelta(days=d),
         "cpu_util": d / 100, "cpu_util_max": 1, "samples": 15} for d in (3, 20, 40)])
    db.session.commit()
    start = iso(now - timedelta(days=30))
    body = api.get(f"/metrics?object_type=baremetal&object_id={world.server.id}"
                   f"&metric=cpu_util&from={start}", world.operator).get_json()
    assert [p["v"] for p in body["series"][0]["points"]] == pytest.approx([0.2, 0.03])


def test_another_tenants_vm_is_not_found(api, world):
    url = f"/metrics?object_type=vm&object_id={world.vm_b.id}"
    assert_problem(api.get(url, world.estate.admin_a), 404, "not_found")
    assert api.get(url, world.estate.admin_b).status_code == 200
    cluster = f"/metrics?object_type=cluster&object_id={world.cluster.id}"
    assert_problem(api.get(cluster, world.estate.admin_b), 404, "not_found")
    # Servers are staff's: a tenant admin sees none.
    server = f"/metrics?object_type=baremetal&object_id={world.server.id}"
    assert_problem(api.get(server, world.estate.admin_a), 404, "not_found")
    assert api.get(server, world.estate.maintainer).status_code == 200
    assert_problem(api.get("/metrics?object_type=vm&object_id=999999", world.operator), 404,
                   "not_found")


def test_a_tenant_restricted_token_sees_only_its_tenant(api, world, any_app):
    from portal.auth import tokens
    from tests import factories as f

    user = f.user(operator=True)
    secret = tokens.issue_token(user, "ci", scopes=["read"],
                                tenant_id=world.estate.tenant_a.id).secret
    db.session.commit()
    assert api.get(f"/metrics?object_type=vm&object_id={world.vm.id}", secret
                   ).status_code == 200
    assert_problem(api.get(f"/metrics?object_type=vm&object_id={world.vm_b.id}", secret),
                   404, "not_found")


@pytest.mark.parametrize("query, field", [
    ("object_type=rack&object_id=1", "query.object_type"),
    ("object_type=vm", "query.object_id"),
    ("object_type=vm&object_id=1&metric=pods_pending", "query.metric"),
    ("object_type=vm&object_id=1&from=yesterday", "query"),
    ("object_type=vm&object_id=1&step=0", "query.step"),
    ("object_type=vm&object_id=1&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
     "query.from"),
])
def test_a_bad_query_is_a_validation_problem(api, world, query, field):
    body = assert_problem(api.get(f"/metrics?{query}", world.operator), 422,
                          "validation_error")
    assert any(key.startswith(field) for key in body["errors"]), body


def test_a_source_that_cannot_answer_is_a_503_with_its_reason(api, world, any_app):
    any_app.config["PORTAL_PROMETHEUS_URL"] = "http://127.0.0.1:9/"
    try:
        response = api.get(f"/metrics?object_type=vm&object_id={world.vm.id}",
                           world.operator)
    finally:
        any_app.config.pop("PORTAL_PROMETHEUS_URL")
    body = assert_problem(response, 503, "service_unavailable")
    assert body["detail"]
