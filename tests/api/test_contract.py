"""What holds for every operation of the registry: no token → 401; a role that may not act
→ 403; a body that is not valid → 422 naming the field, and nothing changed; the OpenAPI
document describes exactly the operations that run; unknown paths answer problem+json."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.api import api, init_api
from portal.api.core import ANY_ROLE, OPERATORS_ONLY
from portal.auth.access import RULES, TENANT_ADMIN
from portal.extensions import db
from tests.api.conftest import Api, assert_problem, build_estate
from tests.conftest import empty_database

init_api()
OPERATIONS = api.operations
IDS = [f"{op.method} {op.path}" for op in OPERATIONS]
# Public operations (access None: the portal's status) take no token.
SECURED = [op for op in OPERATIONS if op.access is not None]


def concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", "1", path)


def row_counts() -> dict[str, int]:
    return {table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables}


@pytest.fixture(scope="module")
def shared(sqlite_app):
    """One estate for the tests below, which change nothing (and assert it)."""
    empty_database(sqlite_app)
    with sqlite_app.app_context():
        estate = build_estate()
        db.session.remove()
    yield Api(sqlite_app.test_client()), estate
    empty_database(sqlite_app)


@pytest.fixture
def unchanged(sqlite_app, shared):
    """(api, estate), and a check that the test changed no row."""
    with sqlite_app.app_context():
        before = row_counts()
        yield shared
        db.session.rollback()
        assert row_counts() == before


@pytest.mark.parametrize("op", SECURED, ids=[f"{op.method} {op.path}" for op in SECURED])
def test_every_operation_needs_a_token(unchanged, op):
    api, _ = unchanged
    response = api.call(op.method, concrete(op.path), json={} if op.body else None)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _denied_to_tenant_admins(op) -> bool:
    if op.access is None or op.access is ANY_ROLE:
        return False
    if op.access is OPERATORS_ONLY:
        return True
    return TENANT_ADMIN not in RULES[op.access.area].get(op.access.action, ())


@pytest.mark.parametrize("op", [op for op in OPERATIONS if _denied_to_tenant_admins(op)],
                         ids=[i for op, i in zip(OPERATIONS, IDS, strict=True)
                              if _denied_to_tenant_admins(op)])
def test_tenant_admins_get_403_where_their_role_may_not_act(unchanged, op):
    api, estate = unchanged
    response = api.call(op.method, concrete(op.path), estate.admin_a,
                        json={} if op.body else None)
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("op", [op for op in OPERATIONS if op.body is not None],
                         ids=[i for op, i in zip(OPERATIONS, IDS, strict=True)
                              if op.body is not None])
def test_an_invalid_body_is_422_and_changes_nothing(unchanged, op):
    api, estate = unchanged
    response = api.call(op.method, concrete(op.path), estate.operator,
                        json={"no_such_field": "x"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"], body


def test_the_document_lists_every_operation_and_only_those(api):
    doc = api.get("/openapi.json").get_json()
    documented = {(method.upper(), path) for path, item in doc["paths"].items()
                  for method in item}
    assert documented == {(op.method, "/api/v1" + op.path) for op in OPERATIONS}
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    create = doc["paths"]["/api/v1/vms"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    vm_create = doc["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"name", "tenant_id", "group_id", "spec_id"} <= set(vm_create["required"])
    assert "application/problem+json" in create["responses"]["409"]["content"]


def test_docs_page_is_browsable_without_a_token(api):
    page = api.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/v1/vms" in html and "Create VMs" in html and 'id="problem-quota_exceeded"' in html


def test_unknown_paths_and_methods_answer_problems(api, estate):
    assert_problem(api.get("/no-such-thing", estate.operator), 404, "not_found")
    assert_problem(api.get("/vms/abc", estate.operator), 404, "not_found")
    assert_problem(api.get("/vms/99999999999", estate.operator), 404, "not_found")
    response = api.call("PUT", "/vms", estate.operator)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"


def test_api_posts_need_no_csrf_token(app, estate):
    """The API authenticates by bearer token only, so it is exempt from the session's CSRF
    (tests run with CSRF on, as production does)."""
    assert app.config.get("WTF_CSRF_ENABLED", True)
    client = app.test_client()
    response = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["write"]},
                           headers={"Authorization": f"Bearer {estate.operator}"})
    assert response.status_code == 201
    assert response.get_json()["token"].startswith("rp_")
