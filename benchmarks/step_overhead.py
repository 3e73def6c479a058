"""Per-step cost of our training path (runner's Lightning Trainer + our models + in-memory loader) against a bare
PyTorch loop.

Both train d2l's softmax regression on scikit-learn's digits: batch size 16, SGD, the same tensors in the same
(seed, epoch) order, the same thread count, the training loss summed once per epoch and the validation error
computed once per epoch. A run's time per step is the time of its warm epochs (all but the first) divided by
their steps; the table shows the median over ``--repeats`` runs of each path, run alternately. Wall-clock time
and the thread's CPU time are both measured; the CPU time is steadier on a machine shared with other work.

    python benchmarks/step_overhead.py [--repeats 7] [--epochs 4] [--threads N] [--clock wall|cpu] [--profile]

The ratio depends on the machine (a faster CPU shrinks the bare loop's tensor work more than Lightning's
Python), so each clock's line also gives the absolute overhead per step, ours minus bare in microseconds, and
the header names the machine. The last line printed is ``ratio=<ours / bare> overhead_us=<ours - bare>
ours_us=<..> bare_us=<..>`` for the chosen clock (wall by default).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import statistics
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hydra_hpo.training.callbacks import CurveRecorder, TrialGuard
from hydra_hpo.training.data import DigitsDataModule, epoch_permutation
from hydra_hpo.training.runner import make_trainer, quiet_lightning

CONF = Path(__file__).resolve().parents[1] / "conf"
BATCH_SIZE = 16
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def runner_config(epochs: int, seed: int) -> DictConfig:
    """The runner's config as train.py composes it: the model, data and trainer groups' files from conf/."""
    cfg = OmegaConf.create({"seed": seed, "metric": "validation_error", "trial": {"id": 0}})
    cfg.model = OmegaConf.load(CONF / "model" / "softmax_regression.yaml")
    cfg.data = OmegaConf.load(CONF / "data" / "digits.yaml")
    cfg.trainer = OmegaConf.load(CONF / "trainer" / "default.yaml")
    overrides = [f"data.batch_size={BATCH_SIZE}", f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu"]
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))


def steps_per_epoch() -> int:
    data = DigitsDataModule(batch_size=BATCH_SIZE)
    return len(data.train_dataloader())


class EpochTimer(L.Callback):
    """Both clocks at the start and end of every training epoch (its validation included, as in the bare loop)."""

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = {name: [] for name in CLOCKS}
        self._started: dict[str, float] = {}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = {name: clock() for name, clock in CLOCKS.items()}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for name, clock in CLOCKS.items():
            self.durations[name].append(clock() - self._started[name])


def per_step(durations: dict[str, list[float]]) -> dict[str, float]:
    steps = (len(durations["wall"]) - 1) * steps_per_epoch()
    return {name: sum(values[1:]) / steps for name, values in durations.items()}


def ours(epochs: int, seed: int) -> dict[str, float]:
    """Seconds per step of the runner's path: make_trainer with the runner's callbacks, the configured model/data."""
    cfg = runner_config(epochs, seed)
    L.seed_everything(seed, workers=True, verbose=False)
    timer = EpochTimer()
    with quiet_lightning():
        trainer = make_trainer(cfg.trainer, [TrialGuard(), CurveRecorder(cfg.metric), timer])
        trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data))
    return per_step(timer.durations)


def bare(epochs: int, seed: int) -> dict[str, float]:
    """Seconds per step of a plain loop over the same tensors, with the same per-epoch bookkeeping."""
    data = DigitsDataModule(batch_size=BATCH_SIZE, seed=seed)
    data.setup()
    x, y, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    durations: dict[str, list[float]] = {name: [] for name in CLOCKS}
    for epoch in range(epochs):
        started = {name: clock() for name, clock in CLOCKS.items()}
        order = epoch_permutation(len(x), seed, epoch)
        x_epoch, y_epoch = x[order], y[order]
        losses = []
        for start in range(0, len(x), BATCH_SIZE):
            xb, yb = x_epoch[start : start + BATCH_SIZE], y_epoch[start : start + BATCH_SIZE]
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        with torch.no_grad():
            error = 1.0 - (model(x_val).argmax(1) == y_val).double().mean()
        float(error), float(torch.stack(losses).mean())
        for name, clock in CLOCKS.items():
            durations[name].append(clock() - started[name])
    return per_step(durations)


def profile_summary(epochs: int) -> None:
    """cProfile one run of our path: own time per step grouped by library, then the top functions."""
    profiler = cProfile.Profile()
    profiler.runcall(ours, epochs, 0)
    stats = pstats.Stats(profiler).stats
    steps = epochs * steps_per_epoch()
    groups: collections.Counter[str] = collections.Counter()
    for (filename, _, _), (_, _, own, _, _) in stats.items():
        group = ("torch C++" if filename == "~" else "lightning" if "lightning" in filename
                 else "torch python" if "/torch/" in filename else "hydra_hpo" if "hydra_hpo" in filename else "other")
        groups[group] += own
    print(f"profile of our path (cProfile inflates Python-heavy code), own time per step over {steps} steps:")
    for group, own in groups.most_common():
        print(f"  {group:<13} {own / steps * 1e6:8.1f} us")
    print("top functions by own time per step:")
    top = sorted(stats.items(), key=lambda item: -item[1][2])[:15]
    for (filename, line, name), (_, calls, own, _, _) in top:
        print(f"  {own / steps * 1e6:7.1f} us {calls / steps:5.1f} calls  {filename.split('site-packages/')[-1]}:{line}({name})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads for both paths; default 1 as conf/config.yaml's threads, "
                             "0 keeps torch's default")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="the clock of the ratio line")
    parser.add_argument("--profile", action="store_true", help="cProfile our path and print where time goes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ours(2, 0), bare(2, 0)  # warm-up: imports, dataset cache, first-call allocations
    if args.profile:
        profile_summary(args.epochs)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "ours": []}
    for repeat in range(args.repeats):
        runs["bare"].append(bare(args.epochs, repeat))
        runs["ours"].append(ours(args.epochs, repeat))
    medians = {path: {c: statistics.median(r[c] for r in results) for c in CLOCKS} for path, results in runs.items()}
    print(f"machine: {machine()}; torch {torch.__version__}, lightning {L.__version__}; "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"softmax regression on digits, batch {BATCH_SIZE}, {steps_per_epoch()} steps/epoch, {args.epochs} epochs "
          f"x {args.repeats} repeats, torch threads {torch.get_num_threads()}; medians in us/step")
    print(f"{'path':<6} {'wall':>8} {'cpu':>8}")
    for path, median in medians.items():
        print(f"{path:<6} {median['wall'] * 1e6:>8.1f} {median['cpu'] * 1e6:>8.1f}")
    for clock in CLOCKS:
        print(f"ratio_{clock}={medians['ours'][clock] / medians['bare'][clock]:.2f} "
              f"overhead_{clock}_us={(medians['ours'][clock] - medians['bare'][clock]) * 1e6:.1f}")
    ours_us, bare_us = medians["ours"][args.clock] * 1e6, medians["bare"][args.clock] * 1e6
    print(f"ratio={ours_us / bare_us:.2f} overhead_us={ours_us - bare_us:.1f} ours_us={ours_us:.1f} bare_us={bare_us:.1f}")


def machine() -> str:
    """The CPU model, core count and load, as far as the platform tells."""
    import os
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{model}, {os.cpu_count()} CPUs{load}, {platform.system()} {platform.release()}"


if __name__ == "__main__":
    main()
