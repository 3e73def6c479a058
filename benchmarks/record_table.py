"""Record a table of learning curves for the simulator: sample configurations, train each, append a row.

    python benchmarks/record_table.py --configs 300 --epochs 20 \
        --space conf/search_space/mlp.yaml --out benchmarks/tables/mlp_digits.jsonl

    python benchmarks/record_table.py --model lenet --image-size 28 --configs 400 --epochs 20 \
        --space conf/search_space/lenet_digits.yaml --out benchmarks/tables/lenet_digits.jsonl

    python benchmarks/record_table.py --configs 600 --epochs 20 --measure \
        --space conf/search_space/mlp.yaml --out benchmarks/tables/mlp_digits_mo.jsonl

Configurations come from the project's RandomSearcher (seeded). Each is trained with the model of
``conf/model/<--model>.yaml`` (its ``_target_`` class, the file's values overridden by the sampled model.* keys,
as Hydra instantiates it) and the DigitsDataModule at ``--image-size`` pixels, driving the LightningModule
directly (forward, its optimizer, the datamodule's tensors) instead of a Trainer, which would cost more than
these tiny models. The validation error is the model's own
definition: 1 - accuracy over the whole validation set (sample-weighted). ``elapsed`` is cumulative training
seconds (validation excluded), measured as the CPU time of this single-threaded process
(``time.process_time``): on a shared machine, wall-clock time would mostly measure the other processes.
When the training loss becomes NaN/inf, the real runner stops the trial as diverged; here the row gets
``NaN`` errors from that epoch on (the simulator reports them as diverged) and the remaining ``elapsed``
continue at the mean epoch time so far.

One row per configuration, flushed as it is written: an interrupted recording keeps its rows, and running
the same command again skips the configurations already recorded (checked against the same seed's sequence).

On several cores, record in shards and merge them (each shard is one single-threaded process):

    python benchmarks/record_table.py --configs 1000 --shard 0/2 &   # -> <out>.shard0of2, rows with "index"
    python benchmarks/record_table.py --configs 1000 --shard 1/2 &
    wait; python benchmarks/record_table.py --configs 1000 --merge 2  # appends them to <out> in order

A shard records the configurations ``index % n == i`` after the rows already in ``--out``; ``--merge`` appends
the longest run of consecutive indices the shard files hold, so an interrupted shard loses nothing but
its own unmerged tail (run the shards again: they skip what their files hold).

``--measure`` adds three per-row extra metrics (the simulator passes them through as metrics), measured
after the row's training (a diverged row too), outside ``elapsed``, which it leaves unchanged:

- ``n_params``, ``inference_ms``: the real runner's functions (``hydra_hpo.training.measure``): trainable
  parameters, and the median of 10 timed forward passes (after 3 warm-up passes, in inference mode) over the
  first validation batch cut to 256 samples, on the CPU with ONE torch thread (``--measure`` refuses
  ``--threads`` other than 1), in a process that may share the machine with other shards.
- ``peak_memory_mb``: this row's own peak resident memory: the increase of the process's resident set
  high-water mark over its size at the row's start (reset per row through ``/proc/self/clear_refs``, after
  handing freed heap back with ``malloc_trim`` so that reused memory counts). It covers the model, its
  gradients and optimizer state, the batches' activations and the timed inference; not the interpreter,
  torch and the (cached, shared) dataset, which a warm-up loads before the first row. A real CPU run's
  ``peak_memory_mb`` is instead its whole process's max RSS (about 1 GB of it is importing torch), so the
  two are not comparable in absolute terms. The same row repeated after others agrees within about 1.5 MB.
  Linux with glibc only: elsewhere the rows get no ``peak_memory_mb`` (a warning says so).

A table is recorded with or without ``--measure`` throughout: continuing or merging rows of the other kind
is refused.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hydra_hpo.searchers import RandomSearcher
from hydra_hpo.training import measure as measure_fns
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.space_structured import space_from_structured
from hydra_hpo.trial import trial_seed

REPO = Path(__file__).resolve().parents[1]
DIGITS = 5  # significant digits kept in the file
MEASURED = ("n_params", "inference_ms", "peak_memory_mb")  # the per-row extras of --measure


def round_sig(value: float, digits: int = DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (NaN and inf unchanged)."""
    if not math.isfinite(value) or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def load_space(path: Path) -> SearchSpace:
    from omegaconf import OmegaConf

    return space_from_structured(OmegaConf.to_container(OmegaConf.load(path), resolve=True))


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


