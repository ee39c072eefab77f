"""Alerts and pipeline triggers: the alert_deliveries table, pipelines' alert rules and triggers, and room for "trigger:<name>" as what started an execution.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("resource", sa.String(255), nullable=False),
        sa.Column("alert", sa.String(63), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_response_code", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_time", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_deliveries_project", "alert_deliveries", ["project"])
    op.create_index("ix_alert_deliveries_resource", "alert_deliveries", ["resource"])
    op.create_index("ix_alert_deliveries_due", "alert_deliveries", ["state", "next_attempt_time"])
    # server_default: pipelines created before this revision have neither.
    with op.batch_alter_table("pipelines") as batch:
        batch.add_column(sa.Column("alerts", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("triggers", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
    # "manual", "schedule", or "trigger:" and a trigger's name (up to 63 characters).
    with op.batch_alter_table("pipeline_executions") as batch:
        batch.alter_column("trigger", existing_type=sa.String(16), type_=sa.String(80), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("pipeline_executions") as batch:
        batch.alter_column("trigger", existing_type=sa.String(80), type_=sa.String(16), existing_nullable=False)
    with op.batch_alter_table("pipelines") as batch:
        batch.drop_column("triggers")
        batch.drop_column("alerts")
    op.drop_table("alert_deliveries")
