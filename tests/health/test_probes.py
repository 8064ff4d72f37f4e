"""/livez, /readyz and /api/v1/status, with the database up, and with it away in the three
ways a deployment meets: the server unreachable, the database dropped, and the schema
behind the code's head revision (web replicas never migrate)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade
from sqlalchemy import event

from portal import create_app
from portal.extensions import db
from portal.health import service
from portal.models import AgentPresence, ProvisionJob, utcnow
from portal.provisioning import jobs
from tests import factories as f
from tests.api.conftest import token_for
from tests.api.live import free_port
from tests.conftest import IsolatedClient, ThrowawayPostgres, csrf_token_from, log_in, make_app


def _head_and_the_one_before() -> tuple[str, str]:
    """Read from the migrations themselves, so that a new migration does not break these tests."""
    script = ScriptDirectory(str(Path(__file__).resolve().parents[2] / "migrations"))
    (head,) = script.get_heads()
    return head, script.get_revision(head).down_revision


HEAD, BEFORE_HEAD = _head_and_the_one_before()


def queries_during(app: Flask, call) -> tuple[object, list[str]]:
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        return call(), seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_livez_answers_without_touching_the_database_even_for_a_signed_in_browser(any_app):
    f.user("alice", operator=True)
    db.session.commit()
    client = any_app.test_client()
    assert log_in(client, "alice", f.PASSWORD).status_code == 302
    response, statements = queries_during(any_app, lambda: client.get("/livez"))
    assert response.status_code == 200 and response.get_json() == {"status": "alive"}
    assert response.headers["Cache-Control"] == "no-store"
    assert statements == []


def test_readyz_says_ready_at_head_with_one_query(any_app):
    response, statements = queries_during(any_app, lambda: any_app.test_client().get("/readyz"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["schema_revision"] == body["schema_head"] == HEAD
    assert [s for s in statements if s != "BEGIN"] == ["SELECT version_num FROM alembic_version"]


def test_status_reports_version_schema_queue_and_agents(any_app):
    server = f.server(group=f.group())
    tenant = f.tenant()
    flavor = f.flavor()
    created = [jobs.enqueue(f.vm(tenant, server, flavor, status="provisioning"), "create")
               for _ in range(3)]
    # The last job waited ten minutes; agent-1 takes the first, agent-2 the second and
    # then falls silent (its lease runs out).
    created[2].created_at = utcnow() - timedelta(minutes=10)
    db.session.commit()
    jobs.claim("agent-1", limit=1)
    jobs.claim("agent-2", limit=1)
    db.session.execute(ProvisionJob.__table__.update().where(ProvisionJob.claimed_by == "agent-2")
                       .values(lease_expires_at=utcnow() - timedelta(seconds=5)))
    db.session.commit()

    response = any_app.test_client().get("/api/v1/status")  # no token needed
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["version"] == service.portal_version()
    assert body["schema_revision"] == HEAD
    assert body["queue_depth"] == 1 and body["jobs_claimed"] == 1 and body["jobs_expired"] == 1
    assert 590 <= body["oldest_queued_job_age_seconds"] <= 900
    assert body["agents_seen"] == 2
    last_seen = datetime.fromisoformat(body["agent_last_seen_at"])
    assert abs((last_seen.replace(tzinfo=None) - utcnow()).total_seconds()) < 60


def test_agents_seen_is_the_one_place_that_says_who_was_seen(any_app):
    grp = f.group()
    server, tenant, flavor = f.server(group=grp), f.tenant(), f.flavor()
    for _ in range(2):
        jobs.enqueue(f.vm(tenant, server, flavor, status="provisioning"), "create")
    db.session.commit()
    jobs.claim("recent", limit=1)
    jobs.claim("long-ago", limit=1)
    db.session.execute(AgentPresence.__table__.update()
                       .where(AgentPresence.name == "long-ago")
                       .values(last_seen=utcnow() - timedelta(hours=2)))
    db.session.commit()
    seen = service.agents_seen()
    assert set(seen) == {"recent"}
    assert service.agents_seen(window=timedelta(hours=3)).keys() == {"recent", "long-ago"}


def test_status_is_in_the_openapi_document_as_public_with_its_503(any_app):
    document = any_app.test_client().get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/api/v1/status"]["get"]
    assert operation["security"] == []
    assert {"200", "503"} <= set(operation["responses"])
    assert "queue_depth" in document["components"]["schemas"]["Status"]["properties"]


# --------------------------------------------------------------------- database away


def unreachable_app() -> Flask:
    """An app whose PostgreSQL refuses connections (nothing listens on the port)."""
    return _app(f"postgresql://postgres@127.0.0.1:{free_port()}/portal")


def _app(url: str) -> Flask:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url,
                      "SECRET_KEY": "test-secret", "PORTAL_AGENT": "off",
                      "PORTAL_DB_CONNECT_TIMEOUT": 2})
    app.test_client_class = IsolatedClient
    return app


@pytest.fixture
def dropped_app() -> Iterator[Flask]:
    """An app whose database was migrated, used, then dropped under it."""
    with ThrowawayPostgres() as url:
        app = make_app(url)
        with app.app_context():
            token_for(f.user("alice", operator=True))
            db.session.remove()
        base = url.rpartition("/")[0] + "/postgres"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{url.rpartition("/")[2]}" WITH (FORCE)')
        yield app
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def behind_head_app(tmp_path) -> Iterator[Flask]:
    """Migrated to head, then rolled back one revision: the code is newer than its schema."""
    app = make_app(f"sqlite:///{tmp_path / 'behind.sqlite3'}")
    with app.app_context():
        downgrade(revision=BEFORE_HEAD)
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(params=["unreachable", "dropped", "behind_head"])
def away(request) -> Flask:
    if request.param == "unreachable":
        from tests.conftest import postgres_or_skip

        postgres_or_skip()  # the same conditions as the other PostgreSQL cases
        return unreachable_app()
    return request.getfixturevalue(f"{request.param}_app")


def test_with_the_database_away_livez_lives_and_readyz_and_status_say_503(away):
    client = away.test_client()
    assert client.get("/livez").status_code == 200

    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["Retry-After"].isdigit()
    body = ready.get_json()
    assert body["status"] == "unavailable" and body["schema_head"] == HEAD
    if body["schema_revision"] is not None:  # behind head: both revisions named
        assert body["schema_revision"] == BEFORE_HEAD
        assert BEFORE_HEAD in body["reason"] and HEAD in body["reason"]

    status = client.get("/api/v1/status")
    assert status.status_code == 503
    assert status.mimetype == "application/problem+json"
    problem = status.get_json()
    assert problem["code"] == "service_unavailable" and problem["schema_head"] == HEAD
    assert status.headers["Retry-After"].isdigit()


@pytest.mark.parametrize("kind", ["unreachable", "dropped"])
def test_pages_and_api_answer_503_not_500_when_the_database_is_gone(request, kind):
    if kind == "unreachable":
        from tests.conftest import postgres_or_skip

        postgres_or_skip()
        app = unreachable_app()
    else:
        app = request.getfixturevalue("dropped_app")
    client = app.test_client()
    form = client.get("/login")
    assert form.status_code == 200  # drawn without the database
    page = client.post("/login", data={"username": "alice", "password": f.PASSWORD,
                                       "csrf_token": csrf_token_from(form.get_data(True))})
    assert page.status_code == 503 and page.headers["Retry-After"].isdigit()
    assert "cannot reach its database" in page.get_data(as_text=True)
    api = client.get("/api/v1/vms", headers={"Authorization": "Bearer whatever-token"})
    assert api.status_code == 503 and api.mimetype == "application/problem+json"
    assert api.get_json()["code"] == "service_unavailable"
    # The metrics still answer, and say the database is down.
    scrape = client.get("/metrics").get_data(as_text=True)
    assert "portal_database_up 0.0" in scrape
