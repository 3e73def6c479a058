"""Translate between tuner jobs and Hydra jobs: a job's override list, and its result from result.json."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from hydra_hpo.trial import COMPLETED, DIVERGED, FAILED, KILLED, Job, JobResult

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-./]*$")


def format_value(value: Any) -> str:
    """A Python value as Hydra override text that parses back to the same value and type.

    Lists and dicts (``choice([16,16],[32,32])``) become Hydra lists and dicts, element by element.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_dict_key(k)}:{format_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in ("true", "false", "null", "nan", "inf"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dict_key(key: Any) -> str:
    text = str(key)
    if not _PLAIN.match(text):
        raise ValueError(f"dict key {text!r} cannot be written as a Hydra override (use letters, digits, _ - . /)")
    return text


def override_key(override: str) -> str:
    """The config key an override sets (``+a.b=1`` -> ``a.b``; ``hpo=asha`` -> ``hpo``)."""
    key = override.split("=", 1)[0]
    return key.lstrip("+~").split("@", 1)[0]


class JobOverrides:
    """Builds each job's override list: forwarded user overrides, then the trial's own values."""

    def __init__(self, forwarded: Sequence[str], checkpoint_dir: Callable[[int], Path], resource_key: str,
                 timeout: float | None = None) -> None:
        self.checkpoint_dir = checkpoint_dir  # trial id -> its checkpoint directory (a CheckpointStore's dir)
        self.resource_key = resource_key
        self.timeout = timeout
        self.forwarded = list(forwarded)

    def __call__(self, job: Job) -> list[str]:
        own = {key: format_value(value) for key, value in job.config.items()}
        own["seed"] = str(job.seed)
        own["trial.id"] = str(job.trial_id)
        own["trial.checkpoint_dir"] = format_value(str(self.checkpoint_dir(job.trial_id)))
        own[self.resource_key] = str(job.resource)
        if job.set_params:  # written into the optimizer after restoring, which brings back the old values
            entry = {"start_epoch": job.previous_resource,
                     **{key.rsplit(".", 1)[-1]: job.config[key] for key in job.set_params}}
            own["trial.schedule"] = format_value([entry])
        if self.timeout is not None:
            own["trial.timeout"] = repr(float(self.timeout))
        kept = [o for o in self.forwarded if override_key(o) not in own]
        return kept + [f"{key}={value}" for key, value in own.items()]


def _killed(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return any(word in text for word in ("terminated", "killed", "signal", "sigkill", "oom", "exit code -9"))


class ResultCollector:
    """Turns what a launcher returned for a job into a :class:`JobResult`.

    Reads ``result.json`` from the job's output directory (``hydra.runtime.output_dir``), falling back
    to the job's return value, then to the exception ``launch()`` raised (a killed job process).
    """

    def __init__(self, sweep_dir: Path, metric: str) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.metric = metric

    def output_dir(self, job: Job, ret: Any) -> Path:
        try:
            return Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
        except AttributeError:
            return self.sweep_dir / str(job.job_idx)  # hydra.sweep.subdir's default: the job number

    def __call__(self, job: Job, ret: Any, error: BaseException | None, started: float,
                 finished: float, output_dir: Path | None = None) -> JobResult:
        """``output_dir``: where the job wrote result.json, when not the launched job's own folder (keep-alive)."""
        from hydra_hpo.training.resultfile import read_result

        out = output_dir if output_dir is not None else self.output_dir(job, ret)
        base = dict(job=job, started=started, finished=finished, output_dir=str(out))
        data = read_result(out) if out.exists() else None
        if data is not None:
            metrics = {k: float(v) for k, v in (data.get("metrics") or {}).items() if isinstance(v, (int, float))}
            status = data.get("status", FAILED)  # CONFIG_ERROR (metric not logged, ...) stops the tuner
            value = data.get("value")
            value = float(value) if value is not None else (math.nan if status == DIVERGED else None)
            return JobResult(status=status, value=value, curve=[_num(v) for v in data.get("curve") or []],
                             seconds=float(data.get("seconds") or 0.0), error=data.get("error"),
                             metrics=metrics, **base)
        if ret is not None and error is None:
            status_name = getattr(getattr(ret, "status", None), "name", "")
            if status_name == "COMPLETED":
                try:
                    value = float(ret.return_value)
                except (TypeError, ValueError):
                    return JobResult(status=FAILED, error=f"job returned {ret.return_value!r}, not a number", **base)
                return JobResult(status=COMPLETED, value=value, seconds=finished - started, **base)
            exc = getattr(ret, "_return_value", None)
            return JobResult(status=FAILED, error=f"{type(exc).__name__}: {exc}", **base)
        if error is not None:
            status = KILLED if _killed(error) else FAILED
            return JobResult(status=status, error=f"{type(error).__name__}: {error}", **base)
        return JobResult(status=FAILED, error="the launcher returned nothing for this job", **base)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)
