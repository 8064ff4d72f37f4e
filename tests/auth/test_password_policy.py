"""Every password a person sets passes the policy: 12 characters or more, not a common
password, not the username."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.auth.passwords import common_passwords, password_problem
from portal.extensions import db
from portal.models import User


@pytest.mark.parametrize(
    "password, username, message",
    [
        ("password", "bob", "at least 12 characters; this one has 8"),
        ("ops-admin", "bob", "at least 12 characters"),
        ("Password1234", "bob", "most common passwords"),
        ("QWERTY123456", "bob", "most common passwords"),
        ("bob-the-builder", "Bob-The-Builder", "must not be the username"),
        ("x" * 257, "bob", "at most 256 characters"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password, username, message):
    assert message in password_problem(password, username)


@pytest.mark.parametrize(
    "password, username",
    [("ops-admin-demo", "ops-admin"), ("acme-admin-demo", "acme-admin"),
     ("correct-horse-battery", "alice"), ("x" * 256, "bob")],
)
def test_ordinary_long_passwords_pass(password, username):
    assert password_problem(password, username) is None


def test_the_shipped_list_only_holds_what_length_alone_would_let_through():
    assert len(common_passwords()) > 50
    assert all(len(p) >= 11 for p in common_passwords())


@pytest.mark.parametrize(
    "password, message",
    [
        ("password", "at least 12 characters"),
        ("password1234", "most common passwords"),
        ("new-user-name", "must not be the username"),
    ],
)
def test_users_create_applies_the_policy_and_creates_nothing(app, password, message):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "new-user-name", "--password", password]
    )
    assert result.exit_code != 0 and message in result.output
    assert db.session.scalar(select(User).where(User.username == "new-user-name")) is None


def test_users_create_accepts_a_good_password(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "new-user-name", "--password", "a-fine-long-password"]
    )
    assert result.exit_code == 0, result.output
