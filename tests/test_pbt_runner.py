"""Population based training in a real job: the copied checkpoint and the optimizer hyperparameters after restoring."""

import os

import pytest

from hydra_hpo.checkpoints import CheckpointStore
from hydra_hpo.executors.hydra_jobs import JobOverrides
from hydra_hpo.trial import Job
from tests.test_runner import run

MUTABLE = ("model.lr", "model.momentum")


def job_overrides(store, job):
    return ["model=mlp", "model.num_units=16", *JobOverrides([], store.dir, "trainer.max_epochs")(job)]


def test_exploit_restores_the_donors_checkpoint_and_applies_the_new_hyperparameters(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints")
    donor = Job(0, {"model.lr": 0.05, "model.momentum": 0.9}, 2, 0, seed=11, set_params=MUTABLE)
    _, first = run(tmp_path, "donor", *job_overrides(store, donor))
    assert first["optimizer"] == {"1": pytest.approx({"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0}),
                                  "2": pytest.approx({"lr": 0.05, "momentum": 0.9, "weight_decay": 0.0})}
    store.snapshot(0, 2)
    donor_bytes = (store.dir(0) / "last.ckpt").read_bytes()

    store.copy(0, 2, 1)
    copied = store.dir(1) / "last.ckpt"
    assert copied.read_bytes() == donor_bytes
    assert os.stat(copied).st_ino != os.stat(store.dir(0) / "last.ckpt").st_ino  # a copy, never shared

    exploit = Job(1, {"model.lr": 0.01, "model.momentum": 0.5}, 4, 2, seed=12, source_trial=0, set_params=MUTABLE)
    _, second = run(tmp_path, "exploit", *job_overrides(store, exploit))
    assert second["status"] == "completed" and second["epochs_trained"] == 2
    assert second["curve"][:2] == first["curve"]  # it continued the donor's training
    assert set(second["optimizer"]) == {"3", "4"}
    for values in second["optimizer"].values():
        assert values["lr"] == pytest.approx(0.01) and values["momentum"] == pytest.approx(0.5)
    # the donor's own checkpoint is untouched by the copy and by the recipient's training, and outlives its release
    assert (store.dir(0) / "last.ckpt").read_bytes() == donor_bytes
    store.release(1)
    assert (store.dir(0) / "last.ckpt").read_bytes() == donor_bytes


def test_without_set_params_the_restored_optimizer_keeps_its_old_hyperparameters(tmp_path):
    """Why the job applies them: restoring brings back the checkpoint's values over the configured ones."""
    store = CheckpointStore(tmp_path / "checkpoints")
    run(tmp_path, "donor", *job_overrides(store, Job(0, {"model.lr": 0.05, "model.momentum": 0.9}, 1, 0)))
    store.snapshot(0, 1)
    store.copy(0, 1, 1)
    plain = Job(1, {"model.lr": 0.01, "model.momentum": 0.5}, 2, 1, source_trial=0)
    _, result = run(tmp_path, "plain", *job_overrides(store, plain))
    assert result["optimizer"]["2"]["lr"] == pytest.approx(0.05)
    assert result["optimizer"]["2"]["momentum"] == pytest.approx(0.9)


def test_schedule_changes_the_values_at_epoch_boundaries(tmp_path):
    _, result = run(tmp_path, "s", "model=mlp", "model.num_units=16", "trainer.max_epochs=3",
                    "trial.schedule=[{start_epoch:0,lr:0.02,momentum:0.8},{start_epoch:2,lr:0.004}]")
    assert [result["optimizer"][e]["lr"] for e in ("1", "2", "3")] == pytest.approx([0.02, 0.02, 0.004])
    assert result["optimizer"]["3"]["momentum"] == pytest.approx(0.8)  # not in the later entry: it stays


def test_schedule_of_a_key_the_optimizer_lacks_is_a_config_error(tmp_path):
    with pytest.raises(Exception, match="schedule"):
        run(tmp_path, "bad", "model=mlp", "model.num_units=16", "trial.schedule=[{start_epoch:0,betas:0.8}]")
