"""GPUs per trial for each kind of Hydra launcher: own devices per job here, launcher settings elsewhere.

Launchers that run jobs on this machine (basic, joblib, submitit_local) get a
:class:`~hydra_hpo.devices.DeviceAssigner`: every job in flight its own ``CUDA_VISIBLE_DEVICES``. On SLURM
and Ray the cluster assigns devices; the sweeper checks that the launcher asks for ``hpo.gpus_per_trial``
of them (``hydra.launcher.gpus_per_task``/``gpus_per_node``, ``hydra.launcher.ray.remote.num_gpus``).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from omegaconf import OmegaConf

from hydra_hpo.devices import DeviceAssigner, plan_gpus, visible_devices
from hydra_hpo.errors import SettingsError
from hydra_hpo.settings import HPOSettings

log = logging.getLogger(__name__)


def launcher_kind(target: str, in_process: bool) -> str:
    """``in_process`` (basic), ``slurm``, ``ray`` or ``local`` (joblib, submitit_local, others)."""
    if in_process:
        return "in_process"
    if "SlurmLauncher" in target:
        return "slurm"
    if "ray" in target.lower():
        return "ray"
    return "local"


def _check_remote(settings: HPOSettings, keys: list[str], launcher_cfg: Any, launcher: str) -> None:
    asked = {key: OmegaConf.select(launcher_cfg, key, default=None) for key in keys}
    given = {key: value for key, value in asked.items() if value not in (None, 0)}
    wanted = settings.gpus_per_trial
    if wanted == "auto":  # the launcher's own setting decides
        return
    if wanted > 0 and not given:
        raise SettingsError(f"hpo.gpus_per_trial={wanted} but hydra/launcher={launcher} asks for no GPU: "
                            f"add hydra.launcher.{keys[0]}={wanted} (the cluster assigns the devices)")
    for key, value in given.items():
        if value != wanted:
            raise SettingsError(f"hpo.gpus_per_trial={wanted} but hydra.launcher.{key}={value}: set them alike")


def gpu_setup(settings: HPOSettings, launcher_cfg: Any, in_process: bool,
              environ: Mapping[str, str] | None = None, trains_on_cpu: bool = False) -> DeviceAssigner | None:
    """Check and resolve the GPU settings before any job starts; sets ``settings.n_workers`` when it was
    ``auto`` and the jobs get GPUs here. Returns the assigner of this machine's devices, or None.
    ``trains_on_cpu`` (``trainer.accelerator=cpu``): ``gpus_per_trial=auto`` means 0 and the GPUs are left alone."""
    target = str(OmegaConf.select(launcher_cfg, "_target_", default="") or "")
    kind = launcher_kind(target, in_process)
    if kind == "slurm":
        _check_remote(settings, ["gpus_per_task", "gpus_per_node"], launcher_cfg, "submitit_slurm")
        return None
    if kind == "ray":
        _check_remote(settings, ["ray.remote.num_gpus"], launcher_cfg, "ray")
        return None
    if trains_on_cpu and settings.gpus_per_trial == "auto":
        return None
    devices = visible_devices(environ)
    plan = plan_gpus(settings.gpus_per_trial, settings.trials_per_gpu, settings.n_workers, settings.workers_auto,
                     devices)
    settings.n_workers = plan.n_workers
    if not devices:  # a CPU machine: nothing to assign, nothing to hide
        return None
    if "joblib" in target.lower() and len(plan.groups) > 1:
        log.warning("hydra/launcher=joblib reuses its worker processes, and a process that started CUDA cannot "
                    "move to another GPU: a job sent to such a worker with other GPUs fails (CONFIG_ERROR). "
                    "Use hydra/launcher=submitit_local (a fresh process per job) for %d GPU groups",
                    len(plan.groups))
    return DeviceAssigner(plan, in_process=(kind == "in_process"))
