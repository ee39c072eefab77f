"""The worker process: trains one job, one epoch at a time.

It runs in a process of its own, used for that one job, so a crash or a runaway framework
never touches the server: a warm worker forked from the warm template with the frameworks
already imported (wait_for_job), or one started with multiprocessing's "spawn" method (main)
when no warm worker is free (supervisor.py). It talks to its supervisor over a duplex pipe:
it sends ("kind", payload) messages and, between epochs, reads "pause" and "cancel"
commands. Checkpoints and artifacts are written here, atomically, and only their paths and
checksums travel over the pipe.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from engine.errors import ForgeError, ResourceExhausted, error_of

# A full disk, or its cousins: the checkpoint could not be written for lack of room.
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# Added to the worker's niceness: lower CPU priority than the server that started it.
WORKER_NICENESS = 10


# The best fold's model so far, kept for validation.cross_validation.final_model "best_fold"
# (one file per fold that was the best when it ended: the one the progress names always exists).
CV_BEST = "cv-best-fold-{fold}.ckpt"
# A fine-tuning job's copy of the model it starts from, beside its checkpoints.
PARENT_COPY = "parent.ckpt"
# The name training_config.early_stopping's callback goes by (in checkpoints' callback states).
EARLY_STOPPING = "training_config.early_stopping"


class _ServerGone(Exception):
    """The server that started this worker is gone (killed): nobody is left to report to, and
    the restarted server resumes the job from its checkpoint."""


class _Channel:
    def __init__(self, conn, parent_is_server: bool):
        self._conn = conn
        # A warm worker's parent is the warm template; a closed pipe tells it the server is gone.
        self._server = os.getppid() if parent_is_server else None
        self._held: list[tuple[str, Any]] | None = None

    # The worker that writes checkpoints and artifacts: the only one, unless data-parallel.
    primary = True

    def send(self, kind: str, payload: Any = None) -> None:
        if self._held is not None:
            self._held.append((kind, payload))
            return
        try:
            self._conn.send((kind, payload))
        except ConnectionError:
            raise _ServerGone("the server that started this worker is gone") from None

    @contextmanager
    def together(self) -> Iterator[None]:
        """What is sent inside goes as one message, in order, when the block ends (even by an
        exception): the server wakes once per epoch and records its point and log lines in one
        transaction, which on 2 cores is time given back to the training."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            if held:
                self.send("batch", held)

    def log(self, message: str, level: str = "info", epoch: int = 0) -> None:
        self.send("log", [(level, message, epoch)])

    @staticmethod
    def agree(decision: Any) -> Any:
        """The decision all of a job's workers act on: with one worker, its own."""
        return decision

    def command(self) -> str | None:
        """The last command waiting, if any ("cancel" wins over "pause"). A worker whose server
        died (kill -9) stops here: the restarted server resumes its job from the checkpoint."""
        if self._server is not None and os.getppid() != self._server:
            raise _ServerGone("the server that started this worker is gone")
        latest = None
        try:
            while self._conn.poll():
                kind = self._conn.recv()
                if latest != "cancel":
                    latest = kind
        except (EOFError, ConnectionError):  # the server's end of the pipe closed with it
            raise _ServerGone("the server that started this worker is gone") from None
        return latest


class _RankChannel:
    """The channel of one of a data-parallel job's workers (resources.workers > 1): rank 0
    talks to the server, the others say nothing; every rank acts on the same command at the
    same epoch (rank 0's, broadcast), so they stop, pause or go on together."""

    def __init__(self, channel: _Channel | None, rank: int, world: int, collective: str):
        self._channel = channel
        self.primary = rank == 0
        self.rank, self.world = rank, world
        self._collective = collective  # "torch" or "xgboost" (FrameworkAdapter.data_parallel)

    def send(self, kind: str, payload: Any = None) -> None:
        if self.primary:
            self._channel.send(kind, payload)

    def log(self, message: str, level: str = "info", epoch: int = 0) -> None:
        if self.primary:
            self._channel.log(message, level, epoch)

    def together(self):
        return self._channel.together() if self.primary else nullcontext()

    def agree(self, decision: Any) -> Any:
        """Rank 0's decision, on every rank: whether to stop must never differ between workers
        (one that stopped alone would leave the others waiting in a collective), even where
        their metrics differ in the last bit (GPU reductions)."""
        if self._collective == "xgboost":
            import xgboost.collective

            # Boxed: the root may not broadcast None (no command waiting is None).
            return xgboost.collective.broadcast((decision,) if self.primary else None, 0)[0]
        import torch.distributed as dist

        decided = [decision if self.primary else None]
        dist.broadcast_object_list(decided, src=0)
        return decided[0]

    def command(self) -> str | None:
        return self.agree(self._channel.command() if self.primary else None)


