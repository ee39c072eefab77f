"""Pipelines, templates and executions: storage, the executor, and schedules.

An execution runs in a thread of its own (`_Executor`): stages whose dependencies have
ended start at once, so independent stages run in parallel (training stages still queue
behind the trainer's worker limit); a stage whose dependency did not succeed, or whose
condition is false, is skipped with the reason; failed attempts are retried with the stage's
backoff; a stage's attempt and the whole execution have time limits. Every change is written
to the execution row (each stage's state, attempt, outputs, error, and the handles a running
attempt remembered, such as its training job) and to its event stream before it is acted on,
so after a restart completed stages stay completed, running ones re-attach to their jobs, and
the execution carries on.

A stage whose type, resolved parameters and code version match an earlier successful run
reuses its outputs (StageConfig.disable_cache turns that off).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

from sqlalchemy import select

from engine import names, tenancy
from engine.alerts.dispatcher import Alerts, firing, state_line
from engine.alerts.rules import read_rules
from engine.errors import FailedPrecondition, ForgeError, InvalidArgument, NotFound
from engine.jobs import states
from engine.jobs.request import spec_from_request
from engine.pipelines import definition, schedule as schedules, stages as stage_runners, triggers
from engine.store.database import Database, add_new, fetch
from engine.store.models import (
    ExecutionEventRow,
    PipelineExecutionRow,
    PipelineRow,
    PipelineTemplateRow,
    StageCacheRow,
)

log = logging.getLogger("forge.pipelines")

# Part of every stage's cache key: bump it when what a stage type does changes.
CODE_VERSION = "1"
TICK_SECONDS = 0.2
SCHEDULER_SECONDS = 1.0

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED = (
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
STAGE_FINAL = frozenset({SUCCEEDED, FAILED, SKIPPED, CANCELLED})


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class PipelineManager:
    def __init__(self, db: Database, engine: Any, make_spec: Callable[[dict], Any] | None = None,
                 functions: dict[str, Callable] | None = None):
        self._db = db
        self._engine = engine
        # TrainingRequest JSON -> TrainingSpec: the engine's own reading, unless the server adds
        # its check against the proto first.
        self.make_spec = make_spec or spec_from_request
        self.functions: dict[str, Callable] = dict(functions or {})
        self._executors: dict[str, _Executor] = {}
        self._lock = threading.Lock()
        # Execution rows and their event sequences are written by the executor, its stage
        # threads and cancel requests: one writer at a time keeps sequences gap- and clash-free.
        self.writing = threading.RLock()
        self.alerts: Alerts | None = None  # set by the Engine (engine/alerts)
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # ----- pipelines

    def create(self, project: str, pipeline_id: str, pipeline: dict[str, Any], template: str = "") -> PipelineRow:
        pipeline_id = names.validate_id(pipeline_id, "pipeline_id") if pipeline_id else names.new_id("pipeline")
        name = names.make(project, "pipelines", pipeline_id)
        stages = pipeline.get("stages") or []
        parsed = definition.parse_stages(stages, field="pipeline.stages", functions=self.functions)
        for stage in parsed:
            stage_runners.check_parameters(stage.type, _runner_parameters(stage, stage.parameters),
                                           f"pipeline.stages[{stage.id}].parameters")
        timeout = float(pipeline.get("timeout_seconds") or 0)
        if timeout < 0:
            raise InvalidArgument.field("pipeline.timeout", "must not be negative")
        sched = pipeline.get("schedule") or {}
        schedules.check_schedule(sched)
        alerts = read_rules(pipeline.get("alerts"), "pipeline.alerts", metrics=False)
        events = triggers.read_triggers(pipeline.get("triggers"))
        now = _now()
        row = PipelineRow(name=name, project=project, display_name=pipeline.get("display_name", ""), stages=stages,
                          timeout_seconds=timeout, template=template, labels=pipeline.get("labels") or {},
                          schedule=sched, next_run_time=schedules.next_run(sched, now), create_time=now,
                          alerts=alerts, triggers=events)
        with self._db.session() as s:
            add_new(s, row, name, f"pipeline {name} already exists: choose another pipeline_id")
        return row

    def get(self, name: str) -> PipelineRow:
        with self._db.session() as s:
            return fetch(s, PipelineRow, name, "pipeline")

    def list(self, project: str, page_size: int, page_token: str) -> tuple[list[PipelineRow], str]:
        return self._db.page(select(PipelineRow).where(PipelineRow.project == project)
                          .order_by(PipelineRow.create_time.desc(), PipelineRow.name), page_size, page_token)

    def delete(self, name: str) -> None:
        with self._db.session() as s:
            row = fetch(s, PipelineRow, name, "pipeline")
            active = s.scalar(select(PipelineExecutionRow.name).where(
                PipelineExecutionRow.pipeline == name, PipelineExecutionRow.state.notin_(tuple(states.FINAL))))
            if active:
                raise FailedPrecondition(f"{active} is still running: cancel it first, then delete the pipeline")
            s.delete(row)

    # ----- templates

    def create_template(self, project: str, template_id: str, template: dict[str, Any]) -> PipelineTemplateRow:
        template_id = names.validate_id(template_id, "template_id") if template_id else names.new_id("template")
        name = names.make(project, "templates", template_id)
        parameters = definition.parse_template_parameters(template.get("parameters") or [])
        stages = template.get("stages") or []
        # The stages must make a valid pipeline with the defaults (and placeholders for required values).
        placeholders = {p["name"]: p.get("default_value", _PLACEHOLDER[p.get("type", "string")]) for p in parameters}
        definition.parse_stages(definition.instantiate_template(stages, parameters, placeholders),
                                field="template.stages", functions=self.functions)
        row = PipelineTemplateRow(name=name, project=project, display_name=template.get("display_name", ""),
                                  description=template.get("description", ""), stages=stages,
                                  parameters=parameters, create_time=_now())
        with self._db.session() as s:
            add_new(s, row, name, f"template {name} already exists: choose another template_id")
        return row

    def get_template(self, name: str) -> PipelineTemplateRow:
        with self._db.session() as s:
            return fetch(s, PipelineTemplateRow, name, "template")

    def list_templates(self, project: str, page_size: int, page_token: str):
        return self._db.page(select(PipelineTemplateRow).where(PipelineTemplateRow.project == project)
                          .order_by(PipelineTemplateRow.create_time.desc(), PipelineTemplateRow.name),
                          page_size, page_token)

    def create_from_template(self, project: str, template: str, pipeline_id: str, config: dict,
                             settings: dict[str, Any] | None = None) -> PipelineRow:
        """A pipeline of the template's stages with `config`'s parameter values; `settings`: the
        new pipeline's own alerts, triggers and schedule (a template has none)."""
        row = self.get_template(template)
        stages = definition.instantiate_template(row.stages, row.parameters, config or {})
        own = {k: v for k, v in (settings or {}).items() if k in ("alerts", "triggers", "schedule")}
        return self.create(project, pipeline_id, {"display_name": row.display_name, "stages": stages, **own},
                           template=row.name)

    # ----- executions

    def execute(self, name: str, execution_input: dict[str, Any], execution_id: str = "",
                trigger: str = "manual") -> PipelineExecutionRow:
        pipeline = self.get(name)
        execution_id = names.validate_id(execution_id, "execution_id") if execution_id else names.new_id("run")
        execution = f"{name}/executions/{execution_id}"
        parsed = definition.parse_stages(pipeline.stages, field="pipeline.stages", functions=self.functions)
        if any(stage.type == "model_training" for stage in parsed):
            self._engine.trainer.check_enabled()  # refused whole rather than failing at its training stage
        now = _now()
        row = PipelineExecutionRow(
            name=execution, project=pipeline.project, pipeline=name,
            snapshot={"stages": pipeline.stages, "timeout_seconds": pipeline.timeout_seconds,
                      "alerts": pipeline.alerts or []},
            state=states.RUNNING, state_message="running", input=execution_input or {},
            stages={s.id: {"state": PENDING, "attempt": 0, "outputs": {}} for s in parsed},
            trigger=trigger, last_event=0, create_time=now)
        with self.writing, self._db.session() as s:
            add_new(s, row, execution, f"execution {execution} already exists: choose another execution_id")
            _event(s, row, "EXECUTION_STATE", message=f"execution started ({trigger})",
                   data={"state": states.RUNNING}, alerts=self.alerts)
        self._launch(execution)
        return self.get_execution(execution)

    def get_execution(self, name: str) -> PipelineExecutionRow:
        with self._db.session() as s:
            return fetch(s, PipelineExecutionRow, name, "execution")

    def list_executions(self, page_size: int, page_token: str, *, pipeline: str = "", project: str = ""):
        """Executions of `pipeline` (a full name), or else of every pipeline of `project`; both
        resolved and checked against the caller's scope by the caller (engine/names.py)."""
        query = select(PipelineExecutionRow)
        if pipeline:
            query = query.where(PipelineExecutionRow.pipeline == pipeline)
        else:
            query = query.where(PipelineExecutionRow.project == project)
        rows, token = self._db.page(query.order_by(PipelineExecutionRow.create_time.desc(),
                                                   PipelineExecutionRow.name), page_size, page_token)
        if pipeline and not rows and not page_token:
            # Executions outlive their pipeline, so a deleted pipeline's history still lists; a name
            # that is neither (a typo) says so instead of looking like a pipeline never run.
            self.get(pipeline)
        return rows, token

    def cancel_execution(self, name: str) -> PipelineExecutionRow:
        with self.writing, self._db.session() as s:
            row = fetch(s, PipelineExecutionRow, name, "execution")
            if row.state in states.FINAL:
                return row
            row.state, row.state_message = states.CANCELLING, "cancelling: running stages are being stopped"
            _event(s, row, "EXECUTION_STATE", message="cancel requested", data={"state": states.CANCELLING},
                   alerts=self.alerts)
        self._launch(name)
        return self.get_execution(name)

    def events_after(self, name: str, after: int, limit: int) -> list[ExecutionEventRow]:
        with self._db.session() as s:
            return list(s.scalars(select(ExecutionEventRow).where(
                ExecutionEventRow.execution == name, ExecutionEventRow.sequence > after)
                .order_by(ExecutionEventRow.sequence).limit(limit)))

    def state_of(self, name: str) -> str:
        return self.get_execution(name).state

    # ----- lifecycle

    def recover(self) -> None:
        """Carry on with executions a previous server process left running, and start the scheduler."""
        with self._db.session() as s:
            active = [r.name for r in s.scalars(select(PipelineExecutionRow).where(
                PipelineExecutionRow.state.in_((states.RUNNING, states.CANCELLING))))]
        for name in active:
            self._launch(name)
        self._scheduler = threading.Thread(target=self._schedule_loop, name="pipeline scheduler", daemon=True)
        self._scheduler.start()

    def shutdown(self) -> None:
        self._stop.set()
        with self._lock:
            executors = list(self._executors.values())
        for executor in executors:
            executor.stop.set()
        for executor in executors:
            executor.join(10)
        if self._scheduler is not None:
            self._scheduler.join(5)

    def _launch(self, name: str) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            current = self._executors.get(name)
            if current is not None and current.is_alive():
                return
            executor = self._executors[name] = _Executor(self, name)
            executor.start()

    def _schedule_loop(self) -> None:
        while not self._stop.wait(SCHEDULER_SECONDS):
            try:
                self.run_due_schedules()
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the scheduler for good
                log.exception("checking pipeline schedules failed; trying again in %g s", SCHEDULER_SECONDS)

    def dataset_created(self, dataset: Any) -> list[str]:
        """Start the executions a new dataset triggers (pipelines of its project with a matching
        dataset_created trigger; none for a dataset a pipeline's stage made). Returns them; a
        pipeline that cannot start now is logged and skipped, never an error of the dataset's
        creation."""
        making = triggers.RUNNING_PIPELINE.get()
        if making:  # made by a stage of an execution: triggering from it could chain pipelines without end
            log.info("%s was made by a stage of %s: it triggers no pipeline", dataset.name, making)
            return []
        with self._db.session() as s:
            candidates = [(row.name, row.triggers) for row in s.scalars(
                select(PipelineRow).where(PipelineRow.project == dataset.project)) if row.triggers]
        started = []
        for pipeline, events in candidates:
            for trigger in events:
                if not triggers.fires_on(trigger, dataset.labels or {}):
                    continue
                execution_input = {**trigger["input"], trigger["dataset_input"]: dataset.name}
                try:
                    started.append(self.execute(pipeline, execution_input, trigger=f"trigger:{trigger['name']}").name)
                except ForgeError as exc:
                    log.warning("trigger %s of %s did not start an execution for %s: %s", trigger["name"], pipeline,
                                dataset.name, exc.message)
        return started

    def webhook_called(self, pipeline: str, trigger_name: str, body: dict[str, Any]) -> PipelineExecutionRow:
        """Start the execution a webhook trigger's (already authenticated) call asks for."""
        trigger = self.webhook_trigger(pipeline, trigger_name)
        if trigger["paused"]:
            raise FailedPrecondition(f"trigger {trigger_name} of {pipeline} is paused")
        return self.execute(pipeline, {**trigger["input"], **body}, trigger=f"trigger:{trigger_name}")

    def webhook_trigger(self, pipeline: str, trigger_name: str) -> dict[str, Any]:
        """The webhook trigger `trigger_name` of `pipeline` (its secret included); NotFound if none."""
        try:
            events = self.get(pipeline).triggers or []
        except NotFound:
            events = []
        for trigger in events:
            if trigger["name"] == trigger_name and trigger["event"] == "webhook":
                return trigger
        raise NotFound(f"no webhook trigger {trigger_name} on {pipeline}")

    def run_due_schedules(self, now: datetime | None = None) -> list[str]:
        """Execute every pipeline whose schedule is due (once, however many runs a downtime
        missed), and move its next run time on. Returns the executions started."""
        now = now or _now()
        started = []
        with self._db.session() as s:
            due = list(s.scalars(select(PipelineRow).where(PipelineRow.next_run_time.is_not(None),
                                                           PipelineRow.next_run_time <= now)))
            for row in due:
                row.next_run_time = schedules.next_run(row.schedule, now)
        for row in due:
            try:
                started.append(self.execute(row.name, row.schedule.get("input") or {}, trigger="schedule").name)
            except ForgeError as exc:  # this run is skipped; the schedule's next one tries again
                log.warning("the scheduled execution of %s did not start: %s", row.name, exc.message)
        return started


