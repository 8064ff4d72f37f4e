"""The API's own bad input: lax integers, query integers beyond the database's, deeply
nested JSON. Each gets a validation problem and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import factories as f
from tests.api.conftest import Api, token_for
from tests.web.bad_input import estate, snapshot


@pytest.fixture
def ops(app):
    return Api(app.test_client()), token_for(f.user("ops", operator=True))


LAX = [
    ("/racks", {"name": "rack-x", "region": "r1", "dc": "dc1", "height_u": True}, "height_u"),
    ("/racks", {"name": "rack-x", "region": "r1", "dc": "dc1", "height_u": "42"}, "height_u"),
    ("/vm-specs", {"name": "fl-x", "cpu": "2", "memory": 4, "storage": 20}, "cpu"),
    ("/vm-specs", {"name": "fl-x", "cpu": 2, "memory": True, "storage": 20}, "memory"),
    ("/vm-specs", {"name": "fl-x", "cpu": 2.0, "memory": 4, "storage": 20}, "cpu"),
    ("/tenants", {"name": 12}, "name"),
]


@pytest.mark.parametrize(("path", "body", "field"), LAX,
                         ids=[f"{p} {fld}={b[fld]!r}" for p, b, fld in LAX])
def test_body_values_are_not_coerced(ops, path, body, field):
    api, token = ops
    before = snapshot()
    response = api.post(path, token, body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert snapshot() == before


def test_a_strict_body_still_takes_real_integers_and_dates(ops):
    api, token = ops
    assert api.post("/vm-specs", token, {"name": "fl-x", "cpu": 2, "memory": 4,
                                         "storage": 20}).status_code == 201
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = api.post("/tokens", token, {"name": "ci", "scopes": ["read"],
                                           "expires_at": expires})
    assert response.status_code == 201, response.get_json()


def test_a_vm_count_of_true_is_refused(app):
    objects = estate()
    token = token_for(f.user("ops", operator=True))
    before = snapshot()
    response = Api(app.test_client()).post("/vms", token, {
        "name": "web", "tenant_id": objects.tenant.id, "group_id": objects.group.id,
        "spec_id": objects.flavor.id, "count": True})
    assert response.status_code == 422
    assert "count" in response.get_json()["errors"]
    assert snapshot() == before


@pytest.mark.parametrize("query", ["tenant_id=2147483648", "tenant_id=-1",
                                   "tenant_id=99999999999999999999"])
def test_query_integers_are_parsed_but_bounded(any_app, query):
    token = token_for(f.user("ops", operator=True))
    response = Api(any_app.test_client()).get(f"/vms?{query}", token)
    assert response.status_code == 422
    assert "query.tenant_id" in response.get_json()["errors"]


def test_query_integers_still_arrive_as_text(any_app):
    objects = estate()
    token = token_for(f.user("ops", operator=True))
    response = Api(any_app.test_client()).get(f"/vms?tenant_id={objects.tenant.id}", token)
    assert response.status_code == 200
    assert response.get_json()["total"] == 1


def test_json_nested_100000_deep_is_a_validation_problem(ops):
    api, token = ops
    before = snapshot()
    body = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api.client.post("/api/v1/tenants", data=body, content_type="application/json",
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert response.get_json()["detail"] == "The body is nested too deeply."
    assert snapshot() == before


def test_the_document_declares_the_new_answers(ops):
    api, _ = ops
    document = api.get("/openapi.json").get_json()
    post_vms = document["paths"]["/api/v1/vms"]["post"]["responses"]
    assert {"400", "413", "422"} <= set(post_vms)
    vm_filter = next(p for p in document["paths"]["/api/v1/vms"]["get"]["parameters"]
                     if p["name"] == "tenant_id")
    assert vm_filter["schema"]["maximum"] == 2**31 - 1
    spec = document["components"]["schemas"]["SpecIn"]["properties"]["cpu"]
    assert spec["type"] == "integer"