def _become_worker(niceness: int) -> None:
    # Ctrl-C reaches the whole process group and service managers signal every process of a
    # service: the worker leaves it to its supervisor, which pauses (or kills) it on shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Training takes every core it can get; where it and the server want the same cores, the
    # server's event loop (every call and stream waits on it) goes first (bench/load.py).
    os.nice(max(0, niceness - os.nice(0)))


def main(payload: dict[str, Any], conn) -> None:
    """Entry point of a freshly spawned worker."""
    _become_worker(os.nice(0) + WORKER_NICENESS)
    _run(payload, conn, _Channel(conn, parent_is_server=True))


def wait_for_job(conn, niceness: int) -> None:
    """Entry point of a warm worker: forked from the warm template with the frameworks
    imported, it waits for its one job, given with the server's environment and working
    directory of the moment (a spawned worker's would be those). A closed pipe instead means
    the pool stopped or the server is gone: it exits."""
    # Idle, it has nothing to lose: SIGTERM (e.g. multiprocessing's at interpreter exit) ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.nice(max(0, niceness - os.nice(0)))
    try:
        job = conn.recv()
    except (EOFError, OSError):
        return
    _become_worker(niceness)
    os.environ.clear()
    os.environ.update(job["environ"])
    os.chdir(job["cwd"])
    _run(job["payload"], conn, _Channel(conn, parent_is_server=False))


def run_job(payload: dict[str, Any], conn) -> None:
    """Entry point of a worker that some other executor started (a Ray task): `conn` has a
    pipe's send, poll and recv, and the executor tells the server when the worker is gone."""
    _run(payload, conn, _Channel(conn, parent_is_server=False))


def run_rank(payload: dict[str, Any], conn, rank: int, world: int, collective: str) -> None:
    """Entry point of one of a data-parallel job's workers, in its initialised collective
    (`collective`: "torch", a torch.distributed group under Ray Train's TorchTrainer, or
    "xgboost", XGBoost's collective under its XGBoostTrainer); `conn` (rank 0's only) is as
    run_job's. A failure is raised, not reported: the group stops instead of waiting on the
    failed worker, and the driver, which sees every worker's failure, tells a lost worker
    (retried) from an error."""
    channel = _Channel(conn, parent_is_server=False) if rank == 0 else None
    _run(payload, conn, _RankChannel(channel, rank, world, collective), reraise=True)


