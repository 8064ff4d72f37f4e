"""Settings read from the environment, with an embedded default that runs anywhere."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


def _default_database_url() -> str:
    return f"sqlite:///{INSTANCE / 'portal.sqlite3'}"


def _int_setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


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
    # Seconds between the inline agent's measurements (SPEC 8.4); 0: none.
    PORTAL_AGENT_METRICS_INTERVAL = float(os.environ.get("PORTAL_AGENT_METRICS_INTERVAL",
                                                         "60"))
    # inline: run the controller's loops (metrics rollups, autoscaling, webhook delivery…)
    # inside the web process; off: leave them to `flask controller run`.
    PORTAL_CONTROLLER = os.environ.get("PORTAL_CONTROLLER", "off")
    # Seconds between the inline controller's passes.
    PORTAL_CONTROLLER_INTERVAL = float(os.environ.get("PORTAL_CONTROLLER_INTERVAL", "5"))
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # Where `db upgrade` connects when the application goes through a pooler: DDL and
    # Alembic's version bookkeeping want a direct connection to PostgreSQL. Unset: the
    # DATABASE_URL.
    PORTAL_MIGRATION_DATABASE_URL = os.environ.get("PORTAL_MIGRATION_DATABASE_URL") or None
    # "transaction": DATABASE_URL is a PgBouncer in transaction mode, where consecutive
    # transactions of one client may run on different server connections, so nothing may
    # outlive a transaction (psycopg's prepared statements are switched off).
    PORTAL_DB_POOLER = os.environ.get("PORTAL_DB_POOLER", "").strip().lower()
    # Connections each process keeps (SQLAlchemy's pool), how many more it may open under
    # load, how long a request waits for one, and how long a connection attempt may take.
    PORTAL_DB_POOL_SIZE = _int_setting("PORTAL_DB_POOL_SIZE", 5)
    PORTAL_DB_MAX_OVERFLOW = _int_setting("PORTAL_DB_MAX_OVERFLOW", 10)
    PORTAL_DB_POOL_TIMEOUT = _int_setting("PORTAL_DB_POOL_TIMEOUT", 30)
    PORTAL_DB_CONNECT_TIMEOUT = _int_setting("PORTAL_DB_CONNECT_TIMEOUT", 5)
    # Seconds after which a pooled connection is replaced (-1: never), and whether each
    # checkout is tested first (one round trip; survives a database restart unnoticed).
    PORTAL_DB_POOL_RECYCLE = _int_setting("PORTAL_DB_POOL_RECYCLE", 1800)
    PORTAL_DB_PRE_PING = _flag("PORTAL_DB_PRE_PING")
    # Reverse proxies in front of the portal that append to X-Forwarded-For and set
    # X-Forwarded-Proto (0: none, the client connects directly). Only then are those
    # headers believed: the login throttle counts per client address.
    PORTAL_TRUSTED_PROXIES = _int_setting("PORTAL_TRUSTED_PROXIES", 0)
    # Set: /metrics answers only to "Authorization: Bearer <this value>".
    PORTAL_METRICS_TOKEN = os.environ.get("PORTAL_METRICS_TOKEN") or None
    # Set: measured utilisation is read from this Prometheus (portal/metrics/prometheus.py,
    # docs/metrics.md) instead of the portal's own store; each query may take TIMEOUT
    # seconds; QUERIES names a TOML or JSON file overriding the PromQL templates and labels.
    PORTAL_PROMETHEUS_URL = os.environ.get("PORTAL_PROMETHEUS_URL", "").strip() or None
    PORTAL_PROMETHEUS_TIMEOUT = float(os.environ.get("PORTAL_PROMETHEUS_TIMEOUT") or 3)
    PORTAL_PROMETHEUS_QUERIES = os.environ.get("PORTAL_PROMETHEUS_QUERIES", "").strip() or None
    # A hypervisor's own memory, beyond what its VMs were allocated: the dashboard lists a
    # server whose measured memory use exceeds its allocation by more than this.
    PORTAL_HOST_RESERVED_MEMORY_GIB = float(os.environ.get("PORTAL_HOST_RESERVED_MEMORY_GIB")
                                            or 8)
    WTF_CSRF_HEADERS = ["X-CSRFToken", "X-CSRF-Token"]
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # Behind HTTPS: cookies only travel over it.
    SESSION_COOKIE_SECURE = REMEMBER_COOKIE_SECURE = _flag("PORTAL_SECURE_COOKIES")
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


POOLERS = ("", "none", "session", "transaction")


def engine_options(config: dict) -> dict:
    """SQLAlchemy engine options from the settings, for PostgreSQL: pool sizing, the connect
    timeout and, behind a transaction-mode pooler, no prepared
    statements (psycopg prepares a query it has run five times, on one server connection;
    PgBouncer may hand the next transaction another)."""
    pooler = config["PORTAL_DB_POOLER"]
    if pooler not in POOLERS:
        raise ValueError(
            f"PORTAL_DB_POOLER must be empty or one of {', '.join(POOLERS[1:])}, not {pooler!r}"
        )
    options: dict = {}
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options = {
            "pool_size": config["PORTAL_DB_POOL_SIZE"],
            "max_overflow": config["PORTAL_DB_MAX_OVERFLOW"],
            "pool_timeout": config["PORTAL_DB_POOL_TIMEOUT"],
            "pool_recycle": config["PORTAL_DB_POOL_RECYCLE"],
            "pool_pre_ping": config["PORTAL_DB_PRE_PING"],
        }
        connect_args = {"connect_timeout": config["PORTAL_DB_CONNECT_TIMEOUT"]}
        if pooler == "transaction":
            connect_args["prepare_threshold"] = None
        options["connect_args"] = connect_args
    # Explicit options (SQLALCHEMY_ENGINE_OPTIONS, tests) win.
    return {**options, **config.get("SQLALCHEMY_ENGINE_OPTIONS", {})}
