"""The trial runner behind ``train.py``: one Hydra job trains (or resumes) one trial and writes ``result.json``."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hydra_hpo.devices import check_cuda_process
from hydra_hpo.errors import JobConfigError, MetricMissing
from hydra_hpo.trial import CONFIG_ERROR, COMPLETED, DIVERGED, FAILED, INTERRUPTED, TIMEOUT
from hydra_hpo.handoff import JobSide
from hydra_hpo.training.callbacks import LAST_CHECKPOINT, CurveRecorder, Diverged, TrialGuard, TrialTimeout
from hydra_hpo.training.keepalive import SegmentHandoff
from hydra_hpo.training.loggers import trial_loggers
from hydra_hpo.training.measure import job_metrics, measure, measure_untrained
from hydra_hpo.training.resultfile import write_result
from hydra_hpo.training.schedule import OptimizerSchedule, parse_schedule

log = logging.getLogger(__name__)

_jobs_in_process = 0  # jobs this process has run: 1 marks a cold start (imports, dataset load)


def job_output_dir() -> Path:
    """The Hydra job's ``runtime.output_dir`` when Hydra runs this job, else the working directory."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(os.getcwd())


def make_trainer(trainer_cfg: DictConfig, callbacks: list[L.Callback]) -> L.Trainer:
    """Instantiate ``cfg.trainer`` with its own ``callbacks`` plus ours.

    ``enable_checkpointing: true`` in the config adds Lightning's default ``ModelCheckpoint``; Lightning itself
    always gets ``enable_checkpointing=True`` because our recorder is a ``Checkpoint`` callback.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    user_callbacks = list(instantiate(trainer_cfg.callbacks)) if trainer_cfg.get("callbacks") else []
    if trainer_cfg.get("enable_checkpointing", False):
        user_callbacks.append(ModelCheckpoint())
    return instantiate(trainer_cfg, callbacks=[*user_callbacks, *callbacks], enable_checkpointing=True)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lower Lightning's INFO chatter to WARNING for the duration."""
    # Lightning announces the hardware and "max_epochs reached" at INFO for every Trainer: once per job.
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class PhaseTimer:
    """Wall-clock seconds of a job's phases: ``mark(name)`` charges the time since the previous mark to ``name``."""

    def __init__(self, started: float | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter() if started is None else started

    def mark(self, name: str) -> float:
        """Charge the time since the last mark to ``name``; returns now (perf_counter)."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now
        return now


def _recorded_state(checkpoint: Path) -> dict[str, Any]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return state.get("callbacks", {}).get(CurveRecorder.STATE_KEY, {"curve": [], "epoch_seconds": []})


def _result(cfg: DictConfig, recorder: CurveRecorder, status: str, error: str | None, seconds: float,
            job_seconds: float, phases: dict[str, float]) -> dict:
    curve = list(recorder.curve)
    value = curve[-1] if curve and status == COMPLETED else math.nan
    return {
        "metric": cfg.metric,
        "value": value,
        "curve": curve,
        "epoch_seconds": list(recorder.epoch_seconds),
        "metrics": {**(dict(recorder.epoch_metrics[-1]) if recorder.epoch_metrics else {}),
                    **job_metrics(recorder, status)},
        "epochs": len(curve),
        "epochs_trained": len(curve) - recorder.epochs_at_start,
        "seconds": seconds,
        "train_seconds": seconds,
        "job_seconds": job_seconds,
        "overhead_seconds": max(0.0, job_seconds - seconds),
        "phases": {name: round(value, 6) for name, value in phases.items()},
        "process_job": _jobs_in_process,
        # CPU seconds, which other processes on a busy machine do not inflate: this job's epochs, and this
        # process's total so far (a warm worker's CPU per job is the difference between consecutive jobs)
        "train_cpu_seconds": recorder.cpu_seconds,
        "process_cpu_seconds": time.process_time(),
        # where it trained: the Trainer's device, and the GPUs this job's process was shown (the sweeper sets them)
        "device": recorder.device,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "pid": os.getpid(),
        "status": status,
        "error": error,
        "trial_id": cfg.trial.get("id"),
        "seed": cfg.seed,
        "checkpoint": str(recorder.checkpoint_dir / LAST_CHECKPOINT) if recorder.checkpoint_dir else None,
    }


def _split_fit(phases: PhaseTimer, recorder: CurveRecorder) -> None:
    """Split the segment's time in ``fit`` (marked last): Lightning's setup and checkpoint restore, epochs
    (training and validation), checkpoint saves, the rest."""
    now = phases.mark("fit")
    fit_seconds = phases.seconds.pop("fit")
    started = recorder.train_started
    start = min(max(started - (now - fit_seconds), 0.0), fit_seconds) if started is not None else fit_seconds
    epochs = recorder.job_seconds()
    phases.seconds.update(fit_start_and_restore=start, epochs=epochs, checkpoint_save=recorder.save_seconds,
                          fit_other=max(0.0, fit_seconds - start - epochs - recorder.save_seconds))


def _fit(cfg: DictConfig, recorder: CurveRecorder, guard: TrialGuard, segment: "_Segment",
         schedule: OptimizerSchedule | None = None, handoff: SegmentHandoff | None = None) -> None:
    check_cuda_process()  # a reused worker cannot move CUDA to this job's GPUs: fail loudly, not share one
    threads = cfg.get("threads")
    if threads:  # intra-op threads; 1 suits tiny models and parallel workers (oversubscribed cores crawl)
        torch.set_num_threads(int(threads))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if schedule is not None and cfg.trial.get("schedule"):
        schedule.schedule = parse_schedule(OmegaConf.to_container(cfg.trial.schedule))
    phases = segment.phases
    checkpoint = recorder.checkpoint_dir / LAST_CHECKPOINT if recorder.checkpoint_dir else None
    resume = checkpoint if checkpoint is not None and checkpoint.is_file() else None
    max_epochs = cfg.trainer.get("max_epochs")
    if resume is not None and max_epochs is not None:
        state = _recorded_state(resume)
        if len(state["curve"]) >= max_epochs:  # this segment is already done: report it, train nothing
            recorder.load_state_dict(state)
            recorder.curve = recorder.curve[:max_epochs]
            recorder.epoch_seconds = recorder.epoch_seconds[:max_epochs]
            recorder.epoch_metrics = recorder.epoch_metrics[:max_epochs]
            recorder.epochs_at_start = len(recorder.curve)
            recorder.measured = measure_untrained(cfg)
            phases.mark("setup")
            return
    phases.mark("setup")
    datamodule = instantiate(cfg.data)
    phases.mark("data")
    model = instantiate(cfg.model)
    phases.mark("model")
    trainer = make_trainer(cfg.trainer, [guard, recorder, *([schedule] if schedule else []),
                                            *trial_loggers(cfg, recorder),  # logger=...
                                            *([handoff] if handoff else [])])  # after the recorder's save
    phases.mark("trainer")
    recorder.device = str(trainer.strategy.root_device)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(resume) if resume else None)
    finally:
        _split_fit(segment.phases, recorder)  # the segment running now (keep-alive may have begun others)
    if not recorder.curve:
        raise MetricMissing(f"metric {cfg.metric!r} not produced: no training epoch finished")
    if handoff is not None and handoff.reported:  # the last segment was measured and reported when it parked
        return
    recorder.measured = measure(model, datamodule, trainer.strategy.root_device)  # once, after training
    segment.phases.mark("measure")


def train(cfg: DictConfig) -> float:
    """Train one trial (segment) as configured, write ``result.json`` and return the metric's final value.

    Resumes from ``<trial.checkpoint_dir>/last.ckpt`` when it exists and trains up to ``trainer.max_epochs``,
    saving ``last.ckpt`` after every epoch. ``result.json`` carries ``train_seconds`` (this job's epochs,
    each with its validation) and ``job_seconds`` (from entering this function to writing the result), with
    ``phases``: where the job's time went. Returns NaN for a diverged run; raises (after writing the result)
    when the run failed, timed out, or did not log ``cfg.metric``.
    """
    global _jobs_in_process
    _jobs_in_process += 1
    started = time.monotonic()
    job_started = time.perf_counter()
    segment = _Segment(job_output_dir(), job_started, PhaseTimer(job_started))
    checkpoint_dir = cfg.trial.get("checkpoint_dir")
    recorder = CurveRecorder(cfg.metric, Path(checkpoint_dir).resolve() if checkpoint_dir else None)
    guard = TrialGuard(timeout=cfg.trial.get("timeout"), started=started)
    schedule = OptimizerSchedule()

    def report(status: str, error: BaseException | None = None) -> None:
        message = None if error is None else f"{type(error).__name__}: {error}"
        if isinstance(error, JobConfigError):  # the sweeper shows it to the user as it is
            message = str(error)
        phases = segment.phases
        job_seconds = phases.mark("result") - segment.started
        data = _result(cfg, recorder, status, message, recorder.job_seconds(), job_seconds, phases.seconds)
        data["optimizer"] = {str(epoch): values for epoch, values in schedule.used.items()}  # per epoch trained
        data["continued"] = segment.continued  # trained by a process that had ended another segment (keep-alive)
        write_result(segment.output_dir, data)

    handoff = _handoff(cfg, segment, recorder, guard, schedule, report)
    try:
        with quiet_lightning():
            _fit(cfg, recorder, guard, segment, schedule, handoff)
    except Diverged as error:
        log.warning("trial %s diverged: %s", cfg.trial.get("id"), error)
        report(DIVERGED, error)
        return math.nan
    except TrialTimeout as error:
        report(TIMEOUT, error)
        raise
    except (KeyboardInterrupt, SystemExit) as error:
        report(INTERRUPTED, error)
        raise
    except JobConfigError as error:  # every trial would fail alike: its own status, so that a sweep stops
        report(CONFIG_ERROR, error)
        raise
    except BaseException as error:
        report(FAILED, error)
        raise
    if handoff is None or not handoff.reported:
        report(COMPLETED)
    return float(recorder.curve[-1])


@dataclass
class _Segment:
    """The segment a job process is running now: where its result goes, when it began, its phases."""

    output_dir: Path
    started: float  # perf_counter
    phases: PhaseTimer
    continued: bool = False


def _handoff(cfg: DictConfig, segment: _Segment, recorder: CurveRecorder, guard: TrialGuard,
             schedule: OptimizerSchedule, report: Callable[[str], None]) -> SegmentHandoff | None:
    """The keep-alive callback when the sweeper asked for it (``trial.handoff``: its jobs directory)."""
    from hydra.core.hydra_config import HydraConfig

    jobs_dir = cfg.trial.get("handoff")
    if not jobs_dir or not HydraConfig.initialized():
        return None
    num = int(HydraConfig.get().job.num)

    def measured_report(trainer: L.Trainer, module: L.LightningModule) -> None:
        _split_fit(segment.phases, recorder)
        recorder.measured = measure(module, trainer.datamodule, trainer.strategy.root_device)
        segment.phases.mark("measure")
        report(COMPLETED)

    def begin(message: dict) -> None:
        global _jobs_in_process
        _jobs_in_process += 1
        now = time.perf_counter()
        segment.output_dir = Path(message["output_dir"])
        segment.output_dir.mkdir(parents=True, exist_ok=True)
        segment.started = now
        segment.phases = PhaseTimer(now)
        segment.continued = True
        recorder.begin_segment()
        schedule.used.clear()
        guard.restart(message.get("timeout"))

    return SegmentHandoff(JobSide(jobs_dir, num), num, str(segment.output_dir), lambda: len(recorder.curve),
                          measured_report, begin)
