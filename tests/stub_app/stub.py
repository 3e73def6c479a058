"""A stub task for sweeper tests: no training, a known loss, and failures on request.

``behaviour`` maps a trial id to what that trial does: "fail" raises, "diverge" returns NaN, "kill"
kills its own process with SIGKILL, "hang" sleeps far past any timeout. ``sleep`` makes the job take
that many seconds (a list: per trial id, cycled) so tests can observe overlapping jobs.
"""

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path=str(Path(__file__).parent / "conf"), config_name="stub")
def main(cfg: DictConfig) -> float:
    trial = cfg.trial.id if cfg.trial.id is not None else -1
    out = Path(HydraConfig.get().runtime.output_dir)
    started = time.time()
    what = cfg.behaviour.get(str(trial), None)
    if what == "fail":
        raise RuntimeError(f"trial {trial} fails on purpose")
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "hang":
        time.sleep(float(cfg.get("hang_seconds", 20)))
    sleeps = list(cfg.sleep) if cfg.sleep else [0.0]
    time.sleep(float(sleeps[trial % len(sleeps)]) if trial >= 0 else 0.0)
    value = float("nan") if what == "diverge" else (cfg.x - 0.3) ** 2 + (0.1 if cfg.act == "tanh" else 0.0)
    seen = OmegaConf.to_container(cfg, resolve=True)  # the config as the job received it, for tests to check
    (out / "times.json").write_text(json.dumps({"start": started, "end": time.time(), "pid": os.getpid(),
                                                "trial": trial, "config": seen}))
    return value


if __name__ == "__main__":
    main()
