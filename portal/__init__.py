"""Resource Portal: racks, servers, tenants, quotas and automatic placement."""

from __future__ import annotations

import gc
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.config import INSTANCE, ROOT, Config, engine_options, normalise_database_url
from portal.extensions import csrf, db, login_manager, migrate

# Collections of the youngest generation after this many allocations (CPython: 700). A
# page allocates some hundred thousand objects, nearly all freed by reference counting
# alone; collecting every 700 of them cost a group page at dataset L a tenth of its time.
GC_THRESHOLDS = (50_000, 20, 100)


def keep_startup_objects() -> None:
    """Take what start-up made (modules, the application, its URL map, catalogues, models)
    out of the garbage collector's sight, as a served process does after create_app
    (wsgi.py): a full collection otherwise walks those few hundred thousand objects again
    and again, and the request it falls in takes some 100 ms more (bench/pages: a rack
    page's p95 288 → 155 ms at dataset L). They live as long as the process anyway. And
    collect less often (GC_THRESHOLDS: the group page's p95 112-130 → 94-101 ms)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(INSTANCE),
    )
    app.config.from_object(Config)
    if config:
        app.config.update(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(
        app.config["SQLALCHEMY_DATABASE_URI"]
    )
    if app.config.get("PORTAL_MIGRATION_DATABASE_URL"):
        app.config["PORTAL_MIGRATION_DATABASE_URL"] = normalise_database_url(
            app.config["PORTAL_MIGRATION_DATABASE_URL"]
        )
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        INSTANCE.mkdir(exist_ok=True)
    _trust_proxies(app)
    from portal.health import init_health
    from portal.i18n import init_i18n
    from portal.web.security import init_security

    # First: its request timer starts before, and its count ends after, every other hook.
    init_health(app)
    init_security(app)
    init_i18n(app)

    from portal import models  # noqa: F401  (registers every table on db.metadata)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)

    from portal.auth.access import init_access
    from portal.provisioning.messages import init_messages
    from portal.web import init_web

    init_access(app)
    init_web(app)
    init_messages(app)
    _register_blueprints(app)
    _register_cli(app)

    from portal.controller import init_controller
    from portal.provisioning import init_agent

    init_agent(app)
    init_controller(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind PORTAL_TRUSTED_PROXIES reverse proxies, the client's address is the one the
    outermost of them appended to X-Forwarded-For (and the scheme its X-Forwarded-Proto);
    without them request.remote_addr is the proxy, the same for everyone."""
    hops = app.config["PORTAL_TRUSTED_PROXIES"]
    if hops < 0:
        raise ValueError(f"PORTAL_TRUSTED_PROXIES must be 0 or more, not {hops}")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _register_blueprints(app: Flask) -> None:
    from portal.api import init_api
    from portal.audit.routes import bp as audit_bp
    from portal.auth.routes import bp as auth_bp
    from portal.autoscaling.routes import bp as autoscaling_bp
    from portal.baremetals.routes import bp as baremetals_bp
    from portal.clusters.routes import bp as clusters_bp
    from portal.dashboard.routes import bp as dashboard_bp
    from portal.groups.routes import bp as groups_bp
    from portal.maintainers.routes import bp as maintainers_bp
    from portal.meshes.routes import bp as meshes_bp
    from portal.racks.routes import bp as racks_bp
    from portal.search.routes import bp as search_bp
    from portal.specs.routes import bp as specs_bp
    from portal.tenants.routes import bp as tenants_bp
    from portal.vm_groups.routes import bp as vm_groups_bp
    from portal.vms.routes import bp as vms_bp
    from portal.web.bulk import init_bulk
    from portal.webhooks.routes import bp as webhooks_bp

    for bp in (
        auth_bp, dashboard_bp, racks_bp, baremetals_bp, groups_bp, tenants_bp, specs_bp,
        vms_bp, clusters_bp, meshes_bp, maintainers_bp, audit_bp, search_bp, webhooks_bp,
        vm_groups_bp, autoscaling_bp,
    ):
        app.register_blueprint(bp)
    app.register_blueprint(init_api())
    init_bulk(app)


def _register_cli(app: Flask) -> None:
    from portal.autoscaling.cli import autoscaler_cli
    from portal.cli import seed_cli, users_cli
    from portal.controller import controller_cli
    from portal.provisioning.cli import agent_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(seed_cli)
    app.cli.add_command(agent_cli)
    app.cli.add_command(controller_cli)
    app.cli.add_command(autoscaler_cli)


@event.listens_for(Engine, "connect")
def _sqlite_connection_setup(dbapi_connection, connection_record) -> None:
    """SQLite: enforce foreign keys, wait for locks instead of failing, and let SQLAlchemy
    (not the driver) decide when a transaction begins, so reads happen inside it."""
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")
