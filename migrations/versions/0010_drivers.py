"""Provisioning drivers: each server's hypervisor URI, and the output of each job

Revision ID: 0010_drivers
Revises: 0007_interface_language
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_drivers"
down_revision = "0007_interface_language"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs: no table rebuild, so SQLite keeps the tables' triggers.
    op.add_column("baremetal", sa.Column("hypervisor_uri", sa.String(length=512), nullable=True))
    op.add_column("provision_job", sa.Column("output", sa.Text(), nullable=False,
                                             server_default=""))


def downgrade():
    # SQLite (3.35+) drops a column in place too, so the triggers stay.
    op.drop_column("provision_job", "output")
    op.drop_column("baremetal", "hypervisor_uri")
