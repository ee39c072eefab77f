"""TrainerService: translates requests to ModelTrainer calls, off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import threading

from engine import names
from engine.app import Engine
from engine.errors import DataLoss, InvalidArgument
from engine.export.formats import FORMATS, parse_format
from engine.monitor import metrics_export
from engine.monitor.journal import log_passes
from engine.paging import next_token, page_bounds
from engine.storage.artifacts import location
from forge.training.v1 import model_pb2, trainer_service_pb2 as pb, trainer_service_pb2_grpc
from server import convert, unimplemented
from server.errors import rpc
from server.streams import Feed, follow_job

CHUNK = 1024 * 1024
# ExportModel reads and hashes this much per trip to a worker thread (_stream_artifact).
READ_BLOCK = 4 * CHUNK
SERVICE = "TrainerService"
_run = asyncio.to_thread


class TrainerServicer(trainer_service_pb2_grpc.TrainerServiceServicer):
    def __init__(self, engine: Engine):
        self.engine = engine
        self.trainer = engine.trainer

    @staticmethod
    def _job(value: str) -> str:
        return names.resolve(value, "trainingJobs", "name")

    def _job_proto(self, row):
        # The row does not know the data dir; the journal's TensorBoard writer does.
        return convert.job_to_proto(row, self.engine.journal.tensorboard.written_dir(row.name))

    @rpc
    async def StartTraining(self, request: pb.StartTrainingRequest, context) -> pb.StartTrainingResponse:
        project = names.project_of_parent(request.parent)
        if not request.HasField("spec"):
            raise InvalidArgument.field("spec", "is required: the TrainingRequest to run", "REQUIRED")
        spec = convert.spec_from_proto(request.spec)
        row = await _run(self.trainer.start_training, project, request.training_job_id, spec)
        return pb.StartTrainingResponse(training_job=self._job_proto(row))

    @rpc
    async def GetTrainingJob(self, request, context) -> pb.GetTrainingJobResponse:
        row = await _run(self.trainer.get_job, self._job(request.name))
        return pb.GetTrainingJobResponse(training_job=self._job_proto(row))

    @rpc
    async def ListTrainingJobs(self, request, context) -> pb.ListTrainingJobsResponse:
        project = names.project_of_parent(request.parent)
        rows, token = await _run(self.trainer.list_jobs, project, request.page_size, request.page_token,
                                 request.filter)
        return pb.ListTrainingJobsResponse(training_jobs=[self._job_proto(r) for r in rows],
                                           next_page_token=token)

    @rpc
    async def DeleteTrainingJob(self, request, context) -> pb.DeleteTrainingJobResponse:
        await _run(self.trainer.delete_job, self._job(request.name))
        return pb.DeleteTrainingJobResponse()

    @rpc
    async def PauseTraining(self, request, context) -> pb.PauseTrainingResponse:
        row = await _run(self.trainer.pause, self._job(request.name))
        return pb.PauseTrainingResponse(training_job=self._job_proto(row))

    @rpc
    async def ResumeTraining(self, request, context) -> pb.ResumeTrainingResponse:
        row = await _run(self.trainer.resume, self._job(request.name))
        return pb.ResumeTrainingResponse(training_job=self._job_proto(row))

    @rpc
    async def CancelTraining(self, request, context) -> pb.CancelTrainingResponse:
        row = await _run(self.trainer.cancel, self._job(request.name))
        return pb.CancelTrainingResponse(training_job=self._job_proto(row))

    @rpc
    async def GetTrainingMetrics(self, request, context) -> pb.GetTrainingMetricsResponse:
        job = self._job(request.name)
        await _run(self.trainer.get_job, job)  # NOT_FOUND for unknown jobs
        response = pb.GetTrainingMetricsResponse()
        latest = await _run(self.engine.journal.latest_metric, job)
        if latest:
            response.latest.CopyFrom(convert.metrics_to_proto(latest))
        if request.page_size:
            after, limit = page_bounds(request.page_size, request.page_token, maximum=10_000)
            points = await _run(self.engine.journal.metrics_after, job, after, limit + 1)
            response.history.extend(convert.metrics_to_proto(p) for p in points[:limit])
            if len(points) > limit:
                response.next_page_token = next_token(after, limit, limit, True)
        return response

    @rpc
    async def WatchTrainingMetrics(self, request, context):
        job = self._job(request.name)

        # Points travel as their stored encodings, framed (convert.framed_metric): a replay of a long
        # history sends bytes read from the database instead of decoding and rebuilding each point.
        # Framed inside the (shared) read: every watcher at this sequence gets these bytes.
        def fetch(after: int, limit: int):
            encoded, last = self.engine.journal.encoded_metrics_after(job, after, limit)
            return [convert.framed_metric(wire) for wire in encoded], last

        def framed(point):  # a live point, encoded once for all the watchers that share the feed
            return convert.framed_metric(convert.metric_wire(point))

        async for points, state in follow_job(self.engine, job, request.from_sequence, request.follow, fetch,
                                              share_key="metrics", feed=Feed("metrics", framed)):
            yield convert.metrics_response(points, state)

    def _log_fetch(self, job: str, min_level: int, contains: str):
        level = convert.LOG_LEVEL_NUMBERS.get(min_level, 0)

        def fetch(after: int, limit: int):
            entries, scanned = self.engine.journal.logs_after(job, after, limit, level, contains)
            return [convert.log_to_proto(e) for e in entries], scanned

        return fetch

    @rpc
    async def GetTrainingLogs(self, request, context) -> pb.GetTrainingLogsResponse:
        job = self._job(request.name)
        await _run(self.trainer.get_job, job)
        after, limit = page_bounds(request.page_size, request.page_token, default=1000, maximum=10_000)
        fetch = self._log_fetch(job, request.min_level, request.contains)
        entries, scanned = await _run(fetch, after, limit)
        response = pb.GetTrainingLogsResponse(entries=entries)
        if scanned - after >= limit:
            response.next_page_token = next_token(after, limit, scanned - after, True)
        return response

    @rpc
    async def StreamTrainingLogs(self, request, context):
        job = self._job(request.name)
        fetch = self._log_fetch(job, request.min_level, request.contains)
        level = convert.LOG_LEVEL_NUMBERS.get(request.min_level, 0)

        def passed(entry):  # a live entry, filtered as fetch filters the stored ones
            return convert.log_to_proto(entry) if log_passes(entry, level, request.contains) else None

        async for entries, state in follow_job(self.engine, job, request.from_sequence, request.follow, fetch,
                                               share_key=("logs", request.min_level, request.contains),
                                               feed=Feed("logs", passed)):
            yield pb.StreamTrainingLogsResponse(entries=entries, job_state=convert.job_state_enum(state))

    @rpc
    async def ExportTrainingMetrics(self, request, context):
        known = request.format in pb.MetricsExportFormat.values()  # else a number this server does not know
        fmt = metrics_export.parse_format(pb.MetricsExportFormat.Name(request.format) if known
                                          else str(request.format))
        chunks = await _run(self.engine.export_metrics, self._job(request.name), fmt)  # NOT_FOUND for unknown jobs
        content_type = metrics_export.FORMATS[fmt]
        while (chunk := await _run(next, chunks, None)) is not None:  # a page read per chunk, off the loop
            yield pb.ExportTrainingMetricsResponse(content_type=content_type, data=chunk)
            content_type = ""

    @rpc
    async def ListAlertDeliveries(self, request, context) -> pb.ListAlertDeliveriesResponse:
        resource, get, pipeline = self._alerted(request.resource)
        page_size = min(request.page_size or 100, 1000)
        rows, token = await _run(self.engine.alerts.deliveries, resource, page_size, request.page_token,
                                 executions_of=pipeline)
        if not rows and not request.page_token:
            await _run(get, resource)  # NOT_FOUND for a resource that does not exist, not an empty list
        return pb.ListAlertDeliveriesResponse(deliveries=[convert.alert_delivery_to_proto(r) for r in rows],
                                              next_page_token=token)

    def _alerted(self, value: str):
        """(resource, its getter, whether it is a pipeline) of ListAlertDeliveries' resource,
        checked: a training job (or its id), a tuning job, a pipeline execution, or a pipeline."""
        engine = self.engine
        if "/executions/" in value:
            pipeline, _, execution = value.partition("/executions/")
            pipeline = names.resolve(pipeline, "pipelines", "resource")
            execution = f"{pipeline}/executions/{names.validate_id(execution, 'resource')}"
            return execution, engine.pipelines.get_execution, False
        if "/pipelines/" in value:
            return names.resolve(value, "pipelines", "resource"), engine.pipelines.get, True
        if "/tuningJobs/" in value:
            return names.resolve(value, "tuningJobs", "resource"), engine.tuning.get, False
        return names.resolve(value, "trainingJobs", "resource"), self.trainer.get_job, False

    @rpc
    async def SaveModel(self, request, context) -> pb.SaveModelResponse:
        fmt = convert.export_format_str(request.format) if request.format else "pickle"
        path, size, digest = await _run(self.trainer.save_model, self._job(request.name), request.path,
                                        parse_format(fmt))
        return pb.SaveModelResponse(path=path, size_bytes=size, sha256=digest)

    @rpc
    async def ListModels(self, request, context) -> pb.ListModelsResponse:
        project = names.project_of_parent(request.parent)
        rows, token = await _run(self.engine.models.list, project, request.page_size, request.page_token,
                                 request.filter)
        return pb.ListModelsResponse(models=[convert.model_to_proto(r) for r in rows], next_page_token=token)

    @rpc
    async def GetModel(self, request, context) -> pb.GetModelResponse:
        return pb.GetModelResponse(model=convert.model_to_proto(await _run(self.engine.models.get, request.name)))

    @rpc
    async def DeleteModel(self, request, context) -> pb.DeleteModelResponse:
        await _run(self.engine.models.delete, request.name)
        return pb.DeleteModelResponse()

    # ----- tuning

    @staticmethod
    def _tuning(value: str) -> str:
        return names.resolve(value, "tuningJobs", "name")

    @rpc
    async def StartTuning(self, request, context) -> pb.StartTuningResponse:
        project = names.project_of_parent(request.parent)
        if not request.HasField("spec"):
            raise InvalidArgument.field("spec", "is required: the TuningSpec to run", "REQUIRED")
        row = await _run(self.engine.tuning.start, project, request.tuning_job_id,
                         convert.tuning_spec_to_dict(request.spec))
        trials = (await _run(self.engine.tuning.get, row.name))[1]
        return pb.StartTuningResponse(tuning_job=convert.tuning_to_proto(row, trials))

    @rpc
    async def GetTuningJob(self, request, context) -> pb.GetTuningJobResponse:
        row, trials = await _run(self.engine.tuning.get, self._tuning(request.name))
        return pb.GetTuningJobResponse(tuning_job=convert.tuning_to_proto(row, trials))

    @rpc
    async def ListTuningJobs(self, request, context) -> pb.ListTuningJobsResponse:
        project = names.project_of_parent(request.parent)
        page, token = await _run(self.engine.tuning.list, project, request.page_size, request.page_token,
                                 request.filter)
        return pb.ListTuningJobsResponse(tuning_jobs=[convert.tuning_to_proto(r, t) for r, t in page],
                                         next_page_token=token)

    @rpc
    async def CancelTuning(self, request, context) -> pb.CancelTuningResponse:
        row = await _run(self.engine.tuning.cancel, self._tuning(request.name))
        trials = (await _run(self.engine.tuning.get, row.name))[1]
        return pb.CancelTuningResponse(tuning_job=convert.tuning_to_proto(row, trials))

    @rpc
    async def WatchTuningJob(self, request, context):
        name = self._tuning(request.name)
        tuning = self.engine.tuning

        def fetch(after: int, limit: int):
            events = tuning.events_after(name, after, limit)
            return events, events[-1].sequence if events else after

        async for events, state in follow_job(self.engine, name, request.from_sequence, request.follow, fetch,
                                              tuning.state_of):
            yield pb.WatchTuningJobResponse(events=[convert.tuning_event_to_proto(e) for e in events],
                                            job_state=convert.job_state_enum(state))

    @rpc
    async def EvaluateModel(self, request, context) -> pb.EvaluateModelResponse:
        report = await _run(self.engine.evaluator.evaluate, request.name, request.dataset)
        return convert.evaluation_to_proto(report)

    @rpc
    async def UpdateModelStage(self, request, context) -> pb.UpdateModelStageResponse:
        stage = convert.model_stage_str(request.stage)
        row, archived = await _run(self.engine.models.set_stage, request.name, stage)
        return pb.UpdateModelStageResponse(model=convert.model_to_proto(row),
                                           archived=[convert.model_to_proto(r) for r in archived])

    @rpc
    async def LoadModel(self, request, context) -> pb.LoadModelResponse:
        project = names.project_of_parent(request.parent)
        fmt = convert.export_format_str(request.format) if request.format else ""
        row = await _run(self.engine.models.load, project, request.path, request.model_id, fmt)
        return pb.LoadModelResponse(model=convert.model_to_proto(row))

    @rpc
    async def ExportModel(self, request, context):
        fmt = parse_format(convert.export_format_str(request.format))
        if "/models/" in request.name:  # a registered model version
            row, info = await _run(self.engine.models.artifact, request.name, fmt, False)
            framework, versions, model_info = row.framework, row.framework_versions, row.model_info
        else:
            row, info = await _run(self.trainer.artifact, self._job(request.name), fmt, False)
            framework, versions, model_info = row.spec.get("framework", ""), row.framework_versions, row.model_info
        size = info["size_bytes"]
        if request.offset < 0 or request.offset > size:
            raise InvalidArgument.field("offset", f"must be between 0 and the artifact's size {size}")
        model_info = model_info or {}
        metadata = model_pb2.ExportMetadata(
            format=request.format,
            size_bytes=size,
            sha256=info["sha256"],
            filename=FORMATS[fmt].filename,
            content_type=FORMATS[fmt].content_type,
            framework=framework,
            framework_versions=versions or {},
            input_features=model_info.get("features", []),
            class_labels=model_info.get("classes", []),
            preprocessing=convert.dict_to_struct(model_info.get("preprocessing", {})),
            inputs=[convert.tensor_spec_to_proto(t) for t in info.get("inputs", [])],
            outputs=[convert.tensor_spec_to_proto(t) for t in info.get("outputs", [])],
            raw_columns=bool(info.get("raw_columns")),
        )
        async for message in self._stream_artifact(row.name, fmt, info, request.offset):
            if message.offset == request.offset:
                message.metadata.CopyFrom(metadata)
            yield message

    async def _stream_artifact(self, owner: str, fmt: str, info: dict, start: int):
        """The artifact's bytes from `start` in chunks of at most 1 MiB. The whole file is hashed
        (the bytes before `start` too), and the check happens before the last chunk leaves, so a
        client never receives a corrupt artifact whole.

        A worker thread reads and hashes READ_BLOCK bytes at a time, one block ahead of the event
        loop, which cuts each block into chunks and sends them. A trip to a thread per 1 MiB chunk
        (a wakeup, and a GIL hand-over for the read and another for the hash) cost the server more
        CPU than the hashing itself. At most two blocks are in memory, whatever the artifact's size.

        A local file this server has hashed whole since it last changed (ArtifactStore.verified_before)
        is not hashed again, and is read from `start`: sha256 at ~1 GB/s was a core for half a
        second per 500 MB on every export. Its length is still checked, and clients check the
        sha256 of what they receive (ExportMetadata.sha256)."""
        store = self.engine.storage
        uri, size, recorded = location(info), info["size_bytes"], info["sha256"]
        fingerprint = store.fingerprint(uri)
        trusted = store.verified_before(uri, recorded, fingerprint)
        digest = hashlib.sha256()
        read = start if trusted else 0
        blocks = store.iter_chunks(uri, read, READ_BLOCK)  # opens the file lazily, on the first next()
        # A client that goes away cancels this generator while a read may still run in its
        # thread; closing the block generator then would fail ("generator already executing"),
        # so reading and closing take turns.
        turn = threading.Lock()

        def read_block() -> tuple[bytes, bool]:
            """The next block and whether it is the last; DataLoss, before any of it is sent, when
            the artifact's bytes no longer match its record."""
            nonlocal read
            with turn:
                block = next(blocks, b"") if read < size else b""
                if not block and read < size:
                    raise DataLoss(f"the stored {fmt} artifact of {owner} has {read} bytes, {size} recorded")
                if not trusted:
                    digest.update(block)
                read += len(block)
                if read >= size:
                    longer = read > size or bool(next(blocks, b""))
                    if longer or (not trusted and digest.hexdigest() != recorded):
                        raise DataLoss(f"the stored {fmt} artifact of {owner} no longer matches its recorded sha256")
                    if not trusted:
                        store.remember_verified(uri, recorded, fingerprint)
                return block, read >= size

        def close() -> None:
            with turn:
                blocks.close()

        offset = read  # of the block in hand
        sent = False
        pending = asyncio.ensure_future(_run(read_block))
        try:
            while pending is not None:
                block, last = await pending
                pending = None if last else asyncio.ensure_future(_run(read_block))
                for at in range(0, len(block), CHUNK):
                    begin, end = offset + at, offset + min(at + CHUNK, len(block))
                    # Chunks wholly before `start` are only hashed; the first one sent starts at `start`.
                    if end > start:
                        first = max(start, begin)
                        yield pb.ExportModelResponse(data=block[first - offset:end - offset], offset=first)
                        sent = True
                offset += len(block)
            if not sent:  # resumed at the very end, or an empty artifact: one message carries the metadata
                yield pb.ExportModelResponse(offset=start)
        finally:
            if pending is not None:  # the client went away: the block read ahead is not wanted
                pending.cancel()  # its thread still finishes the read; close() waits for it
                pending.add_done_callback(lambda task: task.cancelled() or task.exception())  # no "never retrieved"
            await _run(close)  # closes the file even when the client goes away mid-stream


unimplemented.install(TrainerServicer, SERVICE)
