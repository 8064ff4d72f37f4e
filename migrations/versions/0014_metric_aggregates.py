"""Metrics: each group's and each rack's servers rolled up together (15-minute and daily),
so that their charts read one row a bucket; filled from the servers' rollups already kept

Revision ID: 0014_metric_aggregates
Revises: 0013_list_indexes
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014_metric_aggregates'
down_revision = '0013_list_indexes'
branch_labels = None
depends_on = None

MACHINE_METRICS = ('cpu_util', 'memory_used_gib', 'storage_used_gib')
# level -> the servers' rollups it is computed from
LEVELS = {'15m': 'metric_15m', '1d': 'metric_1d'}
SCOPES = {'group': 'group_id', 'rack': 'rack_id'}


def _create(name):
    columns = []
    for metric in MACHINE_METRICS:
        columns += [sa.Column(metric, sa.REAL(), nullable=True),
                    sa.Column(f'{metric}_max', sa.REAL(), nullable=True)]
    op.create_table(name,
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('ts', sa.DateTime(), nullable=False),
    *columns,
    sa.Column('servers', sa.Integer(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.CheckConstraint("object_type IN ('group', 'rack')", name=op.f(f'ck_{name}_object_type_enum')),
    sa.PrimaryKeyConstraint('object_type', 'object_id', 'ts', name=op.f(f'pk_{name}'))
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(f'ix_{name}_ts', ['ts'], unique=False, postgresql_using='brin')


def upgrade():
    for level, source in LEVELS.items():
        target = f'metric_aggregate_{level}'
        _create(target)
        # What the rollup step would have written for the history already rolled up (the
        # servers' present groups and racks), as portal.metrics.store rolls it.
        for scope, column in SCOPES.items():
            op.execute(
                f"INSERT INTO {target} (object_type, object_id, ts, cpu_util, cpu_util_max, "
                "memory_used_gib, memory_used_gib_max, storage_used_gib, storage_used_gib_max, "
                "servers, samples) "
                f"SELECT '{scope}', b.{column}, m.ts, avg(m.cpu_util), max(m.cpu_util_max), "
                "sum(m.memory_used_gib), sum(m.memory_used_gib_max), sum(m.storage_used_gib), "
                "sum(m.storage_used_gib_max), count(*), sum(m.samples) "
                f"FROM {source} m JOIN baremetal b ON b.id = m.object_id "
                f"WHERE m.object_type = 'baremetal' AND b.{column} IS NOT NULL "
                f"GROUP BY b.{column}, m.ts")


def downgrade():
    for level in reversed(LEVELS):
        name = f'metric_aggregate_{level}'
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{name}_ts', postgresql_using='brin')
        op.drop_table(name)
