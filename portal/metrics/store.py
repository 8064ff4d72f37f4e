"""The embedded metrics store (SPEC 8.4): writes, reads, rollups and retention over the
tables of portal.models.metrics, on SQLite and PostgreSQL.

Writes are one multi-row INSERT … ON CONFLICT DO UPDATE per batch (a duplicate sample of
an object at the same time: the last one wins, metric by metric). Rollups are
INSERT … SELECT … GROUP BY bucket, upserted, so that rolling the same range up again gives
the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    DateTime,
    Double,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from portal.extensions import db
from portal.models import (
    ALL_METRICS,
    MACHINE_METRICS,
    MetricRollup,
    metric_1d,
    metric_15m,
    metric_aggregate_1d,
    metric_aggregate_1m,
    metric_aggregate_15m,
    metric_latest,
    metric_raw,
)

RAW_RETENTION = timedelta(hours=48)
ROLLUP_RETENTION = timedelta(days=30)
DAILY_RETENTION = timedelta(days=365)
BUCKET = timedelta(minutes=15)
DAY = timedelta(days=1)
# Each rollup pass rolls this much before where the last one stopped again: samples that
# arrived late (an agent catching up) land in their bucket.
LATE = {"15m": timedelta(minutes=30), "1d": timedelta(days=1)}
# A range a little longer than a level's retention (a chart's "30 days" from a rounded
# start) still reads that level.
SLACK = timedelta(hours=1)
# Ids per IN (…) list: well under SQLite's bound on parameters.
CHUNK = 5000

MINUTE = timedelta(minutes=1)
# Resolution of each table, in seconds ("1m": the groups' and racks' minute aggregates).
RESOLUTION = {"raw": 0, "1m": 60, "15m": 900, "1d": 86400}
TABLES: dict[str, Table] = {"raw": metric_raw, "15m": metric_15m, "1d": metric_1d}
# A group's or rack's servers combined, per rollup level; the server column naming it.
AGGREGATES: dict[str, Table] = {"1m": metric_aggregate_1m, "15m": metric_aggregate_15m,
                                 "1d": metric_aggregate_1d}
SCOPE_COLUMNS = {"group": "group_id", "rack": "rack_id"}


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _insert(table: Table):
    return (postgresql.insert if _dialect() == "postgresql" else sqlite.insert)(table)


def floor_bucket(ts: datetime, size: timedelta = BUCKET) -> datetime:
    seconds = int(size.total_seconds())
    epoch = datetime(2000, 1, 1)
    offset = int((ts - epoch).total_seconds()) // seconds * seconds
    return epoch + timedelta(seconds=offset)


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    unique = sorted(set(int(i) for i in ids))
    for start in range(0, len(unique), CHUNK):
        yield unique[start:start + CHUNK]


# ---- writing ------------------------------------------------------------------------------

def write(rows: Sequence[dict]) -> int:
    """Upsert raw samples, each ``{"object_type", "object_id", "ts", <metric>: value…}``
    (already validated), in the caller's transaction. Duplicates within the batch are
    merged first (the later wins), as a repeated key cannot be updated twice by one
    statement."""
    merged: dict[tuple[str, int, datetime], dict] = {}
    for row in rows:
        key = (row["object_type"], row["object_id"], row["ts"])
        if key in merged:
            merged[key] = merged[key] | {k: v for k, v in row.items() if v is not None}
        else:
            merged[key] = row
    if not merged:
        return 0
    # Per object, each metric's newest value in the batch and its time.
    newest: dict[tuple[str, int], dict] = {}
    for (object_type, object_id, ts), row in merged.items():
        kept = newest.setdefault((object_type, object_id), {
            "object_type": object_type, "object_id": object_id, "ts": ts})
        kept["ts"] = max(kept["ts"], ts)
        for name in ALL_METRICS:
            if row.get(name) is not None and (kept.get(f"{name}_ts") is None
                                              or ts >= kept[f"{name}_ts"]):
                kept[name], kept[f"{name}_ts"] = row[name], ts
    if _dialect() == "postgresql":
        _write_postgresql(_UPSERT_UNNEST, list(merged.values()))
        _write_postgresql(_LATEST_UNNEST, list(newest.values()))
        return len(merged)
    statement = _insert(metric_raw)
    statement = statement.on_conflict_do_update(
        index_elements=["object_type", "object_id", "ts"],
        set_={name: func.coalesce(statement.excluded[name], metric_raw.c[name])
              for name in ALL_METRICS},
    )
    db.session.execute(statement, [{name: None for name in ALL_METRICS} | row
                                   for row in merged.values()])
    latest_row = _insert(metric_latest)
    updates: dict = {"ts": func.max(metric_latest.c.ts, latest_row.excluded.ts)}
    for name in ALL_METRICS:
        at, new_at = metric_latest.c[f"{name}_ts"], latest_row.excluded[f"{name}_ts"]
        newer = and_(new_at.is_not(None), (at.is_(None)) | (new_at >= at))
        updates[name] = case((newer, latest_row.excluded[name]), else_=metric_latest.c[name])
        updates[f"{name}_ts"] = case((newer, new_at), else_=at)
    latest_row = latest_row.on_conflict_do_update(
        index_elements=["object_type", "object_id"], set_=updates)
    empty = {column: None for name in ALL_METRICS for column in (name, f"{name}_ts")}
    db.session.execute(latest_row, [empty | row for row in newest.values()])
    return len(merged)


_UPSERT_UNNEST = (
    "INSERT INTO metric_raw (object_type, object_id, ts, {names}) "
    "SELECT * FROM unnest(CAST(CAST(:object_type AS text) AS varchar[]), "
    "CAST(CAST(:object_id AS text) AS integer[]), CAST(CAST(:ts AS text) AS timestamp[]), "
    "{arrays}) "
    "ON CONFLICT (object_type, object_id, ts) DO UPDATE SET {updates}"
).format(
    names=", ".join(ALL_METRICS),
    arrays=", ".join(f"CAST(CAST(:{m} AS text) AS real[])" for m in ALL_METRICS),
    updates=", ".join(f"{m} = coalesce(excluded.{m}, metric_raw.{m})" for m in ALL_METRICS),
)


# Each object's newest sample of the batch replaces its latest row unless that row is newer;
# a sample at the same time merges into it metric by metric, as in metric_raw.
_LATEST_UNNEST = (
    "INSERT INTO metric_latest (object_type, object_id, ts, {names}) "
    "SELECT * FROM unnest(CAST(CAST(:object_type AS text) AS varchar[]), "
    "CAST(CAST(:object_id AS text) AS integer[]), CAST(CAST(:ts AS text) AS timestamp[]), "
    "{arrays}) "
    "ON CONFLICT (object_type, object_id) DO UPDATE SET "
    "ts = greatest(metric_latest.ts, excluded.ts), {updates}"
).format(
    names=", ".join(f"{m}, {m}_ts" for m in ALL_METRICS),
    arrays=", ".join(f"CAST(CAST(:{m} AS text) AS real[]), "
                     f"CAST(CAST(:{m}_ts AS text) AS timestamp[])" for m in ALL_METRICS),
    updates=", ".join(
        f"{column} = CASE WHEN excluded.{m}_ts IS NOT NULL AND (metric_latest.{m}_ts IS NULL "
        f"OR excluded.{m}_ts >= metric_latest.{m}_ts) THEN excluded.{column} "
        f"ELSE metric_latest.{column} END"
        for m in ALL_METRICS for column in (m, f"{m}_ts")),
)


def _write_postgresql(statement: str, rows: list[dict]) -> int:
    """One statement whatever the batch's size: each column one array literal, unnested —
    no per-row parameters to bind, plan or send. The values are validated numbers, ids,
    object types and datetimes, so the literals need no quoting."""
    columns = {
        "object_type": _array(row["object_type"] for row in rows),
        "object_id": _array(row["object_id"] for row in rows),
        "ts": _array(f'"{row["ts"].isoformat(" ")}"' for row in rows),
    }
    for name in ALL_METRICS:
        columns[name] = _array(row.get(name) for row in rows)
        if statement is _LATEST_UNNEST:
            columns[f"{name}_ts"] = _array(
                f'"{row[f"{name}_ts"].isoformat(" ")}"' if row.get(f"{name}_ts") else None
                for row in rows)
    db.session.execute(text(statement), columns)
    return len(rows)


def _array(values: Iterable[object]) -> str:
    return "{" + ",".join("NULL" if v is None else repr(v) if isinstance(v, float)
                          else str(v) for v in values) + "}"


def ids_present(table: str, ids: list[int], extra: str = "") -> set[int]:
    """Which of ``ids`` are in ``table`` (PostgreSQL: one array parameter)."""
    if _dialect() != "postgresql":
        raise NotImplementedError
    return set(db.session.scalars(text(
        f"SELECT id FROM {table} WHERE id = ANY(CAST(:ids AS integer[])) {extra}"),
        {"ids": ids}))


# ---- reading ------------------------------------------------------------------------------

def latest(object_type: str, ids: Sequence[int], metric: str,
           since: datetime) -> dict[int, tuple[datetime, float]]:
    """Each object's newest sample of ``metric`` at or after ``since`` (metric_latest: one
    row an object, each metric with its own time)."""
    column, at = metric_latest.c[metric], metric_latest.c[f"{metric}_ts"]
    found: dict[int, tuple[datetime, float]] = {}
    # PostgreSQL: all ids as one array parameter (10,000 bound values cost more than the
    # read); SQLite: IN lists within its bound on parameters.
    if _dialect() == "postgresql":
        chunks = [bindparam("ids", sorted(set(int(i) for i in ids)), type_=ARRAY(Integer))]
        match = lambda chunk: metric_latest.c.object_id == any_(chunk)  # noqa: E731
    else:
        chunks = list(_chunks(ids))
        match = metric_latest.c.object_id.in_
    for chunk in chunks:
        rows = db.session.execute(
            select(metric_latest.c.object_id, at, column)
            .where(metric_latest.c.object_type == object_type, match(chunk), at >= since,
                   column.is_not(None))
        ).all()
        found.update({object_id: (ts, float(value)) for object_id, ts, value in rows})
    return found


def latest_exceeding(object_type: str, model, metric: str, since: datetime, bound,
                     where=None, also: Sequence = (), margin=None, limit: int | None = None
                     ) -> tuple[int, list[tuple]]:
    """portal.metrics.query.latest_exceeding in one statement: how many objects of
    ``model`` (matching ``where``) have a newest ``metric`` at or after ``since`` above
    ``bound``, and their (id, value, *also) rows — with ``limit``, the first ones by the
    value's excess over ``margin``, then the id. The REAL value is widened to double
    precision first, as Python compares and subtracts it."""
    column, at = metric_latest.c[metric], metric_latest.c[f"{metric}_ts"]
    value = cast(column, Double)
    query = (
        select(metric_latest.c.object_id, column, *also, func.count().over())
        .select_from(metric_latest)
        .join(model, model.id == metric_latest.c.object_id)
        .where(metric_latest.c.object_type == object_type, at >= since, value > bound)
    )
    if where is not None:
        query = query.where(where)
    if limit is not None:
        query = query.order_by((value - margin).desc(), metric_latest.c.object_id).limit(limit)
    rows = db.session.execute(query).all()
    return (rows[0][-1] if rows else 0,
            [(object_id, float(found), *rest[:-1]) for object_id, found, *rest in rows])


def level_for(start: datetime, end: datetime, step: int | None) -> str:
    """The table a range is read from: the finest that still holds the whole range (raw
    within 48 h, 15-minute rollups within 30 days, daily beyond), or coarser if the step
    asks for coarser points."""
    span = end - start - SLACK
    level = "raw" if span <= RAW_RETENTION else "15m" if span <= ROLLUP_RETENTION else "1d"
    if step is not None:
        for candidate in ("1d", "15m"):
            if step >= RESOLUTION[candidate] and RESOLUTION[candidate] > RESOLUTION[level]:
                level = candidate
                break
    return level


def series(object_type: str, ids: Sequence[int], metrics: Sequence[str], start: datetime,
           end: datetime, step: int | None = None
           ) -> dict[tuple[int, str], list[tuple[datetime, float]]]:
    """Points of each (object, metric) in time order within [start, end]: the table's own
    points, or — with ``step`` seconds — their average per step-long bucket (rollups
    weighted by the samples they hold), stamped with the bucket's start."""
    level = level_for(start, end, step)
    table = TABLES[level]
    # The buckets not rolled up yet (the controller rolls each once it is complete; none
    # may run, as under `make run`) are computed from the raw samples on the fly.
    tail = _not_rolled_up(end) if level == "15m" else None
    table_end = end if tail is None or tail > end else tail
    out: dict[tuple[int, str], list[tuple[datetime, float, int]]] = {}
    _read(out, table, level != "raw", object_type, ids, metrics, start, table_end,
          inclusive=table_end is end)
    if tail is not None and tail <= end:
        recent: dict[tuple[int, str], list[tuple[datetime, float, int]]] = {}
        _read(recent, metric_raw, False, object_type, ids, metrics, max(start, tail), end)
        for key, points in recent.items():
            out.setdefault(key, []).extend(
                _buckets(points, int(BUCKET.total_seconds()), floor_bucket(tail)))
    if step is None or step <= RESOLUTION[level]:
        return {key: [(ts, value) for ts, value, _ in points] for key, points in out.items()}
    return {key: _average(points, step, start) for key, points in out.items()}


