"""When each agent was last heard from (the ``agent_presence`` table): written on every
metrics POST and on job claims, read by the status endpoint, /metrics and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import AgentPresence, utcnow

# A presence younger than this is not written again: an agent polling an empty queue every
# second costs one indexed look-up, not a row version, per poll.
FRESH = timedelta(seconds=10)


@dataclass(frozen=True)
class Agent:
    name: str
    last_seen: datetime
    scope: str | None
    driver: str | None


def touch(name: str, now: datetime | None = None, driver: str | None = None,
          scope: str | None = None) -> None:
    """Record that ``name`` was heard from at ``now``, in the caller's transaction (one
    upsert; skipped by the database when the row is fresh and says the same)."""
    now = now or utcnow()
    name = name.replace("\x00", "")[:255]
    insert = (postgresql.insert if db.session.get_bind().dialect.name == "postgresql"
              else sqlite.insert)(AgentPresence)
    values = {"name": name, "last_seen": now, "driver": driver, "scope": scope}
    table = AgentPresence.__table__
    statement = insert.values(**values).on_conflict_do_update(
        index_elements=["name"],
        set_={"last_seen": insert.excluded.last_seen,
              "driver": db.func.coalesce(insert.excluded.driver, table.c.driver),
              "scope": db.func.coalesce(insert.excluded.scope, table.c.scope)},
        where=table.c.last_seen < now - FRESH,
    )
    db.session.execute(statement)


def agents(now: datetime | None = None) -> list[Agent]:
    """Every agent ever heard from (the table keeps one row per name), newest first."""
    rows = db.session.execute(
        select(AgentPresence.name, AgentPresence.last_seen, AgentPresence.scope,
               AgentPresence.driver).order_by(AgentPresence.last_seen.desc(),
                                              AgentPresence.name)
    ).all()
    return [Agent(*row) for row in rows]


def seen_since(since: datetime) -> dict[str, datetime]:
    rows = db.session.execute(
        select(AgentPresence.name, AgentPresence.last_seen)
        .where(AgentPresence.last_seen >= since)
    ).all()
    return {name: at for name, at in rows}


def stale_agents(now: datetime, window: timedelta) -> list[Agent]:
    """Agents not heard from within ``window`` before ``now``: gone silent."""
    return [agent for agent in agents(now) if agent.last_seen < now - window]
