"""Sessions end when they should: logout and a password change end every session and
remember-me cookie of the user; remember-me is short and differs at every login; the
secret that signs them is never a published constant."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import func, select

from portal import create_app
from portal.extensions import db
from portal.models import AuditEvent, User
from portal.web.security import ConfigurationError
from tests import factories as f
from tests.conftest import IsolatedClient, csrf_token_from, make_app

NEW_PASSWORD = "a-much-longer-secret-2025"


@pytest.fixture
def alice(app):
    user = f.user("alice", operator=True)
    db.session.commit()
    return user


def log_in_remembered(client, username=None, password=f.PASSWORD):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username or "alice", "password": password,
                                       "remember": "y", "csrf_token": token})


def cookie(client, name: str) -> str:
    found = client.get_cookie(name)
    assert found is not None, f"no {name} cookie"
    return found.value


def fresh_client(app, **cookies):
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    return client


def log_out(client):
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    return client.post("/logout", data={"csrf_token": token})


def test_logout_ends_the_session_and_remember_cookies_for_good(app, client, alice):
    log_in_remembered(client)
    session, remember = cookie(client, "session"), cookie(client, "remember_token")
    assert fresh_client(app, session=session).get("/").status_code == 200
    assert fresh_client(app, remember_token=remember).get("/").status_code == 200

    log_out(client)

    # Replaying either cookie of the ended session opens nothing.
    assert fresh_client(app, session=session).get("/").status_code == 302
    assert fresh_client(app, remember_token=remember).get("/").status_code == 302


def test_logout_ends_the_users_sessions_on_every_device(app, alice):
    laptop, phone = app.test_client(), app.test_client()
    log_in_remembered(laptop)
    log_in_remembered(phone)
    log_out(laptop)
    assert phone.get("/").status_code == 302


def test_remember_cookie_differs_at_every_login_and_lasts_fourteen_days(app, client, alice):
    first = log_in_remembered(client)
    cookie_one = cookie(client, "remember_token")
    log_out(client)
    log_in_remembered(client)
    assert cookie(client, "remember_token") != cookie_one

    set_cookie = next(v for v in first.headers.getlist("Set-Cookie")
                      if v.startswith("remember_token="))
    expires = datetime.strptime(set_cookie.split("Expires=")[1].split(";")[0],
                                "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert timedelta(days=13) < expires - datetime.now(UTC) <= timedelta(days=14)


def test_no_login_outlives_the_remember_duration_whatever_the_cookie_says(app, client, alice):
    def session_of(age: timedelta) -> int:
        with client.session_transaction() as session:
            logged_in_at = int(time.time() - age.total_seconds())
            session["_user_id"] = f"{alice.id}:{alice.session_version}:{logged_in_at}:nonce"
        return client.get("/").status_code

    assert session_of(timedelta(days=13)) == 200
    assert session_of(timedelta(days=15)) == 302


@pytest.mark.parametrize("value", ["{id}", "{id}:0", "{id}:1:{now}:n", "{id}:x:{now}:n"])
def test_a_session_naming_no_current_version_opens_nothing(app, client, alice, value):
    with client.session_transaction() as session:
        session["_user_id"] = value.format(id=alice.id, now=int(time.time()))
    assert client.get("/").status_code == 302


def change_password(client, current, new, confirm=None):
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    return client.post("/profile/password", data={
        "current": current, "new": new, "confirm": new if confirm is None else confirm,
        "csrf_token": token,
    })


def test_password_change_ends_other_sessions_keeps_this_one_and_is_audited(app, alice, login):
    here, elsewhere = app.test_client(), app.test_client()
    log_in_remembered(here)
    log_in_remembered(elsewhere)
    remember_elsewhere = cookie(elsewhere, "remember_token")

    response = change_password(here, f.PASSWORD, NEW_PASSWORD)

    assert response.status_code == 302
    assert "Password changed" in here.get("/profile").get_data(as_text=True)
    assert here.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    assert fresh_client(app, remember_token=remember_elsewhere).get("/").status_code == 302
    assert login(app.test_client(), "alice", f.PASSWORD).status_code == 401
    assert login(app.test_client(), "alice", NEW_PASSWORD).status_code == 302
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "update",
                                                       AuditEvent.object_type == "user"))
    assert event.changes == {"password": "changed"} and event.username == "alice"


@pytest.mark.parametrize(
    "current, new, confirm, message",
    [
        ("wrong-password-here", NEW_PASSWORD, None, "The current password is wrong."),
        (f.PASSWORD, NEW_PASSWORD, "a-different-one-2025", "The two new passwords differ."),
        (f.PASSWORD, "short-pw", None, "at least 12 characters"),
        (f.PASSWORD, "Password1234", None, "most common passwords"),
        (f.PASSWORD, f.PASSWORD, None, "The new password is the current one."),
        (f.PASSWORD, "", None, "This field is required."),
    ],
)
def test_password_change_refuses_bad_input_and_changes_nothing(
    app, client, login, alice, current, new, confirm, message
):
    login(client, "alice", f.PASSWORD)
    before = (alice.password_hash, alice.session_version)
    events = db.session.scalar(select(func.count(AuditEvent.id)))

    response = change_password(client, current, new, confirm)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.refresh(alice)
    assert (alice.password_hash, alice.session_version) == before
    assert db.session.scalar(select(func.count(AuditEvent.id))) == events
    assert client.get("/").status_code == 200


def test_password_equal_to_the_username_is_refused(app, client, login):
    f.user("a-long-username")
    db.session.commit()
    login(client, "a-long-username", f.PASSWORD)
    response = change_password(client, f.PASSWORD, "A-Long-Username")
    assert response.status_code == 422
    assert "must not be the username" in response.get_data(as_text=True)


# --- the secret key ------------------------------------------------------------------

OLD_PUBLISHED_KEY = "dev-only-not-secret"


def keyless_app(app, key_file):
    other = create_app({
        "TESTING": True, "PORTAL_AGENT": "off", "SECRET_KEY": None,
        "SECRET_KEY_FILE": key_file,
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
    })
    other.test_client_class = IsolatedClient
    return other


def forged_session(secret: str, user: User) -> str:
    """A session cookie claiming to be ``user``, signed with ``secret``."""
    signer_app = Flask("forger")
    signer_app.secret_key = secret
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer_app)
    return serializer.dumps(
        {"_user_id": f"{user.id}:{user.session_version}:{int(time.time())}:x", "_fresh": True}
    )


def test_without_secret_key_the_install_makes_and_keeps_its_own(app, tmp_path):
    key_file = tmp_path / "instance" / "secret_key"
    first = keyless_app(app, key_file)
    assert first.secret_key not in (None, "", OLD_PUBLISHED_KEY) and len(first.secret_key) == 64
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert keyless_app(app, key_file).secret_key == first.secret_key  # kept across restarts
    assert keyless_app(app, tmp_path / "other" / "secret_key").secret_key != first.secret_key


def test_a_cookie_forged_with_the_published_key_opens_nothing(app, alice, tmp_path):
    portal = keyless_app(app, tmp_path / "secret_key")
    forged = fresh_client(portal, session=forged_session(OLD_PUBLISHED_KEY, alice))
    assert forged.get("/").status_code == 302
    # The same cookie signed with the install's own key would open the page: the forgery
    # fails because of the key, not because of its shape.
    real = fresh_client(portal, session=forged_session(portal.secret_key, alice))
    assert real.get("/").status_code == 200


@pytest.mark.parametrize(
    "settings",
    [
        {"SQLALCHEMY_DATABASE_URI": "postgresql://portal@db.example/portal"},
        {"SQLALCHEMY_DATABASE_URI": "sqlite:///x.sqlite3", "PORTAL_ENV": "production"},
    ],
)
def test_production_refuses_to_start_without_a_secret_key(settings, tmp_path):
    key_file = tmp_path / "secret_key"
    with pytest.raises(ConfigurationError, match="SECRET_KEY is not set"):
        create_app({"SECRET_KEY": None, "SECRET_KEY_FILE": key_file, **settings})
    assert not key_file.exists()


def test_production_starts_with_a_secret_key():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "postgresql://portal@db.example/portal",
                      "SECRET_KEY": "s" * 64})
    assert app.secret_key == "s" * 64


# --- cookie flags -----------------------------------------------------------------------

def set_cookies(response) -> dict[str, str]:
    return {v.split("=", 1)[0]: v for v in response.headers.getlist("Set-Cookie")}


def test_both_cookies_are_httponly_and_samesite_lax(client, alice):
    cookies = set_cookies(log_in_remembered(client))
    for name in ("session", "remember_token"):
        assert "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name]
        assert "Secure" not in cookies[name]


def test_secure_cookies_setting_marks_both_cookies_secure(app, alice):
    secure = make_app(app.config["SQLALCHEMY_DATABASE_URI"], SESSION_COOKIE_SECURE=True,
                      REMEMBER_COOKIE_SECURE=True)
    client = secure.test_client()
    https = {"base_url": "https://localhost", "headers": {"Referer": "https://localhost/login"}}
    token = csrf_token_from(client.get("/login", **https).get_data(as_text=True))
    response = client.post("/login", **https, data={
        "username": "alice", "password": f.PASSWORD, "remember": "y", "csrf_token": token})
    assert response.status_code == 302
    cookies = set_cookies(response)
    for name in ("session", "remember_token"):
        assert "Secure" in cookies[name] and "HttpOnly" in cookies[name]


@pytest.mark.parametrize("value, secure", [("1", True), ("", False)])
def test_portal_secure_cookies_environment_variable(value, secure):
    code = ("from portal.config import Config as C; "
            "print(C.SESSION_COOKIE_SECURE, C.REMEMBER_COOKIE_SECURE, C.REMEMBER_COOKIE_DURATION)")
    env = {**os.environ, "PORTAL_SECURE_COOKIES": value, "PORTAL_REMEMBER_DAYS": "7"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[:2] == [str(secure)] * 2 and out[2] == "7"
