"""GPUs per trial without GPUs: a fake device count, the pool, the executors' release, launcher settings."""

from __future__ import annotations

import random
import threading

import pytest
from omegaconf import OmegaConf

from hydra_hpo import devices as devices_module
from hydra_hpo.devices import (FAKE_GPUS_ENV, DeviceAssigner, DevicePool, check_cuda_process, plan_gpus,
                               visible_devices)
from hydra_hpo.errors import JobConfigError, SettingsError
from hydra_hpo.executors.hydra_launcher import HydraAsyncExecutor, HydraBatchExecutor
from hydra_hpo.executors.launcher_devices import gpu_setup
from hydra_hpo.settings import HPOSettings
from hydra_hpo.trial import COMPLETED, FAILED, Job, JobResult

SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
RAY = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def test_visible_devices_from_cuda_visible_devices_or_a_count():
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]  # CUDA stops at an invalid id
    assert visible_devices({FAKE_GPUS_ENV: "3", "CUDA_VISIBLE_DEVICES": "5"}) == ["0", "1", "2"]
    assert visible_devices({}, count=2) == ["0", "1"]


@pytest.mark.parametrize("n_devices, per_trial, per_gpu, slots", [(4, 1, 1, 4), (4, 1, 2, 8), (4, 2, 1, 2),
                                                                   (5, 2, 1, 2), (3, 3, 2, 2)])
def test_n_workers_auto_is_what_the_gpus_allow(n_devices, per_trial, per_gpu, slots):
    plan = plan_gpus(per_trial, per_gpu, 1, True, [str(i) for i in range(n_devices)])
    assert plan.n_workers == slots and plan.slots == slots
    used = [d for group in plan.groups for d in group]
    assert len(used) == len(set(used)) and all(len(g) == per_trial for g in plan.groups)  # disjoint groups


def test_gpus_per_trial_auto_is_one_with_gpus_and_zero_without():
    assert plan_gpus("auto", 1, 3, False, ["0", "1", "2"]).gpus_per_trial == 1
    cpu = plan_gpus("auto", 1, 3, True, [])
    assert cpu.gpus_per_trial == 0 and cpu.n_workers == 3  # n_workers as resolved for the CPU (cpu_workers)
    assert plan_gpus(1, 1, 2, False, ["0", "1", "2"]).n_workers == 2  # fewer than the GPUs allow: kept


def test_user_errors_name_both_values():
    with pytest.raises(SettingsError, match=r"hpo.n_workers=5 exceeds the 4 jobs the GPUs allow .*4 GPUs"):
        plan_gpus(1, 1, 5, False, ["0", "1", "2", "3"])
    with pytest.raises(SettingsError, match=r"hpo.gpus_per_trial=1 but this machine shows 0 GPU"):
        plan_gpus(1, 1, 1, True, [])
    with pytest.raises(SettingsError, match=r"hpo.gpus_per_trial=3 .* 2 GPU"):
        plan_gpus(3, 1, 1, True, ["0", "1"])


def test_settings_n_workers_auto_and_gpu_keys():
    auto = HPOSettings.from_mapping({"n_workers": "auto", "cpu_workers": 2})
    assert auto.n_workers == 2 and auto.workers_auto
    assert HPOSettings.from_mapping({"n_workers": None}).n_workers == 1
    explicit = HPOSettings.from_mapping({"n_workers": 3})
    assert explicit.n_workers == 3 and not explicit.workers_auto
    for key, value in [("gpus_per_trial", -1), ("gpus_per_trial", "two"), ("trials_per_gpu", 0),
                       ("n_workers", "many")]:
        with pytest.raises(SettingsError, match=rf"hpo.{key}="):
            HPOSettings.from_mapping({key: value})


def test_pool_never_gives_one_group_to_two_jobs_in_flight():
    rng = random.Random(0)
    pool = DevicePool([("0",), ("1",), ("2",)], trials_per_gpu=1)
    holding: set[int] = set()
    for job in range(500):
        if len(holding) == 3 or (holding and rng.random() < 0.5):
            pool.release(rng.choice(sorted(holding)))
            holding = set(pool.held())
        pool.acquire(job)
        holding.add(job)
        groups = list(pool.held().values())
        assert len(groups) == len(set(groups)) == len(holding)


def test_trials_per_gpu_two_shares_a_group_by_two_at_most_least_used_first():
    pool = DevicePool([("0",), ("1",)], trials_per_gpu=2)
    assert [pool.acquire(j) for j in range(4)] == [("0",), ("1",), ("0",), ("1",)]
    with pytest.raises(RuntimeError, match="no free GPU for job 4"):
        pool.acquire(4, block=False)
    pool.release(1)
    assert pool.acquire(4) == ("1",)
    assert pool.acquire(4) == ("1",)  # asking again: the same devices, no second slot


