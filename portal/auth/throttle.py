"""Login rate limiting: failures counted per account and per address, with a lock that
doubles after each failure past a free allowance (1 s, 2 s, 4 s … at most 15 minutes).

Counts live in the database (login_throttle), so every web replica sees the same ones. A
success clears the account's count; an address's count is never cleared by a success (an
attacker with one valid account would otherwise reset it between guesses at others), so
both are forgotten after an hour without failures instead.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.models import LoginThrottle, utcnow

# Failures allowed before the first lock: an office behind one address makes more typos
# than one person.
FREE_FAILURES = {"user": 5, "addr": 20}
FIRST_LOCK = timedelta(seconds=1)
MAX_LOCK = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)


def keys(username: str, address: str | None) -> dict[str, str]:
    return {"user": f"user:{username.strip()[:64]}", "addr": f"addr:{address or 'unknown'}"}


def lock_for(failures: int, free: int) -> timedelta:
    """How long the failure number ``failures`` locks its key."""
    if failures < free:
        return timedelta(0)
    return min(FIRST_LOCK * 2 ** min(failures - free, 20), MAX_LOCK)


def seconds_left(username: str, address: str | None, now: datetime | None = None) -> int:
    """Whole seconds until the account and the address may try again (0: now)."""
    now = now or utcnow()
    until = db.session.scalars(
        select(LoginThrottle.locked_until).where(
            LoginThrottle.key.in_(keys(username, address).values()),
            LoginThrottle.locked_until > now,
        )
    ).all()
    return max((math.ceil((u - now).total_seconds()) for u in until), default=0)


def record_failure(username: str, address: str | None) -> dict[str, int]:
    """Count a failed login; returns the locks it starts, in seconds, by kind ("user",
    "addr"). The caller commits."""
    now = utcnow()
    locks = {}
    for kind, key in keys(username, address).items():
        failures = _count(key, now)
        lock = lock_for(failures, FREE_FAILURES[kind])
        if lock:
            db.session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key)
                .values(locked_until=now + lock)
            )
            locks[kind] = math.ceil(lock.total_seconds())
    return locks


def record_success(username: str) -> None:
    key = keys(username, None)["user"]
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


def _count(key: str, now: datetime) -> int:
    """Add one failure to ``key`` in one atomic statement (concurrent failures all count)
    and return the new count."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(LoginThrottle).values(key=key, failures=1, last_failure_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "failures": case(
                (LoginThrottle.last_failure_at < now - FORGET_AFTER, 1),
                else_=LoginThrottle.failures + 1,
            ),
            "last_failure_at": now,
        },
    ).returning(LoginThrottle.failures)
    return db.session.execute(stmt).scalar_one()
