"""Lightning loggers for the trials of a sweep (``logger=csv|tensorboard|mlflow``), one run per trial.

The runner passes :func:`trial_loggers`'s callbacks to the Trainer. By default the logger is not attached to
the Trainer: a callback writes the metrics once per epoch (step = epochs trained so far, continuing across the
segments of a promoted trial), so a training step costs exactly what it costs without a logger. With
``logger.log_every_n_steps=N`` the logger is attached to the Trainer instead and Lightning logs as usual
(step = ``trainer.global_step``, which also continues across segments).

Each trial's run lives at ``<save_dir>/trial_<id>`` (csv, tensorboard; ``save_dir`` defaults to
``<sweep dir>/<logger name>``) or in an MLflow child run of one parent run per sweep. A promoted trial's later
segments continue its own run: the same directory, or the MLflow run id kept in the trial's checkpoint
directory. At the end of a completed job, ``final/<metric>`` (the metric's last value) is logged with the
trial's hyperparameters: the overrides the sweeper gave the job, less its own keys (seed, trial.*, the
resource ``trainer.max_epochs``).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from hydra_hpo.errors import JobConfigError
from hydra_hpo.training.callbacks import CurveRecorder

LOGGERS = ("none", "csv", "tensorboard", "mlflow")
MLFLOW_RUN_ID_FILE = "mlflow_run_id"  # in the trial's checkpoint directory: its child run, for later segments
MLFLOW_PARENT_FILE = "mlflow_parent_run_id"  # in the sweep directory: the sweep's parent run
# keys the sweeper sets on every job that are not the trial's hyperparameters
_NOT_HYPERPARAMETERS = ("seed", "trial", "hydra", "hpo", "logger", "metric", "threads", "trainer.max_epochs")


def _hydra() -> Any | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def sweep_dir() -> Path:
    """The sweep directory in a multirun job; the job's output directory in a single run; else the cwd."""
    from hydra.types import RunMode

    hydra = _hydra()
    if hydra is None:
        return Path.cwd()
    if hydra.mode == RunMode.MULTIRUN:
        return Path(hydra.runtime.cwd, hydra.sweep.dir).resolve()
    return Path(hydra.runtime.output_dir)


def trial_hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The job's overrides that are hyperparameters, with their resolved values from ``cfg``."""
    from hydra_hpo.executors.hydra_jobs import override_key

    hydra = _hydra()
    overrides = list(hydra.overrides.task) if hydra is not None else []
    params: dict[str, Any] = {}
    for override in overrides:
        key = override_key(override)
        if any(key == name or key.startswith(name + ".") for name in _NOT_HYPERPARAMETERS):
            continue
        value = OmegaConf.select(cfg, key, default=None) if "." in key else None
        if value is None or OmegaConf.is_config(value):  # a group choice (trainer=fast) or a whole node
            value = override.split("=", 1)[1]
        params[key] = value
    return params


