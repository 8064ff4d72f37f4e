"""Settings read from the environment, with an embedded default that runs anywhere."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


def _default_database_url() -> str:
    return f"sqlite:///{INSTANCE / 'portal.sqlite3'}"


class Config:
    # Unset: a production deployment refuses to start, any other keeps a random key of its
    # own in SECRET_KEY_FILE (portal/web/security.py).
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SECRET_KEY_FILE = INSTANCE / "secret_key"
    # "production", or any database other than SQLite, makes a deployment a production one.
    PORTAL_ENV = os.environ.get("PORTAL_ENV", "development")
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or _default_database_url()
    # inline: run the reference provisioning agent inside the web process; off: leave it to
    # `flask agent run`.
    PORTAL_AGENT = os.environ.get("PORTAL_AGENT", "off")
    # The inline agent's simulate driver: seconds per job, share of jobs that fail.
    PORTAL_AGENT_DELAY = float(os.environ.get("PORTAL_AGENT_DELAY", "3"))
    PORTAL_AGENT_FAILURE_RATE = float(os.environ.get("PORTAL_AGENT_FAILURE_RATE", "0"))
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    WTF_CSRF_HEADERS = ["X-CSRFToken", "X-CSRF-Token"]
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # Behind HTTPS: cookies only travel over it.
    SESSION_COOKIE_SECURE = REMEMBER_COOKIE_SECURE = os.environ.get(
        "PORTAL_SECURE_COOKIES", ""
    ).strip().lower() in {"1", "true", "yes", "on"}
    # "Keep me logged in" lasts this long, and no login lasts longer.
    REMEMBER_COOKIE_DURATION = timedelta(days=float(os.environ.get("PORTAL_REMEMBER_DAYS", "14")))
    # Kubernetes versions the cluster wizard offers, newest first.
    PORTAL_K8S_VERSIONS = tuple(
        v.strip()
        for v in os.environ.get("PORTAL_K8S_VERSIONS", "1.31.2,1.30.5,1.29.9").split(",")
        if v.strip()
    )
    # The largest request accepted (413 beyond): a 5,000-server CSV import is about 0.5 MB.
    # A pasted CSV is a form field, so form fields may be as large.
    MAX_CONTENT_LENGTH = int(float(os.environ.get("PORTAL_MAX_REQUEST_MB", "2")) * 1024 * 1024)
    MAX_FORM_MEMORY_SIZE = MAX_CONTENT_LENGTH
    PER_PAGE_CHOICES = (25, 50, 100, 250)
    DEFAULT_PER_PAGE = 50


def normalise_database_url(url: str) -> str:
    """Let operators write plain postgresql:// URLs; we speak psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url
