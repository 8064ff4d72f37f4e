"""Fixtures: an app per database (SQLite file, throwaway PostgreSQL database), each built
by the real migrations, emptied between tests; clients logged in per role.

PostgreSQL comes from PORTAL_TEST_DATABASE_URL (default: the local server). When it is
unreachable the PostgreSQL tests skip on a developer machine, and fail when CI=true.
"""

from __future__ import annotations

import contextvars
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from portal import create_app
from portal.extensions import db

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def admin_url() -> str:
    return os.environ.get("PORTAL_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def postgres_or_skip() -> str:
    """The admin URL of a reachable PostgreSQL, or skip (fail under CI)."""
    url = admin_url()
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.OperationalError as error:
        message = f"PostgreSQL unreachable at {url}: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


class ThrowawayPostgres:
    """CREATE DATABASE on entry, DROP on exit."""

    def __init__(self, prefix: str = "portal_test") -> None:
        self.admin = postgres_or_skip()
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.url = _with_database(self.admin, self.name)

    def __enter__(self) -> str:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self.url

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def own_database(request, tmp_path) -> Iterator[str]:
    """The URL of an empty database of the test's own, on each backend in turn (for tests
    that migrate it up and down)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'own.sqlite3'}"
    else:
        with ThrowawayPostgres("portal_own") as url:
            yield url


class IsolatedClient(FlaskClient):
    """Runs each request in a fresh context, as a real server would: the test's own app
    context (and its db.session and `g`) is not shared with the request. Afterwards the
    test's session ends its transaction, so it reads what the request committed."""

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            db.session.rollback()
        return response


def make_app(database_url: str, **extra: object) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "test-secret",
            "PORTAL_AGENT": "off",
            "PORTAL_CONTROLLER": "off",
            **extra,
        }
    )
    app.test_client_class = IsolatedClient
    with app.app_context():
        upgrade()
    return app


def empty_database(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(scope="session")
def sqlite_app(tmp_path_factory) -> Iterator[Flask]:
    path = tmp_path_factory.mktemp("sqlite") / "portal.sqlite3"
    app = make_app(f"sqlite:///{path}")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def postgresql_app() -> Iterator[Flask]:
    with ThrowawayPostgres() as url:
        app = make_app(url)
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(params=BACKENDS)
def any_app(request) -> Iterator[Flask]:
    """The test runs once on SQLite and once on PostgreSQL."""
    app = request.getfixturevalue(f"{request.param}_app")
    empty_database(app)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def app(sqlite_app) -> Iterator[Flask]:
    empty_database(sqlite_app)
    with sqlite_app.app_context():
        yield sqlite_app
        db.session.remove()


@pytest.fixture
def pg_app(postgresql_app) -> Iterator[Flask]:
    empty_database(postgresql_app)
    with postgresql_app.app_context():
        yield postgresql_app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


CSRF_RE = __import__("re").compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|name="csrf-token" content="([^"]+)"'
)


def csrf_token_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def log_in(client, username: str, password: str, next_url: str | None = None):
    page = client.get("/login" + (f"?next={next_url}" if next_url else ""))
    token = csrf_token_from(page.get_data(as_text=True))
    data = {"username": username, "password": password, "csrf_token": token}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data)


@pytest.fixture
def login():
    return log_in