def _run_name(cfg: DictConfig) -> str:
    trial_id = cfg.trial.get("id")
    return f"trial_{trial_id}" if trial_id is not None else "run"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created), held across processes for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mlflow_parent_run(tracking_uri: str, experiment_name: str, sweep: Path) -> tuple[str, str]:
    """The sweep's parent run ``(experiment_id, run_id)``: the first job creates it, under a lock in the sweep dir.

    Its id is kept in ``<sweep>/mlflow_parent_run_id``, so concurrent jobs, later segments and a resumed
    sweep all find the same parent.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    id_file = sweep / MLFLOW_PARENT_FILE
    with _locked(sweep / f".{MLFLOW_PARENT_FILE}.lock"):
        if id_file.is_file():
            run_id = id_file.read_text().strip()
            return client.get_run(run_id).info.experiment_id, run_id
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            experiment_id = client.create_experiment(experiment_name)
        else:
            experiment_id = experiment.experiment_id
        run = client.create_run(experiment_id, run_name=sweep.name,
                                tags={"hydra_hpo.sweep_dir": str(sweep)})
        id_file.write_text(run.info.run_id + "\n")
        return experiment_id, run.info.run_id


def _csv_logger(save_dir: Path, name: str) -> Logger:
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(save_dir, name="", version=name)
    # Lightning deletes an existing metrics.csv when it opens a run: keep the earlier segments' rows, and give
    # the writer their columns (it rewrites the file when a new column comes)
    metrics = Path(logger.log_dir) / "metrics.csv"
    kept = metrics.with_name(".metrics.csv.kept")
    columns: list[str] = []
    if metrics.is_file():
        with open(metrics, newline="") as handle:
            columns = next(csv.reader(handle), [])
        os.replace(metrics, kept)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "directory exists and is not empty": it is this trial's own
            logger.experiment.metrics_keys = columns
    finally:
        if kept.is_file():
            os.replace(kept, metrics)
    return logger


def _tensorboard_logger(save_dir: Path, name: str) -> Logger:
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(save_dir, name="", version=name, default_hp_metric=False)


def _mlflow_logger(cfg: DictConfig, options: DictConfig, sweep: Path) -> Logger:
    from lightning.pytorch.loggers import MLFlowLogger
    from mlflow.tracking import MlflowClient

    tracking_uri = options.get("tracking_uri") or f"file:{sweep / 'mlruns'}"
    if tracking_uri.startswith("file:") or "://" not in tracking_uri:
        # MLflow 3 keeps its file store in "maintenance mode" and refuses it unless this is set; it still works,
        # needs no server or database, and is what a sweep directory can carry
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    experiment_name = options.get("experiment_name") or "hydra-hpo"
    checkpoint_dir = cfg.trial.get("checkpoint_dir")
    id_file = Path(checkpoint_dir) / MLFLOW_RUN_ID_FILE if checkpoint_dir else None
    if id_file is not None and id_file.is_file():  # a later segment: continue the trial's child run
        logger = MLFlowLogger(tracking_uri=tracking_uri, run_id=id_file.read_text().strip())
        parent = logger.experiment.get_run(logger.run_id).data.tags.get("mlflow.parentRunId")
        for run_id in (logger.run_id, parent):
            if run_id:
                logger.experiment.update_run(run_id, status="RUNNING")
        return logger
    experiment_id, parent = mlflow_parent_run(tracking_uri, experiment_name, sweep)
    MlflowClient(tracking_uri).update_run(parent, status="RUNNING")
    tags = {"mlflow.parentRunId": parent, "hydra_hpo.trial_id": str(cfg.trial.get("id"))}
    logger = MLFlowLogger(experiment_name=experiment_name, tracking_uri=tracking_uri, run_name=_run_name(cfg),
                          tags=tags)
    logger._experiment_id = experiment_id  # the parent's experiment (created under the lock): no second create
    logger.experiment  # creates the run
    if id_file is not None:
        id_file.parent.mkdir(parents=True, exist_ok=True)
        id_file.write_text(logger.run_id + "\n")
    logger.log_hyperparams(trial_hyperparameters(cfg))  # once, at the run's creation (MLflow params are fixed)
    return logger


class TrialLogger(Checkpoint):
    """Logs a trial's metrics once per epoch, its hyperparameters, and ``final/<metric>`` at the end of a job.

    A ``Checkpoint`` callback so that Lightning calls it after the LightningModule's ``on_train_epoch_end`` and
    after the :class:`CurveRecorder` (listed before it), whose last epoch it logs.
    """

    def __init__(self, logger: Logger, recorder: CurveRecorder, hyperparameters: dict[str, Any],
                 per_step: int | bool = False) -> None:
        self.logger = logger
        self.recorder = recorder
        self.hyperparameters = hyperparameters
        self.per_step = per_step  # log_every_n_steps: the Trainer has the logger and logs the metrics itself
        self._finalized = False

    @property
    def state_key(self) -> str:
        return "hydra_hpo.TrialLogger"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.per_step is not False:  # the user asked for per-step logging: Lightning's own, through this logger
            trainer.loggers = [self.logger]
            trainer.log_every_n_steps = int(self.per_step)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning.pytorch.loggers import MLFlowLogger

        if not isinstance(self.logger, MLFlowLogger):  # MLflow's params were logged at the run's creation
            self.logger.log_hyperparams(self.hyperparameters)  # csv, tensorboard: into hparams.yaml

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.per_step or len(self.recorder.epoch_metrics) <= self.recorder.epochs_at_start:
            return
        epoch = len(self.recorder.curve)
        self.logger.log_metrics({**self.recorder.epoch_metrics[-1], "epoch": epoch}, step=epoch)
        self.logger.save()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.recorder.curve:
            return
        step = trainer.global_step if self.per_step else len(self.recorder.curve)
        final = {f"final/{self.recorder.metric}": self.recorder.curve[-1]}
        from lightning.pytorch.loggers import TensorBoardLogger

        if isinstance(self.logger, TensorBoardLogger):  # the HParams dashboard: hyperparameters and final metric
            self.logger.log_hyperparams(self.hyperparameters, metrics=final, step=step)
        else:
            self.logger.log_metrics(final, step=step)
        self._finalize("success")

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._finalize("killed" if isinstance(exception, KeyboardInterrupt) else "failed")

    def _finalize(self, status: str) -> None:
        if self._finalized:
            return
        self._finalized = True
        if not self.per_step:  # an attached logger is finalized by the Trainer
            self.logger.finalize("KILLED" if status == "killed" else status)
        from lightning.pytorch.loggers import MLFlowLogger

        if isinstance(self.logger, MLFlowLogger):  # the sweep's parent run: finished as of its latest job's end
            parent = self.logger.experiment.get_run(self.logger.run_id).data.tags.get("mlflow.parentRunId")
            if parent:
                self.logger.experiment.set_terminated(parent, "FINISHED")


def trial_loggers(cfg: DictConfig, recorder: CurveRecorder) -> list[L.Callback]:
    """The callbacks that log this job to ``cfg.logger`` (none: an empty list)."""
    options = cfg.get("logger")
    name = str(options.get("name", "none")) if options is not None else "none"
    if name == "none":
        return []
    if name not in LOGGERS:
        raise JobConfigError(f"logger={name}: unknown logger; use one of {', '.join(LOGGERS)}")
    every = options.get("log_every_n_steps")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise JobConfigError(f"logger.log_every_n_steps={every!r}: must be a positive integer, or null for "
                             "once per epoch")
    sweep = sweep_dir()
    save_dir = Path(options.get("save_dir") or sweep / name)
    try:
        if name == "csv":
            logger = _csv_logger(save_dir, _run_name(cfg))
        elif name == "tensorboard":
            logger = _tensorboard_logger(save_dir, _run_name(cfg))
        else:
            logger = _mlflow_logger(cfg, options, sweep)
    except ModuleNotFoundError as error:  # every job would fail alike: one line, and the sweep stops
        raise JobConfigError(f"logger={name} needs the package {error.name!r}: pip install "
                             f"'hydra-hpo[loggers]' (or {name})") from error
    return [TrialLogger(logger, recorder, trial_hyperparameters(cfg), per_step=every if every is not None else False)]
