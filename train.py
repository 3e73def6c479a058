"""Train one configuration: `python train.py` (one run) or `python train.py -m hpo=...` (a sweep)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from hydra_hpo.training.runner import train

    return train(cfg)


if __name__ == "__main__":
    main()
