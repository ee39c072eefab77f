"""Dataset management: the seed's dataset_management example (data preparation and validation
with its DataManager and Dataset), step by step.

1. A data source: an order table in a SQL database (a SQLite file written here) is registered
   as a data source (the seed's RegisterDataSource / LoadDataset), and a dataset is created
   from a query on it, refused at creation unless it has the required columns and rows.
2. Its schema and statistics (the seed's GetSchema / GetStatistics), computed by the service.
3. Validation: the raw table breaks rules on purpose (negative and missing amounts, an unknown
   country code, an order with no items); ValidateDataset names each broken rule, how many
   rows break it and which.
4. Cleaning: FilterDataset keeps the rows that pass (the seed's Filter), and the rules hold.
5. A second batch arrives as an upload and is merged in (MergeDatasets); TransformDataset
   (the seed's Transform) drops the id, log-scales the amount and one-hot encodes the country.
6. A stratified 80/10/10 split (the seed's Split), then the data read back the seed's three
   ways: a page by offset and limit (GetRecords), every row in batches (StreamRecords, the
   seed's Iterator / GetBatch) and as Arrow record batches for dataframes.
7. Lineage: every derived dataset names its parents and the operation that made it.

The server reads the SQLite file itself, so it must run on this machine (as `make serve`
does) or have the file's folder in its --data-root. Data sources cannot be deleted yet, so each
run registers a new one (with a generated id); the datasets have fixed ids and a new run
replaces them. Transformations are declared (a ProcessingConfig), never code sent by a
client: the seed's DataTransformer and DataFilter interfaces have no counterpart.
"""

from __future__ import annotations

import io
import sqlite3
import tempfile
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pyarrow as pa

from _common import main, upload_frame
from forge.training import ForgeTrainingError, struct_to_dict
from forge.training.errors import from_rpc_error
from forge.training.v1 import data_service_pb2, dataset_pb2

COUNTRIES = ["NL", "DE", "FR"]
RULES = {
    "required_columns": ["order_id", "country", "amount", "items", "returned"],
    "min_rows": 100,
    "constraints": [
        {"column": "order_id", "unique": True},
        {"column": "amount", "min": 0, "not_null": True},
        {"column": "country", "allowed_values": COUNTRIES},
    ],
    "conditions": ["items >= 1"],
}
CLEAN = "notnull(amount) and amount >= 0 and country in ['NL', 'DE', 'FR'] and items >= 1"
DATASET_IDS = ("orders-raw", "orders-clean", "orders-batch-2", "orders-all", "orders-features",
               "orders-features-train", "orders-features-validation", "orders-features-test")


def orders(n: int, first_id: int = 1, seed: int = 0, dirty: bool = True) -> pd.DataFrame:
    """Orders whose return is likelier for large amounts, many items and one country."""
    rng = np.random.default_rng(seed)
    country = rng.choice(COUNTRIES, n, p=[.5, .3, .2])
    amount = rng.lognormal(3.5, 0.8, n).round(2)
    items = rng.integers(1, 8, n)
    risk = -4.0 + 0.04 * amount + 0.4 * items + 1.5 * (country == "FR")
    returned = (rng.random(n) < 1 / (1 + np.exp(-risk))).astype(int)
    frame = pd.DataFrame({"order_id": np.arange(first_id, first_id + n), "country": country,
                          "amount": amount, "items": items, "returned": returned})
    if dirty:  # what a real export brings along
        frame.loc[rng.choice(n, 7, replace=False), "amount"] *= -1
        frame.loc[rng.choice(n, 5, replace=False), "amount"] = np.nan
        frame.loc[rng.choice(n, 4, replace=False), "country"] = "XX"
        frame.loc[rng.choice(n, 3, replace=False), "items"] = 0
    return frame


def data(client, method: str, request):
    """A DataService call the SDK has no typed method for, through its raw stub."""
    try:
        return getattr(client.data, method)(request, timeout=client.timeout)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from exc


