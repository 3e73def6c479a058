"""The job side of ``hpo.keep_alive``: at the end of its segment a job reports, waits, and may train on.

:class:`SegmentHandoff` runs after the curve recorder has saved ``last.ckpt`` for the segment's last epoch. It
writes the segment's result.json (``report``), parks (:class:`hydra_hpo.handoff.JobSide`) and, when the
sweeper hands it the trial's next segment, raises the fit loop's ``max_epochs`` to the new resource and lets
training go on in the same process: no new start-up, data load, model build or checkpoint restore.
Otherwise the fit ends where it would have.
"""

from __future__ import annotations

from typing import Any, Callable

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from hydra_hpo.handoff import JobSide


class SegmentHandoff(Checkpoint):
    """After the segment's last epoch: ``report()``, park, then ``begin(message)`` for a handed-over segment.

    A ``Checkpoint`` subclass so that Lightning calls it after the other callbacks (the recorder, which saves
    ``last.ckpt``, is placed before it).
    """

    def __init__(self, side: JobSide, job_idx: int, output_dir: str, epochs_done: Callable[[], int],
                 report: Callable[[L.Trainer, L.LightningModule], None], begin: Callable[[dict[str, Any]], None]) -> None:
        self.side = side
        self.job_idx = job_idx
        self.output_dir = output_dir
        self.epochs_done = epochs_done
        self.report = report
        self.begin = begin
        self.reported = False  # the segment running now has written its result (the runner must not again)
        self.park_next = True  # wait after the segment running now (not after the trial's last one)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        max_epochs = trainer.fit_loop.max_epochs
        if not self.park_next or max_epochs is None or max_epochs < 0 or self.epochs_done() < max_epochs:
            return
        self.report(trainer, pl_module)
        self.reported = True
        message = self.side.park(self.job_idx, self.output_dir)
        if message.get("action") != "continue":
            return  # the fit ends: max_epochs is reached
        resource = int(message["resource"])
        if resource <= max_epochs:
            raise ValueError(f"keep-alive: segment {message.get('job_idx')} asks for {resource} epochs, "
                             f"but {max_epochs} are done")
        self.job_idx = int(message["job_idx"])
        self.output_dir = str(message["output_dir"])
        self.reported = False
        self.park_next = bool(message.get("park", True))
        self.begin(message)
        trainer.fit_loop.max_epochs = resource
