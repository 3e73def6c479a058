"""Per-epoch and per-job cost of ``logger=csv|tensorboard|mlflow`` against ``logger=none``, on the runner's path.

Each run trains d2l's softmax regression on digits (batch size 16, as benchmarks/step_overhead.py) for
``--epochs`` epochs with the runner's Trainer and callbacks plus the logger's callback, in a fresh trial each
time; the loggers take turns, ``--repeats`` runs each. An epoch's time spans its start to the end of the last
callback's ``on_train_epoch_end`` (training, validation, and the logger writing that epoch's metrics). Printed:
the median time of the logger's own epoch-end work (from just before its callback to the end of the epoch's
last callback; steady under load), the median warm epoch (all but each run's first) on both clocks and its
difference from ``none`` (noisy on a loaded machine), and the median time to open the trial's run
(``trial_loggers``: for MLflow, the parent and child runs) before training starts. ``--every N`` adds each
logger with ``log_every_n_steps=N`` (Lightning then logs through its own per-step machinery, which the
epoch-end column does not see; compare the whole epochs).

    python benchmarks/logger_overhead.py [--repeats 5] [--epochs 6] [--every 10]

The last line is ``<logger>_log_ms=<epoch-end logging, CPU ms> ... epoch_cpu_ms=<none's epoch>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Checkpoint
from omegaconf import DictConfig, OmegaConf

from hydra_hpo.training.callbacks import CurveRecorder, TrialGuard
from hydra_hpo.training.data import DigitsDataModule
from hydra_hpo.training.loggers import trial_loggers
from hydra_hpo.training.runner import make_trainer, quiet_lightning

CONF = Path(__file__).resolve().parents[1] / "conf"
BATCH_SIZE = 16
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}  # cpu: all threads (TensorBoard writes in its own)


def config(logger: str, every: int | None, trial: int, epochs: int, store: Path) -> DictConfig:
    cfg = OmegaConf.create({"seed": trial, "metric": "validation_error", "trial": {"id": trial}})
    cfg.model = OmegaConf.load(CONF / "model" / "softmax_regression.yaml")
    cfg.data = OmegaConf.load(CONF / "data" / "digits.yaml")
    cfg.trainer = OmegaConf.load(CONF / "trainer" / "default.yaml")
    cfg.logger = OmegaConf.load(CONF / "logger" / f"{logger}.yaml")
    overrides = [f"data.batch_size={BATCH_SIZE}", f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu"]
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    if logger != "none":
        cfg.logger.log_every_n_steps = every
        if logger == "mlflow":
            cfg.logger.tracking_uri = f"file:{store / 'mlruns'}"
        else:
            cfg.logger.save_dir = str(store / logger)
    return cfg


class EpochTimer(Checkpoint):
    """Both clocks from an epoch's start to the end of the last ``on_train_epoch_end`` (listed last), and from
    its :attr:`mark` (listed just before the logger's callback) to that end: the logger's own epoch-end work."""

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = {name: [] for name in CLOCKS}
        self.logging: dict[str, list[float]] = {name: [] for name in CLOCKS}
        self._started: dict[str, float] = {}
        self._marked: dict[str, float] = {}
        timer = self

        class Mark(Checkpoint):
            def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
                timer._marked = {name: clock() for name, clock in CLOCKS.items()}

        self.mark = Mark()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = {name: clock() for name, clock in CLOCKS.items()}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, clock in CLOCKS.items():
            now = clock()
            self.durations[name].append(now - self._started[name])
            self.logging[name].append(now - self._marked[name])


def run(logger: str, every: int | None, trial: int, epochs: int, store: Path) -> tuple[dict[str, list[float]], float]:
    """One trial's warm epoch times per clock, and the seconds to open its run."""
    cfg = config(logger, every, trial, epochs, store)
    L.seed_everything(trial, workers=True, verbose=False)
    recorder = CurveRecorder(cfg.metric)
    timer = EpochTimer()
    with quiet_lightning():
        opening = time.perf_counter()
        loggers = trial_loggers(cfg, recorder)
        opening = time.perf_counter() - opening
        trainer = make_trainer(cfg.trainer, [TrialGuard(), recorder, timer.mark, *loggers, timer])
        trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data))
    warm = {name: values[1:] for name, values in timer.durations.items()}
    warm.update({f"log_{name}": values[1:] for name, values in timer.logging.items()})
    return warm, opening


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--every", type=int, default=None, help="also each logger with log_every_n_steps=N")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Lightning's deprecation notes, once per run
    torch.set_num_threads(1)
    variants = [("none", None), ("csv", None), ("tensorboard", None), ("mlflow", None)]
    if args.every:
        variants += [(name, args.every) for name in ("csv", "tensorboard", "mlflow")]
    steps = len(DigitsDataModule(batch_size=BATCH_SIZE).train_dataloader())
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"torch {torch.__version__}, lightning {L.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"# {args.repeats} runs x {args.epochs} epochs per logger, {steps} steps per epoch, one torch thread")
    series = [*CLOCKS, *(f"log_{c}" for c in CLOCKS)]
    epochs: dict[tuple[str, int | None], dict[str, list[float]]] = {v: {c: [] for c in series} for v in variants}
    opening: dict[tuple[str, int | None], list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        cwd = os.getcwd()
        os.chdir(store)  # outside a Hydra job the sweep directory is the working directory (MLflow's parent run id)
        try:
            for variant in variants:  # warm-up: imports, dataset cache, MLflow's experiment and parent run
                run(*variant, trial=10_000 + len(opening[variant]), epochs=2, store=store)
            trial = 0
            for _ in range(args.repeats):
                for variant in variants:
                    durations, seconds = run(*variant, trial=trial, epochs=args.epochs, store=store)
                    trial += 1
                    opening[variant].append(seconds)
                    for name in series:
                        epochs[variant][name].extend(durations[name])
        finally:
            os.chdir(cwd)
    base = {clock: statistics.median(epochs[("none", None)][clock]) for clock in CLOCKS}
    print(f"{'logger':<22} {'epoch-end logging ms':>20} {'wall ms/epoch':>13} {'+ vs none':>10} "
          f"{'cpu ms/epoch':>12} {'+ vs none':>10} {'open run ms':>11}")
    print(f"{'':<22} {'(wall / cpu)':>20}")
    last = []
    for variant in variants:
        name = variant[0] + (f" every={variant[1]}" if variant[1] else "")
        wall, cpu, log_wall, log_cpu = (statistics.median(epochs[variant][c])
                                        for c in ("wall", "cpu", "log_wall", "log_cpu"))
        print(f"{name:<22} {log_wall * 1e3:10.3f} / {log_cpu * 1e3:7.3f} {wall * 1e3:13.2f} "
              f"{(wall - base['wall']) * 1e3:+10.2f} {cpu * 1e3:12.2f} {(cpu - base['cpu']) * 1e3:+10.2f} "
              f"{statistics.median(opening[variant]) * 1e3:11.1f}")
        if variant[0] != "none":
            last.append(f"{name.replace(' every=', '_every')}_log_ms={log_cpu * 1e3:.3f}")
    print(" ".join(last), f"epoch_cpu_ms={base['cpu'] * 1e3:.2f}")


if __name__ == "__main__":
    main()
