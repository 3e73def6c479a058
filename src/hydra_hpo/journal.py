"""The sweep journal: an append-only JSON-lines log of trial events, the source of truth for resuming.

Every event is written, flushed and fsynced before the tuner acts on it, so a killed sweep loses at
most the event being written; a torn last line is detected and dropped when the journal is read.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

from hydra_hpo.errors import UserError

JOURNAL_NAME = "journal.jsonl"


class JournalError(UserError, RuntimeError):
    """The journal cannot be read or does not belong to this sweep."""


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as strings so they survive a round trip."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Journal:
    """Appends events to ``<sweep_dir>/journal.jsonl``; ``read`` returns the events written so far."""

    def __init__(self, path: str | os.PathLike, durable: bool = True) -> None:
        """``durable=False`` skips fsync (simulations, where nothing real is lost by a crash)."""
        self.path = Path(path)
        self.durable = durable
        self._file = None

    def append(self, event: str, **fields: Any) -> dict:
        """Write one event durably; returns the record written."""
        record = {"event": event, **fields}
        line = json.dumps(_clean(record), sort_keys=False, default=str)
        if self._file is None:  # the folder is made by the first event, not before: a refused sweep leaves none
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(line + "\n")
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def read(self, repair: bool = True) -> list[dict]:
        """All complete events. A torn last line (no newline, or invalid JSON) is ignored and, with
        ``repair``, cut off the file so later appends start on a clean line."""
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        events: list[dict] = []
        offset = 0
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, start=1):
            is_last = number == len(lines)
            if not line.strip():
                offset += len(line) + 1
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError as error:
                if number >= len(lines) - 1 and (is_last or not any(lines[number:])):
                    # The process died mid-write: drop the torn tail.
                    if repair:
                        with open(self.path, "r+b") as f:
                            f.truncate(offset)
                    break
                raise JournalError(f"{self.path}: line {number} is not valid JSON: {error}") from error
            if is_last:  # a complete JSON object without its newline: keep it, add the newline
                if repair:
                    with open(self.path, "ab") as f:
                        f.write(b"\n")
            offset += len(line) + 1
        return events

    def __iter__(self) -> Iterator[dict]:
        return iter(self.read(repair=False))