def _run(payload: dict[str, Any], conn, channel: _Channel | _RankChannel, reraise: bool = False) -> None:
    current_epoch = [0]

    def _forward_warning(message, category, filename, lineno, file=None, line=None):
        channel.log(f"{category.__name__}: {message}", "warning", current_epoch[0])

    warnings.showwarning = _forward_warning
    try:
        _train(payload, channel, current_epoch)
    except _ServerGone as exc:
        raise SystemExit(str(exc)) from None
    except ForgeError as exc:
        if reraise:
            raise
        channel.send("failed", {"code": exc.code, "message": exc.message})
    except BaseException as exc:  # the job fails; the supervisor records why
        if reraise:
            raise
        channel.log("".join(traceback.format_exception(exc)).rstrip(), "error", current_epoch[0])
        channel.send("failed", {"code": "INTERNAL", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        if conn is not None:
            conn.close()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _train(payload: dict[str, Any], channel: _Channel, current_epoch: list[int]) -> None:
    # Imported here, after spawn, so the parent never pays for them on the event loop.
    from engine.callbacks.early_stopping import EarlyStopping, default_mode, metric_key
    from engine.callbacks.registry import build as build_callbacks
    from engine.data.training_data import build_training_data, load_arrays
    from engine.frameworks.metrics import metric_reference, task_metrics
    from engine.frameworks.registry import get_adapter
    from engine.jobs import cross_validation as cv
    from engine.jobs.spec import TrainingSpec
    from engine.monitor.resources import ResourceSampler
    from engine.storage import checkpoint
    from engine.storage.files import read_verified, verify, write_bytes_atomic

    spec = TrainingSpec.from_dict(payload["spec"])
    datasets = payload["datasets"]
    checkpoint_dir = Path(payload["checkpoint_dir"])
    resume = payload.get("resume")
    sampler = ResourceSampler()

    channel.log(f"worker {os.getpid()} started (attempt {payload.get('attempt', 1)})")
    store = _store(payload)
    for part in ("train", "validation", "test"):
        if datasets.get(part):
            store.restore(datasets[part].get("stored"), datasets[part]["path"])  # e.g. a Ray node without it
            verify(datasets[part]["path"], datasets[part]["sha256"])
    adapter = get_adapter(spec.framework)
    data = build_training_data(
        spec, datasets["train"]["path"], datasets["validation"]["path"] if datasets.get("validation") else None
    )
    parallel = spec.resources.workers > 1
    all_rows = len(data.X_train)
    if parallel:
        data = adapter.worker_share(data, channel.rank, channel.world)
    share = f" (this worker's share of {all_rows})" if len(data.X_train) != all_rows else ""
    channel.log(
        f"data: {len(data.X_train)} training rows{share}, "
        f"{0 if data.X_val is None else len(data.X_val)} validation rows, {len(data.feature_names)} features"
    )

    # Forecasters and recommenders are also judged as forecasts (MASE...) and rankings (NDCG...),
    # against a reference taken from the rows the run in hand trains on (set with that run below:
    # the primary's share when data-parallel; a fold's own rows in cross-validation).
    task = spec.model_type if spec.model_type in ("forecasting", "recommendation") else ""
    reference: dict[str, float] = {}

    def judged(X: Any, y: Any) -> dict[str, float]:
        return task_metrics(task, X, y, run.predict(X).values, reference) if task else {}

    monitor = metric_key(spec.checkpoints.monitor_metric or "val_loss")
    monitor_mode = default_mode(monitor)
    tracker: dict[str, Any] = {"best": None, "best_epoch": 0}
    # The callbacks run after each epoch, in order: training_config.early_stopping, then the
    # request's by priority (engine/callbacks/registry.py).
    callbacks: list[tuple[str, Any]] = []
    if spec.early_stopping.enabled:
        callbacks.append((EARLY_STOPPING, EarlyStopping(
            metric=spec.early_stopping.metric or "val_loss", patience=spec.early_stopping.patience,
            mode=spec.early_stopping.mode, min_delta=spec.early_stopping.min_delta,
            restore_best=spec.early_stopping.restore_best)))
    callbacks += build_callbacks(spec.callbacks, payload.get("callback_classes") or {})
    # The first early stopping that restores the best epoch's weights decides which epoch that is.
    restorer = next((cb for _, cb in callbacks if getattr(cb, "restore_best", False)), None)

    versions = adapter.versions()
    # With what it was trained on, so a checkpoint can start a fine-tuning job that checks its data.
    manifest = {"framework": spec.framework, "architecture": spec.architecture, "versions": versions,
                "job": payload["job"], "task": spec.model_type, "features": list(data.feature_names),
                "classes": [str(c) for c in data.classes or []]}
    # Cross-validation (engine/jobs/cross_validation.py): phases 1..folds train the folds, phase 0
    # the final model; the job's epochs count on across them. Without it, phase 0 is all there is.
    cv_spec = spec.cross_validation
    splits = cv.split(cv_spec, spec.model_type, data.X_train, data.y_train) if cv_spec.enabled else []
    # phase, the epoch before its first, the finished folds' results, whether the phase is over
    # (the next run starts at the next epoch), the best fold so far, the planned total.
    progress: dict[str, Any] = {"phase": 1 if splits else 0, "start": 0, "folds": [], "over": False,
                                "best": None, "total": None}
    parent: list[bytes] = []  # the fine-tuned model's state, read when a run first needs it

    def parent_state() -> bytes:
        if not parent:
            parent.append(_parent_state(spec, data, store, checkpoint_dir, payload.get("checkpoint_key")))
        return parent[0]

    def phase_data(phase: int) -> Any:
        return cv.fold_data(data, *splits[phase - 1]) if phase else data

    def new_run(phase: int) -> Any:
        if spec.pretrained:  # every fold, and the final model, start from the parent (after a resume too)
            return adapter.fine_tune_run(spec, phase_data(phase), parent_state())
        return adapter.create_run(spec, phase_data(phase))

    if resume:
        saved, state, resume = _readable_checkpoint(store, resume, checkpoint_dir, channel)
        if saved.get("framework") != spec.framework:
            raise RuntimeError(f"checkpoint of epoch {resume['epoch']} was written by {saved.get('framework')!r}, "
                               f"not {spec.framework!r}")
        epoch = int(resume["epoch"])
        saved_tracker = resume.get("tracker", {})
        # An older checkpoint read instead of a damaged one has no tracker: its file says its phase.
        progress.update(saved_tracker.get("cv") or saved.get("cv") or {})
        run = adapter.load_run(spec, phase_data(progress["phase"]), state)
        tracker.update(saved_tracker.get("best", {}))
        states = {EARLY_STOPPING: saved_tracker.get("early_stopping", {}), **saved_tracker.get("callbacks", {})}
        for name, callback in callbacks:
            callback.load_state_dict(states.get(name) or {})
        channel.log(f"resumed from the checkpoint of epoch {epoch}")
    else:
        run = new_run(progress["phase"])
        epoch = 0
        if spec.pretrained:
            frozen = f", layers {', '.join(spec.frozen_layers)} frozen" if spec.frozen_layers else ""
            channel.log(f"fine-tuning {spec.pretrained['source']}{frozen}")
    if splits and progress["total"] is None:
        per_phase = run.total_epochs
        progress["total"] = per_phase * (len(splits) + (cv_spec.final_model == "all_data"))
        channel.log(f"cross-validation: {len(splits)} folds of {per_phase} epochs each, then "
                    + ("the final model on all the training rows" if cv_spec.final_model == "all_data"
                       else "the best fold's model is the job's"))
    if parallel:
        run.data_parallel()  # with the other workers of its collective
        how = "DistributedDataParallel" if adapter.data_parallel == "torch" else "XGBoost's collective"
        channel.log(f"training on {spec.resources.workers} data-parallel workers ({how})")
    total = progress["total"] or run.total_epochs
    channel.send("started", {"total_epochs": total, "start_epoch": epoch, "versions": versions})
    current = phase_data(progress["phase"])  # the data the run in hand trains and validates on
    reference = metric_reference(spec.model_type, current.X_train, current.y_train)  # a fold's: none of its own
    cv_metric = metric_key(cv_spec.metric or spec.checkpoints.monitor_metric or "val_loss")

    def tracker_state() -> dict[str, Any]:
        return {"best": dict(tracker), "callbacks": {name: callback.state_dict() for name, callback in callbacks},
                "cv": dict(progress)}

    def checkpoint_bytes(at_epoch: int) -> bytes:
        phase = {"cv": dict(progress)} if splits else {}  # which fold's run the state is
        return checkpoint.pack(run.state_bytes(), {**manifest, "epoch": at_epoch, **phase})

    written = [epoch]  # the epoch of the newest checkpoint on disk (0: none)

    def write_checkpoint(path: Path, at_epoch: int) -> tuple[int, str]:
        """Written atomically (temporary file, fsync, rename): a write that fails, e.g. on a full
        disk, leaves the checkpoints already there untouched. Data-parallel workers hold the
        same weights: the primary alone writes them."""
        if not channel.primary:
            return 0, ""
        try:
            return write_bytes_atomic(path, checkpoint_bytes(at_epoch))
        except OSError as exc:
            if exc.errno not in _NO_ROOM:
                raise
            previous = (f"the previous checkpoint (epoch {written[0]}) is intact" if written[0]
                        else "no earlier checkpoint was written")
            raise ResourceExhausted(f"{os.strerror(exc.errno).lower()} while writing the checkpoint of epoch "
                                    f"{at_epoch} to {path.parent}; {previous}; free space there and start the "
                                    "job again") from exc

    def save_checkpoint(at_epoch: int) -> dict[str, Any]:
        path = checkpoint_dir / f"epoch-{at_epoch:06d}.ckpt"
        size, digest = write_checkpoint(path, at_epoch)
        written[0] = at_epoch
        # Older checkpoints are pruned by the server once it has recorded this one
        # (ModelTrainer._prune_checkpoints): a worker whose server was just killed may run a few
        # more epochs before it notices, and must not delete the checkpoint the restarted server
        # resumes from.
        info = {"epoch": at_epoch, "path": str(path), "sha256": digest, "size_bytes": size, "tracker": tracker_state()}
        if payload.get("checkpoint_key") and digest:  # an object store: a copy where any machine finds it
            try:
                info["uri"] = store.put_file(path, f"{payload['checkpoint_key']}/{path.name}", size, digest)["uri"]
            except Exception as exc:  # the store is down: training goes on, the local copy still resumes here
                channel.log(f"the checkpoint of epoch {at_epoch} is only in the data dir: storing it in "
                            f"{store.config.describe()} failed ({exc})", "warning")
        channel.send("checkpoint", info)
        return info

    stop_reason = ""
    best_state: tuple[int, bytes] | None = None  # (epoch, state) for early stopping's restore_best
    while epoch < total:
        command = channel.command()
        if command == "cancel":
            channel.send("cancelled", {"epoch": epoch})
            return
        if command == "pause":
            info = save_checkpoint(epoch)
            channel.send("paused", info)
            return
        if progress["over"]:  # the fold before is done: the next phase's run starts here
            phase = progress["phase"] + 1 if progress["phase"] < len(splits) else 0
            progress.update(phase=phase, start=epoch, over=False)
            current, run = phase_data(phase), new_run(phase)
            reference = metric_reference(spec.model_type, current.X_train, current.y_train)
            channel.log(f"cross-validation: fold {phase} of {len(splits)}" if phase else
                        "cross-validation done: training the final model on all the training rows", "info", epoch + 1)
        fold = progress["phase"]  # 0: the final model (or no cross-validation)
        epoch += 1
        current_epoch[0] = epoch
        started = time.monotonic()
        result = run.train_epoch(epoch - progress["start"])  # what it logs meanwhile (warnings) goes out at once
        seconds = time.monotonic() - started
        # The epoch's log lines, point and checkpoint reach the server as one message.
        with channel.together():
            for line in result.logs:
                channel.log(line, "info", epoch)
            metrics = {k: float(v) for k, v in result.metrics.items() if _finite(v)}
            extra = dict(result.extra)
            if channel.primary and current.X_val is not None and len(current.X_val):
                extra.update(judged(current.X_val, current.y_val))
            # What callbacks and the best-epoch tracking see: every finite value the epoch measured.
            observed = {**{k: float(v) for k, v in extra.items() if _finite(v)}, **metrics, "epoch_seconds": seconds}
            cv_summary = None
            if splits:
                extra["cv_fold"] = fold
            if fold and (epoch - progress["start"] >= run.total_epochs or result.finished):
                if epoch - progress["start"] < run.total_epochs:  # converged early: the fold ends here
                    total -= run.total_epochs - (epoch - progress["start"])
                    progress["total"] = total
                progress["folds"].append({"fold": fold, "train_rows": len(current.X_train),
                                          "validation_rows": len(current.X_val), "metrics": cv.fold_metrics(observed)})
                cv_summary = cv.summary(cv_spec, progress["folds"], cv_metric, default_mode(cv_metric))
                extra.update(cv.point_extras(cv_summary, fold, last=fold == len(splits)))
                if cv_spec.final_model == "best_fold" and cv_summary["best_fold"] == fold:
                    best_file = checkpoint_dir / CV_BEST.format(fold=fold)
                    size, digest = write_checkpoint(best_file, epoch)
                    progress.update(best=fold, best_sha256=digest)
                    if payload.get("checkpoint_key") and digest:  # where another machine finds it
                        try:
                            store.put_file(best_file, f"{payload['checkpoint_key']}/{best_file.name}", size, digest)
                        except Exception as exc:
                            channel.log(f"the best fold's model is only in the data dir: storing it failed ({exc})",
                                        "warning", epoch)
                progress["over"] = True
            value = observed.get(monitor) if not fold else None  # the final model's best epoch
            if value is not None:
                best = tracker["best"]
                better = best is None or (value < best if monitor_mode == "min" else value > best)
                if better:
                    tracker["best"], tracker["best_epoch"] = value, epoch
                    if spec.checkpoints.save_best:
                        write_checkpoint(checkpoint_dir / "best.ckpt", epoch)
            point: dict[str, Any] = {
                "epoch": epoch,
                "total_epochs": total,
                "progress": epoch / total,
                **metrics,
                "resource_usage": sampler.sample(),
                "extra": {k: float(v) for k, v in extra.items() if _finite(v)},
                "epoch_seconds": seconds,
            }
            if tracker["best"] is not None and monitor in ("validation_loss", "training_loss"):
                point["best_loss"] = tracker["best"]
                point["best_epoch"] = tracker["best_epoch"]
            elif tracker["best"] is not None:
                point["extra"][f"best_{monitor}"] = tracker["best"]
                point["best_epoch"] = tracker["best_epoch"]
            failure = None
            for name, callback in callbacks if not fold else ():  # callbacks judge the final model
                try:
                    if callback.after_epoch(epoch, observed) and not stop_reason:
                        stop_reason = callback.stop_reason or f"callback {name!r} stopped the job"
                except ForgeError as exc:  # e.g. metric_threshold's "fail"
                    failure = (exc.code, exc.message)
                    break
                except Exception as exc:  # a registered callback's own error fails the job, naming it
                    channel.log("".join(traceback.format_exception(exc)).rstrip(), "error", epoch)
                    failure = ("INTERNAL", f"callback {name!r} raised {type(exc).__name__}: {exc}")
                    break
            if restorer is not None and restorer.best_epoch == epoch and not fold:
                best_state = (epoch, run.state_bytes())
            # The epoch's metrics go before its checkpoint: a worker killed between the two is
            # resumed from the checkpoint before and trains this epoch again, whose replayed point
            # is dropped. The other order would lose this epoch's point for good.
            channel.send("metrics", point)
            if cv_summary is not None and fold == len(splits):
                channel.send("cross_validation", cv_summary)
                channel.log(_cv_line(cv_summary), "info", epoch)
            every = max(1, spec.checkpoints.every_n_epochs or 1)
            if spec.checkpoints.enabled and epoch % every == 0:
                save_checkpoint(epoch)
            elif spec.checkpoints.save_latest:  # the latest epoch, whatever the periodic schedule says
                save_checkpoint(epoch)
            summary = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            channel.log(f"epoch {epoch}/{total}: {summary} ({seconds:.2f} s)", "info", epoch)
            stop_reason, finished, failure = channel.agree((stop_reason, bool(result.finished), failure))
            if failure:  # after the epoch's point and logs, which the failed job keeps
                raise error_of(*failure)
            if stop_reason:
                channel.log(stop_reason, "info", epoch)
                break
            if finished and not fold:
                break

    current_epoch[0] = 0
    if splits and cv_spec.final_model == "best_fold":
        best = progress["best"] or 1
        if best != progress["phase"]:  # the best fold's model is not the one in hand: read back
            best_file = checkpoint_dir / CV_BEST.format(fold=best)
            stored = ({"uri": store.uri(f"{payload['checkpoint_key']}/{best_file.name}"),
                       "sha256": progress["best_sha256"]} if payload.get("checkpoint_key") else None)
            _, state = checkpoint.unpack(read_verified(store.restore(stored, best_file), progress["best_sha256"]))
            current = phase_data(best)
            reference = metric_reference(spec.model_type, current.X_train, current.y_train)
            run = adapter.load_run(spec, current, state)
        channel.log(f"the job's model is fold {best}'s, the best by {cv_metric}")
    if parallel:
        run.leave_data_parallel()
    if not channel.primary:
        return  # the primary exports the model and reports the outcome
    if best_state is not None and best_state[0] != epoch:
        run.restore(best_state[1])
        channel.log(f"restored the weights of epoch {best_state[0]}, the best by {restorer.metric}")
    model_info = {
        "features": list(data.feature_names),
        # The classes the model outputs, in order: those seen in training.
        "classes": [str(c) for c in getattr(run, "class_labels", None) or data.classes or []],
        "input_kind": data.input_kind,
        "task": spec.model_type,
        # Lineage: the model this one was fine-tuned from.
        "parent_model": spec.pretrained.get("source", ""),
        # The summary of the job's cross-validation, when it had one.
        "cross_validation": cv.summary(cv_spec, progress["folds"], cv_metric, default_mode(cv_metric))
        if splits else None,
        # What forecast and ranking metrics are measured against (engine.frameworks.metrics).
        "metric_reference": reference,
        # The data layer's preprocessing, plus what the model itself learned about its input
        # (e.g. a text vocabulary or id maps), for whoever feeds the exported model.
        "preprocessing": {**data.preprocessing, **getattr(run, "input_preprocessing", {}),
                          **_upstream_processing(datasets["train"])},
        # Which data (and which processing of it) the model was trained on.
        "datasets": {part: {k: v for k, v in info.items() if k != "path"}
                     for part, info in datasets.items() if info},
    }
    final_state = checkpoint.pack(run.state_bytes(), {**manifest, "epoch": epoch})
    artifacts = _store_artifacts(payload, store, run, final_state, {**manifest, "epoch": epoch}, model_info, channel)
    test_metrics: dict[str, float] = {}
    if datasets.get("test"):
        try:
            X_test, y_test = load_arrays(spec, datasets["test"]["path"], data)
            evaluated = {**run.evaluate(X_test, y_test), **judged(X_test, y_test)}
        except Exception as exc:  # the model is trained and exported: a bad test set costs only its metrics
            channel.log(f"test metrics not computed: {type(exc).__name__}: {exc}", "warning")
            evaluated = {}
        # On test data the "validation" loss is the test loss.
        if "validation_loss" in evaluated:
            evaluated["loss"] = evaluated.pop("validation_loss")
        test_metrics = {k: float(v) for k, v in evaluated.items() if _finite(v)}
        if test_metrics:
            channel.log("test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(test_metrics.items())))
    channel.send(
        "completed",
        {
            "epoch": epoch,
            "total_epochs": total,
            "stop_reason": stop_reason,
            "artifacts": artifacts,
            "test_metrics": test_metrics,
            "model_info": model_info,
        },
    )


def _store(payload: dict[str, Any]):
    """The job's artifact store, as the server configured it."""
    from engine.storage.artifacts import ArtifactStore, StorageConfig

    return ArtifactStore(StorageConfig.from_dict(payload["storage"]), payload.get("data_dir"))


def _cv_line(summary: dict[str, Any]) -> str:
    """The cross-validation's outcome in one log line: mean ± std of each metric, the best fold."""
    shown = ", ".join(f"{k} {summary['mean'][k]:.4g} ± {summary['std'][k]:.2g}" for k in summary["mean"])
    return (f"cross-validation over {len(summary['folds'])} folds: {shown}; best fold {summary['best_fold']} "
            f"by {summary['metric']}")


def _parent_state(spec, data, store, checkpoint_dir: Path, checkpoint_key: str | None) -> bytes:
    """The state bytes of the model a fine-tuning job starts from, checked against its recorded
    sha256, after checking the job's data has the parent's features and classes. The first time,
    they are copied beside the job's checkpoints (and into the object store with them), so the
    job's later attempts need nothing of the parent: not its files, which its checkpoint pruning
    may remove, nor the machine they are on."""
    from engine.errors import FailedPrecondition
    from engine.storage import checkpoint
    from engine.storage.files import read_verified, write_bytes_atomic

    parent = spec.pretrained
    source, digest = parent["source"], parent["state"]["sha256"]
    features = list(data.feature_names)
    if parent.get("features") and parent["features"] != features:
        raise FailedPrecondition(f"{source} was trained on the features {parent['features'][:20]}; this job's data "
                                 f"gives {features[:20]}: fine-tune on data with the same columns")
    classes = [str(c) for c in data.classes or []]
    if parent.get("classes") and parent["classes"] != classes:
        raise FailedPrecondition(f"{source} predicts the classes {parent['classes']}; this job's data has "
                                 f"{classes}: fine-tuning keeps the parent's classes, so the data must have them all")
    copy = checkpoint_dir / PARENT_COPY
    stored = {"uri": store.uri(f"{checkpoint_key}/{PARENT_COPY}"), "sha256": digest} if checkpoint_key else None
    try:
        blob = read_verified(store.restore(stored, copy), digest)
    except Exception:  # no copy yet (the first attempt), or a damaged one: from the parent itself
        checkpoint_file = source.startswith("checkpoint:")  # a file of this machine's checkpoint directory
        path = Path(parent["state"]["path"]) if checkpoint_file else store.fetch(parent["state"], copy)
        blob = read_verified(path, digest)
        if path != copy:
            write_bytes_atomic(copy, blob)
        if checkpoint_key:
            try:
                store.put_file(copy, f"{checkpoint_key}/{PARENT_COPY}", len(blob), digest)
            except Exception as exc:  # the store is down: the local copy still serves this machine
                warnings.warn(f"the copy of {source} is only in the data dir: storing it failed ({exc})",
                              RuntimeWarning, stacklevel=1)
    saved, state = checkpoint.unpack(blob)
    if saved.get("framework") != spec.framework:
        raise FailedPrecondition(f"{source} holds a {saved.get('framework')} model, not {spec.framework}")
    return state


def _readable_checkpoint(store, resume: dict[str, Any], checkpoint_dir: Path,
                         channel: _Channel) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """(manifest, state, resume record) of the recorded checkpoint, or, when it is corrupted or
    truncated, of the newest older one that still reads whole (the zip's CRCs check it). The
    best-so-far tracking of an older checkpoint is not known, so it starts afresh."""
    from engine.errors import DataLoss
    from engine.storage import checkpoint
    from engine.storage.files import read_verified

    try:
        store.restore(resume, resume["path"])  # an object store's copy, when this machine lacks it
        saved, state = checkpoint.unpack(read_verified(resume["path"], resume["sha256"]))
        return saved, state, resume
    except (DataLoss, OSError) as exc:
        problem = exc.message if isinstance(exc, DataLoss) else str(exc)
        channel.log(f"the checkpoint of epoch {resume['epoch']} cannot be used ({problem}); "
                    "looking for an older one", "warning")
    bad = Path(resume["path"]).resolve()
    for older in sorted(checkpoint_dir.glob("epoch-*.ckpt"), reverse=True):
        if older.resolve() == bad:
            continue
        try:
            saved, state = checkpoint.unpack(older.read_bytes())
        except (DataLoss, OSError):
            continue
        epoch = int(saved.get("epoch", 0))
        if 0 < epoch < int(resume["epoch"]):
            channel.log(f"resuming from the older checkpoint of epoch {epoch} instead", "warning")
            return saved, state, {"epoch": epoch, "path": str(older), "tracker": {}}
    raise DataLoss(f"the checkpoint of epoch {resume['epoch']} is corrupted and no older checkpoint is readable; "
                   "start the job again")


def _store_artifacts(payload: dict[str, Any], store, run, final_state: bytes, manifest: dict[str, Any],
                     model_info: dict[str, Any], channel: _Channel) -> dict[str, Any]:
    """Write the final state and every export format to the artifact store, each recorded with
    its uri, sha256 and size (and, for exports, the signature an inference engine needs)."""
    from engine.export.formats import FORMATS
    from engine.export.package import array_signature, package_onnx
    from engine.storage.files import write_bytes_atomic

    staging = Path(payload["artifact_dir"])  # the store itself, for local storage
    key = payload["artifact_key"]
    train = payload["datasets"]["train"]

    def put(filename: str, blob: bytes) -> dict[str, Any]:
        size, digest = write_bytes_atomic(staging / filename, blob)
        info = store.put_file(staging / filename, f"{key}/{filename}", size, digest)
        if not store.local or Path(info["uri"]).resolve() != (staging / filename).resolve():
            (staging / filename).unlink(missing_ok=True)  # stored elsewhere: the staging copy has done its job
        return info

    artifacts: dict[str, Any] = {"state": put("model.state", final_state)}
    features, classes = model_info["features"], model_info["classes"]
    for fmt in run.export_formats:
        blob = run.export(fmt)
        if fmt == "onnx":
            fitted = (train.get("processed_by") or {}).get("fitted")
            blob, extra, note = package_onnx(blob, manifest, model_info, fitted, train.get("raw_types") or {})
            if note:
                channel.log(note)
        else:
            extra = array_signature(model_info["task"], model_info["input_kind"], len(features), len(classes))
        artifacts[fmt] = {**put(FORMATS[fmt].filename, blob), **extra}
        channel.log(f"exported {fmt}: {artifacts[fmt]['size_bytes']} bytes, sha256 {artifacts[fmt]['sha256']}")
    # Beside the artifacts: what made them, for anyone who finds the files without the database.
    put("manifest.json", json.dumps({**manifest, "artifacts": {k: v["sha256"] for k, v in artifacts.items()}},
                                    indent=2, sort_keys=True).encode())
    return artifacts


def _upstream_processing(train: dict[str, Any]) -> dict[str, Any]:
    """When the training data came out of a data pipeline or a transform (perhaps split or
    filtered since), the processing an inference engine must apply to raw input first."""
    origin = train.get("processed_by") or {}
    params = origin.get("parameters") or {}
    if origin.get("operation") == "data_pipeline":
        return {"data_pipeline": params.get("data_pipeline", "")}
    if origin.get("operation") == "transform":
        return {"processing_dataset": origin.get("dataset", ""), "processing": params.get("fitted", {})}
    return {}
