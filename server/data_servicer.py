"""DataService: datasets from paths and uploads, splits, records."""

from __future__ import annotations

import asyncio
import hashlib
import shutil

from engine import names
from engine.app import Engine
from engine.errors import InvalidArgument
from forge.training.v1 import data_service_pb2 as pb, data_service_pb2_grpc
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
        }
        if c.HasField("processing") or c.HasField("validation"):
            from engine.errors import Unimplemented

            raise Unimplemented("config.processing and config.validation are not implemented yet; leave them unset")
        row = await _run(self.data.create_dataset, project, request.dataset_id, config)
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
        from engine.data.records import iter_record_batches

        row = await _run(self.data.get, self._dataset(request.name))
        size = request.batch_size or 1000
        if not 0 < size <= 10_000:
            raise InvalidArgument.field("batch_size", f"must be between 1 and 10000, got {size}")
        batches = await _run(iter_record_batches, row.path, size, request.offset, list(request.columns) or None)
        index = request.offset
        while True:
            batch = await _run(next, batches, None)
            if batch is None:
                return
            yield pb.StreamRecordsResponse(records=[convert.record_to_proto(index + i, r) for i, r in enumerate(batch)])
            index += len(batch)

    @rpc
    async def SplitDataset(self, request, context) -> pb.SplitDatasetResponse:
        rows = await _run(
            self.data.split, self._dataset(request.name), list(request.ratios), seed=request.seed,
            stratify_column=request.stratify_column, shuffle=not request.no_shuffle,
            dataset_ids=list(request.dataset_ids),
        )
        return pb.SplitDatasetResponse(datasets=[convert.dataset_to_proto(r) for r in rows])


unimplemented.install(DataServicer, SERVICE)
