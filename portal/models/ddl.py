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

from portal.models.inventory import PLANNED_COLUMNS
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


# ---- A group's HostsVersion (portal/models/inventory.py): a new random token, upserted in
# the changing statement's transaction, for the groups a server left and joined, and for
# every group with servers in a renamed rack.
_VERSION_TRIGGERS = ("trg_baremetal_hosts_version_insert", "trg_baremetal_hosts_version_delete",
                     "trg_baremetal_hosts_version_update", "trg_rack_hosts_version")
_BUMP = ("INSERT INTO baremetal_group_hosts_version (group_id, version) {rows} "
         "ON CONFLICT (group_id) DO UPDATE SET version = excluded.version")


def _planned_changed(distinct: str) -> str:
    """A trigger's WHEN: one of the planned columns changed (``distinct``: the dialect's
    null-safe 'differs')."""
    old = ", ".join(f"OLD.{c}" for c in PLANNED_COLUMNS)
    new = ", ".join(f"NEW.{c}" for c in PLANNED_COLUMNS)
    return f"({old}) IS {distinct} ({new})"


def _sqlite_version_statements() -> list[str]:
    def bump(group: str) -> str:
        return _BUMP.format(rows=f"SELECT {group}, random() WHERE {group} IS NOT NULL") + ";"

    return [
        "CREATE TRIGGER IF NOT EXISTS trg_baremetal_hosts_version_insert AFTER INSERT ON "
        f"baremetal FOR EACH ROW BEGIN {bump('NEW.group_id')} END",
        "CREATE TRIGGER IF NOT EXISTS trg_baremetal_hosts_version_delete AFTER DELETE ON "
        f"baremetal FOR EACH ROW BEGIN {bump('OLD.group_id')} END",
        "CREATE TRIGGER IF NOT EXISTS trg_baremetal_hosts_version_update AFTER UPDATE OF "
        f"{', '.join(PLANNED_COLUMNS)} ON baremetal FOR EACH ROW "
        f"WHEN {_planned_changed('NOT')} "
        f"BEGIN {bump('OLD.group_id')} {bump('NEW.group_id')} END",
        "CREATE TRIGGER IF NOT EXISTS trg_rack_hosts_version AFTER UPDATE OF name ON rack "
        "FOR EACH ROW WHEN OLD.name IS NOT NEW.name BEGIN "
        + _BUMP.format(rows="SELECT group_id, random() FROM (SELECT DISTINCT group_id "
                            "FROM baremetal WHERE rack_id = NEW.id AND group_id IS NOT NULL) "
                            "WHERE true")  # SQLite: a SELECT before ON CONFLICT needs one
        + "; END",
    ]


def _postgresql_version_statements() -> list[str]:
    bump = _BUMP.format(rows="SELECT g, (random() * 9.2e18)::bigint FROM "
                             "(SELECT DISTINCT g FROM unnest(groups) AS g WHERE g IS NOT NULL) s")
    statements = [
        f"""
        CREATE OR REPLACE FUNCTION portal_bump_hosts_version() RETURNS trigger AS $$
        DECLARE
            groups integer[];
        BEGIN
            IF TG_TABLE_NAME = 'rack' THEN
                groups := ARRAY(SELECT group_id FROM baremetal WHERE rack_id = NEW.id);
            ELSIF TG_OP = 'INSERT' THEN
                groups := ARRAY[NEW.group_id];
            ELSIF TG_OP = 'DELETE' THEN
                groups := ARRAY[OLD.group_id];
            ELSE
                groups := ARRAY[OLD.group_id, NEW.group_id];
            END IF;
            {bump};
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    ]
    triggers = {
        "trg_baremetal_hosts_version_insert": "AFTER INSERT ON baremetal FOR EACH ROW",
        "trg_baremetal_hosts_version_delete": "AFTER DELETE ON baremetal FOR EACH ROW",
        "trg_baremetal_hosts_version_update":
            f"AFTER UPDATE OF {', '.join(PLANNED_COLUMNS)} ON baremetal FOR EACH ROW "
            f"WHEN ({_planned_changed('DISTINCT FROM')})",
        "trg_rack_hosts_version":
            "AFTER UPDATE OF name ON rack FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)",
    }
    for name, when in triggers.items():
        table = when.split(" ON ")[1].split()[0]
        statements.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        statements.append(
            f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION portal_bump_hosts_version()"
        )
    return statements


def install_hosts_version(connection: Connection) -> None:
    """The triggers that keep every group's HostsVersion (both databases)."""
    if connection.dialect.name == "sqlite":
        statements = _sqlite_version_statements()
    else:
        statements = _postgresql_version_statements()
    for statement in statements:
        connection.execute(text(statement))


def uninstall_hosts_version(connection: Connection) -> None:
    for name in _VERSION_TRIGGERS:
        table = "rack" if name.startswith("trg_rack") else "baremetal"
        on = "" if connection.dialect.name == "sqlite" else f" ON {table}"
        connection.execute(text(f"DROP TRIGGER IF EXISTS {name}{on}"))
    if connection.dialect.name == "postgresql":
        connection.execute(text("DROP FUNCTION IF EXISTS portal_bump_hosts_version()"))


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
    install_hosts_version(connection)


def uninstall(connection: Connection) -> None:
    uninstall_hosts_version(connection)
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