def test_a_blocked_acquire_gets_the_released_group():
    pool = DevicePool([("0", "1")])
    pool.acquire(0)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(1)))
    waiter.start()
    pool.release(0)
    waiter.join(60)
    assert got == [("0", "1")] and pool.held() == {1: ("0", "1")}


def test_basic_launcher_jobs_share_the_first_group_and_gpus_zero_hides_them():
    plan = plan_gpus(1, 1, 2, False, ["0", "1"])
    in_process = DeviceAssigner(plan, in_process=True)
    assert in_process.overrides(0) == in_process.overrides(1) == ["++hydra.job.env_set.CUDA_VISIBLE_DEVICES='0'"]
    hidden = DeviceAssigner(plan_gpus(0, 1, 4, False, ["0", "1"]))
    assert hidden.overrides(0) == ["++hydra.job.env_set.CUDA_VISIBLE_DEVICES=''"]
    pair = DeviceAssigner(plan_gpus(2, 1, 1, True, ["0", "1"]))
    assert pair.overrides(0) == ["++hydra.job.env_set.CUDA_VISIBLE_DEVICES='0,1'"]  # quoted: not a sweep


class BlockingLauncher:
    """Records each launch's overrides; a job returns, raises or waits for its event, as told."""

    def __init__(self, behaviour: dict[int, str]) -> None:
        self.behaviour = behaviour
        self.launched: dict[int, list[str]] = {}
        self.started = {j: threading.Event() for j in range(10)}
        self.go = {j: threading.Event() for j in range(10)}

    def launch(self, batch, initial_job_idx):
        for i, overrides in enumerate(batch):
            self.launched[initial_job_idx + i] = overrides
        job = initial_job_idx
        self.started[job].set()
        what = self.behaviour.get(job, "ok")
        if what == "block":
            self.go[job].wait(120)
        if what == "fail":
            raise RuntimeError("launch failed")
        if what == "interrupt":
            raise KeyboardInterrupt
        return [object()] * len(batch)


def collect(job, ret, error, started, finished) -> JobResult:
    return JobResult(job=job, status=FAILED if error else COMPLETED, value=None if error else 1.0,
                     started=started, finished=finished, error=str(error) if error else None)


def env_of(overrides: list[str]) -> str:
    return [o for o in overrides if "CUDA_VISIBLE_DEVICES" in o][0].split("=", 1)[1]


def job(i: int) -> Job:
    return Job(trial_id=i, job_idx=i, config={"x": 0.1}, resource=1, previous_resource=0, seed=i)


def test_async_executor_gives_jobs_in_flight_own_gpus_and_releases_on_success_and_failure():
    assigner = DeviceAssigner(plan_gpus(1, 1, 2, True, ["0", "1"]))
    launcher = BlockingLauncher({0: "block", 1: "fail"})
    executor = HydraAsyncExecutor(launcher, 2, lambda j: ["x=1"], collect, devices=assigner)
    executor.submit(job(0))
    launcher.started[0].wait(60)
    executor.submit(job(1))
    [failed] = executor.wait()
    assert failed.status == FAILED and env_of(launcher.launched[1]) != env_of(launcher.launched[0])
    assert set(assigner.pool.held()) == {0}  # the failed job's GPU is free again, the running job keeps its own
    executor.submit(job(2))
    launcher.started[2].wait(60)
    assert env_of(launcher.launched[2]) == env_of(launcher.launched[1])  # took the freed GPU
    launcher.go[0].set()
    results = executor.wait() + (executor.wait() if executor.num_running() else [])
    assert sorted(r.job.job_idx for r in results) == [0, 2] and assigner.pool.held() == {}


def test_async_executor_keeps_a_timed_out_or_interrupted_job_gpu_until_its_launch_returns():
    assigner = DeviceAssigner(plan_gpus(1, 1, 2, True, ["0", "1"]))
    launcher = BlockingLauncher({0: "block", 1: "block"})
    executor = HydraAsyncExecutor(launcher, 2, lambda j: [], collect, timeout=1e-9, grace=0.0, devices=assigner)
    executor.submit(job(0))
    launcher.started[0].wait(60)
    [expired] = executor.wait()  # no process control: abandoned past its timeout, its process still running
    assert expired.status == "timeout" and set(assigner.pool.held()) == {0}
    executor.submit(job(1))
    launcher.started[1].wait(60)
    executor.shutdown()  # Ctrl-C: both reported interrupted, both still running
    assert set(assigner.pool.held()) == {0, 1}
    for j in (0, 1):
        launcher.go[j].set()
    for thread in [t for t in threading.enumerate() if t.name in ("hpo-job-0", "hpo-job-1")]:
        thread.join(60)
    assert assigner.pool.held() == {}