def _runner_parameters(stage: definition.Stage, params: dict[str, Any]) -> dict[str, Any]:
    """What the stage runner takes: a custom stage's function name joins its parameters."""
    return {**params, "function": stage.custom_function} if stage.type == "custom" else params


_PLACEHOLDER = {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "list": [], "object": {}}


def _event(s, row: PipelineExecutionRow, type_: str, *, stage_id: str = "", attempt: int = 0, message: str = "",
           data: dict | None = None, alerts: Alerts | None = None) -> None:
    rules = (row.snapshot or {}).get("alerts") if alerts is not None and type_ == "EXECUTION_STATE" else None
    # The alerts this change fires: their lines before it in the events (a final state ends the
    # streams), their webhooks once it is committed.
    for rule in firing(rules, row.state):
        row.last_event += 1
        s.add(ExecutionEventRow(execution=row.name, sequence=row.last_event, time=_now(), type="STAGE_LOG",
                                stage_id="", attempt=0, message=state_line(rule, row.name, row.state, message),
                                data={}, execution_state=row.state))
    row.last_event += 1
    s.add(ExecutionEventRow(execution=row.name, sequence=row.last_event, time=_now(), type=type_, stage_id=stage_id,
                            attempt=attempt, message=message, data=data or {}, execution_state=row.state))
    s.info.setdefault("publish", set()).add(row.name)
    if rules:
        s.info.setdefault("after_commit", []).append(partial(
            alerts.state_changed, row.project, row.name, rules, row.state, message, logged=True,
            pipeline=row.pipeline, trigger=row.trigger))


