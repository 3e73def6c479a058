"""Population based training with fakes: exploit and explore, failures, mode=max, checkpoints, resume."""

from __future__ import annotations

import math
import os

import pytest

from fakes import FakeExecutor
from hydra_hpo.checkpoints import CheckpointStore
from hydra_hpo.errors import SettingsError
from hydra_hpo.journal import Journal
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.schedulers.pbt import PBTScheduler, perturb
from hydra_hpo.searchers import build_searcher
from hydra_hpo.space import Categorical, Float, Int, SearchSpace
from hydra_hpo.trial import COMPLETED, FAILED, PAUSED, Job, JobResult
from hydra_hpo.tuner import Tuner

SPACE = SearchSpace({
    "model.lr": Float("model.lr", 1e-4, 1.0, log=True),
    "model.momentum": Float("model.momentum", 0.0, 0.99),
    "model.num_units": Int("model.num_units", 8, 64, log=True),
})
MUTABLE = ["model.lr", "model.momentum"]


def pbt(n_trials=8, max_resource=8, seed=0, space=SPACE, **options):
    options = {"mutable": MUTABLE, "population_size": 4, "perturbation_interval": 2, **options}
    return build_scheduler("pbt", build_searcher("random", space, seed=seed), n_trials, max_resource, **options)


def test_mutable_null_takes_the_optimizer_hyperparameters_of_the_space():
    sched = PBTScheduler(build_searcher("random", SPACE), 8, 8)  # build_scheduler drops options set to None
    assert sched.mutable == ("model.lr", "model.momentum")


def loss_of(job: Job) -> float:
    """Best near lr=0.01, momentum=0.5; improves with epochs."""
    return abs(math.log10(job.config["model.lr"]) + 2) + abs(job.config["model.momentum"] - 0.5) + 1 / job.resource


def outcome(job: Job):
    return COMPLETED, loss_of(job), 1.0 + (job.trial_id * 7 % 5) * 0.3


def result(job: Job, value: float | None, status: str = COMPLETED) -> JobResult:
    return JobResult(job=job, status=status, value=value)


# ----------------------------------------------------------------- settings
@pytest.mark.parametrize("options,message", [
    ({"mutable": ["model.num_units"]}, "hpo.mutable: model.num_units cannot change during training; only optimizer"),
    ({"mutable": ["model.weight_decay"]}, "hpo.mutable: model.weight_decay is not in the search space"),
    ({"mutable": []}, "hpo.mutable=[]: list the keys"),
    ({"mutable": None, "space": SearchSpace({"model.num_units": Int("model.num_units", 8, 64)})},
     "hpo.mutable=null: the search space (model.num_units) has no optimizer hyperparameter"),
    ({"population_size": 9}, "hpo.population_size=9: larger than hpo.n_trials=8"),
    ({"quantile_fraction": 0.7}, "hpo.quantile_fraction=0.7"),
    ({"resample_probability": 2}, "hpo.resample_probability=2"),
    ({"perturbation_interval": 0}, "hpo.perturbation_interval=0"),
    ({"perturbation_factors": [0.8, -1]}, "hpo.perturbation_factors"),
])
def test_settings_errors_name_the_key(options, message):
    with pytest.raises(SettingsError) as error:
        pbt(**options)
    assert str(error.value).startswith(message)


# ----------------------------------------------------------------- exploit and explore
def test_bottom_member_exploits_a_top_member_and_perturbs_its_mutable_keys():
    sched = pbt(max_resource=6, resample_probability=0.0)
    first = [sched.next_job() for _ in range(4)]
    assert [(j.trial_id, j.previous_resource, j.resource, j.source_trial) for j in first] == \
        [(t, 0, 2, None) for t in range(4)]
    assert all(j.set_params == tuple(MUTABLE) for j in first)
    for job, loss in zip(first, [0.1, 0.2, 0.3, 0.9]):
        assert sched.on_result(result(job, loss)) == []
    continued = [sched.next_job() for _ in range(3)]
    assert [(j.trial_id, j.previous_resource, j.resource, j.source_trial) for j in continued] == \
        [(0, 2, 4, None), (1, 2, 4, None), (2, 2, 4, None)]
    exploit = sched.next_job()
    donor = first[0].config
    assert (exploit.trial_id, exploit.previous_resource, exploit.resource, exploit.source_trial) == (3, 2, 4, 0)
    assert exploit.config["model.num_units"] == donor["model.num_units"]  # fixed keys come with the checkpoint
    assert exploit.config["model.lr"] / donor["model.lr"] == pytest.approx(0.8) or \
        exploit.config["model.lr"] / donor["model.lr"] == pytest.approx(1.2)
    assert exploit.config["model.momentum"] in (pytest.approx(min(donor["model.momentum"] * 0.8, 0.99)),
                                                pytest.approx(min(donor["model.momentum"] * 1.2, 0.99)))


