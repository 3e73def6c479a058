"""Optimizer hyperparameters that change during training: population based training's segments and schedules.

``trial.schedule`` is a list of ``{start_epoch: e, lr: ..., momentum: ..., weight_decay: ...}`` entries. At the
start of every epoch the values of the last entry with ``start_epoch <= epoch`` (epochs counted from 0) are
written into every param_group of every optimizer. Lightning restores a checkpoint's optimizer state (and with
it the old learning rate and momentum) before the first epoch starts, so the new values win after a restore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L

from hydra_hpo.errors import JobConfigError

OPTIMIZER_PARAMS = ("lr", "momentum", "weight_decay")


def parse_schedule(entries: Sequence[Mapping[str, Any]] | None) -> list[tuple[int, dict[str, float]]]:
    """``trial.schedule`` as sorted ``(start_epoch, values)``; a malformed entry raises :class:`JobConfigError`."""
    schedule = []
    for entry in entries or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("start_epoch"), int) \
                or isinstance(entry.get("start_epoch"), bool) or entry["start_epoch"] < 0:
            raise JobConfigError(f"trial.schedule entry {entry!r}: needs start_epoch, an integer >= 0")
        values = {k: v for k, v in entry.items() if k not in ("start_epoch", "end_epoch")}
        for key, value in values.items():
            if key not in OPTIMIZER_PARAMS or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise JobConfigError(f"trial.schedule entry {dict(entry)!r}: {key}={value!r}; only numbers for "
                                     f"{', '.join(OPTIMIZER_PARAMS)} can be scheduled")
        schedule.append((int(entry["start_epoch"]), {k: float(v) for k, v in values.items()}))
    return sorted(schedule, key=lambda item: item[0])


class OptimizerSchedule(L.Callback):
    """Applies ``trial.schedule`` at epoch starts and records the values each epoch trained with (``used``)."""

    def __init__(self, entries: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.schedule = parse_schedule(entries)
        self.used: dict[int, dict[str, float]] = {}  # epoch (from 1) -> values of the first param_group

    def values_at(self, epoch: int) -> dict[str, float]:
        """The scheduled values for ``epoch`` (counted from 0); empty before the first entry."""
        current: dict[str, float] = {}
        for start, values in self.schedule:
            if start <= epoch:
                current = values
        return current

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = self.values_at(trainer.current_epoch)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                for key, value in values.items():
                    if key not in group:
                        raise JobConfigError(f"trial.schedule sets {key} but the optimizer "
                                             f"{type(optimizer).__name__} has no such hyperparameter")
                    group[key] = value

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.optimizers:
            group = trainer.optimizers[0].param_groups[0]
            self.used[trainer.current_epoch + 1] = {k: float(group[k]) for k in OPTIMIZER_PARAMS
                                                    if isinstance(group.get(k), (int, float))}
