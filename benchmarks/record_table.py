"""Record a table of learning curves for the simulator: sample configurations, train each, append a row.

    python benchmarks/record_table.py --configs 300 --epochs 20 \
        --space conf/search_space/mlp.yaml --out benchmarks/tables/mlp_digits.jsonl

Configurations come from the project's RandomSearcher (seeded). Each is trained with the project's MLP and
DigitsDataModule, driving the LightningModule directly (forward, its optimizer, the datamodule's tensors)
instead of a Trainer, which would cost more than these tiny models. The validation error is the model's own
definition: 1 - accuracy over the whole validation set (sample-weighted). ``elapsed`` is cumulative training
seconds (validation excluded), measured as the CPU time of this single-threaded process
(``time.process_time``): on a shared machine, wall-clock time would mostly measure the other processes.
When the training loss becomes NaN/inf, the real runner stops the trial as diverged; here the row gets
``NaN`` errors from that epoch on (the simulator reports them as diverged) and the remaining ``elapsed``
continue at the mean epoch time so far.

One row per configuration, flushed as it is written: an interrupted recording keeps its rows, and running
the same command again skips the configurations already recorded (checked against the same seed's sequence).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hydra_hpo.searchers import RandomSearcher
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import trial_seed

REPO = Path(__file__).resolve().parents[1]
DIGITS = 5  # significant digits kept in the file


def round_sig(value: float, digits: int = DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (NaN and inf unchanged)."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def load_space(path: Path) -> SearchSpace:
    from omegaconf import OmegaConf

    return SearchSpace.from_structured(OmegaConf.to_container(OmegaConf.load(path), resolve=True))


def sample_configs(space: SearchSpace, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` configurations of the seeded RandomSearcher, floats rounded as they are stored."""
    searcher = RandomSearcher(space, seed=seed)
    configs = []
    for _ in range(n):
        config = searcher.suggest()
        if config is None:
            break
        configs.append({k: round_sig(v) if isinstance(space[k], Float) else v for k, v in config.items()})
    return configs


def _model_and_data(config: dict[str, Any], seed: int):
    from hydra_hpo.training.data import DigitsDataModule
    from hydra_hpo.training.models import MLP

    model_args = {k.split(".", 1)[1]: v for k, v in config.items() if k.startswith("model.")}
    data_args = {k.split(".", 1)[1]: v for k, v in config.items() if k.startswith("data.")}
    unknown = [k for k in config if not k.startswith(("model.", "data."))]
    if unknown:
        raise ValueError(f"search space key {unknown[0]!r}: only model.* and data.* keys can be recorded")
    data = DigitsDataModule(seed=seed, **data_args)
    data.setup()
    model = MLP(**model_args)
    model.materialize(data.x_train[:2])
    return model, data


def train_curve(config: dict[str, Any], epochs: int, seed: int) -> tuple[list[float], list[float]]:
    """Validation error and cumulative training seconds after each of ``epochs`` epochs."""
    from hydra_hpo.training.data import TensorLoader

    torch.manual_seed(seed)  # the lazy layers' initial weights (a script: the global RNG is ours)
    model, data = _model_and_data(config, seed)
    optimizer = model.configure_optimizers()
    errors: list[float] = []
    elapsed: list[float] = []
    seconds = 0.0
    epoch = 0
    train = TensorLoader(data.x_train, data.y_train, data.batch_size, shuffle=True, seed=seed,
                         epoch_fn=lambda: epoch)
    diverged = False
    for epoch in range(epochs):
        start = time.process_time()
        model.train()
        for x, y in train:
            loss = F.cross_entropy(model(x), y)
            if not math.isfinite(loss.item()):
                diverged = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds += time.process_time() - start
        elapsed.append(seconds)
        if diverged:
            break
        model.eval()
        correct, count = 0, 0
        with torch.no_grad():
            for x, y in data.val_dataloader():
                correct += int((model(x).argmax(dim=1) == y).sum())
                count += len(y)
        errors.append(1.0 - correct / count)
    per_epoch = seconds / len(elapsed)
    while len(elapsed) < epochs:
        elapsed.append(elapsed[-1] + per_epoch)
    errors += [math.nan] * (epochs - len(errors))
    return errors, elapsed


def existing_configs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["config"] for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", type=Path, default=REPO / "conf" / "search_space" / "mlp.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "tables" / "mlp_digits.jsonl")
    parser.add_argument("--configs", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: leave cores to others)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    space = load_space(args.space)
    configs = sample_configs(space, args.configs, args.seed)
    done = existing_configs(args.out)
    if done != configs[: len(done)]:
        print(f"{args.out} holds rows of another space or seed than --space {args.space} --seed {args.seed}; "
              "choose another --out", file=sys.stderr)
        return 2
    if len(done) > 0:
        print(f"{len(done)} configurations already recorded in {args.out}; continuing")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(args.out, "a", encoding="utf-8") as out:
        for index in range(len(done), len(configs)):
            config = configs[index]
            errors, elapsed = train_curve(config, args.epochs, trial_seed(args.seed, index))
            row = {"config": config, "val_error": [round_sig(e) for e in errors],
                   "elapsed": [round_sig(t) for t in elapsed]}
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"[{index + 1}/{len(configs)}] {time.perf_counter() - start:7.1f} s  final error "
                  f"{errors[-1]:.4f} in {elapsed[-1]:.2f} s  {config}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