def test_resample_probability_one_draws_from_the_space():
    sched = pbt(max_resource=6, resample_probability=1.0)
    jobs = [sched.next_job() for _ in range(4)]
    for job, loss in zip(jobs, [0.1, 0.2, 0.3, 0.9]):
        sched.on_result(result(job, loss))
    exploit = [sched.next_job() for _ in range(4)][-1]
    assert exploit.source_trial == 0
    ratio = exploit.config["model.lr"] / jobs[0].config["model.lr"]
    assert ratio != pytest.approx(0.8) and ratio != pytest.approx(1.2)
    assert SPACE.contains(exploit.config)


def test_perturb_is_log_aware_and_stays_within_bounds():
    lr = Float("lr", 1e-4, 1.0, log=True)
    assert perturb(lr, 0.01, 1.2) == pytest.approx(0.012) and perturb(lr, 0.9, 1.2) == 1.0
    assert perturb(lr, 1.1e-4, 0.8) == pytest.approx(1e-4)
    momentum = Float("m", 0.0, 0.99)
    assert perturb(momentum, 0.5, 0.8) == pytest.approx(0.4)
    assert perturb(momentum, 0.0, 1.2) == pytest.approx(0.2 * 0.99)  # a product would stay at 0
    assert perturb(Int("n", 1, 10), 2, 1.2) == 3 and perturb(Int("n", 1, 10), 1, 0.8) == 1
    assert perturb(Categorical("c", ("a", "b", "c")), "b", 1.2) == "c"


# ----------------------------------------------------------------- whole sweeps
def run(workers=2, mode="min", seed=0, outcome_fn=outcome, **options):
    sched = pbt(seed=seed, **options)
    seen: list[tuple[Job, dict]] = []  # each job with the latest results it was decided against
    next_job = sched.next_job

    def recording():
        latest = dict(sched._latest)
        job = next_job()
        if isinstance(job, Job):
            seen.append((job, latest))
        return job

    sched.next_job = recording
    out = Tuner(sched, FakeExecutor(workers, outcome_fn), seed=seed, mode=mode).run()
    return out, seen


@pytest.mark.parametrize("mode", ["min", "max"])
def test_every_exploit_copies_a_better_member_and_every_member_reaches_the_end(mode):
    sign = 1 if mode == "min" else -1
    out, seen = run(mode=mode, outcome_fn=lambda job: (COMPLETED, sign * loss_of(job), 1.0 + job.trial_id % 3))
    exploits = [(job, latest) for job, latest in seen if job.source_trial is not None]
    assert exploits, "no member exploited another"
    for job, latest in exploits:
        donor_loss, recipient_loss = latest[job.source_trial][1], latest[job.trial_id][1]
        assert donor_loss < recipient_loss  # losses are normalized: with mode=max the donor's value was higher
        assert job.previous_resource == latest[job.source_trial][0]
    assert len(out.trials) == 4
    assert all(r.status == COMPLETED and r.resource == 8 for r in out.trials.values())
    # the lineage: each segment keeps its own config and its source
    record = out.trials[exploits[0][0].trial_id]
    sources = [s.source_trial for s in record.segments]
    assert exploits[0][0].source_trial in sources
    assert len({s.config["model.lr"] for s in record.segments}) > 1


def test_seeded_decisions_repeat_and_another_seed_changes_them():
    def decisions(seed):
        _, seen = run(seed=seed)
        return [(j.trial_id, j.previous_resource, j.resource, j.source_trial, tuple(j.config.values()))
                for j, _ in seen]

    assert decisions(3) == decisions(3)
    assert decisions(3) != decisions(4)


def test_budget_epochs_ends_the_sweep_with_members_paused():
    sched = pbt()
    out = Tuner(sched, FakeExecutor(2, outcome), budget_epochs=12).run()
    assert 12 <= out.epochs_total < 4 * 8
    assert {r.status for r in out.trials.values()} == {PAUSED}


def test_a_failed_member_is_replaced_by_exploiting_a_good_one():
    def fails_once(job):
        if job.trial_id == 2 and job.previous_resource == 2:
            return FAILED, None, 1.0
        return outcome(job)

    out, seen = run(outcome_fn=fails_once)
    assert out.trials[2].status == FAILED
    replacement = [job for job, _ in seen if job.trial_id == 4]
    assert replacement and replacement[0].source_trial is not None and replacement[0].previous_resource > 0
    assert sum(1 for r in out.trials.values() if r.status == COMPLETED) == 4


def test_a_failure_before_any_result_starts_a_fresh_member():
    out, seen = run(workers=4, outcome_fn=lambda job: (FAILED, None, 1.0) if job.trial_id == 0 else outcome(job))
    assert [job.trial_id for job, _ in seen[:5]] == [0, 1, 2, 3, 4]
    assert seen[4][0].source_trial is None and seen[4][0].previous_resource == 0
    assert sum(1 for r in out.trials.values() if r.status == COMPLETED) == 4


def test_n_trials_bounds_the_replacements():
    out, _ = run(n_trials=5, outcome_fn=lambda job: (FAILED, None, 1.0) if job.previous_resource == 2 and job.trial_id
                 in (1, 2) else outcome(job))
    assert len(out.trials) == 5


