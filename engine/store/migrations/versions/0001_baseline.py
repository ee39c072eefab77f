"""Baseline: the schema the service made with create_all before it had migrations.

A database made that way (its tables exist, it has no alembic_version table) is stamped
with this revision, then upgraded like any other (engine/store/migrate.py).

Revision ID: 0001
Revises: none
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Every table this revision creates: their presence tells a create_all-made database.
TABLES = (
    "datasets", "training_jobs", "metric_points", "log_entries", "data_sources", "data_pipelines",
    "model_versions", "written_artifacts", "tuning_jobs", "tuning_trials", "tuning_events", "pipelines",
    "pipeline_templates", "pipeline_executions", "pipeline_execution_events", "pipeline_stage_cache",
)


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _project_index(table: str) -> None:
    op.create_index(f"ix_{table}_project", table, ["project"])


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("source_uri", sa.Text(), nullable=False),
        sa.Column("label_column", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("statistics", sa.JSON(), nullable=False),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        _time("create_time"),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("datasets")

    op.create_table(
        "training_jobs",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        _time("create_time"),
        _time("start_time", nullable=True),
        _time("end_time", nullable=True),
        _time("update_time"),
        sa.Column("current_epoch", sa.Integer(), nullable=False),
        sa.Column("total_epochs", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=True),
        sa.Column("latest_metrics", sa.JSON(), nullable=True),
        sa.Column("test_metrics", sa.JSON(), nullable=False),
        sa.Column("artifacts", sa.JSON(), nullable=False),
        sa.Column("framework_versions", sa.JSON(), nullable=False),
        sa.Column("model_info", sa.JSON(), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("training_jobs")
    op.create_index("ix_training_jobs_state", "training_jobs", ["state"])
    op.create_index("ix_training_jobs_queue", "training_jobs", ["state", "priority", "create_time"])

    op.create_table(
        "metric_points",
        sa.Column("job", sa.String(255), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        _time("time"),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("job", "sequence"),
    )

    op.create_table(
        "log_entries",
        sa.Column("job", sa.String(255), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        _time("time"),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job", "sequence"),
    )

    op.create_table(
        "data_sources",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("credentials", sa.JSON(), nullable=False),
        _time("create_time"),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("data_sources")

    op.create_table(
        "data_pipelines",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("validation", sa.JSON(), nullable=False),
        sa.Column("processing", sa.JSON(), nullable=False),
        sa.Column("fit_dataset", sa.String(255), nullable=False),
        sa.Column("fitted", sa.JSON(), nullable=False),
        _time("create_time"),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("data_pipelines")

    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("model_id", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("framework", sa.String(32), nullable=False),
        sa.Column("model_type", sa.String(32), nullable=False),
        sa.Column("framework_versions", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("training_job", sa.String(255), nullable=False),
        sa.Column("datasets", sa.JSON(), nullable=False),
        sa.Column("artifacts", sa.JSON(), nullable=False),
        sa.Column("model_info", sa.JSON(), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        _time("create_time"),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("model_versions")
    op.create_index("ix_model_versions_model_id", "model_versions", ["model_id"])
    op.create_index("ix_model_versions_model", "model_versions", ["project", "model_id", "version"], unique=True)
    # At most one production version per model: a partial unique index (SQLite and PostgreSQL).
    production = sa.text("stage = 'production'")
    op.create_index("ix_model_versions_production", "model_versions", ["project", "model_id"], unique=True,
                    sqlite_where=production, postgresql_where=production)

    op.create_table(
        "written_artifacts",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("training_job", sa.String(255), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        _time("create_time"),
        sa.PrimaryKeyConstraint("sha256"),
    )

    op.create_table(
        "tuning_jobs",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("best_trial_id", sa.String(63), nullable=False),
        sa.Column("last_event", sa.Integer(), nullable=False),
        _time("create_time"),
        _time("start_time", nullable=True),
        _time("end_time", nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("tuning_jobs")

    op.create_table(
        "tuning_trials",
        sa.Column("tuning_job", sa.String(255), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("parameters_key", sa.Text(), nullable=False),
        sa.Column("training_job", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("objective_value", sa.Float(), nullable=True),
        sa.Column("intermediate", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(255), nullable=False),
        sa.Column("epochs_trained", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tuning_job", "number"),
    )

    op.create_table(
        "tuning_events",
        sa.Column("tuning_job", sa.String(255), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        _time("time"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("trial", sa.JSON(), nullable=False),
        sa.Column("job_state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("tuning_job", "sequence"),
    )

    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("template", sa.String(255), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        _time("next_run_time", nullable=True),
        _time("create_time"),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("pipelines")

    op.create_table(
        "pipeline_templates",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        _time("create_time"),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("pipeline_templates")

    op.create_table(
        "pipeline_executions",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("last_event", sa.Integer(), nullable=False),
        _time("create_time"),
        _time("end_time", nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    _project_index("pipeline_executions")
    op.create_index("ix_pipeline_executions_pipeline", "pipeline_executions", ["pipeline"])

    op.create_table(
        "pipeline_execution_events",
        sa.Column("execution", sa.String(255), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        _time("time"),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("stage_id", sa.String(63), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("execution_state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("execution", "sequence"),
    )

    op.create_table(
        "pipeline_stage_cache",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("project", sa.String(63), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("execution", sa.String(255), nullable=False),
        sa.Column("stage_id", sa.String(63), nullable=False),
        _time("create_time"),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes too.
    for table in reversed(TABLES):
        op.drop_table(table)
