"""Hyperparameter tuning: a search whose trials are ordinary training jobs.

A tuning job's controller (one thread per running tuning job) asks Optuna for the next
values, starts each trial as a training job with those values written into the base
request, feeds the pruner the trial's per-epoch objective from the job's metric journal
(cancelling a trial the pruner gives up on), and tells Optuna each final value. Grid points
are enqueued into the study in a seeded order, so pruning works the same for every
algorithm.

Everything lives in the metadata database: the tuning job, its trials (values, state,
objective, intermediate values) and its event stream. After a restart the controller
rebuilds the study from the trial rows (Optuna's in-memory study is a cache of them),
resumes trial jobs the shutdown paused, and carries on. The same values never run twice:
a repeated proposal is told the earlier result and not run.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import Any

from sqlalchemy import func, select

from engine import names, tenancy
from engine.alerts.dispatcher import Alerts
from engine.alerts.rules import read_rules
from engine.callbacks.early_stopping import default_mode, metric_key
from engine.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from engine.jobs import states
from engine.jobs.request import spec_from_request
from engine.jobs.spec import TrainingSpec
from engine.jobs.trainer import ModelTrainer
from engine.monitor.journal import Journal
from engine.paging import parse_filter
from engine.store.database import Database, add_new, fetch
from engine.store.models import TuningEventRow, TuningJobRow, TuningTrialRow
from engine.tuning import space as search_space

ALGORITHMS = ("grid", "random", "bayesian", "hyperband")
PRUNERS = ("none", "median", "successive_halving", "hyperband")
DEFAULT_MAX_TRIALS = 10
POLL_SECONDS = 0.25
# Proposals a sampler may repeat before the space counts as exhausted.
MAX_REPEATS = 50


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TuningManager:
    def __init__(self, db: Database, trainer: ModelTrainer, journal: Journal,
                 make_spec: Callable[[dict[str, Any]], TrainingSpec] | None = None):
        self._db = db
        self._trainer = trainer
        self._journal = journal
        # TrainingRequest JSON -> TrainingSpec: the engine's own reading, unless the server adds
        # its check against the proto first.
        self.make_spec = make_spec or spec_from_request
        self._controllers: dict[str, _Controller] = {}
        self._lock = threading.Lock()
        self.alerts: Alerts | None = None  # set by the Engine (engine/alerts)

    # ----- the API

    def start(self, project: str, tuning_id: str, spec: dict[str, Any]) -> TuningJobRow:
        self._trainer.check_enabled()
        tuning_id = names.validate_id(tuning_id, "tuning_job_id") if tuning_id else names.new_id("tune")
        if len(tuning_id) > 55:  # trial jobs are named <tuning id>-t<number>
            raise InvalidArgument.field("tuning_job_id", "is longer than 55 characters; trials add a suffix")
        name = names.make(project, "tuningJobs", tuning_id)
        settings = self._settings(project, spec)
        now = _now()
        row = TuningJobRow(name=name, project=project, spec=settings, state=states.RUNNING,
                           state_message="starting trials", create_time=now, start_time=now, last_event=0)
        with self._db.session() as s:
            add_new(s, row, name, f"tuning job {name} already exists: choose another tuning_job_id")
            _event(s, row, "started", alerts=self.alerts)
        self._launch(name)
        return self.get(name)[0]

    def get(self, name: str) -> tuple[TuningJobRow, list[TuningTrialRow]]:
        with self._db.session() as s:
            row = fetch(s, TuningJobRow, name, "tuning job")
            trials = list(s.scalars(select(TuningTrialRow).where(TuningTrialRow.tuning_job == name)
                                    .order_by(TuningTrialRow.number)))
        return row, trials

    def list(self, project: str, page_size: int, page_token: str, filter_: str):
        terms = parse_filter(filter_, {"state"})
        query = select(TuningJobRow).where(TuningJobRow.project == project)
        if "state" in terms:
            query = query.where(TuningJobRow.state == terms["state"].upper().removeprefix("JOB_STATE_"))
        page, token = self._db.page(query.order_by(TuningJobRow.create_time.desc(), TuningJobRow.name),
                                    page_size, page_token)
        return [(r, self.get(r.name)[1]) for r in page], token

    def cancel(self, name: str) -> TuningJobRow:
        with self._db.session() as s:
            row = fetch(s, TuningJobRow, name, "tuning job")
            if row.state in states.FINAL:
                return row
            row.state, row.state_message = states.CANCELLING, "cancelling: running trials are being cancelled"
            s.info.setdefault("publish", set()).add(name)
        self._launch(name)  # a controller finishes the cancel, also after a restart
        return self.get(name)[0]

    def events_after(self, name: str, after: int, limit: int) -> list[TuningEventRow]:
        with self._db.session() as s:
            return list(s.scalars(select(TuningEventRow).where(
                TuningEventRow.tuning_job == name, TuningEventRow.sequence > after)
                .order_by(TuningEventRow.sequence).limit(limit)))

    def state_of(self, name: str) -> str:
        return self.get(name)[0].state

    # ----- lifecycle

    def recover(self) -> None:
        """Carry on with the tuning jobs a previous server process left running."""
        with self._db.session() as s:
            active = [r.name for r in s.scalars(select(TuningJobRow).where(
                TuningJobRow.state.in_((states.RUNNING, states.CANCELLING))))]
        for name in active:
            self._launch(name)

    def shutdown(self) -> None:
        """Stop the controllers (the trial jobs pause with the trainer and resume after a restart)."""
        with self._lock:
            controllers = list(self._controllers.values())
        for controller in controllers:
            controller.stop.set()
        for controller in controllers:
            controller.join(10)

    def _launch(self, name: str) -> None:
        with self._lock:
            current = self._controllers.get(name)
            if current is not None and current.is_alive():
                return
            controller = self._controllers[name] = _Controller(self, name)
            controller.start()

    # ----- validation

    def _settings(self, project: str, spec: dict[str, Any]) -> dict[str, Any]:
        """The stored, validated form of a TuningSpec (JSON form, snake_case)."""
        base = spec.get("base_request")
        if not base:
            raise InvalidArgument.field("spec.base_request", "is required: the TrainingRequest every trial "
                                                             "starts from", "REQUIRED")
        parameters = search_space.parse_space(spec.get("parameters") or [])
        metric = str(spec.get("objective_metric") or "")
        if not metric:
            raise InvalidArgument.field("spec.objective_metric", "is required, e.g. 'accuracy' or 'val_loss'",
                                        "REQUIRED")
        goal = {"OBJECTIVE_GOAL_MAXIMIZE": "max", "OBJECTIVE_GOAL_MINIMIZE": "min"}.get(
            spec.get("goal", ""), default_mode(metric))
        grid_size = search_space.grid_size(parameters)
        algorithm = str(spec.get("algorithm", "")).removeprefix("SEARCH_ALGORITHM_").lower()
        if algorithm in ("", "unspecified"):
            algorithm = "grid" if grid_size is not None else "random"
        if algorithm not in ALGORITHMS:
            raise InvalidArgument.field("spec.algorithm", f"unknown algorithm {algorithm!r}")
        if algorithm == "grid":
            search_space.grid_space(parameters)  # refuses real ranges and oversized grids
        max_trials = int(spec.get("max_trials") or 0)
        if max_trials < 0:
            raise InvalidArgument.field("spec.max_trials", "must not be negative")
        if not max_trials:
            max_trials = grid_size if algorithm == "grid" else DEFAULT_MAX_TRIALS
        parallel = int(spec.get("parallel_trials") or 1)
        if parallel < 1:
            raise InvalidArgument.field("spec.parallel_trials", "must be at least 1")
        pruner = str(spec.get("pruner", "")).removeprefix("PRUNER_").lower()
        if pruner in ("", "unspecified"):  # hyperband is its own pruner; the others prune when asked to
            pruner = "hyperband" if algorithm == "hyperband" else "median" if spec.get("early_stop_trials") else "none"
        if pruner not in PRUNERS:
            raise InvalidArgument.field("spec.pruner", f"unknown pruner {pruner!r}")
        budget = float(spec.get("time_budget_seconds") or 0)
        if budget < 0:
            raise InvalidArgument.field("spec.time_budget", "must not be negative")
        # Every trial must be a valid job: check the request with the first point of the space.
        sample = {p.path: (p.values[0] if p.kind == "values" else
                           int(p.low) if p.kind == "int" else p.low) for p in parameters}
        trial_spec = self._trial_spec(base, sample, "spec.base_request")
        try:
            self._trainer.validate(project, trial_spec)
        except InvalidArgument as exc:
            raise _under(exc, "spec.base_request") from None
        alerts = read_rules(spec.get("alerts"), "spec.alerts", metrics=True)
        for index, rule in enumerate(alerts):
            if rule["metric"] and rule["metric"]["metric"] != "objective":
                raise InvalidArgument.field(f"spec.alerts[{index}].metric.metric", "a tuning job's alerts watch "
                                            "\"objective\", the best trial's objective so far")
        return {
            "alerts": alerts,
            "display_name": spec.get("display_name", ""), "base_request": base,
            "parameters": spec.get("parameters"), "algorithm": algorithm, "objective_metric": metric,
            "metric_key": metric_key(metric), "goal": goal, "max_trials": max_trials, "parallel_trials": parallel,
            "pruner": pruner, "seed": int(spec.get("seed") or 0), "time_budget_seconds": budget,
            "epochs": trial_spec.epochs,
        }

    def _trial_spec(self, base: dict[str, Any], values: dict[str, Any], field: str) -> TrainingSpec:
        request = search_space.apply(base, values)
        try:
            return self.make_spec(request)
        except InvalidArgument as exc:
            raise _under(exc, field) from None


def _under(exc: InvalidArgument, field: str) -> InvalidArgument:
    """The error of a trial's request with its field paths under the tuning spec's."""
    violations = [v.__class__(f"{field}.{v.field}", v.description, v.reason) for v in exc.violations] or \
        [FieldViolation(field, exc.message)]
    return InvalidArgument(f"{field}: {exc.message}", violations=violations)


def _event(s, row: TuningJobRow, kind: str, trial: TuningTrialRow | None = None, alerts: Alerts | None = None) -> None:
    row.last_event += 1
    s.add(TuningEventRow(tuning_job=row.name, sequence=row.last_event, time=_now(), kind=kind,
                         trial=trial_dict(trial) if trial is not None else {}, job_state=row.state))
    s.info.setdefault("publish", set()).add(row.name)
    rules = (row.spec or {}).get("alerts")
    if alerts is None or not rules:
        return
    # Once committed: the started and final events are state changes, a new best trial moves the objective.
    if kind == "new_best" and trial is not None and trial.objective_value is not None:
        fire = partial(alerts.metric_values, row.project, row.name, rules, {"objective": trial.objective_value},
                       trial=trial.number)
    elif kind == "started" or row.state in states.FINAL:
        fire = partial(alerts.state_changed, row.project, row.name, rules, row.state, row.state_message)
    else:
        return
    s.info.setdefault("after_commit", []).append(fire)
    if row.state in states.FINAL:  # its objective rule's memory goes with it
        s.info["after_commit"].append(partial(alerts.forget, row.name))


def trial_dict(t: TuningTrialRow) -> dict[str, Any]:
    return {"number": t.number, "parameters": t.parameters, "training_job": t.training_job, "state": t.state,
            "state_message": t.state_message, "objective_value": t.objective_value,
            "model_version": t.model_version, "epochs_trained": t.epochs_trained}


class _Controller(threading.Thread):
    """Runs one tuning job until it ends or the server stops."""

    def __init__(self, manager: TuningManager, name: str):
        super().__init__(name=f"tuning {names.short_id(name)}", daemon=True)
        self.m = manager
        self.name_ = name
        self.stop = threading.Event()
        self.study = None
        self.live: dict[int, Any] = {}  # trial number -> Optuna trial this process asked for
        self.seen: dict[int, int] = {}  # trial number -> last metric sequence read

    # ----- the loop

    def run(self) -> None:
        # The trials' requests name datasets: check them against the tuning job's own project.
        with tenancy.acting_for(names.project_of(self.name_)):
            self._run()

    def _run(self) -> None:
        try:
            row, trials = self.m.get(self.name_)
            self.settings = row.spec
            self.space = search_space.parse_space(self.settings["parameters"])
            self.study = self._rebuild(trials)
            self.grid = self._grid_order() if self.settings["algorithm"] == "grid" else []
            while not self.stop.is_set():
                if self._step():
                    return
                self.stop.wait(POLL_SECONDS)
        except Exception as exc:  # noqa: BLE001 - a broken search fails its tuning job, never the server
            self._finish(states.FAILED, f"tuning failed: {type(exc).__name__}: {exc}",
                         {"code": "INTERNAL", "message": str(exc)})

    def _step(self) -> bool:
        """One pass; True when the tuning job has ended."""
        row, trials = self.m.get(self.name_)
        if row.state in states.FINAL:
            return True
        running = [t for t in trials if t.state not in states.FINAL]
        for trial in running:
            self._follow(trial)
        row, trials = self.m.get(self.name_)
        running = [t for t in trials if t.state not in states.FINAL]
        if row.state == states.CANCELLING:
            return self._wind_down(running, states.CANCELLED, "cancelled")
        budget = self.settings["time_budget_seconds"]
        if budget and (_now() - row.start_time.replace(tzinfo=timezone.utc)).total_seconds() >= budget:
            return self._wind_down(running, states.COMPLETED, f"time budget of {budget:g} s reached")
        exhausted = False
        while len(running) < self.settings["parallel_trials"] and len(trials) < self.settings["max_trials"]:
            trial = self._start_next(len(trials))
            if trial is None:
                exhausted = True
                break
            trials.append(trial)
            running.append(trial)
        if not running and (len(trials) >= self.settings["max_trials"] or exhausted):
            why = "every combination has been tried" if exhausted else f"{len(trials)} trials run"
            self._finish(states.COMPLETED, why)
            return True
        return False

    def _wind_down(self, running: list[TuningTrialRow], state: str, why: str) -> bool:
        for trial in running:
            try:
                self.m._trainer.cancel(trial.training_job)
            except (FailedPrecondition, NotFound):
                pass  # already ending
        if running:
            return False  # their final states are recorded on the next passes
        self._finish(state, why)
        return True

    # ----- trials

    def _start_next(self, number: int) -> TuningTrialRow | None:
        """Ask for new values and start their trial; None when no new values are left."""
        import optuna

        tried = {t.parameters_key: t for t in self.m.get(self.name_)[1]}
        for _ in range(MAX_REPEATS):
            if self.grid:
                while self.grid and search_space.parameters_key(self.grid[0]) in tried:
                    self.grid.pop(0)
                if not self.grid:
                    return None
                self.study.enqueue_trial(self._internal(self.grid.pop(0)))
            elif self.settings["algorithm"] == "grid":
                return None
            optuna_trial = self.study.ask()
            values = {p.path: p.suggest(optuna_trial) for p in self.space}
            key = search_space.parameters_key(values)
            earlier = tried.get(key)
            if earlier is None:
                break
            # The same values again: tell the sampler what they gave, and ask once more.
            if earlier.objective_value is not None:
                self.study.tell(optuna_trial, earlier.objective_value)
            else:
                self.study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)
        else:
            return None
        return self._launch_trial(number, values, key, optuna_trial)

    def _launch_trial(self, number: int, values: dict[str, Any], key: str, optuna_trial) -> TuningTrialRow:
        row = self.m.get(self.name_)[0]
        tuning_id = names.short_id(self.name_)
        spec = self.m._trial_spec(self.settings["base_request"], values, "spec.base_request")
        spec.labels = {**spec.labels, "tuning_job": tuning_id, "trial": str(number)}
        job_id = f"{tuning_id}-t{number:03d}"
        trial = TuningTrialRow(tuning_job=self.name_, number=number, parameters=values, parameters_key=key,
                               training_job=names.make(row.project, "trainingJobs", job_id),
                               state=states.PENDING, state_message="", intermediate={})
        try:
            self.m._trainer.start_training(row.project, job_id, spec)
        except Exception as exc:  # noqa: BLE001 - a trial that cannot start fails alone
            trial.state, trial.state_message = states.FAILED, f"could not start: {exc}"
            self.study.tell(optuna_trial, state=_failed())
            with self.m._db.session() as s:
                s.add(trial)
                _event(s, s.get(TuningJobRow, self.name_), "trial_failed", trial)
            return trial
        self.live[number] = optuna_trial
        with self.m._db.session() as s:
            s.add(trial)
            _event(s, s.get(TuningJobRow, self.name_), "trial_started", trial)
        return trial

    def _follow(self, trial: TuningTrialRow) -> None:
        """Bring a running trial up to date with its job: intermediate values, pruning, its end."""
        import optuna

        try:
            job = self.m._trainer.get_job(trial.training_job)
        except NotFound:
            job = None
        metric = self.settings["metric_key"]
        intermediate = dict(trial.intermediate or {})
        pruned = trial.state_message.startswith("pruned")
        live = self.live.get(trial.number)
        if job is not None:
            after = int(max(intermediate, key=int, default=0))
            points = self.m._journal.metrics_after(job.name, self.seen.get(trial.number, 0), 10_000)
            if points:
                self.seen[trial.number] = points[-1]["sequence"]
            for point in points:
                value = _metric(point, metric)
                epoch = int(point.get("epoch") or 0)
                if value is None or epoch <= after:
                    continue
                intermediate[str(epoch)] = value
                if live is not None and not pruned and self.settings["pruner"] != "none":
                    live.report(value, epoch)
                    if job.state not in states.FINAL and live.should_prune():
                        pruned = True
                        best = self._best_value()
                        trial.state_message = f"pruned at epoch {epoch}: {self.settings['objective_metric']} " \
                                              f"{value:.4g}" + (f" (best so far {best:.4g})" if best is not None else "")
                        try:
                            self.m._trainer.cancel(job.name)
                        except FailedPrecondition:
                            pass
            if job.state == states.PAUSED and not pruned:
                self.m._trainer.resume(job.name)  # paused by a server shutdown: the search carries on
        state = job.state if job is not None else states.FAILED
        update: dict[str, Any] = {"intermediate": intermediate, "state_message": trial.state_message,
                                  "epochs_trained": int(job.current_epoch or 0) if job is not None else 0}
        kind = ""
        if state in states.FINAL:
            final = _metric(job.latest_metrics or {}, metric) if job is not None and state == states.COMPLETED \
                else None
            if state == states.COMPLETED and final is not None:
                update.update(state=states.COMPLETED, objective_value=final,
                              model_version=(job.model_info or {}).get("model_version", ""),
                              state_message="completed")
                kind = "trial_completed"
                self._tell(trial, live, value=final)
            elif pruned:
                update.update(state=states.CANCELLED, objective_value=None)
                kind = "trial_pruned"
                self._tell(trial, live, state=optuna.trial.TrialState.PRUNED, intermediate=intermediate)
            else:
                why = (job.state_message if job is not None else "its training job was deleted") or state.lower()
                if state == states.COMPLETED:
                    why = f"the job reported no {self.settings['objective_metric']}"
                update.update(state=states.CANCELLED if state == states.CANCELLED else states.FAILED,
                              state_message=why)
                kind = "trial_failed" if state != states.CANCELLED else "trial_cancelled"
                self._tell(trial, live, state=optuna.trial.TrialState.FAIL)
        elif job is not None and job.state != trial.state:
            update["state"] = job.state
        with self.m._db.session() as s:
            current = s.get(TuningTrialRow, (self.name_, trial.number))
            changed = any(getattr(current, k) != v for k, v in update.items())
            for k, v in update.items():
                setattr(current, k, v)
            row = s.get(TuningJobRow, self.name_)
            if kind:
                _event(s, row, kind, current)
                if kind == "trial_completed" and self._is_best(current, s):
                    row.best_trial_id = str(current.number)
                    _event(s, row, "new_best", current, alerts=self.m.alerts)
            elif changed:
                s.info.setdefault("publish", set()).add(self.name_)

    # ----- Optuna

    def _tell(self, trial: TuningTrialRow, live, **result) -> None:
        self.live.pop(trial.number, None)
        if live is not None:
            result.pop("intermediate", None)
            if "value" in result:
                self.study.tell(live, result["value"])
            else:
                self.study.tell(live, state=result["state"])
        else:  # started by an earlier server process: add it as a finished trial
            self._add_finished(trial.parameters, result.get("value"), result.get("state"),
                               result.get("intermediate") or trial.intermediate)

    def _rebuild(self, trials: list[TuningTrialRow]):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = self.settings["seed"]
        sampler = {"bayesian": lambda: optuna.samplers.TPESampler(seed=seed),
                   }.get(self.settings["algorithm"], lambda: optuna.samplers.RandomSampler(seed=seed))()
        epochs = max(1, int(self.settings.get("epochs") or 1))
        pruner = {
            "none": optuna.pruners.NopPruner,
            "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, self.settings["max_trials"] // 4)),
                                                          n_warmup_steps=1),
            "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs),
        }[self.settings["pruner"]]()
        direction = "maximize" if self.settings["goal"] == "max" else "minimize"
        study = optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)
        self.study = study
        for t in trials:
            if t.state == states.COMPLETED and t.objective_value is not None:
                self._add_finished(t.parameters, t.objective_value, None, t.intermediate)
            elif t.state in states.FINAL:
                state = optuna.trial.TrialState.PRUNED if t.state_message.startswith("pruned") \
                    else optuna.trial.TrialState.FAIL
                self._add_finished(t.parameters, None, state, t.intermediate)
        return study

    def _add_finished(self, values: dict[str, Any], value: float | None, state, intermediate: dict) -> None:
        import optuna

        distributions = {p.path: _distribution(p) for p in self.space}
        params = self._internal(values)
        self.study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, value=value,
            state=optuna.trial.TrialState.COMPLETE if value is not None else state,
            intermediate_values={int(k): float(v) for k, v in (intermediate or {}).items()}))

    def _internal(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values as Optuna holds them: the index for choices that are not plain scalars."""
        out = {}
        for p in self.space:
            v = values[p.path]
            if p.kind == "values" and not all(x is None or isinstance(x, (bool, int, float, str)) for x in p.values):
                v = next(i for i, x in enumerate(p.values) if x == v)
            out[p.path] = v
        return out

    def _grid_order(self) -> list[dict[str, Any]]:
        points = search_space.grid_points(self.space)
        random.Random(self.settings["seed"]).shuffle(points)
        return points

    def _best_value(self) -> float | None:
        try:
            return float(self.study.best_value)
        except ValueError:
            return None

    def _is_best(self, trial: TuningTrialRow, s) -> bool:
        better = func.max if self.settings["goal"] == "max" else func.min
        best = s.scalar(select(better(TuningTrialRow.objective_value)).where(
            TuningTrialRow.tuning_job == self.name_, TuningTrialRow.state == states.COMPLETED))
        return best is not None and trial.objective_value == best

    def _finish(self, state: str, message: str, error: dict | None = None) -> None:
        with self.m._db.session() as s:
            row = s.get(TuningJobRow, self.name_)
            if row is None or row.state in states.FINAL:
                return
            row.state, row.state_message, row.error, row.end_time = state, message, error, _now()
            _event(s, row, state.lower(), alerts=self.m.alerts)


def _metric(point: dict[str, Any], key: str) -> float | None:
    value = point.get(key)
    if value is None:
        value = (point.get("extra") or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _distribution(p: search_space.Parameter):
    import optuna

    if p.kind == "values":
        scalar = all(x is None or isinstance(x, (bool, int, float, str)) for x in p.values)
        return optuna.distributions.CategoricalDistribution(list(p.values) if scalar else list(range(len(p.values))))
    if p.kind == "int":
        return optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log)
    return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)


def _failed():
    import optuna

    return optuna.trial.TrialState.FAIL