def _not_rolled_up(end: datetime) -> datetime | None:
    """Where the 15-minute rollups stop: their mark, or (never rolled up) the raw
    retention's start; None when they are up to date."""
    state = db.session.get(MetricRollup, "15m")
    done = state.done_until if state is not None else floor_bucket(end - RAW_RETENTION)
    return None if done >= floor_bucket(end) else done


def _read(out: dict, table: Table, weighted: bool, object_type: str, ids: Sequence[int],
          metrics: Sequence[str], start: datetime, end: datetime,
          inclusive: bool = True) -> None:
    columns = [table.c[m] for m in metrics]
    for chunk in _chunks(ids):
        query = (
            select(table.c.object_id, table.c.ts, *columns,
                   *((table.c.samples,) if weighted else ()))
            .where(table.c.object_type == object_type, table.c.object_id.in_(chunk),
                   table.c.ts >= start, table.c.ts <= end if inclusive else table.c.ts < end)
            .order_by(table.c.object_id, table.c.ts)
        )
        for row in db.session.execute(query):
            object_id, ts = row[0], row[1]
            count = row[2 + len(metrics)] if weighted else 1
            for i, metric in enumerate(metrics):
                value = row[2 + i]
                if value is not None:
                    out.setdefault((object_id, metric), []).append((ts, float(value), count))


