"""Guessing passwords is slow: failures lock the account and the address with a doubling
backoff, a locked login is refused without checking the password, and logins, failures
and locks are in the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.auth import throttle
from portal.extensions import db
from portal.models import AuditEvent, LoginThrottle
from tests import factories as f
from tests.conftest import log_in


@pytest.fixture(autouse=True)
def still_clock(monkeypatch):
    """The throttle's clock stands still: a 1 s lock must not run out while a loaded
    machine works through forty requests (locks running out are let_lock_pass's job)."""
    now = throttle.utcnow()
    monkeypatch.setattr(throttle, "utcnow", lambda: now)
    return now


@pytest.fixture
def alice(app):
    user = f.user("alice", operator=True)
    db.session.commit()
    return user


def row(key: str) -> LoginThrottle | None:
    db.session.expire_all()
    return db.session.scalar(select(LoginThrottle).where(LoginThrottle.key == key))


def let_lock_pass(key: str) -> None:
    """As if the lock had run out (the test does not sleep through it)."""
    lock = row(key)
    lock.locked_until = lock.last_failure_at
    db.session.commit()


def test_forty_fast_guesses_check_five_passwords(client, alice):
    statuses = [log_in(client, "alice", f"guess-number-{i}").status_code for i in range(40)]
    assert statuses[:4] == [401] * 4
    # The fifth failure locks the account; from then on nothing is checked.
    assert statuses[4:] == [429] * 36
    assert row("user:alice").failures == 5


def test_a_locked_account_refuses_even_the_right_password_and_says_when(client, alice):
    for i in range(5):
        log_in(client, "alice", f"guess-number-{i}")
    response = log_in(client, "alice", f.PASSWORD)
    page = response.get_data(as_text=True)
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert "Wrong username or password, or the account is disabled. Try again in 1 s." in page
    assert client.get("/").status_code == 302  # not logged in


def test_the_lock_doubles_with_every_further_failure_up_to_fifteen_minutes(client, alice):
    for i in range(5):
        log_in(client, "alice", f"guess-number-{i}")
    locks = []
    for _ in range(12):
        let_lock_pass("user:alice")
        assert log_in(client, "alice", "another-guess").status_code == 429
        lock = row("user:alice")
        locks.append(int((lock.locked_until - lock.last_failure_at).total_seconds()))
    assert locks == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]


def test_a_success_clears_the_accounts_failures(client, alice):
    for i in range(4):
        log_in(client, "alice", f"guess-number-{i}")
    assert log_in(client, "alice", f.PASSWORD).status_code == 302
    assert row("user:alice") is None
    other = client.application.test_client()
    assert [log_in(other, "alice", f"guess-{i}").status_code for i in range(4)] == [401] * 4


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_an_address_guessing_many_accounts_is_locked(app, alice):
    attacker = client_at(app, "203.0.113.9")
    statuses = [log_in(attacker, f"user{i}", "password-guess").status_code for i in range(20)]
    assert statuses == [401] * 19 + [429]
    # Locked by address: the right password of a real account is not even checked.
    assert log_in(attacker, "alice", f.PASSWORD).status_code == 429
    # Another address is not affected.
    elsewhere = client_at(app, "198.51.100.7")
    assert log_in(elsewhere, "alice", f.PASSWORD).status_code == 302


def test_logins_failures_and_lockouts_are_audited_as_sentences(app, client, alice):
    for i in range(5):
        log_in(client, "alice", f"guess-number-{i}")
    log_in(client, "nobody", "password-guess")
    let_lock_pass("user:alice")
    log_in(client, "alice", f.PASSWORD)

    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_type == "user", AuditEvent.action != "create")
        .order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["login_failed"] * 5 + ["lockout", "login_failed",
                                                                 "login"]
    assert {e.username for e in events[:-1]} == {"anonymous"}
    assert events[-1].username == "alice" and events[-1].object_id == alice.id

    page = client.get("/audit/?per_page=25").get_data(as_text=True)
    assert "From 127.0.0.1" in page
    assert "Reason wrong password" in page and "Reason unknown user" in page
    assert "Account locked for 1 s" in page


def test_a_disabled_account_fails_like_a_wrong_password(client, alice):
    alice.is_active = False
    db.session.commit()
    response = log_in(client, "alice", f.PASSWORD)
    assert response.status_code == 401
    assert "Wrong username or password, or the account is disabled." in response.get_data(
        as_text=True)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "login_failed"))
    assert event.changes["reason"] == "account disabled"


def test_failures_count_atomically_and_are_forgotten_after_an_hour(any_app):
    """The counting statement is an upsert per database: both must count every failure."""
    for _ in range(7):
        throttle.record_failure("carol", "192.0.2.1")
    db.session.commit()
    assert row("user:carol").failures == 7 and row("addr:192.0.2.1").failures == 7
    assert throttle.seconds_left("carol", None) > 0
    assert throttle.seconds_left("dave", "192.0.2.1") == 0  # 7 < 20 for an address

    stale = row("user:carol")
    stale.last_failure_at -= throttle.FORGET_AFTER + timedelta(seconds=1)
    stale.locked_until = stale.last_failure_at
    db.session.commit()
    throttle.record_failure("carol", "192.0.2.1")
    db.session.commit()
    assert row("user:carol").failures == 1
