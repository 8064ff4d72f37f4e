"""The security basics every response shares: a secret key that is never a published
constant, and the headers that keep pages out of frames, caches and other origins."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from flask_login import current_user

# No inline script or style anywhere (templates/ has none; htmx runs with allowEval off and
# without its injected indicator <style>, see base.html), so neither needs 'unsafe-inline'.
# Bootstrap's stylesheet draws a few icons as data: SVG images.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class ConfigurationError(RuntimeError):
    """The deployment is set up in a way the portal refuses to run with."""


def is_production(config: dict[str, Any]) -> bool:
    """PORTAL_ENV=production, or a real database server: only the embedded SQLite demo and
    the test suite count as development."""
    if config.get("PORTAL_ENV") == "production":
        return True
    return not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") and not config.get("TESTING")


def secret_key(config: dict[str, Any]) -> str:
    """SECRET_KEY when set; in production nothing else; otherwise this install's own random
    key, created (readable by its owner only) on first start and reused afterwards."""
    if config.get("SECRET_KEY"):
        return config["SECRET_KEY"]
    if is_production(config):
        raise ConfigurationError(
            "SECRET_KEY is not set. A production deployment (PORTAL_ENV=production or a "
            "database other than SQLite) needs its own: e.g. "
            "SECRET_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    return _install_key(Path(config["SECRET_KEY_FILE"]))


def _install_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and linked into place: two processes starting at once both end up
        # with the first one's key, and nobody ever reads a half-written file.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _secure_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages of a signed-in user show tokens and live capacity: never from a cache, nor
    # after logout with the back button. Static files stay cacheable.
    if request.endpoint != "static" and current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_security(app: Flask) -> None:
    app.config["SECRET_KEY"] = secret_key(app.config)
    app.after_request(_secure_headers)
