"""Train one configuration: `python train.py` (one run) or `python train.py -m hpo=...` (a sweep)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from hydra_hpo.errors import exit_on_user_error
    from hydra_hpo.training.runner import train

    # One run: a mistake in the input (dataset missing, metric not logged) is one line, not a traceback.
    # A job of a sweep raises instead: its sweeper reads result.json and reports it.
    with exit_on_user_error(enabled=HydraConfig.get().mode == RunMode.RUN):
        return train(cfg)


if __name__ == "__main__":
    main()