class _Attempt:
    """One attempt of one stage, running in a thread of its own."""

    def __init__(self, stage: definition.Stage, attempt: int, params: dict, deadline: float | None, cache_key: str):
        self.stage, self.attempt, self.params, self.deadline = stage, attempt, params, deadline
        self.cache_key = cache_key
        self.cancelled = threading.Event()
        self.timed_out = False
        self.outputs: dict | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


class _Executor(threading.Thread):
    def __init__(self, manager: PipelineManager, name: str):
        super().__init__(name=f"execution {names.short_id(name)}", daemon=True)
        self.m = manager
        self.execution = name
        self.stop = threading.Event()
        self.running: dict[str, _Attempt] = {}
        self.retry_at: dict[str, float] = {}

    def run(self) -> None:
        # Everything the execution names is checked against its own project (engine/tenancy.py).
        with tenancy.acting_for(names.project_of(self.execution)):
            self._run()

    def _run(self) -> None:
        try:
            row = self.m.get_execution(self.execution)
            self.stages = definition.parse_stages(row.snapshot["stages"], functions=self.m.functions)
            self.by_id = {s.id: s for s in self.stages}
            timeout = float(row.snapshot.get("timeout_seconds") or 0)
            started = _utc(row.create_time)
            self.deadline = started + timedelta(seconds=timeout) if timeout else None
            while not self.stop.is_set():
                if self._tick():
                    return
                self.stop.wait(TICK_SECONDS)
        except Exception as exc:  # noqa: BLE001 - a broken executor fails its execution, never the server
            self._finish(states.FAILED, f"the executor failed: {type(exc).__name__}: {exc}",
                         {"code": "INTERNAL", "message": str(exc)})
        finally:
            for attempt in self.running.values():  # server stopping: running stages stop; a restart re-attaches
                attempt.cancelled.set()

    def _tick(self) -> bool:
        row = self.m.get_execution(self.execution)
        if row.state in states.FINAL:
            return True
        self._collect(row)
        row = self.m.get_execution(self.execution)
        if row.state == states.CANCELLING:
            return self._wind_down(row, states.CANCELLED, "cancelled")
        if self.deadline is not None and _now() >= self.deadline:
            return self._wind_down(row, states.FAILED, "the pipeline's timeout was reached",
                                   {"code": "DEADLINE_EXCEEDED", "message": "the pipeline's timeout was reached"})
        for attempt in self.running.values():
            if attempt.deadline is not None and time.monotonic() >= attempt.deadline and not attempt.cancelled.is_set():
                attempt.timed_out = True
                attempt.cancelled.set()
        for stage in self.stages:
            info = row.stages[stage.id]
            if info["state"] in STAGE_FINAL or stage.id in self.running:
                continue
            if info["state"] == RUNNING:  # running in an earlier process: run it again, re-attaching
                self._start(row, stage, info["attempt"], resumed=True)
                continue
            if time.monotonic() < self.retry_at.get(stage.id, 0):
                continue
            deps = [row.stages[d]["state"] for d in stage.dependencies]
            if any(d not in STAGE_FINAL for d in deps):
                continue
            blocked = [d for d in stage.dependencies if row.stages[d]["state"] != SUCCEEDED]
            if blocked:
                self._skip(stage, f"dependency {blocked[0]} {row.stages[blocked[0]]['state'].lower()}")
                continue
            outputs = self._outputs(row)
            if stage.condition:
                holds, reason = definition.evaluate_condition(stage.condition, outputs)
                if not holds:
                    self._skip(stage, reason)
                    continue
            self._start(row, stage, info["attempt"] + 1)
        row = self.m.get_execution(self.execution)
        if all(row.stages[s.id]["state"] in STAGE_FINAL for s in self.stages) and not self.running:
            failed = [s.id for s in self.stages if row.stages[s.id]["state"] == FAILED]
            if failed:
                error = row.stages[failed[0]].get("error") or {}
                self._finish(states.FAILED, f"stage {failed[0]} failed: {error.get('message', '')}",
                             {"code": error.get("code", "ABORTED"),
                              "message": f"stage {failed[0]} failed: {error.get('message', '')}"})
            else:
                self._finish(states.COMPLETED, "every stage succeeded or was skipped")
            return True
        return False

    def _outputs(self, row: PipelineExecutionRow) -> dict[str, dict]:
        outputs = {sid: info.get("outputs") or {} for sid, info in row.stages.items()}
        outputs[definition.INPUT] = row.input or {}  # ${input.key}; no stage may be called "input"
        return outputs

    # ----- starting and finishing attempts

    def _start(self, row: PipelineExecutionRow, stage: definition.Stage, attempt: int, resumed: bool = False) -> None:
        outputs = self._outputs(row)
        try:
            params = definition.resolve(stage.parameters, outputs)
        except InvalidArgument as exc:
            self._settle(stage, attempt, FAILED, error={"code": "INVALID_ARGUMENT", "message": exc.message})
            return
        params = _runner_parameters(stage, params)
        key = definition.stage_cache_key(stage, params, CODE_VERSION)
        if stage.cache and not resumed:
            with self.m.writing, self.m._db.session() as s:
                hit = s.get(StageCacheRow, key)
            if hit is not None and not self._still_there(hit.outputs):
                with self.m.writing, self.m._db.session() as s:  # what it made was deleted since
                    s.delete(s.get(StageCacheRow, key))
                hit = None
            if hit is not None:
                self._settle(stage, attempt, SUCCEEDED, outputs=hit.outputs, cached=True,
                             message=f"reused the outputs of {hit.execution} (identical inputs and parameters)")
                return
        handles = row.stages[stage.id].get("handles") or {} if resumed else {}
        deadline = time.monotonic() + stage.timeout_seconds if stage.timeout_seconds else None
        run = _Attempt(stage, attempt, params, deadline, key)
        with self.m.writing, self.m._db.session() as s:
            current = s.get(PipelineExecutionRow, self.execution)
            info = dict(current.stages[stage.id])
            info.update(state=RUNNING, attempt=attempt, handles=handles)
            info.setdefault("start_time", _now().isoformat())
            current.stages = {**current.stages, stage.id: info}
            _event(s, current, "STAGE_STARTED", stage_id=stage.id, attempt=attempt,
                   message=("resumed after a restart" if resumed else f"attempt {attempt} of {stage.max_attempts}"),
                   data={"parameters": params})
        context = stage_runners.StageContext(
            engine=self.m._engine, project=row.project, execution=self.execution, stage_id=stage.id, attempt=attempt,
            log=lambda line, sid=stage.id, a=attempt: self._log(sid, a, line),
            metrics=lambda values, sid=stage.id, a=attempt: self._metrics(sid, a, values),
            cancelled=run.cancelled, make_spec=self.m.make_spec, functions=self.m.functions, handles=handles,
            remember=lambda h, sid=stage.id: self._remember(sid, h),
            # A server stop is not a cancel: the stage leaves its job to pause, and re-attaches later.
            stopping=self.stop)

        def work() -> None:
            triggers.RUNNING_PIPELINE.set(row.pipeline)  # what this stage makes does not trigger its pipeline
            try:
                with tenancy.acting_for(row.project):
                    run.outputs = stage_runners.run_stage(stage.type, params, context)
            except BaseException as exc:  # noqa: BLE001 - recorded and judged by the executor
                run.error = exc

        run.thread = threading.Thread(target=work, name=f"stage {stage.id}", daemon=True)
        self.running[stage.id] = run
        run.thread.start()

    def _still_there(self, outputs: dict[str, Any]) -> bool:
        """Whether the jobs, model versions and datasets cached outputs name still exist."""
        engine = self.m._engine
        lookups = (("training_job", engine.trainer.get_job), ("model_version", engine.models.get),
                   ("dataset", engine.data.get), ("train_dataset", engine.data.get),
                   ("test_dataset", engine.data.get))
        try:
            for key, get in lookups:
                if isinstance(outputs.get(key), str) and outputs[key]:
                    get(outputs[key])
        except (NotFound, InvalidArgument):
            return False
        return True

    def _collect(self, row: PipelineExecutionRow) -> None:
        for stage_id, run in list(self.running.items()):
            if run.thread.is_alive():
                continue
            del self.running[stage_id]
            stage = run.stage
            if run.error is None and run.outputs is not None:
                if stage.cache:
                    with self.m.writing, self.m._db.session() as s:
                        if s.get(StageCacheRow, run.cache_key) is None:
                            s.add(StageCacheRow(key=run.cache_key, project=row.project, outputs=run.outputs,
                                                execution=self.execution, stage_id=stage_id, create_time=_now()))
                self._settle(stage, run.attempt, SUCCEEDED, outputs=run.outputs)
                continue
            if isinstance(run.error, stage_runners.StageCancelled) and not run.timed_out:
                if self.stop.is_set():
                    continue  # the server is stopping: left RUNNING, re-attached after the restart
                self._settle(stage, run.attempt, CANCELLED, message="cancelled")
                continue
            message = (f"attempt {run.attempt} timed out after {stage.timeout_seconds:g} s" if run.timed_out
                       else _describe(run.error))
            code = "DEADLINE_EXCEEDED" if run.timed_out else getattr(run.error, "code", "ABORTED")
            if run.attempt < stage.max_attempts and row.state == states.RUNNING:
                delay = definition.retry_delay(stage, run.attempt + 1)
                self.retry_at[stage_id] = time.monotonic() + delay
                with self.m.writing, self.m._db.session() as s:
                    current = s.get(PipelineExecutionRow, self.execution)
                    info = {**current.stages[stage_id], "state": PENDING, "handles": {},
                            "error": {"code": code, "message": message}}
                    current.stages = {**current.stages, stage_id: info}
                    _event(s, current, "STAGE_RETRIED", stage_id=stage_id, attempt=run.attempt,
                           message=f"{message}; attempt {run.attempt + 1} in {delay:g} s",
                           data={"delay_seconds": delay})
                continue
            self._settle(stage, run.attempt, FAILED, error={"code": code, "message": message})

    def _settle(self, stage: definition.Stage, attempt: int, state: str, *, outputs: dict | None = None,
                error: dict | None = None, message: str = "", cached: bool = False, skip_reason: str = "") -> None:
        kinds = {SUCCEEDED: "STAGE_COMPLETED", FAILED: "STAGE_FAILED", SKIPPED: "STAGE_SKIPPED",
                 CANCELLED: "STAGE_FAILED"}
        with self.m.writing, self.m._db.session() as s:
            current = s.get(PipelineExecutionRow, self.execution)
            info = {**current.stages[stage.id], "state": state, "attempt": attempt, "end_time": _now().isoformat(),
                    "handles": {}, "cached": cached}
            if outputs is not None:
                info["outputs"] = outputs
            if error is not None:
                info["error"] = error
            elif state == SUCCEEDED:
                info.pop("error", None)
            if skip_reason:
                info["skip_reason"] = skip_reason
            current.stages = {**current.stages, stage.id: info}
            _event(s, current, kinds[state], stage_id=stage.id, attempt=attempt,
                   message=message or skip_reason or (error or {}).get("message", "") or state.lower(),
                   data={"outputs": outputs or {}, "cached": cached} if state == SUCCEEDED else {})

    def _skip(self, stage: definition.Stage, reason: str) -> None:
        self._settle(stage, 0, SKIPPED, skip_reason=reason)

    def _wind_down(self, row: PipelineExecutionRow, state: str, why: str, error: dict | None = None) -> bool:
        for run in self.running.values():
            run.cancelled.set()
        if self.running:
            return False  # their ends are collected on the next ticks
        for stage in self.stages:
            if row.stages[stage.id]["state"] not in STAGE_FINAL:
                self._settle(stage, row.stages[stage.id]["attempt"], CANCELLED, message=why)
        self._finish(state, why, error)
        return True

    def _finish(self, state: str, message: str, error: dict | None = None) -> None:
        with self.m.writing, self.m._db.session() as s:
            row = s.get(PipelineExecutionRow, self.execution)
            if row is None or row.state in states.FINAL:
                return
            row.state, row.state_message, row.error, row.end_time = state, message, error, _now()
            _event(s, row, "EXECUTION_STATE", message=message, data={"state": state}, alerts=self.m.alerts)

    # ----- what a running stage reports

    def _log(self, stage_id: str, attempt: int, line: str) -> None:
        with self.m.writing, self.m._db.session() as s:
            _event(s, s.get(PipelineExecutionRow, self.execution), "STAGE_LOG", stage_id=stage_id, attempt=attempt,
                   message=line)

    def _metrics(self, stage_id: str, attempt: int, values: dict[str, float]) -> None:
        with self.m.writing, self.m._db.session() as s:
            _event(s, s.get(PipelineExecutionRow, self.execution), "STAGE_METRICS", stage_id=stage_id,
                   attempt=attempt, data={"metrics": values})

    def _remember(self, stage_id: str, handles: dict[str, Any]) -> None:
        with self.m.writing, self.m._db.session() as s:
            current = s.get(PipelineExecutionRow, self.execution)
            info = {**current.stages[stage_id]}
            info["handles"] = {**(info.get("handles") or {}), **handles}
            current.stages = {**current.stages, stage_id: info}


def _describe(error: BaseException | None) -> str:
    if isinstance(error, ForgeError):
        return error.message
    return f"{type(error).__name__}: {error}" if error is not None else "the stage returned no outputs"
