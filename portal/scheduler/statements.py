"""The reservation's statements, run on the database driver itself.

A reservation is five round trips, its statements sent together (``together()``) where
none needs an earlier one's result: lock the quota row + usage + the group's servers' free
counters (the rest of what the planner reads of them is kept under the group's
HostsVersion, and read again only after it changed); the VMs; their jobs + audit events;
each server + the group; commit — four on PostgreSQL, where the COMMIT goes with the
counters' updates (``take_and_commit()``). Measured on PostgreSQL
with ``bench/reservation.py``, SQLAlchemy's execution and result machinery cost more per
statement than the driver and the database together, and reading a thousand server rows
through its result objects cost more than the rest of the reservation. So the hot path's
statements are written with SQLAlchemy Core (one source of truth for tables, columns,
dialects, casts and type conversions), compiled once per dialect, and executed on the
DBAPI cursor of the session's own connection — inside the session's transaction, exactly
as ``session.execute()`` would run them, minus its per-statement overhead.

What SQLAlchemy's execution would add is added here the same way: Python-side column
defaults and ``onupdate`` values (the columns its compiler names for prefetch, so a column
added to a table later is filled too) and every value's bind processor (JSON, and
datetimes on SQLite). Result values are taken as the driver returns them, so statements
here read integers and strings only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Select

from portal.extensions import db
from portal.models import (
    DIMENSIONS,
    HOLDING_STATUSES,
    AuditEvent,
    Baremetal,
    BaremetalGroup,
    BaremetalGroupTenantQuota,
    HostsVersion,
    ProvisionJob,
    Rack,
    VirtualMachine,
)


@dataclass(frozen=True)
class _Prepared:
    sql: str
    names: tuple[str, ...] | None  # positional dialects: the order of the parameters
    binds: tuple[str, ...]  # every bind name
    fixed: Mapping[str, Any]  # bind name -> the value written into the statement
    processors: Mapping[str, Any]  # bind name -> bind processor
    defaults: Mapping[str, Callable[[], Any]]  # bind name -> its value when not given
    returns_rows: bool  # a SELECT, or a statement with RETURNING


class DriverStatement:
    """A Core statement compiled once per dialect and executed on the DBAPI cursor of the
    session's connection (see the module's docstring). An INSERT names the columns it
    writes; each one not given gets its Python-side default, else NULL."""

    def __init__(
        self, statement: Any, columns: Sequence[str] | None = None, many: bool = False
    ) -> None:
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self.many = many
        self._prepared: dict[str, _Prepared] = {}

    def _prepare(self, dialect: Dialect) -> _Prepared:
        prepared = self._prepared.get(dialect.name)
        if prepared is not None:
            return prepared
        compiled = self.statement.compile(
            dialect=dialect, column_keys=self.columns, for_executemany=self.many
        )
        defaults: dict[str, Callable[[], Any]] = {}
        for key in self.columns or ():
            column = self.statement.table.c[key]
            defaults[key] = _python_default(column, column.default)
        for column in compiled.update_prefetch:
            defaults[column.key] = _python_default(column, column.onupdate)
        for column in compiled.insert_prefetch:
            defaults.setdefault(column.key, _python_default(column, column.default))
        prepared = self._prepared[dialect.name] = _Prepared(
            sql=compiled.string,
            names=tuple(compiled.positiontup) if compiled.positional else None,
            binds=tuple(dict.fromkeys(compiled.bind_names.values())),
            fixed={
                name: bind.effective_value
                for bind, name in compiled.bind_names.items()
                if not bind.required and name not in defaults
            },
            processors={
                name: processor
                for bind, name in compiled.bind_names.items()
                if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
            },
            defaults=defaults,
            returns_rows=isinstance(self.statement, Select)
            or bool(getattr(compiled, "effective_returning", None)),
        )
        return prepared

    @staticmethod
    def _arguments(prepared: _Prepared, params: Mapping[str, Any]) -> Any:
        values = {**prepared.fixed, **params}
        for name, default in prepared.defaults.items():
            if name not in values:
                values[name] = default()
        missing = [name for name in prepared.binds if name not in values]
        if missing:
            raise KeyError(f"no value for the statement's parameters {missing}")
        for name, processor in prepared.processors.items():
            values[name] = processor(values[name])
        if prepared.names is None:
            return values
        return tuple(values[name] for name in prepared.names)

    def _cursor(self) -> tuple[Any, _Prepared]:
        connection: Connection = db.session.connection()
        return connection.connection.cursor(), self._prepare(connection.dialect)

    def rows(self, params: Mapping[str, Any]) -> list[tuple]:
        cursor, prepared = self._cursor()
        try:
            cursor.execute(prepared.sql, self._arguments(prepared, params))
            return cursor.fetchall()
        finally:
            cursor.close()

    def rowcount(self, params: Mapping[str, Any]) -> int:
        cursor, prepared = self._cursor()
        try:
            cursor.execute(prepared.sql, self._arguments(prepared, params))
            return cursor.rowcount
        finally:
            cursor.close()

    def execute_many(self, params: Iterable[Mapping[str, Any]]) -> None:
        cursor, prepared = self._cursor()
        try:
            arguments = [self._arguments(prepared, p) for p in params]
            if len(arguments) == 1:  # psycopg runs executemany() as a pipeline: dearer for one
                cursor.execute(prepared.sql, arguments[0])
            elif arguments:
                cursor.executemany(prepared.sql, arguments)
        finally:
            cursor.close()


def together(calls: Iterable[tuple[DriverStatement, Mapping[str, Any]]]) -> list[Any]:
    """Statements run one after another, as many round trips as one: each call's rows when
    it returns rows, else its row count. On PostgreSQL they are sent in psycopg's pipeline
    mode: the server still runs each statement only after the one before it has finished
    (under READ COMMITTED each takes its snapshot when it starts, so a read sent after a
    lock sees what the lock's holder committed), and the first error stops the rest and is
    raised here. A driver without pipelines runs them one by one, each read at once."""
    connection: Connection = db.session.connection()
    dialect = connection.dialect
    prepared = [(statement._prepare(dialect), params) for statement, params in calls]
    driver = connection.connection.driver_connection
    pipeline = _pipeline(driver)
    cursors = []
    try:
        if pipeline is None:
            results = []
            for statement, params in prepared:
                cursor = connection.connection.cursor()
                cursors.append(cursor)
                cursor.execute(statement.sql, DriverStatement._arguments(statement, params))
                results.append(_result(statement, cursor))
            return results
        with pipeline():
            for statement, params in prepared:
                cursor = driver.cursor()
                cursors.append(cursor)
                cursor.execute(statement.sql, DriverStatement._arguments(statement, params))
        return [_result(statement, cursor)
                for (statement, _), cursor in zip(prepared, cursors, strict=True)]
    finally:
        for cursor in cursors:
            cursor.close()


def _pipeline(driver: Any) -> Any:
    return getattr(driver, "pipeline", None)


def pipelined() -> bool:
    """Whether together() sends its statements in one round trip (psycopg's pipeline mode,
    on PostgreSQL), so that a COMMIT can travel with them (take_and_commit)."""
    return _pipeline(db.session.connection().connection.driver_connection) is not None


def take_and_commit(servers: Sequence[Mapping[str, Any]], group: Mapping[str, Any]) -> bool:
    """A reservation's last round trip on PostgreSQL: each server's counters, the group's,
    and COMMIT, sent together (pipelined() only). The group's row is shared by every
    reservation in the group; sent this way its lock is held only while the server runs
    the three, never across a round trip and the client's Python between them — under
    load, the difference between eight clients taking turns and eight clients queueing.

    A server that is no longer active, in the group, or roomy enough aborts the
    transaction (TAKE_FROM_SERVER_OR_ABORT), so the COMMIT after it is never run: returns
    False, the transaction rolled back on the server, for the caller to roll back its side
    and plan again. True: committed."""
    try:
        together([
            *((TAKE_FROM_SERVER_OR_ABORT, params) for params in servers),
            (DRAW_FROM_GROUP, group),
            (COMMIT, {}),
        ])
    except Exception as error:
        code = getattr(error, "sqlstate", None)
        if code == DIVISION_BY_ZERO:
            return False
        if code == CHECK_VIOLATION:
            raise drifted(group["group"]) from error
        raise
    return True


def drifted(group_id: int) -> RuntimeError:
    """Every chosen server had the room, so the group has it too unless its counters
    drifted from its servers' sum (they move together, in one transaction, everywhere)."""
    return RuntimeError(f"group {group_id}'s free counters are below its servers' sum")


def _result(statement: _Prepared, cursor: Any) -> Any:
    # Not cursor.description: psycopg builds a description object per column on every look.
    return cursor.fetchall() if statement.returns_rows else cursor.rowcount


def _python_default(column: Column, default: Any) -> Callable[[], Any]:
    """What SQLAlchemy would compute for ``column`` when no value is given."""
    if default is None:
        return lambda: None
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        function = default.arg  # SQLAlchemy's wrapper, called with an execution context
        return lambda: function(None)
    raise TypeError(f"{column} has a SQL expression default, which is left to SQLAlchemy")


def _values(table: Table, exclude: Sequence[str] = ("id",)) -> list[str]:
    return [c.key for c in table.columns if c.key not in exclude and c.server_default is None]


_VM, _SERVER, _GROUP = VirtualMachine.__table__, Baremetal.__table__, BaremetalGroup.__table__
_QUOTA, _RACK = BaremetalGroupTenantQuota.__table__, Rack.__table__
_VERSION = HostsVersion.__table__

# The tenant's quota in the group, locked (FOR UPDATE on PostgreSQL; on SQLite the caller
# holds the database's write lock), with the group's totals that percentages scale and its
# HostsVersion (NULL when it has none).
LOCK_QUOTA = DriverStatement(
    select(
        *(_QUOTA.c[f"{d}_{kind}"] for d in DIMENSIONS for kind in ("limit", "percent")),
        *(_GROUP.c[f"total_{d}"] for d in DIMENSIONS),
        _VERSION.c.version,
    )
    .join_from(_QUOTA, _GROUP, _QUOTA.c.group_id == _GROUP.c.id)
    .outerjoin(_VERSION, _VERSION.c.group_id == _GROUP.c.id)
    .where(_QUOTA.c.tenant_id == bindparam("tenant"), _QUOTA.c.group_id == bindparam("group"))
    .with_for_update(of=_QUOTA)
)
# What the tenant's VMs hold in the group (the statuses written out: no expanding IN).
USAGE = DriverStatement(
    select(*(func.coalesce(func.sum(_VM.c[d]), 0) for d in DIMENSIONS))
    .join_from(_VM, _SERVER, _VM.c.baremetal_id == _SERVER.c.id)
    .where(
        _VM.c.tenant_id == bindparam("tenant"),
        _SERVER.c.group_id == bindparam("group"),
        _VM.c.status.in_([literal_column(f"'{status}'") for status in HOLDING_STATUSES]),
    )
)
# The group's active servers, in HostTable.from_rows' column order (by id).
_IN_GROUP = (_SERVER.c.group_id == bindparam("group"), _SERVER.c.status == "active")
_HOSTS = (
    select(
        _SERVER.c.id,
        _SERVER.c.name,
        _SERVER.c.region,
        _SERVER.c.dc,
        _RACK.c.name,
        *(_SERVER.c[f"total_{d}"] for d in DIMENSIONS),
        *(_SERVER.c[f"available_{d}"] for d in DIMENSIONS),
    )
    .outerjoin_from(_SERVER, _RACK, _SERVER.c.rack_id == _RACK.c.id)
    .where(*_IN_GROUP)
    .order_by(_SERVER.c.id)
)
HOSTS = DriverStatement(_HOSTS)
# The same, each row ending with the group's HostsVersion as of the same statement (its
# snapshot): the version the rows may be kept under. NULL: the group has none yet.
VERSIONED_HOSTS = DriverStatement(_HOSTS.add_columns(
    select(_VERSION.c.version).where(_VERSION.c.group_id == bindparam("group"))
    .scalar_subquery()
))
# While the version stands, only this changes: the same servers' free counters.
FREE = DriverStatement(
    select(_SERVER.c.id, *(_SERVER.c[f"available_{d}"] for d in DIMENSIONS))
    .where(*_IN_GROUP)
    .order_by(_SERVER.c.id)
)
INSERT_VM = DriverStatement(insert(_VM).returning(_VM.c.id), columns=_values(_VM))
INSERT_JOB = DriverStatement(
    insert(ProvisionJob.__table__), columns=_values(ProvisionJob.__table__), many=True
)
INSERT_AUDIT = DriverStatement(
    insert(AuditEvent.__table__), columns=_values(AuditEvent.__table__), many=True
)
# A server's counters move only if it is still active, in the group and has the room: the
# UPDATE takes the row lock and re-checks the row as committed by whoever held it before.
TAKE_FROM_SERVER = DriverStatement(
    update(_SERVER)
    .where(
        _SERVER.c.id == bindparam("server"),
        _SERVER.c.group_id == bindparam("group"),
        _SERVER.c.status == "active",
        *(_SERVER.c[f"available_{d}"] >= bindparam(d) for d in DIMENSIONS),
    )
    .values({f"available_{d}": _SERVER.c[f"available_{d}"] - bindparam(d) for d in DIMENSIONS})
)
# TAKE_FROM_SERVER for take_and_commit(): an UPDATE that moved no row makes the statement
# fail, by dividing by the number it moved — PostgreSQL has no RAISE outside a function,
# and a division by zero (SQLSTATE 22012) is one nothing else on this path can raise.
# The transaction is aborted, and the COMMIT sent after it never runs.
DIVISION_BY_ZERO, CHECK_VIOLATION = "22012", "23514"
TAKE_FROM_SERVER_OR_ABORT = DriverStatement(
    select(literal_column("1") // func.count()).select_from(
        TAKE_FROM_SERVER.statement.returning(_SERVER.c.id).cte("taken")
    )
)
# The group's counters for take_and_commit(): the servers' updates before it all moved, so
# the group has the room unless its counters drifted, which its CHECK constraints catch.
DRAW_FROM_GROUP = DriverStatement(
    update(_GROUP)
    .where(_GROUP.c.id == bindparam("group"))
    .values({f"available_{d}": _GROUP.c[f"available_{d}"] - bindparam(d) for d in DIMENSIONS})
)
COMMIT = DriverStatement(text("COMMIT"))
# The group's counters, guarded the same way: sent with the servers' updates in one round
# trip, it runs even when one of them found no room, and must then change nothing rather
# than trip the counters' CHECK constraints (the caller rolls the attempt back either way).
TAKE_FROM_GROUP = DriverStatement(
    update(_GROUP)
    .where(
        _GROUP.c.id == bindparam("group"),
        *(_GROUP.c[f"available_{d}"] >= bindparam(d) for d in DIMENSIONS),
    )
    .values({f"available_{d}": _GROUP.c[f"available_{d}"] - bindparam(d) for d in DIMENSIONS})
)
