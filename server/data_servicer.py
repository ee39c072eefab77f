"""DataService: datasets from paths and uploads, splits, records."""

from __future__ import annotations

import asyncio
import hashlib
import shutil

from engine import names
from engine.app import Engine
from engine.data.records import iter_arrow_batches, iter_record_batches
from engine.errors import InvalidArgument
from forge.training.v1 import data_service_pb2 as pb, data_service_pb2_grpc, dataset_pb2
from server import convert, unimplemented
from server.errors import rpc

MAX_CHUNK = 1024 * 1024
SERVICE = "DataService"
_run = asyncio.to_thread


class DataServicer(data_service_pb2_grpc.DataServiceServicer):
    def __init__(self, engine: Engine):
        self.engine = engine
        self.data = engine.data

    @staticmethod
    def _dataset(value: str, field: str = "name") -> str:
        return names.resolve(value, "datasets", field)

    @rpc
    async def CreateDataset(self, request: pb.CreateDatasetRequest, context) -> pb.CreateDatasetResponse:
        project = names.project_of_parent(request.parent)
        c = request.config
        config = {
            "display_name": c.display_name,
            "type": convert.dataset_type_str(c.type, "config.type"),
            "source_uri": c.source_uri,
            "format": convert.data_format_str(c.format, "config.format"),
            "data_source": c.data_source,
            "query": c.query,
            "schema": convert.schema_from_proto(c.schema, "config.schema"),
            "label_column": c.label_column,
            "labels": dict(c.labels),
            "validation": convert.rules_from_proto(c.validation, "config.validation") if c.HasField("validation")
            else {},
        }
        if not c.HasField("processing"):
            row = await _run(self.data.create_dataset, project, request.dataset_id, config)
            return pb.CreateDatasetResponse(dataset=convert.dataset_to_proto(row))
        # With processing: the data as loaded is kept as "<id>-raw" and the processed dataset
        # derives from it, so the lineage shows both and the fitted steps are recorded.
        dataset_id = names.validate_id(request.dataset_id, "dataset_id") if request.dataset_id \
            else names.new_id("ds")
        raw = await _run(self.data.create_dataset, project, f"{dataset_id[:59]}-raw", config)
        try:
            row = await _run(self.data.transform, raw.name, convert.message_dict(c.processing), dataset_id,
                             "config.processing")
        except BaseException:
            await _run(self.data.delete, raw.name)
            raise
        return pb.CreateDatasetResponse(dataset=convert.dataset_to_proto(row))

    @rpc
    async def UploadDataset(self, request_iterator, context) -> pb.UploadDatasetResponse:
        messages = request_iterator.__aiter__()
        try:
            first = await messages.__anext__()
        except StopAsyncIteration:
            raise InvalidArgument.field("metadata", "the upload was empty: send metadata, then the file's bytes",
                                        "REQUIRED") from None
        if first.WhichOneof("part") != "metadata":
            raise InvalidArgument.field("metadata", "the first message must carry the upload's metadata", "REQUIRED")
        metadata = first.metadata
        meta = {
            "dataset_id": metadata.dataset_id,
            "display_name": metadata.display_name,
            "format": convert.data_format_str(metadata.format, "metadata.format"),
            "label_column": metadata.label_column,
            "type": convert.dataset_type_str(metadata.type, "metadata.type"),
            "schema": convert.schema_from_proto(metadata.schema, "metadata.schema"),
            "size_bytes": metadata.size_bytes,
            "labels": dict(metadata.labels),
        }
        project = names.project_of_parent(metadata.parent, "metadata.parent")
        # Everything that can be checked before the bytes arrive is checked now, not after 1 GiB.
        name = await _run(self.data.check_upload, project, meta)
        tmp = await _run(self.data.upload_path, meta["format"])
        digest = hashlib.sha256()
        received = 0
        handle = await _run(open, tmp, "wb")
        try:
            async for message in messages:
                if message.WhichOneof("part") != "chunk":
                    raise InvalidArgument.field("metadata", "metadata may only be sent once, in the first message")
                if len(message.chunk) > MAX_CHUNK:
                    raise InvalidArgument.field("chunk", f"chunks are at most {MAX_CHUNK} bytes, got "
                                                         f"{len(message.chunk)}: send smaller chunks")
                received += len(message.chunk)
                self.data.check_upload_size(received)
                digest.update(message.chunk)
                await _run(handle.write, message.chunk)
            await _run(handle.close)
            if metadata.size_bytes and metadata.size_bytes != received:
                raise InvalidArgument.field("metadata.size_bytes",
                                            f"announced {metadata.size_bytes} bytes but {received} arrived")
            if metadata.sha256 and metadata.sha256.lower() != digest.hexdigest():
                raise InvalidArgument.field("metadata.sha256",
                                            f"the received bytes hash to {digest.hexdigest()}, not {metadata.sha256}")
            row = await _run(self.data.create_from_upload, name, meta, tmp)
            return pb.UploadDatasetResponse(dataset=convert.dataset_to_proto(row))
        finally:
            if not handle.closed:
                await _run(handle.close)
            await _run(shutil.rmtree, tmp.parent, True)

    @rpc
    async def GetDataset(self, request, context) -> pb.GetDatasetResponse:
        row = await _run(self.data.get, self._dataset(request.name))
        return pb.GetDatasetResponse(dataset=convert.dataset_to_proto(row))

    @rpc
    async def ListDatasets(self, request, context) -> pb.ListDatasetsResponse:
        project = names.project_of_parent(request.parent)
        rows, token = await _run(self.data.list, project, request.page_size, request.page_token, request.filter)
        return pb.ListDatasetsResponse(datasets=[convert.dataset_to_proto(r) for r in rows], next_page_token=token)

    @rpc
    async def DeleteDataset(self, request, context) -> pb.DeleteDatasetResponse:
        await _run(self.data.delete, self._dataset(request.name))
        return pb.DeleteDatasetResponse()

    @rpc
    async def GetRecords(self, request, context) -> pb.GetRecordsResponse:
        name = self._dataset(request.name)
        records, total = await _run(self.data.records, name, request.offset, request.limit, list(request.columns))
        return pb.GetRecordsResponse(
            records=[convert.record_to_proto(request.offset + i, r) for i, r in enumerate(records)], total_rows=total
        )

    @rpc
    async def StreamRecords(self, request, context):
        row = await _run(self.data.get, self._dataset(request.name))
        size = request.batch_size or 1000
        if not 0 < size <= 10_000:
            raise InvalidArgument.field("batch_size", f"must be between 1 and 10000, got {size}")
        columns = list(request.columns) or None
        convert.enum_str(dataset_pb2.RecordFormat, request.format, "RECORD_FORMAT_", "format")  # a known value
        path = await _run(self.data.local_file, row)  # fetched from the object store when the data dir lacks it
        if request.format == dataset_pb2.RECORD_FORMAT_ARROW_IPC:
            chunks = await _run(iter_arrow_batches, path, size, request.offset, columns)
            while True:
                chunk = await _run(next, chunks, None)
                if chunk is None:
                    return
                yield pb.StreamRecordsResponse(offset=chunk[0], arrow_ipc=chunk[1])
        batches = await _run(iter_record_batches, path, size, request.offset, columns)
        index = request.offset
        while True:
            batch = await _run(next, batches, None)
            if batch is None:
                return
            yield pb.StreamRecordsResponse(offset=index,
                                           records=[convert.record_to_proto(index + i, r) for i, r in enumerate(batch)])
            index += len(batch)

    @rpc
    async def SplitDataset(self, request, context) -> pb.SplitDatasetResponse:
        rows = await _run(
            self.data.split, self._dataset(request.name), list(request.ratios), seed=request.seed,
            stratify_column=request.stratify_column, shuffle=not request.no_shuffle,
            dataset_ids=list(request.dataset_ids), group_column=request.group_column,
            time_column=request.time_column,
        )
        return pb.SplitDatasetResponse(datasets=[convert.dataset_to_proto(r) for r in rows])

    @rpc
    async def RegisterDataSource(self, request, context) -> pb.RegisterDataSourceResponse:
        project = names.project_of_parent(request.parent)
        row = await _run(self.data.register_source, project, request.data_source_id,
                         convert.data_source_from_proto(request.data_source))
        return pb.RegisterDataSourceResponse(data_source=convert.data_source_to_proto(row))

    @rpc
    async def GetDataSource(self, request, context) -> pb.GetDataSourceResponse:
        row = await _run(self.data.get_source, names.resolve(request.name, "dataSources", "name"))
        return pb.GetDataSourceResponse(data_source=convert.data_source_to_proto(row))

    @rpc
    async def ListDataSources(self, request, context) -> pb.ListDataSourcesResponse:
        project = names.project_of_parent(request.parent)
        rows, token = await _run(self.data.list_sources, project, request.page_size, request.page_token)
        return pb.ListDataSourcesResponse(data_sources=[convert.data_source_to_proto(r) for r in rows],
                                          next_page_token=token)

    @rpc
    async def TransformDataset(self, request, context) -> pb.TransformDatasetResponse:
        if not request.HasField("processing"):
            raise InvalidArgument.field("processing", "is required: the ProcessingConfig to fit and apply", "REQUIRED")
        row = await _run(self.data.transform, self._dataset(request.name), convert.message_dict(request.processing),
                         request.dataset_id)
        return pb.TransformDatasetResponse(dataset=convert.dataset_to_proto(row))

    @rpc
    async def FilterDataset(self, request, context) -> pb.FilterDatasetResponse:
        if not request.expression.strip():
            raise InvalidArgument.field("expression", "is required, e.g. \"age >= 18 and country == 'NL'\"",
                                        "REQUIRED")
        row = await _run(self.data.filter, self._dataset(request.name), request.expression, request.dataset_id)
        return pb.FilterDatasetResponse(dataset=convert.dataset_to_proto(row))

    @rpc
    async def MergeDatasets(self, request, context) -> pb.MergeDatasetsResponse:
        project = names.project_of_parent(request.parent)
        datasets = [names.resolve(d, "datasets", f"datasets[{i}]", project) for i, d in enumerate(request.datasets)]
        row = await _run(self.data.merge, project, datasets, request.dataset_id)
        return pb.MergeDatasetsResponse(dataset=convert.dataset_to_proto(row))

    @rpc
    async def ValidateDataset(self, request, context) -> pb.ValidateDatasetResponse:
        report = await _run(self.data.validate, self._dataset(request.name),
                            convert.rules_from_proto(request.rules, "rules"))
        return pb.ValidateDatasetResponse(report=convert.report_to_proto(report))

    @rpc
    async def CreateDataPipeline(self, request, context) -> pb.CreateDataPipelineResponse:
        project = names.project_of_parent(request.parent)
        pipeline = request.data_pipeline
        spec = {
            "display_name": pipeline.display_name,
            "fit_dataset": pipeline.fit_dataset,
            "processing": convert.message_dict(pipeline.processing),
            "validation": convert.rules_from_proto(pipeline.validation, "data_pipeline.validation")
            if pipeline.HasField("validation") else {},
        }
        row = await _run(self.data.create_pipeline, project, request.data_pipeline_id, spec)
        return pb.CreateDataPipelineResponse(data_pipeline=convert.data_pipeline_to_proto(row))

    @rpc
    async def RunDataPipeline(self, request, context) -> pb.RunDataPipelineResponse:
        if not request.dataset:
            raise InvalidArgument.field("dataset", "is required: the dataset to process", "REQUIRED")
        row = await _run(self.data.run_pipeline, names.resolve(request.name, "dataPipelines", "name"),
                         request.dataset, request.output_dataset_id)
        return pb.RunDataPipelineResponse(dataset=convert.dataset_to_proto(row))


unimplemented.install(DataServicer, SERVICE)