def test_async_executor_releases_when_the_launch_is_interrupted():
    assigner = DeviceAssigner(plan_gpus(1, 1, 1, True, ["0"]))
    executor = HydraAsyncExecutor(BlockingLauncher({0: "interrupt"}), 1, lambda j: [], collect, devices=assigner)
    executor.submit(job(0))
    [result] = executor.wait()
    assert result.status == FAILED and assigner.pool.held() == {}


@pytest.mark.parametrize("behaviour", ["ok", "fail"])
def test_batch_executor_gives_a_batch_distinct_gpus_and_releases_them(behaviour):
    assigner = DeviceAssigner(plan_gpus(1, 1, 3, True, ["0", "1", "2"]))
    launcher = BlockingLauncher({0: behaviour})
    executor = HydraBatchExecutor(launcher, 3, lambda j: [], collect, sequential=False, devices=assigner)
    for i in range(3):
        executor.submit(job(i))
    assert len(executor.wait()) == 3
    assert sorted(env_of(launcher.launched[i]) for i in range(3)) == ["'0'", "'1'", "'2'"]
    assert assigner.pool.held() == {}


def test_a_reused_process_fails_loudly_when_cuda_started_on_other_gpus(monkeypatch):
    monkeypatch.setattr(devices_module, "_pinned", [])
    check_cuda_process({"CUDA_VISIBLE_DEVICES": "0"}, initialized=False)  # job 1 starts CUDA on GPU 0
    check_cuda_process({"CUDA_VISIBLE_DEVICES": "0"}, initialized=True)  # same GPU again: fine
    with pytest.raises(JobConfigError, match=r"CUDA_VISIBLE_DEVICES='0', this job was given '1'.*submitit_local"):
        check_cuda_process({"CUDA_VISIBLE_DEVICES": "1"}, initialized=True)


def test_local_launchers_get_an_assigner_and_n_workers_from_the_gpus():
    settings = HPOSettings.from_mapping({"n_workers": "auto", "trials_per_gpu": 2})
    assigner = gpu_setup(settings, OmegaConf.create({"_target_": JOBLIB}), False, {FAKE_GPUS_ENV: "2"})
    assert settings.n_workers == 4 and assigner is not None and assigner.pool is not None
    cpu = HPOSettings.from_mapping({"n_workers": "auto", "cpu_workers": 2})
    assert gpu_setup(cpu, OmegaConf.create({"_target_": JOBLIB}), False, {FAKE_GPUS_ENV: "0"}) is None
    assert cpu.n_workers == 2
    on_cpu = HPOSettings.from_mapping({"n_workers": "auto"})  # trainer.accelerator=cpu: the GPUs are not used
    assert gpu_setup(on_cpu, OmegaConf.create({"_target_": JOBLIB}), False, {FAKE_GPUS_ENV: "2"},
                     trains_on_cpu=True) is None and on_cpu.n_workers == 1
    with pytest.raises(SettingsError, match="hpo.n_workers=3 exceeds the 2 jobs"):
        gpu_setup(HPOSettings.from_mapping({"n_workers": 3}), OmegaConf.create({"_target_": JOBLIB}), False,
                  {FAKE_GPUS_ENV: "2"})


def test_slurm_and_ray_launchers_are_checked_not_assigned():
    slurm = OmegaConf.create({"_target_": SLURM, "gpus_per_task": None, "gpus_per_node": None})
    with pytest.raises(SettingsError, match=r"hpo.gpus_per_trial=1 .* add hydra.launcher.gpus_per_task=1"):
        gpu_setup(HPOSettings.from_mapping({"gpus_per_trial": 1}), slurm, False, {FAKE_GPUS_ENV: "0"})
    slurm.gpus_per_task = 2
    with pytest.raises(SettingsError, match=r"hpo.gpus_per_trial=1 but hydra.launcher.gpus_per_task=2"):
        gpu_setup(HPOSettings.from_mapping({"gpus_per_trial": 1}), slurm, False, {FAKE_GPUS_ENV: "0"})
    settings = HPOSettings.from_mapping({"gpus_per_trial": 2, "n_workers": 8})
    assert gpu_setup(settings, slurm, False, {FAKE_GPUS_ENV: "1"}) is None and settings.n_workers == 8
    ray = OmegaConf.create({"_target_": RAY, "ray": {"remote": {"num_gpus": 1}}})
    assert gpu_setup(HPOSettings.from_mapping({"gpus_per_trial": 1}), ray, False, {}) is None
    with pytest.raises(SettingsError, match=r"hpo.gpus_per_trial=2 but hydra.launcher.ray.remote.num_gpus=1"):
        gpu_setup(HPOSettings.from_mapping({"gpus_per_trial": 2}), ray, False, {})
