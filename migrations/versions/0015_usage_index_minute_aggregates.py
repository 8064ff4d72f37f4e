"""Pages at dataset L: the VMs of a set of servers read from one index on PostgreSQL, and
each group's and rack's servers combined per minute for the charts of the last hours
(measured by bench/pages and bench/metrics_pages)

Revision ID: 0015_usage_minutes
Revises: 0014_metric_aggregates
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_usage_minutes"
down_revision = "0014_metric_aggregates"
branch_labels = None
depends_on = None

# A group page adds up its tenants' VMs on its 250 servers, a rack page its tenants' and
# clusters' VMs on its 40: by server, then filtered by status and summed. Carrying those
# columns in the index makes each an index-only scan of ten entries a server instead of a
# scan of every VM (the group page's quota usage: 20.5 ms → 3.3 ms by hand at load ~10). Named
# pgx_ like the other PostgreSQL-only indexes (portal/models/ddl.py), which the models do
# not describe; SQLite, for small estates, has none.
INDEX = "pgx_virtual_machine_server_usage"
INCLUDED = ("tenant_id", "status", "cpu", "memory", "storage", "k8s_cluster_id", "role")
MACHINE_METRICS = ("cpu_util", "memory_used_gib", "storage_used_gib")
# Filled by the controller's rollup step from its first pass on (a few hours are kept);
# until then the charts combine the raw samples, as before.
MINUTES = "metric_aggregate_1m"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON virtual_machine (baremetal_id) "
                   f"INCLUDE ({', '.join(INCLUDED)})")
    columns = []
    for metric in MACHINE_METRICS:
        columns += [sa.Column(metric, sa.REAL(), nullable=True),
                    sa.Column(f"{metric}_max", sa.REAL(), nullable=True)]
    op.create_table(
        MINUTES,
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        *columns,
        sa.Column("servers", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.CheckConstraint("object_type IN ('group', 'rack')",
                           name=op.f(f"ck_{MINUTES}_object_type_enum")),
        sa.PrimaryKeyConstraint("object_type", "object_id", "ts", name=op.f(f"pk_{MINUTES}")),
    )
    with op.batch_alter_table(MINUTES, schema=None) as batch_op:
        batch_op.create_index(f"ix_{MINUTES}_ts", ["ts"], unique=False, postgresql_using="brin")


def downgrade():
    with op.batch_alter_table(MINUTES, schema=None) as batch_op:
        batch_op.drop_index(f"ix_{MINUTES}_ts", postgresql_using="brin")
    op.drop_table(MINUTES)
    op.execute("DELETE FROM metric_rollup WHERE level = '1m'")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
