"""Behind a reverse proxy every request comes from the proxy's address: without
PORTAL_TRUSTED_PROXIES the per-address login throttle would lock out everyone at once
after one person's typos; with it, the client's address is the one the proxy appended to
X-Forwarded-For — and a client cannot choose it by sending the header itself."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, request

from portal import create_app
from portal.auth import throttle
from portal.extensions import db
from tests import factories as f
from tests.conftest import csrf_token_from, empty_database, make_app

PROXY = "10.0.0.5"


@pytest.fixture(scope="module")
def proxied_app(tmp_path_factory) -> Iterator[Flask]:
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('proxy') / 'portal.sqlite3'}",
                   PORTAL_TRUSTED_PROXIES=1)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def accounts(proxied_app, monkeypatch):
    """Two people behind one proxy; an address locks after three failures (accounts
    never, here), and the throttle's clock stands still."""
    empty_database(proxied_app)
    monkeypatch.setattr(throttle, "FREE_FAILURES", {"user": 100, "addr": 3})
    now = throttle.utcnow()
    monkeypatch.setattr(throttle, "utcnow", lambda: now)
    with proxied_app.app_context():
        for name in ("alice", "bob"):
            f.user(name)
        db.session.commit()
    return proxied_app


def attempt(app: Flask, username: str, password: str, forwarded_for: str | None) -> int:
    client = app.test_client()
    environ = {"REMOTE_ADDR": PROXY}
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    page = client.get("/login", environ_base=environ, headers=headers)
    return client.post("/login", environ_base=environ, headers=headers, data={
        "username": username, "password": password,
        "csrf_token": csrf_token_from(page.get_data(as_text=True))}).status_code


def test_one_clients_failures_do_not_lock_out_another_behind_the_same_proxy(accounts):
    for _ in range(4):
        attempt(accounts, "alice", "wrong-guess", "198.51.100.7")
    assert attempt(accounts, "alice", f.PASSWORD, "198.51.100.7") == 429  # that address
    assert attempt(accounts, "bob", f.PASSWORD, "203.0.113.9") == 302  # another: fine


def test_a_client_cannot_pick_its_address_by_sending_the_header(accounts):
    """The proxy appends the address it saw; only that last hop is believed."""
    for i in range(4):
        attempt(accounts, "alice", "wrong-guess", f"192.0.2.{i}, 198.51.100.7")
    assert attempt(accounts, "alice", f.PASSWORD, "192.0.2.99, 198.51.100.7") == 429


def test_without_trusted_proxies_the_header_is_ignored(app):
    """Direct connections: X-Forwarded-For is whatever a client wrote, never believed."""
    with app.test_request_context(environ_base={"REMOTE_ADDR": "198.51.100.7"},
                                  headers={"X-Forwarded-For": "192.0.2.1"}):
        assert request.remote_addr == "198.51.100.7"


def test_a_negative_hop_count_is_refused(tmp_path):
    with pytest.raises(ValueError, match="PORTAL_TRUSTED_PROXIES"):
        create_app({"TESTING": True, "SECRET_KEY": "x", "PORTAL_TRUSTED_PROXIES": -1,
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
