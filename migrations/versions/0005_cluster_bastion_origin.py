"""Which bastion was created with its cluster: deleting the cluster offers to delete it too.

Revision ID: 0005_cluster_bastion_origin
Revises: 0004_lifecycle_security
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_cluster_bastion_origin"
down_revision = "0004_lifecycle_security"
branch_labels = None
depends_on = None


def upgrade():
    # Existing links are unknown origin: false, so an old cluster never deletes a bastion
    # someone may have added by hand.
    op.add_column(
        "bastion_cluster_association",
        sa.Column("created_with_cluster", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade():
    with op.batch_alter_table("bastion_cluster_association") as batch:
        batch.drop_column("created_with_cluster")
