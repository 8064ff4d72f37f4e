"""The VMs of a set of servers read from one index on PostgreSQL: (baremetal_id) carrying
what the quota usage of a group page and the blast radius of a rack page add up (measured by
bench/pages at dataset L)

Revision ID: 0015_server_usage_index
Revises: 0014_metric_aggregates
"""
from alembic import op

revision = "0015_server_usage_index"
down_revision = "0014_metric_aggregates"
branch_labels = None
depends_on = None

# A group page adds up its tenants' VMs on its 250 servers, a rack page its tenants' and
# clusters' VMs on its 40: by server, then filtered by status and summed. Carrying those
# columns in the index makes each an index-only scan of ten entries a server instead of a
# scan of every VM (the group page's quota usage: about 9 ms → 4.5 ms, unloaded). Named
# pgx_ like the other PostgreSQL-only indexes (portal/models/ddl.py), which the models do
# not describe; SQLite, for small estates, has none.
NAME = "pgx_virtual_machine_server_usage"
INCLUDED = ("tenant_id", "status", "cpu", "memory", "storage", "k8s_cluster_id", "role")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS {NAME} ON virtual_machine (baremetal_id) "
                   f"INCLUDE ({', '.join(INCLUDED)})")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {NAME}")
