"""What the portal knows about its own health (SPEC 8.4): whether its database answers and
carries the schema this code expects, the provisioning queue, and the agents working it.

Every function here reads; none may leave a transaction open (a pooler in transaction mode
would hold a server connection for it), so each ends its session's transaction.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import metadata

from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import and_, case, func, select, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from portal.config import ROOT
from portal.extensions import db
from portal.models import ProvisionJob, utcnow

# An agent counts as seen when it was heard from (a claim, metrics) this recently.
AGENT_WINDOW = timedelta(minutes=15)


@cache
def portal_version() -> str:
    """The installed distribution's version; in a source tree (the container image runs
    one) the version pyproject.toml declares."""
    try:
        return metadata.version("resource-portal")
    except metadata.PackageNotFoundError:
        with (ROOT / "pyproject.toml").open("rb") as handle:
            return tomllib.load(handle)["project"]["version"]


@cache
def schema_heads() -> frozenset[str]:
    """The Alembic revisions this code expects the database to be at (read once)."""
    return frozenset(ScriptDirectory(str(ROOT / "migrations")).get_heads())


@dataclass(frozen=True)
class Readiness:
    """ready: the database answers and its schema is at this code's head revision."""

    ready: bool
    reason: str
    schema_revision: str | None = None
    schema_head: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"status": "ready" if self.ready else "unavailable", "reason": self.reason,
                "schema_revision": self.schema_revision, "schema_head": self.schema_head}


def readiness() -> Readiness:
    """One short query on its own connection (returned to the pool, rolled back, at once):
    alembic_version, which also proves the database reachable. Web replicas never migrate:
    one that started before the migration (or after a rollback of it) says so until the
    schema matches."""
    head = ", ".join(sorted(schema_heads()))
    try:
        connection = db.engine.connect()
    except SQLAlchemyError as error:  # refused, unknown database, bad password, pool timeout
        return Readiness(False, f"The database is unreachable: {_first_line(error)}", None,
                         head)
    with connection:
        try:
            revisions = frozenset(connection.scalars(
                text("SELECT version_num FROM alembic_version")).all())
        except DBAPIError as error:
            if error.connection_invalidated:
                return Readiness(False, f"The database went away: {_first_line(error)}",
                                 None, head)
            return Readiness(False, "The database has no schema yet: run `flask --app wsgi "
                                    "db upgrade` (the migrate job).", None, head)
    current = ", ".join(sorted(revisions)) or None
    if revisions != schema_heads():
        return Readiness(False, f"The schema is at {current or 'no revision'}; this code "
                                f"needs {head}: run `flask --app wsgi db upgrade`.",
                         current, head)
    return Readiness(True, "The database answers and its schema is at head.", current, head)


def _first_line(error: Exception) -> str:
    message = str(getattr(error, "orig", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__


@dataclass(frozen=True)
class QueueStats:
    queued: int
    claimed: int  # by an agent whose lease still runs
    expired: int  # claimed, lease run out: claimable again
    oldest_queued_at: datetime | None

    def oldest_queued_age(self, now: datetime) -> float | None:
        if self.oldest_queued_at is None:
            return None
        return max((now - self.oldest_queued_at).total_seconds(), 0.0)


def queue_stats(now: datetime | None = None) -> QueueStats:
    """The live jobs in one query over the status index (live jobs are few, however long
    the history)."""
    now = now or utcnow()
    claimed = ProvisionJob.status == "claimed"
    live = and_(claimed, ProvisionJob.lease_expires_at >= now)
    row = db.session.execute(
        select(
            func.count(case((ProvisionJob.status == "queued", 1))),
            func.count(case((live, 1))),
            func.count(case((and_(claimed, ProvisionJob.lease_expires_at < now), 1))),
            func.min(case((ProvisionJob.status == "queued", ProvisionJob.created_at))),
        ).where(ProvisionJob.status.in_(("queued", "claimed")))
    ).one()
    db.session.rollback()
    return QueueStats(row[0], row[1], row[2], row[3])


def agents_seen(now: datetime | None = None,
                window: timedelta = AGENT_WINDOW) -> dict[str, datetime]:
    """Agent name → when it was last seen, for the agents seen within ``window``.

    The one place that decides what "seen" means: heard from — a job claimed (each poll of
    the queue counts, so an agent idle on an empty queue is seen), or metrics posted —
    as the agent presence table records it (portal.metrics.presence)."""
    from portal.metrics.presence import seen_since

    now = now or utcnow()
    seen = seen_since(now - window)
    db.session.rollback()
    return seen


@dataclass(frozen=True)
class Status:
    version: str
    readiness: Readiness
    queue: QueueStats
    agents: dict[str, datetime]
    now: datetime


def status() -> Status:
    """Everything /api/v1/status reports; raises SQLAlchemyError when the database fails
    half-way (the caller answers 503)."""
    now = utcnow()
    ready = readiness()
    if not ready.ready:
        return Status(portal_version(), ready, QueueStats(0, 0, 0, None), {}, now)
    return Status(portal_version(), ready, queue_stats(now), agents_seen(now), now)


def retry_after() -> int:
    """Seconds a client should wait before asking a portal whose database is unavailable."""
    return max(int(current_app.config.get("PORTAL_DB_CONNECT_TIMEOUT", 5)), 1)
