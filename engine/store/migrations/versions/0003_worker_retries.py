"""Training jobs count the retries their retry policy has used (training_config.retry_policy).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # server_default: rows written before this revision have used no retry.
    with op.batch_alter_table("training_jobs") as batch:
        batch.add_column(sa.Column("worker_retries", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("training_jobs") as batch:
        batch.drop_column("worker_retries")
