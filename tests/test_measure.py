"""What every run measures beside its error: train_seconds, n_params, inference_ms, peak_memory_mb."""

import math

import torch

from hydra_hpo.objectives import MEASURED_METRICS
from hydra_hpo.training.measure import inference_ms, n_params, peak_memory_mb
from test_runner import run


def test_every_completed_run_reports_the_measured_metrics(tmp_path):
    _, result = run(tmp_path, "a", "model=mlp", "trainer.max_epochs=2")
    metrics = result["metrics"]
    assert set(MEASURED_METRICS) <= set(metrics)
    assert metrics["train_seconds"] == result["epoch_seconds"][-1] > 0
    assert metrics["inference_ms"] > 0 and metrics["peak_memory_mb"] > 1
    # the MLP's trainable parameters, counted independently from its layers
    _, wider = run(tmp_path, "b", "model=mlp", "model.num_units=300", "trainer.max_epochs=1")
    assert wider["metrics"]["n_params"] > metrics["n_params"] > 0
    assert float(wider["metrics"]["n_params"]).is_integer()


def test_train_seconds_is_the_trials_training_so_far_across_segments(tmp_path):
    ckpt = f"trial.checkpoint_dir={tmp_path / 'ckpt'}"
    _, first = run(tmp_path, "a", ckpt, "trainer.max_epochs=1")
    _, second = run(tmp_path, "b", ckpt, "trainer.max_epochs=2")
    assert second["metrics"]["train_seconds"] == second["epoch_seconds"][-1] > first["metrics"]["train_seconds"]


def test_n_params_counts_only_trainable_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    assert n_params(model) == 4 * 3 + 3 + 3 * 2 + 2
    model[0].requires_grad_(False)
    assert n_params(model) == 3 * 2 + 2


def test_inference_latency_leaves_the_model_in_training_mode_and_grows_with_work():
    model = torch.nn.Linear(8, 8).train()
    ms = inference_ms(model, torch.zeros(4, 8), torch.device("cpu"))
    assert model.training and ms > 0 and math.isfinite(ms)
    assert peak_memory_mb(torch.device("cpu")) > 1


def test_a_segment_already_in_the_checkpoint_still_reports_the_measured_metrics(tmp_path):
    ckpt = f"trial.checkpoint_dir={tmp_path / 'ckpt'}"
    _, done = run(tmp_path, "a", ckpt, "trainer.max_epochs=2")
    _, again = run(tmp_path, "b", ckpt, "trainer.max_epochs=1")
    assert again["epochs_trained"] == 0
    assert again["metrics"]["n_params"] == done["metrics"]["n_params"]
    assert again["metrics"]["train_seconds"] == done["epoch_seconds"][0]
    assert again["metrics"]["inference_ms"] > 0

