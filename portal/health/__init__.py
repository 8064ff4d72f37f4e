"""The portal's own health (SPEC 8.4): probes, Prometheus metrics, and what a request gets
when the database is away."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from flask_login import AnonymousUserMixin
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from portal.signals import placement_decided


def init_health(app: Flask) -> None:
    from portal.health import metrics
    from portal.health.routes import bp

    app.register_blueprint(bp)
    placement_decided.connect(metrics.placement_decided)

    @app.before_request
    def _start_clock() -> None:
        g._request_started = time.perf_counter()

    @app.after_request
    def _count_request(response: Response) -> Response:
        started = g.pop("_request_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else None
            metrics.observe_request(rule, request.method, response.status_code,
                                    time.perf_counter() - started)
        return response

    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(PoolTimeout, _database_unavailable)


def _database_unavailable(error: Exception):
    """A page whose database is unreachable (or whose connection pool is exhausted): 503
    with Retry-After — a moment's wait, not a server error — drawn without the layout,
    which would ask the database again. (The API answers problem+json: portal.api.)"""
    from portal.extensions import db
    from portal.health.service import retry_after
    from portal.i18n import _

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the pool replaces it
        db.session.remove()
    g._login_user = AnonymousUserMixin()  # the user cannot be loaded now
    title = escape(_("The portal is unavailable"))
    body = escape(_("The portal cannot reach its database right now. Try again in a moment."))
    html = (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body><h1>{title}</h1><p>{body}</p></body></html>")
    return Response(html, 503, {"Retry-After": str(retry_after())}, mimetype="text/html")
