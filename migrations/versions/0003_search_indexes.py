"""Trigram indexes for substring search on PostgreSQL (measured by bench/pages)

Revision ID: 0003_search_indexes
Revises: 9fe527e28e44
"""
from alembic import op

from portal.models import ddl

revision = "0003_search_indexes"
down_revision = "9fe527e28e44"
branch_labels = None
depends_on = None


def upgrade():
    ddl.install_search_indexes(op.get_bind())


def downgrade():
    ddl.uninstall_search_indexes(op.get_bind())
