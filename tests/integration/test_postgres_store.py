"""The metadata store on PostgreSQL: the same flow as on SQLite, and state that survives a restart."""

from __future__ import annotations

from forge.training import Client, common_pb2


def test_jobs_and_metrics_live_in_postgres(postgres_url, start_server, tmp_path, breast_cancer_csv):
    import sqlalchemy

    from engine.store.models import Base

    engine = sqlalchemy.create_engine(postgres_url)
    Base.metadata.drop_all(engine)  # a clean store whatever ran before
    with engine.begin() as conn:  # and no schema revision left, so the server creates the tables again
        conn.execute(sqlalchemy.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    data_dir = tmp_path / "pg-data"
    first = start_server(data_dir, database_url=postgres_url)
    with Client(first.target) as c:
        ds = c.upload_dataset(breast_cancer_csv, dataset_id="bc", label_column="target")
        job = c.start_training({
            "modelType": "classification",
            "modelConfig": {"framework": "sklearn", "architecture": "sgd"},
            "trainingConfig": {"epochs": 4, "seed": 1},
            "dataConfig": {"trainDataset": ds.name, "labelColumn": "target"},
        }, training_job_id="on-postgres")
        assert [p.sequence for p in c.watch_metrics(job.name)] == [1, 2, 3, 4]
        assert c.wait(job.name, timeout=60).state == common_pb2.JOB_STATE_COMPLETED
    first.stop()
    second = start_server(data_dir, database_url=postgres_url)
    with Client(second.target) as c:
        job = c.get_job("on-postgres")
        assert job.state == common_pb2.JOB_STATE_COMPLETED and job.current_epoch == 4
        assert [p.epoch for p in c.metric_history(job.name)] == [1, 2, 3, 4]
        assert c.get_dataset("bc").row_count == 569
