"""API tokens (SPEC 8.6): scopes, expiry, tenant restriction, a cap, revoke-all — through
the API, where a leaked token is used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.api import api as registry
from portal.api import init_api
from portal.auth import tokens
from portal.extensions import db
from portal.models import ApiToken, AuditEvent, User, VirtualMachine, utcnow
from tests import factories as f
from tests.api.conftest import assert_problem, vm_body


def issue(user_token_owner: User, scope: str = "admin", **kw) -> str:
    secret = tokens.issue_token(user_token_owner, "t", scopes=[scope], **kw).secret
    db.session.commit()
    return secret


def user_named(username: str) -> User:
    return db.session.scalar(select(User).where(User.username == username))


def token_count() -> int:
    return db.session.scalar(select(func.count(ApiToken.id)))


@pytest.fixture
def operator(estate) -> User:
    return db.session.scalar(select(User).where(User.is_operator.is_(True)))


@pytest.fixture
def admin_a(estate) -> User:
    return db.session.scalar(
        select(User).join(User.tenant_links).where(
            User.tenant_links.any(tenant_id=estate.tenant_a.id)))


# --- who may mint ---------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["read", "write"])
def test_only_an_admin_token_mints_or_manages_tokens(api, operator, scope):
    weak = issue(operator, scope)
    other = tokens.issue_token(operator, "other", scopes=["write"]).token
    db.session.commit()
    before = token_count()
    for response in (
        api.post("/tokens", weak, {"name": "child", "scopes": ["read"]}),
        api.delete(f"/tokens/{other.id}", weak),
        api.post("/tokens/revoke-all", weak),
    ):
        body = assert_problem(response, 403, "forbidden")
        assert "admin" in body["detail"]
    assert token_count() == before
    assert db.session.scalar(select(func.count(ApiToken.id)).where(
        ApiToken.revoked_at.is_not(None))) == 0
    assert api.get("/tokens", weak).status_code == 200  # reading them is fine


def test_an_admin_token_mints_a_scoped_expiring_child(api, operator):
    parent = issue(operator, "admin")
    response = api.post("/tokens", parent, {"name": "ci", "scopes": ["write"]})
    assert response.status_code == 201
    child = response.get_json()
    assert child["scopes"] == ["read", "write"] and child["tenant_id"] is None
    expires = datetime.fromisoformat(child["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    # The child does not survive "revoke all" of its user, parent included.
    assert api.post("/tokens/revoke-all", parent).get_json() == {"revoked": 3}
    for secret in (parent, child["token"]):
        assert_problem(api.get("/me", secret), 401, "unauthorized")


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "scopes": ["root"]}, "scopes.0"),
    ({"name": "x", "scopes": []}, "scopes"),
    ({"name": "x"}, "scopes"),
    ({"name": "", "scopes": ["read"]}, "name"),
    ({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"name": "x", "scopes": ["read"], "expires_at": "9999-12-31T23:00:00-05:00"},
     "expires_at"),
    ({"name": "x", "scopes": ["read"], "expires_at": "soon"}, "expires_at"),
    ({"name": "x", "scopes": ["read"], "tenant_id": 999999}, "tenant_id"),
])
def test_bad_token_requests_are_refused_and_create_nothing(api, operator, body, field):
    parent = issue(operator)
    before = token_count()
    problem = assert_problem(api.post("/tokens", parent, body), 422, "validation_error")
    assert field in problem["errors"], problem
    assert token_count() == before


def test_expiry_is_at_most_a_year(api, operator):
    parent = issue(operator)
    late = (datetime.now(UTC) + timedelta(days=366)).isoformat()
    problem = assert_problem(api.post("/tokens", parent, {
        "name": "x", "scopes": ["read"], "expires_at": late}), 422, "validation_error")
    assert "365 days" in problem["errors"]["expires_at"]
    fine = (datetime.now(UTC) + timedelta(days=364)).isoformat()
    created = api.post("/tokens", parent, {"name": "x", "scopes": ["read"], "expires_at": fine})
    assert created.status_code == 201


# --- read tokens do not write ---------------------------------------------------------------


def test_a_read_token_gets_403_on_every_write_operation(api, estate, operator):
    read = issue(operator, "read")
    before = (token_count(), db.session.scalar(select(func.count(AuditEvent.id))))
    init_api()
    writes = [op for op in registry.operations if op.method != "GET"]
    assert len(writes) > 30
    for op in writes:
        path = op.path
        for param in op.path_params:
            path = path.replace("{" + param + "}", "1")
        response = api.call(op.method, path, read, json={})
        assert response.status_code == 403, (op.method, op.path, response.get_json())
        assert response.get_json()["code"] == "forbidden"
    # Reads work, and nothing was written (beyond noting the token's use).
    assert api.get("/vms", read).status_code == 200
    assert (token_count(), db.session.scalar(select(func.count(AuditEvent.id)))) == before


def test_a_write_token_writes_within_its_users_role(api, estate, admin_a):
    write = issue(admin_a, "write")
    assert api.post("/vms", write, vm_body(estate)).status_code == 201
    # Its user's role still rules: a tenant admin creates no tenants.
    assert_problem(api.post("/tenants", write, {"name": "x"}), 403, "forbidden")


# --- expired and revoked tokens --------------------------------------------------------------


def test_expired_and_revoked_tokens_are_401(api, operator):
    live = tokens.issue_token(operator, "soon", scopes=["read"],
                              expires_at=utcnow() + timedelta(seconds=30))
    revoked = tokens.issue_token(operator, "gone", scopes=["read"])
    tokens.revoke_token(operator, revoked.token.id)
    db.session.commit()
    assert api.get("/me", live.secret).status_code == 200
    live.token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    body = assert_problem(api.get("/me", live.secret), 401, "unauthorized")
    assert "expired" in body["detail"]
    assert_problem(api.get("/me", revoked.secret), 401, "unauthorized")


def test_a_token_from_before_expiry_existed_expires_after_the_default_lifetime(api, operator):
    old = tokens.issue_token(operator, "legacy", scopes=["read"])
    old.token.expires_at = None
    db.session.commit()
    assert api.get("/me", old.secret).status_code == 200
    old.token.created_at = utcnow() - timedelta(days=91)
    db.session.commit()
    assert_problem(api.get("/me", old.secret), 401, "unauthorized")


# --- tenant restriction ----------------------------------------------------------------------


def test_a_tenant_restricted_operator_token_acts_as_that_tenants_admin(api, estate, operator):
    theirs = f.vm(estate.tenant_b, estate.servers[0], estate.flavor, name="b-vm")
    mine = f.vm(estate.tenant_a, estate.servers[0], estate.flavor, name="a-vm")
    db.session.commit()
    token = issue(operator, "write", tenant_id=estate.tenant_a.id)
    me = api.get("/me", token).get_json()
    assert me["roles"] == ["tenant_admin"] and me["tenant_ids"] == [estate.tenant_a.id]
    listed = api.get("/vms", token).get_json()
    assert [v["name"] for v in listed["items"]] == ["a-vm"] and listed["total"] == 1
    assert api.get(f"/vms/{mine.id}", token).status_code == 200
    assert_problem(api.get(f"/vms/{theirs.id}", token), 404, "not_found")
    assert_problem(api.delete(f"/vms/{theirs.id}", token), 404, "not_found")
    assert_problem(api.get(f"/tenants/{estate.tenant_b.id}", token), 404, "not_found")
    assert_problem(api.get("/racks", token), 403, "forbidden")  # no operator inventory
    before = db.session.scalar(select(func.count(VirtualMachine.id)))
    refused = api.post("/vms", token, vm_body(estate, tenant_id=estate.tenant_b.id))
    assert "tenant_id" in assert_problem(refused, 422, "validation_error")["errors"]
    assert db.session.scalar(select(func.count(VirtualMachine.id))) == before
    assert api.post("/vms", token, vm_body(estate)).status_code == 201


def test_a_tenant_admin_restricts_only_to_a_tenant_they_administer(api, estate, admin_a):
    token = issue(admin_a, "admin")
    before = token_count()
    for tenant_id in (estate.tenant_b.id, 999999):
        refused = api.post("/tokens", token, {"name": "x", "scopes": ["read"],
                                              "tenant_id": tenant_id})
        assert "tenant_id" in assert_problem(refused, 422, "validation_error")["errors"]
    assert token_count() == before
    created = api.post("/tokens", token, {"name": "x", "scopes": ["read"],
                                          "tenant_id": estate.tenant_a.id})
    assert created.status_code == 201 and created.get_json()["tenant_id"] == estate.tenant_a.id


def test_a_restricted_token_loses_its_tenant_with_the_users_admin_rights(api, estate, admin_a):
    vm = f.vm(estate.tenant_a, estate.servers[0], estate.flavor)
    token = issue(admin_a, "read", tenant_id=estate.tenant_a.id)
    assert api.get(f"/vms/{vm.id}", token).status_code == 200
    db.session.delete(admin_a.tenant_links[0])
    db.session.commit()
    assert api.get(f"/vms/{vm.id}", token).status_code in (403, 404)
    assert api.get("/me", token).get_json()["tenant_ids"] == []


# --- the cap and the list --------------------------------------------------------------------


def test_live_tokens_per_user_are_capped(api, operator):
    parent = issue(operator)  # the estate's token is the other one
    for i in range(tokens.MAX_LIVE_TOKENS - 2):
        tokens.issue_token(operator, f"t{i}", scopes=["read"])
    db.session.commit()
    before = token_count()
    body = assert_problem(api.post("/tokens", parent, {"name": "one-more", "scopes": ["read"]}),
                          409, "conflict")
    assert f"{tokens.MAX_LIVE_TOKENS} live tokens" in body["detail"]
    assert token_count() == before
    # Revoked and expired tokens do not count.
    assert api.delete(f"/tokens/{operator.tokens[-1].id}", parent).status_code == 200
    assert api.post("/tokens", parent, {"name": "one-more", "scopes": ["read"]}).status_code == 201


def test_the_token_list_shows_scopes_tenant_expiry_and_last_use(api, estate, operator):
    parent = issue(operator)
    issue(operator, "read", tenant_id=estate.tenant_a.id)
    api.get("/me", parent)
    items = api.get("/tokens", parent).get_json()["items"]
    restricted, used = items[0], items[1]
    assert restricted["scopes"] == ["read"] and restricted["tenant_id"] == estate.tenant_a.id
    assert restricted["last_used_at"] is None and restricted["expires_at"]
    assert used["scopes"] == ["read", "write", "admin"] and used["last_used_at"] is not None
    assert all("token" not in item for item in items)


def test_revoke_all_is_documented(api):
    document = api.get("/openapi.json").get_json()
    operation = document["paths"]["/api/v1/tokens/revoke-all"]["post"]
    assert "403" in operation["responses"] and "revoke" in operation["summary"].lower()


# --- users create --token ---------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "scopes"), [
    (["--operator"], "read write admin"),
    ([], "read write"),
])
def test_cli_token_is_admin_for_operators_and_write_for_others(app, flags, scopes):
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "cli-user", "--password", "Long-enough-pw-42", *flags, "--token"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    token = tokens.live_token(secret)
    assert token.scopes == scopes
    assert tokens.expires(token) - utcnow() > timedelta(days=89)
