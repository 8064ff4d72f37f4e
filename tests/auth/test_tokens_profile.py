"""Tokens from the profile page: scope, tenant and expiry chosen there, a page that no cache
keeps, a clear form error at the cap, and "revoke all"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_babel import format_date
from sqlalchemy import func, select

from portal.auth import tokens
from portal.extensions import db
from portal.models import ApiToken, utcnow
from tests import factories as f
from tests.conftest import csrf_token_from


@pytest.fixture
def tenants(app):
    mine, theirs = f.tenant(name="mine"), f.tenant(name="theirs")
    user = f.user("alice", tenants=("mine",))
    db.session.commit()
    return mine, theirs, user


def token_count() -> int:
    return db.session.scalar(select(func.count(ApiToken.id)))


def create(client, **data):
    csrf = csrf_token_from(client.get("/profile").get_data(as_text=True))
    return client.post("/profile", data={"csrf_token": csrf, **data})


def test_new_token_page_is_never_cached_and_lists_scopes_tenant_expiry(app, client, login,
                                                                     tenants):
    mine, _theirs, alice = tenants
    login(client, "alice", f.PASSWORD)
    response = create(client, name="laptop", scope="read", days="30", tenant_id=str(mine.id))
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    html = response.get_data(as_text=True)
    secret = html.split('id="new-token">')[1].split("<")[0]
    token = tokens.live_token(secret)
    assert token.scopes == "read" and token.tenant_id == mine.id
    assert abs(token.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)
    row = html.split('id="tokens"')[1]
    with app.test_request_context("/"):  # the day it ends in the site's zone, as Babel says it
        expires = format_date(token.expires_at, "short")
    assert "laptop" in row and "mine" in row and expires in row
    assert "never" in row  # last used


def test_defaults_are_a_write_token_for_90_days(client, login, tenants):
    login(client, "alice", f.PASSWORD)
    assert create(client, name="plain").status_code == 200
    (token,) = db.session.scalars(select(ApiToken)).all()
    assert token.scopes == "read write" and token.tenant_id is None
    assert abs(token.expires_at - (utcnow() + timedelta(days=90))) < timedelta(minutes=1)


@pytest.mark.parametrize(("data", "message"), [
    ({"days": "400"}, "between 1 and 365"),
    ({"days": "0"}, "between 1 and 365"),
    ({"scope": "root"}, "Not a valid choice"),
    ({"tenant_id": "theirs"}, "Not a valid choice"),
    ({"tenant_id": "999999"}, "Not a valid choice"),
])
def test_bad_token_forms_get_a_field_error_and_create_nothing(client, login, tenants, data,
                                                              message):
    _mine, theirs, _alice = tenants
    login(client, "alice", f.PASSWORD)
    if data.get("tenant_id") == "theirs":
        data = {**data, "tenant_id": str(theirs.id)}
    response = create(client, name="x", **data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert token_count() == 0


def test_the_cap_is_a_form_error(client, login, tenants):
    _mine, _theirs, alice = tenants
    for i in range(tokens.MAX_LIVE_TOKENS):
        tokens.issue_token(alice, f"t{i}")
    db.session.commit()
    login(client, "alice", f.PASSWORD)
    response = create(client, name="one-too-many")
    assert response.status_code == 422
    assert f"You have {tokens.MAX_LIVE_TOKENS} live tokens" in response.get_data(as_text=True)
    assert token_count() == tokens.MAX_LIVE_TOKENS


def test_revoke_all_from_the_profile(client, login, tenants):
    _mine, _theirs, alice = tenants
    other = f.user("bob")
    secrets = [tokens.issue_token(alice, f"t{i}").secret for i in range(3)]
    bobs = tokens.issue_token(other, "bob's").secret
    db.session.commit()
    login(client, "alice", f.PASSWORD)
    csrf = csrf_token_from(client.get("/profile").get_data(as_text=True))
    response = client.post("/profile/tokens/revoke-all", data={"csrf_token": csrf},
                           follow_redirects=True)
    assert "3 tokens revoked" in response.get_data(as_text=True)
    assert all(tokens.live_token(s) is None for s in secrets)
    assert tokens.live_token(bobs) is not None
    page = client.get("/profile").get_data(as_text=True)
    assert page.count('data-state="revoked"') == 3
