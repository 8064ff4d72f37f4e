"""Interface language: the language each user chose for the pages

Revision ID: 0007_interface_language
Revises: 0006_automation
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_interface_language"
down_revision = "0006_automation"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN: no table rebuild, so SQLite keeps the table's triggers.
    op.add_column("users", sa.Column("locale", sa.String(length=8), nullable=True))


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("locale")
