"""Composite indexes for the sorts and filters of the VM and audit lists, the id breaking
ties (measured by bench/pages --variants at dataset L)

Revision ID: 0013_list_indexes
Revises: 0012_metrics
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013_list_indexes'
down_revision = '0012_metrics'
branch_labels = None
depends_on = None

# The single-column indexes that a (column, id) index replaces.
VM_REPLACED = ("created_at", "status", "tenant_id", "spec_id", "baremetal_id")
VM_NEW = ("name", "role", "cpu", "memory", "storage")
AUDIT_NEW = {
    "ix_audit_event_type_created": ["object_type", "created_at", "id"],
    "ix_audit_event_action_created": ["action", "created_at", "id"],
    "ix_audit_event_username_created": ["username", "created_at", "id"],
}


def upgrade():
    with op.batch_alter_table('virtual_machine', schema=None) as batch_op:
        for column in VM_REPLACED:
            batch_op.drop_index(f'ix_virtual_machine_{column}')
        for column in VM_REPLACED + VM_NEW:
            batch_op.create_index(f'ix_virtual_machine_{column}', [column, 'id'], unique=False)

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_created_at')
        batch_op.create_index('ix_audit_event_created_at', ['created_at', 'id'], unique=False)
        for name, columns in AUDIT_NEW.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        for name in AUDIT_NEW:
            batch_op.drop_index(name)
        batch_op.drop_index('ix_audit_event_created_at')
        batch_op.create_index('ix_audit_event_created_at', ['created_at'], unique=False)

    with op.batch_alter_table('virtual_machine', schema=None) as batch_op:
        for column in VM_REPLACED + VM_NEW:
            batch_op.drop_index(f'ix_virtual_machine_{column}')
        for column in VM_REPLACED:
            batch_op.create_index(f'ix_virtual_machine_{column}', [column], unique=False)
