"""The trials' checkpoint directories: where each lives, the disk they take, and when one goes.

One owner for the checkpoint life cycle: jobs write ``<root>/trial_<id>/`` (the executor passes the
directory to the job), the tuner measures the disk use after every result and releases a trial's
directory once the scheduler says the trial can never run again (it ended: completed, failed, stopped,
or dropped by ``hpo.max_paused_checkpoints``). An interrupted sweep keeps every checkpoint, to resume from.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def _bytes_under(path: Path) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()  # a snapshot is a hard link: count its bytes once
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                stat = os.stat(os.path.join(directory, name))
            except OSError:  # a job replaced the file meanwhile
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


class CheckpointStore:
    """Checkpoint directories under ``root``; with ``keep`` nothing is ever deleted."""

    def __init__(self, root: str | os.PathLike, keep: bool = False) -> None:
        self.root = Path(root)
        self.keep = keep
        self.peak_bytes = 0

    def dir(self, trial_id: int) -> Path:
        """Where trial ``trial_id`` keeps its checkpoint (created by the job that writes it)."""
        return self.root / f"trial_{trial_id}"

    SNAPSHOT = "segment_{resource}.ckpt"

    def snapshot(self, trial_id: int, resource: int, checkpoint: str = "last.ckpt") -> Path | None:
        """Freeze the trial's checkpoint as it is after ``resource`` epochs, for other trials to copy while
        the trial itself trains on (population based training). A hard link (no extra disk until the job
        replaces ``last.ckpt``, which it does by rename), else a copy; older snapshots of the trial go."""
        directory = self.dir(trial_id)
        source = directory / checkpoint
        if not source.is_file():
            return None
        target = directory / self.SNAPSHOT.format(resource=resource)
        for old in directory.glob(self.SNAPSHOT.format(resource="*")):
            if old != target:
                old.unlink(missing_ok=True)
        tmp = directory / f".{target.name}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        return target

    def copy(self, source_trial: int, resource: int, trial_id: int, checkpoint: str = "last.ckpt") -> int:
        """Copy ``source_trial``'s checkpoint after ``resource`` epochs into ``trial_id``'s directory as its
        ``checkpoint``, to resume from: a copy of its own, never shared with the donor nor deleted with it.
        Returns the bytes copied; raises ``FileNotFoundError`` when the donor has no such checkpoint."""
        donor = self.dir(source_trial)
        source = donor / self.SNAPSHOT.format(resource=resource)
        if not source.is_file():  # killed between recording the donor's result and its snapshot: its latest
            source = donor / checkpoint
        if not source.is_file():
            raise FileNotFoundError(f"trial {source_trial} has no checkpoint after {resource} epochs in {donor}")
        directory = self.dir(trial_id)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(self.SNAPSHOT.format(resource="*")):
            old.unlink(missing_ok=True)  # the trial's own past no longer continues
        tmp = directory / f".{checkpoint}.copy.tmp"
        shutil.copyfile(source, tmp)
        os.replace(tmp, directory / checkpoint)
        return (directory / checkpoint).stat().st_size

    def measure(self) -> int:
        """Bytes of all checkpoints now; remembered as the peak when it is the largest seen."""
        now = _bytes_under(self.root) if self.root.is_dir() else 0
        self.peak_bytes = max(self.peak_bytes, now)
        return now

    def release(self, trial_id: int) -> int | None:
        """Delete the trial's checkpoint directory; the bytes freed, or None when nothing was deleted."""
        directory = self.dir(trial_id)
        if self.keep or not directory.is_dir():
            return None
        freed = _bytes_under(directory)
        shutil.rmtree(directory, ignore_errors=True)
        return freed

    def finish(self) -> dict[str, int]:
        """Peak and final disk use (for the summary); removes the root when no checkpoint is left in it."""
        final = self.measure()
        if self.root.is_dir() and final == 0 and not any(p.is_file() for p in self.root.rglob("*")):
            shutil.rmtree(self.root, ignore_errors=True)
        return {"checkpoint_bytes_peak": self.peak_bytes, "checkpoint_bytes_final": final}
