"""PipelineService: translates requests to PipelineManager calls, off the event loop."""

from __future__ import annotations

import asyncio

from engine import names
from engine.app import Engine
from engine.errors import InvalidArgument
from forge.training.v1 import pipeline_pb2, pipeline_service_pb2 as pb, pipeline_service_pb2_grpc
from server import convert
from server.errors import rpc
from server.streams import follow_job

SERVICE = "PipelineService"
_run = asyncio.to_thread


class PipelineServicer(pipeline_service_pb2_grpc.PipelineServiceServicer):
    def __init__(self, engine: Engine):
        self.engine = engine
        self.pipelines = engine.pipelines

    @staticmethod
    def _pipeline(value: str) -> str:
        return names.resolve(value, "pipelines", "name")

    @staticmethod
    def _execution(value: str) -> str:
        parts = value.split("/")
        if len(parts) != 6 or parts[0] != "projects" or parts[2] != "pipelines" or parts[4] != "executions":
            raise InvalidArgument.field("name", f"{value!r} is not an execution: use "
                                                "'projects/{project}/pipelines/{pipeline}/executions/{execution}'")
        for part in parts[1::2]:
            names.validate_id(part, "name")
        names.check_access(parts[1], value)
        return value

    @staticmethod
    def _executions_parent(value: str) -> tuple[str, str]:
        """ListExecutions' parent as (pipeline, project): a pipeline's name or bare id (of the
        caller's project) lists that pipeline's executions; a project, or none (the caller's),
        every pipeline's of it."""
        if not value or (value.startswith("projects/") and value.count("/") == 1):
            return "", names.project_of_parent(value)
        return names.resolve(value, "pipelines", "parent"), ""

    @staticmethod
    def _template(value: str, field: str = "name") -> str:
        return names.resolve(value, "templates", field)

    # ----- pipelines

    @rpc
    async def CreatePipeline(self, request, context) -> pb.CreatePipelineResponse:
        project = names.project_of_parent(request.parent)
        if not request.HasField("pipeline"):
            raise InvalidArgument.field("pipeline", "is required: the stages to run", "REQUIRED")
        row = await _run(self.pipelines.create, project, request.pipeline_id,
                         convert.pipeline_to_dict(request.pipeline))
        return pb.CreatePipelineResponse(pipeline=convert.pipeline_to_proto(row))

    @rpc
    async def GetPipeline(self, request, context) -> pb.GetPipelineResponse:
        row = await _run(self.pipelines.get, self._pipeline(request.name))
        return pb.GetPipelineResponse(pipeline=convert.pipeline_to_proto(row))

    @rpc
    async def ListPipelines(self, request, context) -> pb.ListPipelinesResponse:
        project = names.project_of_parent(request.parent)
        rows, token = await _run(self.pipelines.list, project, request.page_size, request.page_token)
        return pb.ListPipelinesResponse(pipelines=[convert.pipeline_to_proto(r) for r in rows], next_page_token=token)

    @rpc
    async def DeletePipeline(self, request, context) -> pb.DeletePipelineResponse:
        await _run(self.pipelines.delete, self._pipeline(request.name))
        return pb.DeletePipelineResponse()

    # ----- executions

    @rpc
    async def ExecutePipeline(self, request, context) -> pb.ExecutePipelineResponse:
        row = await _run(self.pipelines.execute, self._pipeline(request.name),
                         convert.struct_to_dict(request.input), request.execution_id)
        return pb.ExecutePipelineResponse(execution=convert.execution_to_proto(row))

    @rpc
    async def GetExecution(self, request, context) -> pb.GetExecutionResponse:
        row = await _run(self.pipelines.get_execution, self._execution(request.name))
        return pb.GetExecutionResponse(execution=convert.execution_to_proto(row))

    @rpc
    async def ListExecutions(self, request, context) -> pb.ListExecutionsResponse:
        pipeline, project = self._executions_parent(request.parent)
        rows, token = await _run(self.pipelines.list_executions, request.page_size, request.page_token,
                                 pipeline=pipeline, project=project)
        return pb.ListExecutionsResponse(executions=[convert.execution_to_proto(r) for r in rows],
                                         next_page_token=token)

    @rpc
    async def CancelExecution(self, request, context) -> pb.CancelExecutionResponse:
        row = await _run(self.pipelines.cancel_execution, self._execution(request.name))
        return pb.CancelExecutionResponse(execution=convert.execution_to_proto(row))

    @rpc
    async def WatchExecution(self, request, context):
        name = self._execution(request.name)
        pipelines = self.pipelines

        def fetch(after: int, limit: int):
            events = pipelines.events_after(name, after, limit)
            return events, events[-1].sequence if events else after

        async for events, state in follow_job(self.engine, name, request.from_sequence, request.follow, fetch,
                                              pipelines.state_of):
            yield pb.WatchExecutionResponse(events=[convert.execution_event_to_proto(e) for e in events],
                                            execution_state=convert.job_state_enum(state))

    # ----- templates

    @rpc
    async def CreateTemplate(self, request, context) -> pb.CreateTemplateResponse:
        project = names.project_of_parent(request.parent)
        if not request.HasField("template"):
            raise InvalidArgument.field("template", "is required: its stages and parameters", "REQUIRED")
        row = await _run(self.pipelines.create_template, project, request.template_id,
                         convert.template_to_dict(request.template))
        return pb.CreateTemplateResponse(template=convert.template_to_proto(row))

    @rpc
    async def GetTemplate(self, request, context) -> pb.GetTemplateResponse:
        row = await _run(self.pipelines.get_template, self._template(request.name))
        return pb.GetTemplateResponse(template=convert.template_to_proto(row))

    @rpc
    async def ListTemplates(self, request, context) -> pb.ListTemplatesResponse:
        project = names.project_of_parent(request.parent)
        rows, token = await _run(self.pipelines.list_templates, project, request.page_size, request.page_token)
        return pb.ListTemplatesResponse(templates=[convert.template_to_proto(r) for r in rows], next_page_token=token)

    @rpc
    async def CreateFromTemplate(self, request, context) -> pb.CreateFromTemplateResponse:
        project = names.project_of_parent(request.parent)
        # The new pipeline's own settings, read as CreatePipeline reads them.
        own = pipeline_pb2.Pipeline(alerts=request.alerts, triggers=request.triggers)
        if request.HasField("schedule"):
            own.schedule.CopyFrom(request.schedule)
        row = await _run(self.pipelines.create_from_template, project, self._template(request.template, "template"),
                         request.pipeline_id, convert.struct_to_dict(request.config), convert.pipeline_to_dict(own))
        return pb.CreateFromTemplateResponse(pipeline=convert.pipeline_to_proto(row))
