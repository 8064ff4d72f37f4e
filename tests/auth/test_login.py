from __future__ import annotations

import pytest

from portal.extensions import db
from tests import factories as f
from tests.conftest import csrf_token_from


@pytest.fixture
def alice(app):
    user = f.user("alice", operator=True)
    db.session.commit()
    return user


def test_login_success_lands_on_dashboard(client, login, alice):
    response = login(client, "alice", f.PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("username, password", [("alice", "wrong-password"), ("nobody", "x" * 10)])
def test_bad_credentials_get_one_clear_message(client, login, alice, username, password):
    response = login(client, username, password)
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still logged out


def test_inactive_user_cannot_log_in(client, login, alice):
    alice.is_active = False
    db.session.commit()
    assert login(client, "alice", f.PASSWORD).status_code == 401


def test_deactivated_user_loses_the_session(client, login, alice):
    login(client, "alice", f.PASSWORD)
    alice.is_active = False
    db.session.commit()
    assert client.get("/").status_code == 302


def test_logout_is_post_only_and_ends_the_session(client, login, alice):
    login(client, "alice", f.PASSWORD)
    assert client.get("/logout").status_code == 405
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_password_is_stored_hashed_with_scrypt(alice):
    assert alice.password_hash.startswith("scrypt:") and f.PASSWORD not in alice.password_hash


@pytest.mark.parametrize("target", ["/vms/", "/racks/?sort=-name"])
def test_next_redirects_inside_the_site(client, login, alice, target):
    assert login(client, "alice", f.PASSWORD, next_url=target).headers["Location"] == target


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "http:/evil.example",
        " //evil.example",
    ],
)
def test_next_never_redirects_off_site(client, login, alice, target):
    assert login(client, "alice", f.PASSWORD, next_url=target).headers["Location"] == "/"


def test_unauthenticated_page_redirects_to_login_with_next(client):
    response = client.get("/vms/?status=active")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_post_without_csrf_token_is_refused(client, login, alice):
    login(client, "alice", f.PASSWORD)
    response = client.post("/profile", data={"name": "ci"})
    assert response.status_code == 400
    assert not alice.tokens
    response = client.post("/login", data={"username": "alice", "password": f.PASSWORD})
    assert response.status_code == 400


def test_htmx_requests_send_the_csrf_token_in_a_header(client, login, alice):
    login(client, "alice", f.PASSWORD)
    page = client.get("/profile").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
    token = csrf_token_from(page)
    response = client.post(
        "/profile",
        data={"name": "from-htmx"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status_code == 200
    assert [t.name for t in alice.tokens] == ["from-htmx"]


def test_token_created_on_profile_is_shown_once_and_stored_hashed(client, login, alice):
    login(client, "alice", f.PASSWORD)
    token = csrf_token_from(client.get("/profile").get_data(as_text=True))
    page = client.post("/profile", data={"name": "laptop", "csrf_token": token}).get_data(
        as_text=True
    )
    secret = page.split('id="new-token">')[1].split("<")[0]
    assert secret.startswith("rp_")
    stored = alice.tokens[0]
    assert secret not in stored.token_hash and len(stored.token_hash) == 64
    assert secret not in client.get("/profile").get_data(as_text=True)


def test_revoke_only_own_token(client, login, alice):
    from portal.auth.tokens import issue_token, live_token

    bob = f.user("bob")
    bobs = issue_token(bob, "bob's")
    mine = issue_token(alice, "mine")
    db.session.commit()
    login(client, "alice", f.PASSWORD)
    token = csrf_token_from(client.get("/profile").get_data(as_text=True))
    assert (
        client.post(
            f"/profile/tokens/{bobs.token.id}/revoke", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/profile/tokens/{mine.token.id}/revoke", data={"csrf_token": token}
        ).status_code
        == 302
    )
    assert live_token(mine.secret) is None
    assert live_token(bobs.secret).user.username == "bob"
