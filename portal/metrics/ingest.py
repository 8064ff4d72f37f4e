"""An agent's batch of samples (POST /api/v1/metrics, the inline agent): checked whole,
then written in one statement — a batch with any bad sample writes nothing.

A sample is ``{"object_type", "object_id", "ts", "values": {metric: number}}``; ``ts`` is
ISO-8601 (``Z`` or an offset; without one it is read as UTC), at most five minutes ahead of
the portal's clock and at most 48 hours old (older samples would be pruned at once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from portal.extensions import db
from portal.i18n import _
from portal.metrics import presence, store
from portal.models import (
    METRIC_OBJECT_TYPES,
    METRICS_BY_TYPE,
    Baremetal,
    K8sCluster,
    VirtualMachine,
    utcnow,
)

MAX_SAMPLES = 10_000
FUTURE = timedelta(minutes=5)
# Beyond any real server's or cluster's size; REAL holds it exactly enough.
MAX_VALUE = 1e9
MODELS = {"baremetal": Baremetal, "vm": VirtualMachine, "cluster": K8sCluster}
# Metrics that are fractions of the allocation.
FRACTIONS = {"cpu_util"}


class BatchInvalid(ValueError):
    """Per-field problems, keyed ``samples.<index>.<field>``: nothing was written."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(_("%(count)s problem(s) in the batch; nothing was written.",
                           count=len(errors)))


def parse_ts(value: Any) -> datetime:
    """An ISO-8601 timestamp as naive UTC; ValueError otherwise."""
    if not isinstance(value, str) or "\x00" in value or len(value) > 64:
        raise ValueError(_("Send an ISO-8601 time, e.g. 2026-01-31T08:00:00Z."))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_("Send an ISO-8601 time, e.g. 2026-01-31T08:00:00Z.")) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _check_value(metric: str, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _("Send a number.")
    if not math.isfinite(value):
        return _("Send a finite number (not NaN or infinity).")
    if value < 0:
        return _("A measurement is never negative.")
    if metric in FRACTIONS and value > 1:
        return _("A utilisation is a fraction between 0 and 1.")
    if value > MAX_VALUE:
        return _("At most %(limit)s.", limit=format(MAX_VALUE, "g"))
    return None


def validate(samples: Sequence[Mapping[str, Any]], now: datetime | None = None
             ) -> list[dict]:
    """The batch as rows for the store, or BatchInvalid listing every bad field."""
    now = now or utcnow()
    if len(samples) > MAX_SAMPLES:
        raise BatchInvalid({"samples": _(
            "At most %(limit)s samples per batch (this one has %(count)s); send several.",
            limit=format(MAX_SAMPLES, ","), count=format(len(samples), ","))})
    errors: dict[str, str] = {}
    rows: list[dict] = []
    wanted: dict[str, dict[int, list[int]]] = {t: {} for t in METRIC_OBJECT_TYPES}
    oldest = now - store.RAW_RETENTION
    times: dict[Any, datetime | str] = {}  # a batch's samples mostly share their time
    for i, sample in enumerate(samples):
        where = f"samples.{i}"
        if not isinstance(sample, Mapping):
            errors[where] = _("Send an object.")
            continue
        extra = set(sample) - {"object_type", "object_id", "ts", "values"}
        if extra:
            errors[f"{where}.{sorted(map(str, extra))[0]}"] = _("Unknown field.")
        object_type, object_id = sample.get("object_type"), sample.get("object_id")
        if object_type not in METRIC_OBJECT_TYPES:
            errors[f"{where}.object_type"] = _("One of %(metrics)s.",
                                               metrics=", ".join(METRIC_OBJECT_TYPES))
            object_type = None
        if isinstance(object_id, bool) or not isinstance(object_id, int) \
                or not 1 <= object_id <= 2**31 - 1:
            errors[f"{where}.object_id"] = _("Send the object's id (a positive integer).")
            object_id = None
        raw_ts = sample.get("ts")
        ts = times.get(raw_ts) if isinstance(raw_ts, str) else None
        if ts is None:
            try:
                ts = parse_ts(raw_ts)
            except ValueError as error:
                ts = str(error)
            if isinstance(raw_ts, str):
                times[raw_ts] = ts
        if isinstance(ts, str):
            errors[f"{where}.ts"] = ts
            ts = None
        if ts is not None and ts > now + FUTURE:
            errors[f"{where}.ts"] = _("More than five minutes in the future: check the "
                                      "agent's clock.")
        elif ts is not None and ts < oldest:
            errors[f"{where}.ts"] = _("Older than 48 hours: raw samples are kept that long.")
        values = sample.get("values")
        row: dict[str, Any] = {}
        if not isinstance(values, Mapping) or not values:
            errors[f"{where}.values"] = _("Send at least one metric: {\"name\": number}.")
        elif object_type is not None:
            allowed = METRICS_BY_TYPE[object_type]
            for metric, value in values.items():
                if metric not in allowed:
                    shown = str(metric).replace("\x00", "\\0")[:64]
                    errors[f"{where}.values.{shown}"] = _(
                        "A %(type)s has no metric %(metric)s: one of %(metrics)s.",
                        type=object_type, metric=repr(shown), metrics=", ".join(allowed))
                    continue
                problem = _check_value(metric, value)
                if problem:
                    errors[f"{where}.values.{metric}"] = problem
                else:
                    row[metric] = float(value)
        if object_type is not None and object_id is not None:
            wanted[object_type].setdefault(object_id, []).append(i)
        if ts is not None and object_type and object_id:
            rows.append({"object_type": object_type, "object_id": object_id, "ts": ts, **row})
    for object_type, ids in wanted.items():
        if not ids:
            continue
        found = _existing(object_type, list(ids))
        for object_id in ids.keys() - found:
            for i in ids[object_id]:
                errors.setdefault(f"samples.{i}.object_id",
                                  _("No %(type)s %(id)s.", type=object_type, id=object_id))
    if errors:
        raise BatchInvalid(dict(sorted(errors.items(), key=_by_index)))
    return rows


def _by_index(item: tuple[str, str]) -> tuple[int, str]:
    parts = item[0].split(".")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1, item[0])


def _existing(object_type: str, ids: list[int]) -> set[int]:
    """Which of ``ids`` exist (VMs and clusters: not deleted), a query per 5,000."""
    model = MODELS[object_type]
    if db.session.get_bind().dialect.name == "postgresql":
        return store.ids_present(model.__tablename__, ids, "" if object_type == "baremetal"
                                 else "AND status != 'deleted'")
    found: set[int] = set()
    for chunk in store._chunks(ids):
        query = select(model.id).where(model.id.in_(chunk))
        if object_type != "baremetal":
            query = query.where(model.status != "deleted")
        found.update(db.session.scalars(query))
    return found


def ingest(samples: Sequence[Mapping[str, Any]], agent: str | None = None,
           driver: str | None = None, now: datetime | None = None) -> int:
    """Validate and write a batch, and note the agent as seen; commits. Returns the
    samples written (duplicates of one object and time count once)."""
    now = now or utcnow()
    try:
        rows = validate(samples, now)
        written = store.write(rows)
        if agent:
            presence.touch(agent, now, driver=driver)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return written