def model_class_and_defaults(model: str) -> tuple[type, dict[str, Any]]:
    """The class named by ``conf/model/<model>.yaml``'s ``_target_`` and the file's other keys (its defaults)."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    path = REPO / "conf" / "model" / f"{model}.yaml"
    if not path.exists():
        choices = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ValueError(f"--model {model!r}: no {path}; choose one of {choices}")
    args = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return get_class(args.pop("_target_")), args


def _model_and_data(config: dict[str, Any], seed: int, model: str = "mlp", image_size: int = 8):
    from hydra_hpo.training.data import DigitsDataModule

    model_args = {k.split(".", 1)[1]: v for k, v in config.items() if k.startswith("model.")}
    data_args = {k.split(".", 1)[1]: v for k, v in config.items() if k.startswith("data.")}
    unknown = [k for k in config if not k.startswith(("model.", "data."))]
    if unknown:
        raise ValueError(f"search space key {unknown[0]!r}: only model.* and data.* keys can be recorded")
    data = DigitsDataModule(seed=seed, **{"image_size": image_size, **data_args})
    data.setup()
    cls, defaults = model_class_and_defaults(model)
    module = cls(**{**defaults, **model_args})  # as Hydra instantiates conf/model/<model>.yaml with overrides
    module.materialize(data.x_train[:2])
    return module, data


def train_curve(
    config: dict[str, Any], epochs: int, seed: int, model: str = "mlp", image_size: int = 8
) -> tuple[list[float], list[float]]:
    """Validation error and cumulative training seconds after each of ``epochs`` epochs of ``model``
    (a name in conf/model/) on digits at ``image_size`` pixels."""
    errors, elapsed, _, _ = _train(config, epochs, seed, model, image_size)
    return errors, elapsed


def _train(config: dict[str, Any], epochs: int, seed: int, model: str, image_size: int):
    """:func:`train_curve`'s curves, and the trained module and its datamodule."""
    from hydra_hpo.training.data import TensorLoader

    torch.manual_seed(seed)  # the lazy layers' initial weights (a script: the global RNG is ours)
    model, data = _model_and_data(config, seed, model, image_size)
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
    return errors, elapsed, model, data


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise OSError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> float | None:
    """Start measuring a row's peak memory: the process's resident MiB now, with the kernel's high-water
    mark reset to it; ``None`` where that cannot be done (not Linux with glibc: the rows get no
    ``peak_memory_mb``).

    Freed heap memory is first handed back (``malloc_trim``), so memory the row reuses from earlier rows
    faults in again and counts, as it would in a fresh process."""
    try:
        gc.collect()
        ctypes.CDLL(None).malloc_trim(0)
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets VmHWM to VmRSS (Linux >= 4.0)
        return _status_mb("VmRSS")
    except (OSError, AttributeError):
        return None


def record_row(
    config: dict[str, Any], epochs: int, seed: int, model: str = "mlp", image_size: int = 8,
    measure: bool = False,
) -> dict[str, Any]:
    """One table row of ``config``: its curves and, with ``measure``, ``n_params``, ``inference_ms`` and
    ``peak_memory_mb`` of the trained model (a diverged one too: its model still exists)."""
    baseline = reset_peak_rss() if measure else None
    errors, elapsed, module, data = _train(config, epochs, seed, model, image_size)
    row: dict[str, Any] = {"config": config, "val_error": [round_sig(e) for e in errors],
                           "elapsed": [round_sig(t) for t in elapsed]}
    if measure:
        # the real runner's functions, on the device the row trained on, with this process's torch threads
        cpu = torch.device("cpu")
        row["n_params"] = measure_fns.n_params(module)
        row["inference_ms"] = round_sig(measure_fns.inference_ms(module, measure_fns.inference_inputs(data), cpu))
        if baseline is not None:
            row["peak_memory_mb"] = round_sig(max(_status_mb("VmHWM") - baseline, 0.0))
    return row


