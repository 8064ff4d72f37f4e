"""API fixtures: a small estate, one token per role, and a client that speaks bearer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from portal.auth import tokens
from portal.extensions import db
from tests import factories as f


def token_for(user) -> str:
    """A token with every scope: what the user's roles allow is what it may do."""
    secret = tokens.issue_token(user, "test", scopes=["admin"]).secret
    db.session.commit()
    return secret


class Api:
    """``api.get("/vms", token)`` → the response; paths are relative to /api/v1."""

    def __init__(self, client) -> None:
        self.client = client

    def call(self, method: str, path: str, token: str | None = None, json: Any = None,
             **kwargs: Any):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, json=json,
                                **kwargs)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, json=None, **kw):
        return self.call("POST", path, token, json=json if json is not None else {}, **kw)

    def patch(self, path, token=None, json=None, **kw):
        return self.call("PATCH", path, token, json=json if json is not None else {}, **kw)

    def delete(self, path, token=None, **kw):
        return self.call("DELETE", path, token, **kw)


@dataclass
class Estate:
    """Two tenants with quota in one group, a third group without quota, and a token for
    an operator, a maintainer, and the admin of tenant A (who must never see B)."""

    group: Any
    other_group: Any
    servers: list
    flavor: Any
    tenant_a: Any
    tenant_b: Any
    quota_a: Any
    quota_b: Any
    operator: str
    admin_a: str
    admin_b: str
    maintainer: str
    maintainer_row: Any
    nobody: str


def build_estate() -> Estate:
    group, other_group = f.group(), f.group()
    rack = f.rack()
    servers = [f.server(group=group, rack=rack, rack_unit=u, cpu=32, memory=128, storage=1000)
               for u in (1, 3)]
    f.server(group=other_group, cpu=32, memory=128, storage=1000)
    flavor = f.flavor(cpu=4, memory=8, storage=50)
    tenant_a, tenant_b = f.tenant(), f.tenant()
    quota_a = f.quota(tenant_a, group, cpu_limit=16)
    quota_b = f.quota(tenant_b, group)
    maintainer_row = f.maintainer()
    operator = f.user(operator=True)
    admin_a = f.user(tenants=(tenant_a.name,))
    admin_b = f.user(tenants=(tenant_b.name,))
    maintainer = f.user(maintainer_account=maintainer_row.account)
    nobody = f.user()
    db.session.commit()
    return Estate(
        group, other_group, servers, flavor, tenant_a, tenant_b, quota_a, quota_b,
        token_for(operator), token_for(admin_a), token_for(admin_b), token_for(maintainer),
        maintainer_row, token_for(nobody),
    )


@pytest.fixture
def api(app) -> Api:
    return Api(app.test_client())


@pytest.fixture
def estate(app) -> Estate:
    return build_estate()


@pytest.fixture
def pg_api(pg_app) -> Api:
    return Api(pg_app.test_client())


@pytest.fixture
def pg_estate(pg_app) -> Estate:
    return build_estate()


def vm_body(estate: Estate, **kw) -> dict:
    return {"name": "web", "tenant_id": estate.tenant_a.id, "group_id": estate.group.id,
            "spec_id": estate.flavor.id, **kw}


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code and body["status"] == status, body
    return body
