"""Keep-alive: a job process that ended a segment waits for the sweeper, which may hand it the trial's next one.

The two sides talk through small files in the sweep's jobs directory, named by the process's Hydra job number
``num`` (the number of the first segment it ran; later segments have their own job numbers):

- ``<num>.parked`` (job -> sweeper): "segment ``job_idx`` is done, its result.json is in ``output_dir``; I wait".
- The sweeper takes a parked job by renaming ``<num>.parked`` to ``<num>.claimed`` and then writes
  ``<num>.next``: ``{"action": "continue", "job_idx", "resource", "output_dir", "timeout"}`` or ``{"action": "stop"}``.
- A job that waited ``wait_seconds`` in vain, or whose sweeper died, renames ``<num>.parked`` to ``<num>.gone``
  and ends.

Renames are atomic, so exactly one side wins a race between a late claim and a job giving up: a claim that fails
means the process is gone (the sweeper starts a new one), and a job that cannot give up has been claimed (its
message follows). Neither side imports Hydra or torch.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

from hydra_hpo.atomic import atomic_write_text

SWEEPER_FILE = "sweeper.json"
POLL_SECONDS = 0.005
DEFAULT_WAIT_SECONDS = 300.0  # a job waits this long for the sweeper's decision before it ends on its own


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class SweeperSide:
    """The sweeper's end: see which jobs wait, claim one and hand it a segment, or tell it to stop."""

    def __init__(self, jobs_dir: str | os.PathLike) -> None:
        self.jobs_dir = Path(jobs_dir)

    def announce(self) -> None:
        """Write who the sweeper is, so that a waiting job notices when it has died."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.jobs_dir / SWEEPER_FILE,
                          json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))

    def parked(self, num: int) -> dict | None:
        """What process ``num`` announced when it parked (``job_idx``, ``output_dir``), or None."""
        return _read_json(self.jobs_dir / f"{num}.parked")

    def claim(self, num: int) -> bool:
        """Take parked process ``num``; False when it is no longer waiting (gave up, ended)."""
        try:
            os.rename(self.jobs_dir / f"{num}.parked", self.jobs_dir / f"{num}.claimed")
        except FileNotFoundError:
            return False
        return True

    def send(self, num: int, message: dict[str, Any]) -> None:
        """Hand claimed process ``num`` its next segment, or ``{"action": "stop"}``."""
        atomic_write_text(self.jobs_dir / f"{num}.next", json.dumps(message))

    def release(self, num: int) -> bool:
        """Tell parked process ``num`` to end; False when it was not waiting any more."""
        if not self.claim(num):
            return False
        self.send(num, {"action": "stop"})
        return True


class JobSide:
    """A job process's end: park after a segment and wait for the sweeper's message."""

    def __init__(self, jobs_dir: str | os.PathLike, num: int, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                 sweeper_alive: Callable[[], bool] | None = None) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.num = int(num)
        self.wait_seconds = float(wait_seconds)
        self.sweeper_alive = sweeper_alive or self._sweeper_alive

    def _path(self, suffix: str) -> Path:
        return self.jobs_dir / f"{self.num}.{suffix}"

    def _sweeper_alive(self) -> bool:
        info = _read_json(self.jobs_dir / SWEEPER_FILE)
        if info is None or info.get("host") != socket.gethostname():
            return True  # another machine's sweeper: only the wait limit ends the wait
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, KeyError, TypeError):
            return True
        return True

    def park(self, job_idx: int, output_dir: str | os.PathLike) -> dict[str, Any]:
        """Announce that segment ``job_idx`` is done (its result in ``output_dir``) and wait for the sweeper.

        Returns its message: ``{"action": "continue", ...}`` or ``{"action": "stop"}`` (also when the wait
        ran out or the sweeper died)."""
        self.announce(job_idx, output_dir)
        return self.wait()

    def announce(self, job_idx: int, output_dir: str | os.PathLike) -> None:
        """Tell the sweeper that segment ``job_idx`` is done and this process waits (``<num>.parked``)."""
        for stale in ("claimed", "next", "gone"):
            self._path(stale).unlink(missing_ok=True)
        atomic_write_text(self._path("parked"), json.dumps({"job_idx": int(job_idx), "output_dir": str(output_dir),
                                                            "pid": os.getpid()}))

    def wait(self) -> dict[str, Any]:
        """Wait for the sweeper's message after :meth:`announce` (see :meth:`park`)."""
        deadline = time.monotonic() + self.wait_seconds
        next_check = time.monotonic() + 1.0
        while True:
            message = _read_json(self._path("next"))
            if message is not None:
                self._path("next").unlink(missing_ok=True)
                self._path("claimed").unlink(missing_ok=True)
                return message
            now = time.monotonic()
            dead = False
            if now > next_check:
                next_check = now + 1.0
                dead = not self.sweeper_alive()
                if not self._path("parked").exists() and not self._path("claimed").exists() \
                        and not self._path("next").exists():
                    return {"action": "stop", "reason": "the sweep removed its jobs folder"}
            if dead or now > deadline:
                try:
                    os.rename(self._path("parked"), self._path("gone"))
                except FileNotFoundError:  # claimed just now: its message is on the way (unless the sweeper died)
                    if dead:
                        return {"action": "stop", "reason": "the sweeper died"}
                    deadline = float("inf")
                else:
                    return {"action": "stop", "reason": "the sweeper died" if dead else "no word from the sweeper"}
            time.sleep(POLL_SECONDS)