def warm_up(config: dict[str, Any], model: str, image_size: int) -> None:
    """Load the (cached, shared) dataset and run one training step and one timed inference, so that
    torch's one-time allocations do not land in the first row's ``peak_memory_mb``."""
    module, data = _model_and_data(config, 0, model, image_size)
    optimizer = module.configure_optimizers()
    x, y = data.x_train[: data.batch_size], data.y_train[: data.batch_size]
    F.cross_entropy(module(x), y).backward()
    optimizer.step()
    measure_fns.inference_ms(module, measure_fns.inference_inputs(data), torch.device("cpu"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def existing_configs(path: Path) -> list[dict[str, Any]]:
    return [row["config"] for row in read_rows(path)]


def measured(row: dict[str, Any]) -> bool:
    """Whether ``row`` was recorded with ``--measure``."""
    return "inference_ms" in row


def mixed_rows(rows: list[dict[str, Any]], measure: bool, where: Path) -> str | None:
    """The one-line refusal when some of ``rows`` were (not) recorded with ``--measure`` unlike this run."""
    if any(measured(row) != measure for row in rows):
        held = "without" if measure else "with"
        return (f"{where} holds rows recorded {held} --measure; run {held} --measure to continue it, "
                "or choose another --out")
    return None


def shard_path(out: Path, shard: int, n_shards: int) -> Path:
    return out.with_name(f"{out.name}.shard{shard}of{n_shards}")


def read_shard(path: Path) -> dict[int, dict[str, Any]]:
    """index -> row of a shard file (empty when there is none)."""
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return {row.pop("index"): row for row in rows}


def parse_shard(text: str) -> tuple[int, int]:
    shard, _, n = text.partition("/")
    try:
        i, n_shards = int(shard), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected I/N, for example 0/2") from None
    if not 0 <= i < n_shards:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: need 0 <= I < N")
    return i, n_shards


def merge(out: Path, configs: list[dict[str, Any]], n_done: int, n_shards: int) -> int:
    """Append the shards' rows from index ``n_done`` on, in order, while consecutive; returns how many."""
    rows: dict[int, dict[str, Any]] = {}
    for shard in range(n_shards):
        rows.update(read_shard(shard_path(out, shard, n_shards)))
    kinds = {measured(row) for row in [*read_rows(out), *rows.values()]}
    if len(kinds) > 1:
        raise ValueError(f"{out} and its shards mix rows recorded with and without --measure")
    added = 0
    with open(out, "a", encoding="utf-8") as f:
        index = n_done
        while index in rows and index < len(configs):
            if rows[index]["config"] != configs[index]:
                raise ValueError(f"shard row {index} is not configuration {index} of this space and seed")
            f.write(json.dumps(rows[index]) + "\n")
            index += 1
            added += 1
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", type=Path, default=REPO / "conf" / "search_space" / "mlp.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "tables" / "mlp_digits.jsonl")
    parser.add_argument("--configs", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="mlp", help="a model config in conf/model/ (mlp, lenet, ...)")
    parser.add_argument("--image-size", type=int, default=8, help="data.image_size of digits (28 for lenet)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: leave cores to others)")
    parser.add_argument("--shard", type=parse_shard, default=None, metavar="I/N",
                        help="record only configurations with index %% N == I, into <out>.shardIofN")
    parser.add_argument("--merge", type=int, default=None, metavar="N",
                        help="append the rows of the N shard files to --out, in order")
    parser.add_argument("--measure", action="store_true",
                        help="also record each row's n_params, inference_ms and peak_memory_mb")
    args = parser.parse_args(argv)

    if args.measure and args.threads != 1:
        print(f"--threads {args.threads} with --measure: a table's inference_ms is single-threaded; "
              "use --threads 1", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    try:
        model_class_and_defaults(args.model)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    space = load_space(args.space)
    configs = sample_configs(space, args.configs, args.seed)
    done = existing_configs(args.out)
    if done != configs[: len(done)]:
        print(f"{args.out} holds rows of another space or seed than --space {args.space} --seed {args.seed}; "
              "choose another --out", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge is not None:
        try:
            added = merge(args.out, configs, len(done), args.merge)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        print(f"merged {added} rows into {args.out}: {len(done) + added} of {len(configs)} recorded")
        return 0
    if len(done) > 0:
        print(f"{len(done)} configurations already recorded in {args.out}; continuing")
    target, indices = args.out, range(len(done), len(configs))
    refusal = mixed_rows(read_rows(args.out), args.measure, args.out)
    if args.shard is not None:
        shard, n_shards = args.shard
        target = shard_path(args.out, shard, n_shards)
        held = read_shard(target)
        refusal = refusal or mixed_rows(list(held.values()), args.measure, target)
        indices = [i for i in indices if i % n_shards == shard and i not in held]
    if refusal:
        print(refusal, file=sys.stderr)
        return 2
    if args.measure and indices:
        if reset_peak_rss() is None:
            print("warning: peak_memory_mb is not recorded: it needs Linux's /proc/self/clear_refs and glibc",
                  file=sys.stderr)
        warm_up(configs[indices[0]], args.model, args.image_size)
    start = time.perf_counter()
    with open(target, "a", encoding="utf-8") as out:
        for index in indices:
            config = configs[index]
            row = record_row(config, args.epochs, trial_seed(args.seed, index), args.model, args.image_size,
                             measure=args.measure)
            errors, elapsed = row["val_error"], row["elapsed"]
            if args.shard is not None:
                row = {"index": index, **row}
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"[{index + 1}/{len(configs)}] {time.perf_counter() - start:7.1f} s  final error "
                  f"{errors[-1]:.4f} in {elapsed[-1]:.2f} s  "
                  + "".join(f"{k} {row[k]}  " for k in MEASURED if k in row) + f"{config}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