# ----------------------------------------------------------------- checkpoints through the tuner
class CheckpointingExecutor(FakeExecutor):
    """Each job checks the checkpoint it resumes from and writes its own (``<epochs> <lineage>``) at once, as if
    the donor kept training while others copy from it."""

    def __init__(self, store: CheckpointStore, *args) -> None:
        super().__init__(*args)
        self.store = store

    def submit(self, job: Job) -> None:
        path = self.store.dir(job.trial_id) / "last.ckpt"
        lineage = ""
        if job.previous_resource > 0:
            epochs, lineage = path.read_text().split(" ", 1)
            # a copy is the donor's checkpoint of the judged result, though the donor may have trained on since;
            # a member's own checkpoint may be ahead after a kill (the job in flight saved epochs): it resumes there
            exact = job.source_trial is not None
            assert int(epochs) == job.previous_resource if exact else int(epochs) >= job.previous_resource, \
                f"{job} resumed from a checkpoint after {epochs} epochs"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp")
        tmp.write_text(f"{job.resource} {lineage}{job.trial_id}:{job.resource},")
        os.replace(tmp, path)
        super().submit(job)


def test_the_recipient_gets_the_donors_checkpoint_of_its_judged_result(tmp_path):
    store = CheckpointStore(tmp_path / "checkpoints")
    sched = pbt(max_resource=10)
    out = Tuner(sched, CheckpointingExecutor(store, 2, outcome), checkpoints=store).run()
    exploited = [s for r in out.trials.values() for s in r.segments if s.source_trial is not None]
    assert exploited
    assert not store.root.exists()  # every member ended: every checkpoint and snapshot went


# ----------------------------------------------------------------- resume
def test_resume_after_a_kill_makes_the_same_decisions(tmp_path):
    def make(journal, resume=None, crash_after=None):
        sched = pbt()
        decisions = []
        next_job = sched.next_job

        def recording():
            job = next_job()
            if isinstance(job, Job):
                decisions.append((job.trial_id, job.previous_resource, job.resource, job.source_trial,
                                  tuple(job.config.values())))
            return job

        sched.next_job = recording
        store = CheckpointStore(tmp_path / "checkpoints")
        executor = CheckpointingExecutor(store, 2, outcome)
        executor.crash_after = crash_after
        tuner = Tuner(sched, executor, journal=journal, resume=resume, checkpoints=store, fingerprint={"a": 1})
        return tuner, decisions

    reference, expected = make(None)
    reference.run()
    path = tmp_path / "journal.jsonl"
    killed, before = make(Journal(path), crash_after=7)
    with pytest.raises(SystemExit):
        killed.run()
    assert before == expected[: len(before)]
    resumed, after = make(Journal(path), resume=ResumeLog(Journal(path).read()))
    out = resumed.run()
    assert after[: len(before)] == before
    assert any(d[3] is not None for d in after[len(before):]) or any(d[3] is not None for d in before)
    assert all(r.status == COMPLETED and r.resource == 8 for r in out.trials.values())


# ----------------------------------------------------------------- lineage and schedule
def test_history_follows_copies_back_to_epoch_zero_and_becomes_a_schedule(tmp_path):
    from hydra_hpo.lineage import history, plot_lineage, schedule
    from hydra_hpo.results import trials_table

    out, seen = run(max_resource=8)
    copied = next(job for job, _ in seen if job.source_trial is not None)
    steps = history(out.trials, copied.trial_id, copied.resource)
    assert steps[0].start == 0 and steps[-1].end == copied.resource
    assert all(a.end == b.start for a, b in zip(steps, steps[1:]))
    # the epochs before the copy were trained by the donor, with the donor's values
    assert any(step.trial_id == copied.source_trial for step in steps)
    assert steps[-1].trial_id == copied.trial_id and steps[-1].config == copied.config
    entries = schedule(steps, MUTABLE)
    assert entries[0]["start_epoch"] == 0 and entries[-1]["end_epoch"] == copied.resource
    assert entries[-1]["lr"] == copied.config["model.lr"] and entries[-1]["momentum"] == copied.config["model.momentum"]
    assert all(set(e) == {"start_epoch", "end_epoch", "lr", "momentum"} for e in entries)

    table = trials_table(out).splitlines()
    assert table[0].endswith(",lineage")
    row = next(line for line in table[1:] if line.startswith(f"{copied.trial_id},"))
    assert f"from trial {copied.source_trial}" in row
    plot_lineage(out.trials, MUTABLE, tmp_path / "lineage.png", (out.best.trial_id, out.best.resource))
    assert (tmp_path / "lineage.png").stat().st_size > 10_000


def test_schedule_merges_equal_consecutive_values():
    from hydra_hpo.lineage import PathStep, schedule

    a, b = {"model.lr": 0.1, "model.momentum": 0.9}, {"model.lr": 0.08, "model.momentum": 0.9}
    steps = [PathStep(0, 2, 0, a), PathStep(2, 4, 0, a), PathStep(4, 6, 3, b)]
    assert schedule(steps, MUTABLE) == [{"start_epoch": 0, "end_epoch": 4, "lr": 0.1, "momentum": 0.9},
                                        {"start_epoch": 4, "end_epoch": 6, "lr": 0.08, "momentum": 0.9}]
