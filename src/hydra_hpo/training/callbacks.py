"""Callbacks of the trial runner: the learning-curve recorder (also ``last.ckpt``) and the per-batch guard."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint

from hydra_hpo.errors import MetricMissing

LAST_CHECKPOINT = "last.ckpt"


class Diverged(RuntimeError):
    """The training loss or the metric became NaN or infinite."""


class TrialTimeout(TimeoutError):
    """The job ran past ``trial.timeout`` seconds."""


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The scalar entries of ``trainer.callback_metrics`` as floats."""
    scalars = {}
    for name, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            scalars[name] = float(value)
    return scalars


class CurveRecorder(Checkpoint):
    """Records the metric after every epoch with the cumulative training seconds, and saves ``last.ckpt``.

    It is a ``Checkpoint`` so that Lightning calls its ``on_train_epoch_end`` after the LightningModule's own
    (metrics logged there are in ``callback_metrics`` by then). Its state travels in the checkpoint, so the
    curve of a trial continues across the jobs (segments) that resume it.
    """

    def __init__(self, metric: str, checkpoint_dir: str | Path | None = None) -> None:
        self.metric = metric
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.curve: list[float] = []
        self.epoch_seconds: list[float] = []
        self.epoch_metrics: list[dict[str, float]] = []
        self.epochs_at_start = 0
        self.save_seconds = 0.0  # this job's time in saving last.ckpt (overhead, not training)
        self.cpu_seconds = 0.0  # this process's CPU time in this job's epochs (unaffected by other processes)
        self.device: str | None = None  # where this job trained (the Trainer's root device), e.g. cuda:0
        self.train_started: float | None = None  # perf_counter when the fit loop began (after any restore)
        self._epoch_started: float | None = None

    STATE_KEY = "hydra_hpo.CurveRecorder"

    @property
    def state_key(self) -> str:
        return self.STATE_KEY

    def state_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "curve": list(self.curve),
            "epoch_seconds": list(self.epoch_seconds),
            "epoch_metrics": [dict(m) for m in self.epoch_metrics],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.curve = list(state_dict["curve"])
        if state_dict.get("metric") != self.metric:  # the sweep changed its metric: take it from the history
            self.curve = [m.get(self.metric, math.nan) for m in state_dict.get("epoch_metrics", [])]
        self.epoch_seconds = list(state_dict["epoch_seconds"])
        self.epoch_metrics = [dict(m) for m in state_dict.get("epoch_metrics", [])]
        self.epochs_at_start = len(self.curve)

    @property
    def seconds_at_start(self) -> float:
        return self.epoch_seconds[self.epochs_at_start - 1] if self.epochs_at_start else 0.0

    def job_seconds(self) -> float:
        """Training seconds of this job: its finished epochs plus the one running, if any."""
        seconds = (self.epoch_seconds[-1] if self.epoch_seconds else 0.0) - self.seconds_at_start
        if self._epoch_started is not None:
            seconds += time.perf_counter() - self._epoch_started
        return seconds

    def begin_segment(self) -> None:
        """A new segment goes on in this process (keep-alive): its own epochs, saves and CPU time from now."""
        self.epochs_at_start = len(self.curve)
        self.save_seconds = 0.0
        self.cpu_seconds = 0.0
        self.train_started = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_cpu_started = time.process_time()
        self._epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        elapsed = time.perf_counter() - self._epoch_started if self._epoch_started is not None else 0.0
        if self._epoch_started is not None:
            self.cpu_seconds += time.process_time() - self._epoch_cpu_started
        self._epoch_started = None
        metrics = scalar_metrics(trainer.callback_metrics)
        if self.metric not in metrics:
            raise MetricMissing(f"metric {self.metric!r} not produced; the run logs: {sorted(metrics)}; "
                                "set metric= to one of them")
        previous = self.epoch_seconds[-1] if self.epoch_seconds else 0.0
        self.curve.append(metrics[self.metric])
        self.epoch_seconds.append(previous + elapsed)
        self.epoch_metrics.append(metrics)
        if not math.isfinite(metrics[self.metric]):
            raise Diverged(f"{self.metric} is {metrics[self.metric]} after epoch {len(self.curve)}")
        if self.checkpoint_dir is not None:
            saving = time.perf_counter()
            save_checkpoint_atomically(trainer, self.checkpoint_dir / LAST_CHECKPOINT)
            self.save_seconds += time.perf_counter() - saving


def save_checkpoint_atomically(trainer: L.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` to a temporary file, then rename: a killed job leaves the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        trainer.save_checkpoint(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class TrialGuard(L.Callback):
    """Stops a job at once when the training loss is not finite or ``timeout`` seconds have passed."""

    def __init__(self, timeout: float | None = None, started: float | None = None) -> None:
        if timeout is not None and not float(timeout) > 0:
            raise ValueError(f"trial.timeout must be positive seconds or null, got {timeout!r}")
        self.timeout = None if timeout is None else float(timeout)
        self.started = time.monotonic() if started is None else started

    def restart(self, timeout: float | None) -> None:
        """A new segment begins in this process (keep-alive): its own timeout, counted from now."""
        self.timeout = None if timeout is None else float(timeout)
        self.started = time.monotonic()

    def _check_time(self) -> None:
        if self.timeout is not None and time.monotonic() - self.started > self.timeout:
            raise TrialTimeout(f"trial.timeout={self.timeout:g} s passed")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1 and not math.isfinite(loss.item()):
            raise Diverged(f"training loss is {loss.item()} at epoch {trainer.current_epoch + 1}, batch {batch_idx}")
        self._check_time()

    def on_validation_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self._check_time()