def _buckets(points: list[tuple[datetime, float, int]], step: int,
             origin: datetime) -> list[tuple[datetime, float, int]]:
    """(bucket start, weighted mean, weight) per ``step``-second bucket from ``origin``."""
    size = timedelta(seconds=step)
    buckets: dict[datetime, list[float]] = {}
    for ts, value, count in points:
        bucket = origin + size * ((ts - origin) // size)
        total = buckets.setdefault(bucket, [0.0, 0.0])
        total[0] += value * count
        total[1] += count
    return [(bucket, total[0] / total[1], int(total[1]))
            for bucket, total in sorted(buckets.items()) if total[1]]


def _average(points: list[tuple[datetime, float, int]], step: int,
             origin: datetime) -> list[tuple[datetime, float]]:
    return [(bucket, mean) for bucket, mean, _ in _buckets(points, step, origin)]


# ---- groups and racks -----------------------------------------------------------------------

# A group's or rack's chart reads the minute aggregates within 6 hours, the 15-minute ones
# within 48 hours and the daily ones beyond — each completed by the finer levels where it
# is not rolled up yet: the aggregates are one row a bucket, the raw tail (the minute or
# two since the last pass; the whole range where nothing rolled minutes up, as under
# `make run` without a controller) is combined from the servers' samples on the fly.
AGGREGATE_RAW_SPAN = timedelta(hours=6)
AGGREGATE_15M_SPAN = timedelta(hours=48)
# Minute aggregates are kept as long as a chart may read them.
MINUTE_RETENTION = AGGREGATE_RAW_SPAN + SLACK
# Each minutes pass combines this much before where the last one stopped again (samples
# that arrived late land in their minute).
MINUTE_LATE = timedelta(minutes=2)


def aggregate_sources(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """(level, since, until) ranges covering [start, end]: the coarsest level the span
    allows up to where the controller has rolled it up, then the finer ones."""
    span = end - start
    chain = ["1m", "raw"] if span <= AGGREGATE_RAW_SPAN else (
        ["15m", "raw"] if span <= AGGREGATE_15M_SPAN else ["1d", "15m", "raw"])
    marks = {}
    for level, fallback in (("1m", start),  # never rolled: the raw samples, as before
                            ("15m", floor_bucket(end - RAW_RETENTION)),
                            ("1d", floor_bucket(end - ROLLUP_RETENTION, DAY))):
        if level not in chain:
            continue
        mark = db.session.get(MetricRollup, level)
        marks[level] = mark.done_until if mark is not None else fallback
    if "1m" in marks:
        # Minutes before the oldest one kept are not there: read raw from the start.
        marks["1m"] = marks["1m"] if start >= marks["1m"] - MINUTE_RETENTION else start
    sources = []
    since = start
    for level in chain:
        until = end if level == "raw" else min(marks[level], end)
        if until > since or level == "raw":
            sources.append((level, since, until))
            since = max(since, until)
    return sources


def aggregate_series(scope: str, scope_id: int, start: datetime, end: datetime, step: int
                     ) -> dict[str, list[tuple[datetime, float]]]:
    """The servers of group or rack ``scope_id`` combined per step-long bucket from
    ``start``: their mean CPU, their summed memory and storage (each server's mean in the
    bucket first, then across the servers). Rolled-up buckets come from metric_aggregate_*,
    the raw tail from the servers' samples; each bucket weighted by the samples it holds.
    A constant number of statements whatever the number of servers."""
    sources = aggregate_sources(start, end)
    step = max(step, RESOLUTION[sources[0][0]])
    size = timedelta(seconds=step)
    # bucket index -> per metric [weighted sum, weight]
    buckets: dict[int, list[list[float]]] = {}

    def add(index: int, values: Sequence, weight) -> None:
        weight = float(weight)
        totals = buckets.setdefault(index, [[0.0, 0.0] for _ in MACHINE_METRICS])
        for total, value in zip(totals, values, strict=True):
            if value is not None:
                total[0] += float(value) * weight
                total[1] += weight

    for level, since, until in sources:
        if level == "raw":
            for index, weight, *values in _raw_aggregate(scope, scope_id, since, until,
                                                         start, step):
                add(int(index), values, weight)
            continue
        table = AGGREGATES[level]
        for ts, weight, *values in db.session.execute(
                select(table.c.ts, table.c.samples, *(table.c[m] for m in MACHINE_METRICS))
                .where(table.c.object_type == scope, table.c.object_id == scope_id,
                       table.c.ts >= since, table.c.ts < until)):
            add((ts - start) // size, values, weight)
    out: dict[str, list[tuple[datetime, float]]] = {m: [] for m in MACHINE_METRICS}
    for index, totals in sorted(buckets.items()):
        for metric, (total, weight) in zip(MACHINE_METRICS, totals, strict=True):
            if weight:
                out[metric].append((start + size * index, total / weight))
    return out


def _raw_aggregate(scope: str, scope_id: int, since: datetime, until: datetime,
                   origin: datetime, step: int) -> list:
    """(bucket index from ``origin``, samples, mean CPU, summed memory, summed storage) per
    step-long bucket of the scope's servers' raw samples in [since, until]: one
    statement."""
    from portal.models import Baremetal

    servers = select(Baremetal.id).where(getattr(Baremetal, SCOPE_COLUMNS[scope]) == scope_id)
    raw = metric_raw
    seconds = int((origin - datetime(1970, 1, 1)).total_seconds())
    if _dialect() == "postgresql":
        bucket = func.floor((func.extract("epoch", raw.c.ts) - seconds) / step)
    else:  # SQLite may lack floor(); the offset is never negative, so truncating is flooring
        bucket = cast((cast(func.strftime("%s", raw.c.ts), Integer) - seconds) / step, Integer)
    per_server = (
        select(bucket.label("bucket"), func.count().label("samples"),
               *(func.avg(raw.c[m]).label(m) for m in MACHINE_METRICS))
        .where(raw.c.object_type == "baremetal", raw.c.object_id.in_(servers),
               raw.c.ts >= since, raw.c.ts <= until)
        .group_by(raw.c.object_id, literal_column("bucket"))
    ).subquery()
    return db.session.execute(
        select(per_server.c.bucket, func.sum(per_server.c.samples),
               func.avg(per_server.c.cpu_util), func.sum(per_server.c.memory_used_gib),
               func.sum(per_server.c.storage_used_gib))
        .group_by(per_server.c.bucket)
    ).all()


# ---- rollups and retention ----------------------------------------------------------------

def _bucket_sql(level: str) -> str:
    if _dialect() == "postgresql":
        if level == "15m":
            return "date_bin('15 minutes', ts, TIMESTAMP '2000-01-01')"
        return "date_trunc('day', ts)"
    # SQLite keeps DateTime as text 'YYYY-MM-DD HH:MM:SS.ffffff'; the bucket must be
    # written the same way to compare equal with what SQLAlchemy binds.
    if level == "15m":
        return ("strftime('%Y-%m-%d %H:%M:%S.000000', "
                "(CAST(strftime('%s', ts) AS INTEGER) / 900) * 900, 'unixepoch')")
    return "strftime('%Y-%m-%d 00:00:00.000000', ts)"


def _rollup_sql(level: str) -> str:
    source, target = ("metric_raw", "metric_15m") if level == "15m" else ("metric_15m",
                                                                         "metric_1d")
    names, selected = [], []
    for m in ALL_METRICS:
        names += [m, f"{m}_max"]
        if level == "15m":
            selected += [f"avg({m})", f"max({m})"]
        else:  # the day's mean: the buckets' means weighted by their samples
            selected += [f"sum({m} * samples) / sum(CASE WHEN {m} IS NOT NULL "
                         f"THEN samples END)", f"max({m}_max)"]
    count = "count(*)" if level == "15m" else "sum(samples)"
    updates = ", ".join(f"{n} = excluded.{n}" for n in names + ["samples"])
    return (
        f"INSERT INTO {target} (object_type, object_id, ts, {', '.join(names)}, samples) "
        f"SELECT object_type, object_id, {_bucket_sql(level)} AS bucket, "
        f"{', '.join(selected)}, {count} FROM {source} "
        f"WHERE ts >= :start AND ts < :end "
        f"GROUP BY object_type, object_id, bucket "
        f"ON CONFLICT (object_type, object_id, ts) DO UPDATE SET {updates}"
    )


def _combined(alias: str) -> tuple[list[str], list[str], str]:
    """The columns a group's or rack's aggregate row holds, the SQL combining its servers'
    values (read from ``alias``) into them — CPU averaged and its peak the busiest, memory
    and storage summed — and the upsert's SET list."""
    names, selected = [], []
    for m in MACHINE_METRICS:
        combine = "avg" if m == "cpu_util" else "sum"
        names += [m, f"{m}_max"]
        selected += [f"{combine}({alias}.{m})",
                     f"{'max' if m == 'cpu_util' else 'sum'}({alias}.{m}_max)"]
    updates = ", ".join(f"{n} = excluded.{n}" for n in names + ["servers", "samples"])
    return names, selected, updates


def _aggregate_sql(level: str, scope: str) -> str:
    """A scope's servers combined per bucket from their own rollups of ``level``: each
    server's mean in the bucket, then across the servers — what the chart of a group or a
    rack draws — with the servers' membership as it is when the bucket is rolled up."""
    column = SCOPE_COLUMNS[scope]
    names, selected, updates = _combined("m")
    return (
        f"INSERT INTO {AGGREGATES[level].name} (object_type, object_id, ts, "
        f"{', '.join(names)}, servers, samples) "
        f"SELECT '{scope}', b.{column}, m.ts, {', '.join(selected)}, count(*), sum(m.samples) "
        f"FROM {TABLES[level].name} m JOIN baremetal b ON b.id = m.object_id "
        f"WHERE m.object_type = 'baremetal' AND m.ts >= :start AND m.ts < :end "
        f"AND b.{column} IS NOT NULL "
        f"GROUP BY b.{column}, m.ts "
        f"ON CONFLICT (object_type, object_id, ts) DO UPDATE SET {updates}"
    )


def rollup_range(level: str, start: datetime, end: datetime) -> int:
    """Roll [start, end) of the level below into ``level`` ("15m": raw → 15-minute, "1d":
    15-minute → daily), then the servers' new rows of ``level`` into their groups' and
    racks' (metric_aggregate_*); both ends are bucket boundaries. Idempotent. Returns the
    buckets written (the objects' own, not the aggregates'). In the caller's transaction."""
    written = db.session.execute(text(_rollup_sql(level)).bindparams(
        *_range_params(start, end))).rowcount
    rollup_aggregates(level, start, end)
    return written


def rollup_aggregates(level: str, start: datetime, end: datetime) -> None:
    """Combine the servers' ``level`` rollups in [start, end) into their groups' and racks'
    (idempotent; in the caller's transaction)."""
    for scope in SCOPE_COLUMNS:
        db.session.execute(text(_aggregate_sql(level, scope)).bindparams(
            *_range_params(start, end)))


def _range_params(start: datetime, end: datetime):
    return (bindparam("start", start, type_=DateTime), bindparam("end", end, type_=DateTime))


def rollup(now: datetime) -> dict[str, int]:
    """Roll up whatever completed since the last pass (and a little before it, for late
    samples), level by level, and move each level's mark. Cheap when nothing completed:
    a pass every few seconds reads two rows. Commits."""
    done: dict[str, int] = {}
    for level, size, first in (("15m", BUCKET, RAW_RETENTION), ("1d", DAY, ROLLUP_RETENTION)):
        end = floor_bucket(now, size)
        state = db.session.get(MetricRollup, level)
        if state is not None and state.done_until >= end:
            continue
        start = floor_bucket(now - first, size) if state is None else floor_bucket(
            min(state.done_until, end) - LATE[level], size)
        done[level] = rollup_range(level, start, end)
        if state is None:
            db.session.add(MetricRollup(level=level, done_until=end))
        else:
            state.done_until = end
        db.session.commit()
    return done


def prune(now: datetime) -> dict[str, int]:
    """Delete what is past retention: raw after 48 h, 15-minute after 30 days, daily after
    a year (groups' and racks' aggregates as their servers' rollups). Commits."""
    removed = {}
    for name, table, keep in (("raw", metric_raw, RAW_RETENTION),
                              ("15m", metric_15m, ROLLUP_RETENTION),
                              ("1d", metric_1d, DAILY_RETENTION),
                              ("aggregate 15m", metric_aggregate_15m, ROLLUP_RETENTION),
                              ("aggregate 1d", metric_aggregate_1d, DAILY_RETENTION),
                              ("latest", metric_latest, RAW_RETENTION)):
        removed[name] = db.session.execute(delete(table).where(table.c.ts < now - keep)
                                           ).rowcount
    db.session.commit()
    return removed


def _minutes_sql(scope: str) -> str:
    """A scope's servers combined per minute from their raw samples: each server's mean
    (and peak) in the minute first, then across the servers — as a chart within six hours
    combines the raw samples itself where no minute is rolled up."""
    column = SCOPE_COLUMNS[scope]
    if _dialect() == "postgresql":
        minute = "date_trunc('minute', ts)"
    else:  # as _bucket_sql: written as SQLAlchemy binds a DateTime
        minute = "strftime('%Y-%m-%d %H:%M:00.000000', ts)"
    per_server = ", ".join(f"avg({m}) AS {m}, max({m}) AS {m}_max" for m in MACHINE_METRICS)
    names, selected, updates = _combined("s")
    return (
        f"INSERT INTO metric_aggregate_1m (object_type, object_id, ts, {', '.join(names)}, "
        f"servers, samples) "
        f"SELECT '{scope}', b.{column}, s.minute, {', '.join(selected)}, count(*), "
        f"sum(s.samples) FROM (SELECT object_id, {minute} AS minute, {per_server}, "
        f"count(*) AS samples FROM metric_raw WHERE object_type = 'baremetal' "
        f"AND ts >= :start AND ts < :end GROUP BY object_id, minute) s "
        f"JOIN baremetal b ON b.id = s.object_id WHERE b.{column} IS NOT NULL "
        f"GROUP BY b.{column}, s.minute "
        f"ON CONFLICT (object_type, object_id, ts) DO UPDATE SET {updates}"
    )


def rollup_minutes(now: datetime) -> int:
    """Combine the servers' raw samples of the minutes completed since the last pass (and
    a little before, for late samples) into their groups' and racks' minute aggregates,
    move the "1m" mark and drop the minutes past MINUTE_RETENTION. Nothing when no minute
    completed. Returns the minutes rolled. Commits."""
    end = floor_bucket(now, MINUTE)
    state = db.session.get(MetricRollup, "1m")
    if state is not None and state.done_until >= end:
        return 0
    oldest = floor_bucket(now - MINUTE_RETENTION, MINUTE)
    start = oldest if state is None else max(oldest, state.done_until - MINUTE_LATE)
    for scope in SCOPE_COLUMNS:
        db.session.execute(text(_minutes_sql(scope)).bindparams(*_range_params(start, end)))
    db.session.execute(delete(metric_aggregate_1m).where(metric_aggregate_1m.c.ts < oldest))
    if state is None:
        db.session.add(MetricRollup(level="1m", done_until=end))
    else:
        state.done_until = end
    db.session.commit()
    return int((end - start) / MINUTE)


def maintain(now: datetime) -> str:
    """The controller's metrics loop: the groups' and racks' minutes when one completed,
    rollups when a bucket completed, then retention."""
    minutes = rollup_minutes(now)
    rolled = rollup(now)
    if not rolled:
        return f"groups and racks: {minutes} minute(s)" if minutes else "nothing due"
    removed = prune(now)
    return ", ".join([f"{level}: {n} bucket(s)" for level, n in rolled.items()]
                     + [f"pruned {n} {name}" for name, n in removed.items() if n])
