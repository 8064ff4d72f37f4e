"""Database rules that SQLAlchemy's table metadata cannot express.

- Deleting any assignable resource deletes its ResourceMaintainer rows in the same
  statement's transaction (a trigger per resource table), however the delete happens:
  through the ORM, a bulk DELETE, or a cascade.
- On PostgreSQL, two servers never overlap in one rack (an exclusion constraint), so even
  two concurrent transactions cannot both take the same units.
- On PostgreSQL, trigram indexes make the lists' substring search ("name contains …")
  fast on 100,000 VMs.

Migrations call the pieces they introduced; install() builds everything after
metadata.create_all(). Objects named ex_* or pgx_* exist outside the metadata, and model/
migration comparisons skip them (outside_metadata()).
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


# Columns searched with ILIKE '%…%' by the big lists and the global search.
SEARCHED_COLUMNS = (("virtual_machine", "name"), ("baremetal", "name"), ("baremetal", "serial"),
                    ("k8s_cluster", "name"))


def outside_metadata(type_: str, name: str | None) -> bool:
    """True for the objects this module creates, which the models do not describe."""
    return bool(name) and type_ in ("constraint", "index") and name.startswith(("ex_", "pgx_"))


def install_rules(connection: Connection) -> None:
    """Assignment delete triggers (both databases) and the rack exclusion (PostgreSQL)."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        statements = _sqlite_statements()
    elif dialect == "postgresql":
        statements = _postgresql_statements()
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    for statement in statements:
        connection.execute(text(statement))


def install_search_indexes(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    for table, column in SEARCHED_COLUMNS:
        connection.execute(text(
            f"CREATE INDEX IF NOT EXISTS pgx_{table}_{column}_trgm ON {table} "
            f"USING gin ({column} gin_trgm_ops)"
        ))


def uninstall_search_indexes(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    for table, column in SEARCHED_COLUMNS:
        connection.execute(text(f"DROP INDEX IF EXISTS pgx_{table}_{column}_trgm"))


def install(connection: Connection) -> None:
    install_rules(connection)
    install_search_indexes(connection)


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
