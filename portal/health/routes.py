"""/livez, /readyz, /metrics: for load balancers, orchestrators and Prometheus. Public (a
probe carries no session), and answered without the signed-in user, so that a browser's
session cookie never makes them touch the database."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_login import AnonymousUserMixin
from prometheus_client import CONTENT_TYPE_LATEST

from portal.auth.access import public
from portal.health import metrics, service

bp = Blueprint("health", __name__)
NO_STORE = {"Cache-Control": "no-store"}


@bp.before_request
def _without_user() -> None:
    g._login_user = AnonymousUserMixin()


@bp.route("/livez")
@public
def livez():
    """The process serves requests. Never the database: a database outage must not make
    an orchestrator restart every replica."""
    return jsonify(status="alive"), 200, NO_STORE


@bp.route("/readyz")
@public
def readyz():
    """Send traffic here: the database answers and its schema is at this code's head."""
    state = service.readiness()
    if state.ready:
        return jsonify(state.as_dict()), 200, NO_STORE
    return jsonify(state.as_dict()), 503, {**NO_STORE, "Retry-After": str(service.retry_after())}


@bp.route("/metrics")
@public
def prometheus_metrics():
    """Prometheus exposition. With PORTAL_METRICS_TOKEN set, only for that bearer token."""
    token = current_app.config.get("PORTAL_METRICS_TOKEN")
    if token:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(secret.strip().encode(),
                                                                 token.encode()):
            return Response("A bearer token is required (PORTAL_METRICS_TOKEN).\n", 401,
                            {"WWW-Authenticate": 'Bearer realm="metrics"', **NO_STORE},
                            mimetype="text/plain")
    return Response(metrics.exposition(), 200, NO_STORE, content_type=CONTENT_TYPE_LATEST)
