"""Guarded lifecycle (SPEC 8.1) and the security basics: migrating VMs, migrate and
cancelled jobs, one live job per VM, session versions, scoped and expiring tokens, login
throttling.

Revision ID: 0004_lifecycle_security
Revises: 0003_search_indexes
"""
import sqlalchemy as sa
from alembic import op

from portal.models import ddl

revision = "0004_lifecycle_security"
down_revision = "0003_search_indexes"
branch_labels = None
depends_on = None

VM_STATUSES_OLD = "'pending', 'provisioning', 'active', 'error', 'deleting', 'deleted'"
VM_STATUSES_NEW = VM_STATUSES_OLD + ", 'migrating'"
LIVE = "status IN ('queued', 'claimed')"


def upgrade():
    with op.batch_alter_table("virtual_machine") as batch:
        batch.drop_constraint(op.f("ck_virtual_machine_status_enum"), type_="check")
        batch.create_check_constraint("status_enum", f"status IN ({VM_STATUSES_NEW})")

    with op.batch_alter_table("provision_job") as batch:
        batch.add_column(sa.Column("target_baremetal_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_provision_job_target_baremetal_id_baremetal"),
            "baremetal",
            ["target_baremetal_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.drop_constraint(op.f("ck_provision_job_action_enum"), type_="check")
        batch.drop_constraint(op.f("ck_provision_job_status_enum"), type_="check")
        batch.create_check_constraint("action_enum", "action IN ('create', 'delete', 'migrate')")
        batch.create_check_constraint(
            "status_enum", "status IN ('queued', 'claimed', 'succeeded', 'failed', 'cancelled')"
        )
        batch.create_check_constraint(
            "migrate_has_target", "(action = 'migrate') = (target_baremetal_id IS NOT NULL)"
        )
    # Before the index: a VM that collected several live jobs keeps only its newest.
    op.execute(
        f"UPDATE provision_job SET status = 'cancelled', lease_expires_at = NULL "
        f"WHERE {LIVE} AND id < (SELECT max(p2.id) FROM provision_job p2 "
        f"WHERE p2.vm_id = provision_job.vm_id AND p2.{LIVE})"
    )
    op.create_index(
        "uq_provision_job_live",
        "provision_job",
        ["vm_id"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )

    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(
            sa.Column("scopes", sa.String(length=32), nullable=False, server_default="read write")
        )
        batch.add_column(sa.Column("tenant_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_api_token_tenant_id_tenant"), "tenant", ["tenant_id"], ["id"], ondelete="CASCADE"
        )
    # SQLite's batch mode rebuilt virtual_machine, and its triggers went with the old table.
    ddl.install_rules(op.get_bind())

    op.create_table(
        "login_throttle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttle")),
        sa.UniqueConstraint("key", name=op.f("uq_login_throttle_key")),
    )


def downgrade():
    op.drop_table("login_throttle")
    with op.batch_alter_table("api_token") as batch:
        batch.drop_constraint(op.f("fk_api_token_tenant_id_tenant"), type_="foreignkey")
        batch.drop_column("expires_at")
        batch.drop_column("tenant_id")
        batch.drop_column("scopes")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_version")
    op.drop_index("uq_provision_job_live", table_name="provision_job")
    op.execute("DELETE FROM provision_job WHERE action = 'migrate' OR status = 'cancelled'")
    with op.batch_alter_table("provision_job") as batch:
        batch.drop_constraint(op.f("ck_provision_job_migrate_has_target"), type_="check")
        batch.drop_constraint(op.f("ck_provision_job_status_enum"), type_="check")
        batch.drop_constraint(op.f("ck_provision_job_action_enum"), type_="check")
        batch.create_check_constraint(
            "status_enum", "status IN ('queued', 'claimed', 'succeeded', 'failed')"
        )
        batch.create_check_constraint("action_enum", "action IN ('create', 'delete')")
        batch.drop_constraint(op.f("fk_provision_job_target_baremetal_id_baremetal"), type_="foreignkey")
        batch.drop_column("target_baremetal_id")
    op.execute("UPDATE virtual_machine SET status = 'active' WHERE status = 'migrating'")
    with op.batch_alter_table("virtual_machine") as batch:
        batch.drop_constraint(op.f("ck_virtual_machine_status_enum"), type_="check")
        batch.create_check_constraint("status_enum", f"status IN ({VM_STATUSES_OLD})")
    ddl.install_rules(op.get_bind())
