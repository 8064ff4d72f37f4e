"""GET /api/v1/status: the portal's own state for scripts and dashboards (SPEC 8.4). Read
without a token, like the probes, because it must answer exactly when things are wrong
(a token is checked in the database); it carries no tenant's data."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy.exc import SQLAlchemyError

from portal.api import api
from portal.api.problems import unavailable
from portal.api.schemas import Output, UtcDatetime
from portal.extensions import db
from portal.health import service

TAGS = ("status",)


class Status(Output):
    status: str = Field(description="`ok`: the database answers and its schema is at head "
                                    "(otherwise the answer is a 503 problem).")
    version: str = Field(description="The portal's version.")
    schema_revision: str = Field(description="The database's Alembic revision.")
    agents_seen: int = Field(ge=0, description=(
        f"Provisioning agents that claimed or answered a job in the last "
        f"{int(service.AGENT_WINDOW.total_seconds() // 60)} minutes."))
    agent_last_seen_at: UtcDatetime | None = Field(
        description="When the most recently seen agent was last seen.")
    queue_depth: int = Field(ge=0, description="Provisioning jobs waiting for an agent.")
    jobs_claimed: int = Field(ge=0, description="Jobs an agent is working on (lease running).")
    jobs_expired: int = Field(ge=0, description=(
        "Claimed jobs whose lease ran out: their agent went silent; claimable again."))
    oldest_queued_job_age_seconds: float | None = Field(
        description="How long the oldest queued job has waited; null when none waits.")
    checked_at: UtcDatetime


@api.operation("GET", "/status", summary="The portal's status", tags=TAGS, access=None,
               response=Status, errors=(503,))
def status():
    """Version, schema revision, provisioning agents seen, queue depth and the age of the
    oldest queued job. 503 (problem ``service_unavailable``, with ``schema_revision`` and
    ``schema_head``) while the database is unreachable or its schema
    is not at the revision this code needs: the same condition as ``/readyz``."""
    try:
        state = service.status()
    except SQLAlchemyError as error:
        db.session.remove()
        return unavailable(f"The database failed while answering: {error.__class__.__name__}.")
    ready = state.readiness
    if not ready.ready:
        return unavailable(ready.reason, schema_revision=ready.schema_revision,
                           schema_head=ready.schema_head)
    queue = state.queue
    return {
        "status": "ok",
        "version": state.version,
        "schema_revision": ready.schema_revision,
        "agents_seen": len(state.agents),
        "agent_last_seen_at": max(state.agents.values(), default=None),
        "queue_depth": queue.queued,
        "jobs_claimed": queue.claimed,
        "jobs_expired": queue.expired,
        "oldest_queued_job_age_seconds": queue.oldest_queued_age(state.now),
        "checked_at": state.now,
    }
