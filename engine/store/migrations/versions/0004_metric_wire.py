"""Metric points keep their stream encoding, so replays send stored bytes.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: points recorded before this revision are encoded from their values when read.
    with op.batch_alter_table("metric_points") as batch:
        batch.add_column(sa.Column("wire", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("metric_points") as batch:
        batch.drop_column("wire")
