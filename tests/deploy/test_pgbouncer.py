"""Behind PgBouncer in transaction mode (Debian's pgbouncer, the shipped pooling settings):
consecutive transactions of one client run on whichever server connection is free, so
psycopg's prepared statements break — unless PORTAL_DB_POOLER=transaction turns them off —
and migrations go to PostgreSQL directly."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy import select, text

from portal import create_app
from portal.extensions import db
from portal.models import User
from tests import factories as f
from tests.api.live import free_port
from tests.conftest import ThrowawayPostgres, admin_url
from tests.deploy.processes import PgBouncer


@pytest.fixture(scope="module")
def bouncer(tmp_path_factory) -> Iterator[PgBouncer]:
    """One server connection per database: every client shares it, as under load."""
    from tests.conftest import postgres_or_skip

    postgres_or_skip()
    host_port = admin_url().rpartition("@")[2].partition("/")[0]
    host, _, port = host_port.partition(":")
    bouncer = PgBouncer(tmp_path_factory.mktemp("pgbouncer"), host, int(port or 5432),
                        pool_size=1).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with ThrowawayPostgres("portal_pgbouncer") as url:
        yield url


def test_the_shipped_settings_pool_by_transaction(bouncer):
    assert bouncer.shipped["pool_mode"] == "transaction"
    assert bouncer.shipped["server_reset_query"] == ""


def test_prepared_statements_do_break_behind_it(bouncer, database):
    """What PORTAL_DB_POOLER=transaction protects against: two clients preparing their
    first statement on the one server connection."""
    name = database.rpartition("/")[2]
    first = psycopg.connect(bouncer.url(name), autocommit=True, prepare_threshold=0)
    second = psycopg.connect(bouncer.url(name), autocommit=True, prepare_threshold=0)
    try:
        first.execute("SELECT 1").fetchall()
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            second.execute("SELECT 2").fetchall()
    finally:
        first.close()
        second.close()


def pooled_app(bouncer, database: str, pooler: str):
    name = database.rpartition("/")[2]
    return create_app({
        "TESTING": True, "SECRET_KEY": "test-secret", "PORTAL_AGENT": "off",
        "SQLALCHEMY_DATABASE_URI": bouncer.url(name),
        "PORTAL_DB_POOLER": pooler,
        "PORTAL_MIGRATION_DATABASE_URL": database,
    })


def hammer(app, threads: int = 4, rounds: int = 15) -> list[BaseException]:
    """The same statements, many times, from several pooled connections at once, each
    round committed (as writers and agents do: psycopg forgets what it prepared on a
    rollback, not on a commit)."""
    errors: list[BaseException] = []

    def work():
        try:
            with app.app_context():
                for _ in range(rounds):
                    db.session.scalars(select(User).where(User.username == "ops")).all()
                    db.session.execute(text("SELECT count(*) FROM tenant")).scalar_one()
                    db.session.commit()
                db.session.remove()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def test_the_portal_migrates_directly_and_runs_through_pgbouncer(bouncer, database):
    app = pooled_app(bouncer, database, "transaction")
    with app.app_context():
        upgrade()  # over PORTAL_MIGRATION_DATABASE_URL
        f.user("ops", operator=True)
        db.session.commit()
        connection = db.session.connection().connection.dbapi_connection
        assert connection.prepare_threshold is None
        assert db.engine.url.port == bouncer.port
        db.session.remove()
    assert hammer(app) == []
    with app.app_context():
        db.engine.dispose()


def test_without_the_pooler_setting_the_same_work_fails(bouncer, database):
    app = pooled_app(bouncer, database, "")
    with app.app_context():
        upgrade()
    errors = hammer(app)
    with app.app_context():
        db.engine.dispose()
    assert errors and any("prepared statement" in str(e) for e in errors), errors


def test_a_migration_never_goes_through_the_application_url(database):
    """db upgrade uses PORTAL_MIGRATION_DATABASE_URL even when DATABASE_URL is unreachable."""
    app = create_app({
        "TESTING": True, "SECRET_KEY": "test-secret", "PORTAL_AGENT": "off",
        "SQLALCHEMY_DATABASE_URI": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
        "PORTAL_MIGRATION_DATABASE_URL": database,
    })
    with app.app_context():
        upgrade()
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_an_unknown_pooler_is_refused():
    with pytest.raises(ValueError, match="PORTAL_DB_POOLER"):
        create_app({"TESTING": True, "SECRET_KEY": "x", "PORTAL_DB_POOLER": "statement",
                    "SQLALCHEMY_DATABASE_URI": "postgresql://u@127.0.0.1/db"})


def test_pool_sizing_reaches_the_engine(database):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": database,
                      "PORTAL_DB_POOL_SIZE": 3, "PORTAL_DB_MAX_OVERFLOW": 2,
                      "PORTAL_DB_POOL_TIMEOUT": 7, "PORTAL_DB_CONNECT_TIMEOUT": 4})
    with app.app_context():
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 2, 7)
        assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"connect_timeout": 4}
        db.engine.dispose()
