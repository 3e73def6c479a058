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
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(directory, name)).st_size
            except OSError:  # a job replaced the file meanwhile
                pass
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
