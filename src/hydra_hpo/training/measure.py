"""What a training run costs beside its error, measured once per job after training: size, latency, memory."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from typing import Any

import torch

INFERENCE_BATCH = 256  # samples in the timed forward pass (fewer when the validation batch is smaller)
WARMUP_PASSES = 3
TIMED_PASSES = 10


def n_params(model: torch.nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _first_input(batch: Any) -> torch.Tensor:
    while isinstance(batch, (list, tuple)):
        batch = batch[0]
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"cannot time a forward pass on a validation batch of type {type(batch).__name__}")
    return batch


def inference_inputs(datamodule: Any) -> torch.Tensor:
    """The timed inputs: the first validation batch, cut to at most ``INFERENCE_BATCH`` samples."""
    return _first_input(next(iter(datamodule.val_dataloader())))[:INFERENCE_BATCH]


def inference_ms(model: torch.nn.Module, inputs: torch.Tensor, device: torch.device) -> float:
    """Median milliseconds of a forward pass over ``inputs`` on ``device``, after warm-up passes."""
    # Lightning's teardown moves a model trained on a GPU back to the CPU: time it where it trained
    home = next(model.parameters()).device if any(True for _ in model.parameters()) else device
    model.to(device)
    inputs = inputs.to(device)
    cuda = device.type == "cuda"
    was_training = model.training
    model.eval()
    times = []
    try:
        with torch.inference_mode():
            for i in range(WARMUP_PASSES + TIMED_PASSES):
                if cuda:
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                model(inputs)
                if cuda:
                    torch.cuda.synchronize(device)
                if i >= WARMUP_PASSES:
                    times.append((time.perf_counter() - start) * 1000.0)
    finally:
        model.train(was_training)
        model.to(home)
    return float(statistics.median(times))


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory: max allocated by torch on a GPU, else the process's max resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def measure(model: torch.nn.Module, datamodule: Any, device: torch.device) -> dict[str, float]:
    """``n_params``, ``inference_ms`` (one validation batch of at most ``INFERENCE_BATCH`` samples) and
    ``peak_memory_mb`` of a trained ``model`` on the device it trained on."""
    metrics = {"inference_ms": inference_ms(model, inference_inputs(datamodule), device)}
    metrics["n_params"] = float(n_params(model))  # after a forward pass: lazy layers have their shapes by then
    metrics["peak_memory_mb"] = peak_memory_mb(device)
    return metrics


def job_metrics(recorder: Any, status: str) -> dict[str, float]:
    """The measured metrics a completed job adds to ``result.json``'s ``metrics``: ``train_seconds`` (the
    trial's training so far) and what :func:`measure` found (kept on the recorder as ``measured``)."""
    if status != "completed":
        return {}
    metrics = {"train_seconds": float(recorder.epoch_seconds[-1])} if recorder.epoch_seconds else {}
    return {**metrics, **getattr(recorder, "measured", {})}


def training_device(trainer_cfg: Any) -> torch.device:
    """The device ``trainer.accelerator`` trains on (the first GPU for gpu/cuda, or auto with one)."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", 0)
    return torch.device("cpu")


def measure_untrained(cfg: Any) -> dict[str, float]:
    """:func:`measure` for a job that trains nothing (its segment is in the checkpoint already): a fresh
    model of the trial's configuration has the trained one's size and latency."""
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return measure(instantiate(cfg.model), datamodule, training_device(cfg.trainer))
