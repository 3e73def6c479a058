"""One rerunnable config per Pareto-front member: ``pareto/<trial>.yaml``, like ``best_config.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hydra_hpo.atomic import atomic_write_text
from hydra_hpo.pareto import PARETO_DIR
from hydra_hpo.records import TrialRecord


def trial_config_yaml(config: DictConfig, record: TrialRecord, resource_key: str, epochs: int, header: str) -> str:
    """The job config (without ``hydra``) with the trial's parameters, epochs and seed, after ``header``."""
    job = OmegaConf.create({k: v for k, v in OmegaConf.to_container(config, resolve=False).items() if k != "hydra"})
    for key, value in record.config.items():
        OmegaConf.update(job, key, value, merge=False)
    OmegaConf.update(job, resource_key, epochs, merge=False)
    job.seed = record.seed
    return header + OmegaConf.to_yaml(job)


def write_pareto_configs(config: DictConfig, front: list[dict[str, Any]], trials: dict[int, TrialRecord],
                         resource_key: str, sweep_dir: Path) -> list[Path]:
    """Write ``<sweep_dir>/pareto/<trial>.yaml`` for every front member of the summary's ``pareto_front``."""
    folder = sweep_dir / PARETO_DIR
    paths = []
    for member in front:
        trial_id = member["trial_id"]
        values = ", ".join(f"{k}={v:.6g}" for k, v in member["values"].items())
        header = (f"# Pareto-front member of sweep {sweep_dir.resolve()}\n"
                  f"# {values} (trial {trial_id}, {member['epochs']} epochs)\n"
                  f"# Rerun: python train.py --config-path <this folder> --config-name {trial_id}\n")
        path = folder / f"{trial_id}.yaml"
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, trial_config_yaml(config, trials[trial_id], resource_key, member["epochs"], header))
        paths.append(path)
    return paths
