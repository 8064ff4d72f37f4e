"""Database rules that SQLAlchemy's table metadata cannot express.

- Deleting any assignable resource deletes its ResourceMaintainer rows in the same
  statement's transaction (a trigger per resource table), however the delete happens:
  through the ORM, a bulk DELETE, or a cascade.
- On PostgreSQL, two servers never overlap in one rack (an exclusion constraint), so even
  two concurrent transactions cannot both take the same units.

install() is called by the migration and after metadata.create_all(); both paths build
the same objects.
"""

from __future__ import annotations

from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from portal.models.maintainers import ASSIGNABLE_TYPES


def _sqlite_statements() -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS trg_{table}_delete_assignments AFTER DELETE ON {table} "
        f"FOR EACH ROW BEGIN DELETE FROM resource_maintainer "
        f"WHERE resource_type = '{table}' AND resource_id = OLD.id; END"
        for table in ASSIGNABLE_TYPES
    ]


def _postgresql_statements() -> list[str]:
    statements = [
        """
        CREATE OR REPLACE FUNCTION portal_delete_assignments() RETURNS trigger AS $$
        BEGIN
            DELETE FROM resource_maintainer
             WHERE resource_type = TG_ARGV[0] AND resource_id = OLD.id;
            RETURN OLD;
        END
        $$ LANGUAGE plpgsql
        """
    ]
    for table in ASSIGNABLE_TYPES:
        statements.append(f"DROP TRIGGER IF EXISTS trg_{table}_delete_assignments ON {table}")
        statements.append(
            f"CREATE TRIGGER trg_{table}_delete_assignments AFTER DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION portal_delete_assignments('{table}')"
        )
    statements += [
        "CREATE EXTENSION IF NOT EXISTS btree_gist",
        "ALTER TABLE baremetal DROP CONSTRAINT IF EXISTS ex_baremetal_rack_units",
        "ALTER TABLE baremetal ADD CONSTRAINT ex_baremetal_rack_units EXCLUDE USING gist "
        "(rack_id WITH =, int4range(rack_unit, rack_unit + size_u) WITH &&) "
        "WHERE (rack_id IS NOT NULL)",
    ]
    return statements


def install(connection: Connection) -> None:
    dialect = connection.dialect.name
    if dialect == "sqlite":
        statements = _sqlite_statements()
    elif dialect == "postgresql":
        statements = _postgresql_statements()
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    for statement in statements:
        connection.execute(text(statement))


def uninstall(connection: Connection) -> None:
    for table in ASSIGNABLE_TYPES:
        if connection.dialect.name == "sqlite":
            connection.execute(text(f"DROP TRIGGER IF EXISTS trg_{table}_delete_assignments"))
        else:
            connection.execute(
                text(f"DROP TRIGGER IF EXISTS trg_{table}_delete_assignments ON {table}")
            )
    if connection.dialect.name == "postgresql":
        connection.execute(text("DROP FUNCTION IF EXISTS portal_delete_assignments()"))
        connection.execute(
            text("ALTER TABLE baremetal DROP CONSTRAINT IF EXISTS ex_baremetal_rack_units")
        )


def listen(metadata) -> None:
    event.listen(metadata, "after_create", lambda target, connection, **kw: install(connection))
