"""Shared column helpers: every table has id, created_at and updated_at."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, DateTime
from sqlalchemy.orm import Mapped, mapped_column


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no zone, so both databases store the same kind of value."""
    return datetime.now(UTC).replace(tzinfo=None)


class Timestamped:
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


def one_of(column: str, values: Iterable[str], name: str | None = None) -> CheckConstraint:
    """CHECK that a string column holds one of the enum's values."""
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or f"{column}_enum")


def counters(prefix_total: str = "total", prefix_free: str = "available") -> list[CheckConstraint]:
    """Capacity counters are never negative and never above the total."""
    checks = []
    for dim in ("cpu", "memory", "storage"):
        total, free = f"{prefix_total}_{dim}", f"{prefix_free}_{dim}"
        checks.append(CheckConstraint(f"{total} >= 0", name=f"{total}_nonneg"))
        checks.append(CheckConstraint(f"{free} >= 0 AND {free} <= {total}", name=f"{free}_range"))
    return checks