def run(client, small: bool = False) -> dict:
    for dataset_id in reversed(DATASET_IDS):  # a previous run's, newest first
        try:
            client.delete_dataset(dataset_id)
        except ForgeTrainingError as exc:
            if exc.code != grpc.StatusCode.NOT_FOUND:
                raise
    n = 1000 if small else 20000
    with tempfile.TemporaryDirectory() as tmp:
        # 1. The source: a SQL database, registered once and queried by name.
        database = Path(tmp) / "shop.db"
        with sqlite3.connect(database) as connection:
            orders(n, seed=1).to_sql("orders", connection, index=False)
        source = data(client, "RegisterDataSource", data_service_pb2.RegisterDataSourceRequest(
            data_source=dataset_pb2.DataSource(display_name="shop database", type="DATA_SOURCE_TYPE_SQL",
                                               uri=f"sqlite:///{database.resolve()}"))).data_source
        config = dataset_pb2.DatasetConfig(
            data_source=source.name, query="SELECT * FROM orders ORDER BY order_id", label_column="returned",
            display_name="orders, raw", type="DATASET_TYPE_TABULAR",
            validation=dataset_pb2.ValidationRules(required_columns=RULES["required_columns"],
                                                   min_rows=RULES["min_rows"], fail_on_violation=True))
        raw = data(client, "CreateDataset", data_service_pb2.CreateDatasetRequest(
            dataset_id="orders-raw", config=config)).dataset

    # 2. Schema and statistics.
    print(f"{raw.name} from {raw.source_uri}: {raw.row_count} rows")
    for column, stats in zip(raw.schema.columns, raw.statistics.columns):
        kind = dataset_pb2.DataType.Name(column.data_type).removeprefix("DATA_TYPE_").lower()
        spread = f", {stats.min:g} to {stats.max:g}" if stats.HasField("min") else ""
        print(f"  {column.name:<9} {kind:<8} {stats.null_count} nulls, {stats.distinct_count} distinct{spread}")

    # 3. Validation of the raw rows.
    report = client.validate_dataset(raw.name, RULES)
    for issue in report.issues:
        print(f"  broken: {issue.rule} {issue.column}: {issue.violation_count} rows, e.g. "
              f"{list(issue.example_rows)[:3]}")
    broken = {f"{issue.rule} {issue.column}".strip(): issue.violation_count for issue in report.issues}

    # 4. Keep the rows that pass, and check again.
    clean = data(client, "FilterDataset", data_service_pb2.FilterDatasetRequest(
        name=raw.name, expression=CLEAN, dataset_id="orders-clean")).dataset
    recheck = client.validate_dataset(clean.name, RULES)
    print(f"{clean.name}: {clean.row_count} rows pass; valid now: {recheck.valid}")

    # 5. A second batch, merged, then features for training.
    batch = upload_frame(client, orders(n // 4, first_id=n + 1, seed=2, dirty=False), "orders-batch-2",
                         label_column="returned")
    merged = data(client, "MergeDatasets", data_service_pb2.MergeDatasetsRequest(
        datasets=[clean.name, batch.name], dataset_id="orders-all")).dataset
    processing = dataset_pb2.ProcessingConfig(
        transformations=[dataset_pb2.TransformationConfig(type="drop_columns", columns=["order_id"]),
                         dataset_pb2.TransformationConfig(type="log", columns=["amount"])],
        encoding=dataset_pb2.EncodingConfig(method="onehot", columns=["country"]))
    features = data(client, "TransformDataset", data_service_pb2.TransformDatasetRequest(
        name=merged.name, processing=processing, dataset_id="orders-features")).dataset
    print(f"{features.name}: columns {[c.name for c in features.schema.columns]}")

    # 6. Split, and read the data back.
    parts = client.split_dataset(features.name, [0.8, 0.1, 0.1], seed=3, stratify_column="returned")
    page, total = client.get_records(parts[0].name, offset=10, limit=5)
    streamed = 0
    for response in client.data.StreamRecords(data_service_pb2.StreamRecordsRequest(
            name=parts[0].name, batch_size=256)):
        streamed += len(response.records)
    tables = [pa.ipc.open_stream(io.BytesIO(r.arrow_ipc)).read_all() for r in client.data.StreamRecords(
        data_service_pb2.StreamRecordsRequest(name=parts[2].name, format="RECORD_FORMAT_ARROW_IPC"))]
    test_frame = pa.concat_tables(tables).to_pandas()
    print(f"rows 10-14 of {total}: {page[0]} ...; streamed {streamed} rows; test split as a "
          f"{test_frame.shape[0]}x{test_frame.shape[1]} DataFrame")

    # 7. Lineage, from the newest dataset back to the source.
    chain, current = [], parts[0]
    while True:
        lineage = current.lineage
        chain.append(f"{current.name.rsplit('/', 1)[-1]} <- {lineage.operation}")
        if not lineage.parents:
            break
        current = client.get_dataset(lineage.parents[0])
    print("lineage: " + " <- ".join(chain))
    return {"raw_rows": raw.row_count, "broken_rules": broken, "clean_rows": clean.row_count,
            "clean_valid": recheck.valid, "merged_rows": merged.row_count, "batch_rows": batch.row_count,
            "feature_columns": [c.name for c in features.schema.columns],
            "split_rows": [p.row_count for p in parts], "streamed_rows": streamed,
            "page_rows": len(page), "arrow_test_rows": int(test_frame.shape[0]),
            "lineage": [link.rsplit(" <- ", 1)[-1] for link in chain],
            "split_parameters": struct_to_dict(parts[0].lineage.parameters)}


if __name__ == "__main__":
    main(run, __doc__)
