"""Reservations keep what they read of a group's servers while its HostsVersion stands, and
re-read only the free counters (measured by bench/reservation): the version table, a
version for every group that has servers, and the triggers that change it.

Revision ID: 0017_hosts_version
Revises: 0016_live_vm_index
"""
import sqlalchemy as sa
from alembic import op

from portal.models import ddl

revision = "0017_hosts_version"
down_revision = "0016_live_vm_index"
branch_labels = None
depends_on = None

TABLE = "baremetal_group_hosts_version"


def upgrade():
    op.create_table(
        TABLE,
        sa.Column("group_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["baremetal_group.id"],
                                name=op.f(f"fk_{TABLE}_group_id_baremetal_group"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", name=op.f(f"pk_{TABLE}")),
    )
    random = "random()" if op.get_bind().dialect.name == "sqlite" else \
        "(random() * 9.2e18)::bigint"
    op.execute(f"INSERT INTO {TABLE} (group_id, version) SELECT group_id, {random} FROM "
               f"(SELECT DISTINCT group_id FROM baremetal WHERE group_id IS NOT NULL) AS g")
    ddl.install_hosts_version(op.get_bind())


def downgrade():
    ddl.uninstall_hosts_version(op.get_bind())
    op.drop_table(TABLE)
