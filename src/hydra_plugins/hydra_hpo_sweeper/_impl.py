"""The sweeper: validate everything, build searcher/scheduler/executor, run the tuner, write the summary."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_hpo.executors.hydra_jobs import JobOverrides, ResultCollector, override_key
from hydra_hpo.executors.hydra_launcher import KeepAlive, HydraAsyncExecutor, HydraBatchExecutor
from hydra_hpo.executors.launcher_devices import gpu_setup
from hydra_hpo.executors.job_process import JOBS_DIR, JobProcessCallback, JobProcesses
from hydra_hpo.executors.ray_support import ray_session
from hydra_hpo.journal import JOURNAL_NAME, Journal, JournalError
from hydra_hpo.objectives import check_objectives
from hydra_hpo.records import TrialRecord
from hydra_hpo.atomic import atomic_write_text
from hydra_hpo.build import build_tuner
from hydra_hpo.checkpoints import CheckpointStore
from hydra_hpo.errors import SettingsError, exit_on_user_error
from hydra_hpo.export_optuna import LiveOptunaExport
from hydra_hpo.progress import SweepProgress
from hydra_hpo.results import RESULTS_YAML, TRIALS_CSV, write_summary
from hydra_hpo.resume import ResumeLog
from hydra_hpo.settings import HPOSettings
from hydra_hpo.space import SearchSpace, SearchSpaceError
from hydra_hpo.space_grammar import space_from_overrides
from hydra_hpo.space_structured import space_from_structured
from hydra_hpo.space_validation import validate_space
from hydra_hpo.trial import JobResult
from hydra_hpo.tuner import FatalSweepError, SweepOutcome, Tuner, TunerCallback

log = logging.getLogger(__name__)

BEST_CONFIG = "best_config.yaml"
LINEAGE_PNG = "lineage.png"


@dataclass
class SweepPlan:
    """Everything a sweep needs, validated before any job starts."""

    settings: HPOSettings
    space: SearchSpace
    forwarded: list[str]
    metric: str
    max_resource: int
    initial_config: dict[str, Any] | None
    fixed: list[str] = field(default_factory=list)  # keys a plain command-line value took out of the space

    @classmethod
    def build(cls, config: DictConfig, arguments: list[str], hpo_key: str, space_key: str) -> "SweepPlan":
        job_config = {k: v for k, v in OmegaConf.to_container(config, resolve=False).items() if k != "hydra"}
        settings = HPOSettings.from_mapping(job_config.get(hpo_key) or {})
        file_space = space_from_structured(job_config.get(space_key) or {})
        cli_space, forwarded = space_from_overrides(list(arguments))
        space = file_space.merge(cli_space)
        fixed = [override_key(o) for o in forwarded if override_key(o) in space.params]
        if fixed:  # a plain command-line value fixes a key the search space file would sample
            space = SearchSpace({k: p for k, p in space.params.items() if k not in fixed})
        if len(space) == 0:
            raise SearchSpaceError(f"the search space is empty: set `{space_key}=...` or sweep a key on the "
                                   "command line")
        validate_space(space, job_config)
        resource = OmegaConf.select(config, settings.resource_key)
        if not isinstance(resource, int) or resource < 1:
            raise SettingsError(f"hpo.resource_key={settings.resource_key!r} must name an integer >= 1 in the "
                                f"config, found {resource!r}")
        check_objectives(settings.objectives, settings.constraints, metric=str(config.get("metric", "validation_error")),
                         mode=settings.mode, overrides=arguments)
        initial = None
        if settings.initial_config:
            initial = {key: OmegaConf.select(config, key) for key in space.names}
        return cls(settings, space, forwarded, str(config.get("metric", "validation_error")), resource, initial, fixed)

    def fingerprint(self) -> dict[str, Any]:
        return {**self.settings.fingerprint(), "search_space": self.space.to_structured(), "metric": self.metric}


class _Reporter(TunerCallback):
    """Prints a line per finished job and the best so far."""

    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan

    def on_result(self, result: JobResult, record: TrialRecord, tuner: Tuner) -> None:
        job = result.job
        params = ", ".join(f"{k}={_short(v)}" for k, v in job.config.items())
        if result.ok:
            outcome = f"{self.plan.metric}={result.value:.4f}"
        else:
            outcome = f"{result.status.upper()}: {(result.error or '').strip().splitlines()[-1:] or ''}"
        best = tuner.best
        best_text = f"best {best.value:.4f} (trial {best.trial_id}, {best.resource} epochs)" if best else "no best yet"
        log.info("trial %d [job %d, epochs %d->%d] %s -> %s (%.1f s) | %s", job.trial_id, job.job_idx,
                 job.previous_resource, job.resource, params, outcome, result.finished - result.started, best_text)


def _runs_in_process(launcher: Any) -> bool:
    """Hydra's basic launcher runs jobs in the sweeper's own process, one after another."""
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher

    return isinstance(launcher, BasicLauncher)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class HPOSweeperImpl(Sweeper):
    def __init__(self, hpo_key: str = "hpo", search_space_key: str = "search_space") -> None:
        self.hpo_key = hpo_key
        self.search_space_key = search_space_key
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        # Every job announces its process (pid file, stop signal) so a job past hpo.trial_timeout can be
        # stopped; the launcher runs the callbacks of this very context in the job's process.
        self.jobs_dir = (Path(str(config.hydra.sweep.dir)) / JOBS_DIR).resolve()
        callbacks = getattr(getattr(hydra_context, "callbacks", None), "callbacks", None)
        if isinstance(callbacks, list):
            callbacks.append(JobProcessCallback(str(self.jobs_dir), os.getpid()))

    def sweep(self, arguments: list[str]) -> SweepOutcome:
        """Run the sweep. A mistake in the user's input ends it with one line ``Error: ...`` and exit status 1
        (the traceback with ``HYDRA_FULL_ERROR=1``); what was computed before is kept."""
        with exit_on_user_error():
            return self._sweep(arguments)

    def _sweep(self, arguments: list[str]) -> SweepOutcome:
        assert self.config is not None
        plan = SweepPlan.build(self.config, arguments, self.hpo_key, self.search_space_key)
        settings = plan.settings
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        journal = Journal(sweep_dir / JOURNAL_NAME)
        resume = self._resume_log(journal, settings)

        checkpoints = CheckpointStore((sweep_dir / "checkpoints").resolve(), keep=settings.keep_checkpoints)
        overrides = JobOverrides(plan.forwarded, checkpoints.dir, settings.resource_key, settings.trial_timeout)
        devices = gpu_setup(settings, self.config.hydra.launcher, _runs_in_process(self.launcher),  # sets n_workers
                            trains_on_cpu=OmegaConf.select(self.config, "trainer.accelerator", default=None) == "cpu")
        executor = self._executor(settings, overrides, ResultCollector(sweep_dir, plan.metric), devices,
                                  KeepAlive(self.jobs_dir, sweep_dir.resolve(),
                                            settings.scheduler_options.get("r_max") or plan.max_resource,
                                            settings.trial_timeout))
        progress = SweepProgress(settings.progress, metric=plan.metric,
                                 in_process_jobs=_runs_in_process(self.launcher))
        tuner = build_tuner(settings, plan.space, plan.max_resource, executor, initial_config=plan.initial_config,
                            journal=journal, resume=resume, fingerprint=plan.fingerprint(),
                            callbacks=[_Reporter(plan), progress], checkpoints=checkpoints,
                            metric=plan.metric)
        if resume is not None:  # refuse another sweep's journal before printing or writing anything
            resume.check_fingerprint(plan.fingerprint())
        sweep_dir.mkdir(parents=True, exist_ok=True)  # only now: a refused sweep leaves no folder behind
        if settings.optuna_storage:  # the study is created (or replaced) before any job starts
            tuner.callbacks.append(LiveOptunaExport(settings.optuna_storage, sweep_dir, plan.space, settings.mode,
                                                    plan.metric, attrs={"searcher": settings.searcher,
                                                                        "scheduler": settings.scheduler}))
        if plan.fixed:
            log.info("Fixed on the command line, not searched: %s", ", ".join(plan.fixed))
        if _runs_in_process(self.launcher):
            log.info("hydra/launcher=basic runs jobs one after another in this process (batches of hpo.n_workers=%d); "
                     "use hydra/launcher=joblib or submitit_local for parallel, asynchronous jobs", settings.n_workers)
        log.info("hydra-hpo: %s search, %s scheduler, %d trials, %d workers, sweep dir %s", settings.searcher,
                 settings.scheduler, settings.n_trials, settings.n_workers, sweep_dir)
        if devices is not None:
            log.info("GPUs %s: %d per trial, up to %d trial(s) per GPU (CUDA_VISIBLE_DEVICES per job; 0: hidden)",
                     ",".join(devices.plan.devices), devices.plan.gpus_per_trial, devices.plan.trials_per_gpu)
        with ray_session(self.launcher):  # hydra/launcher=ray: one Ray instance per sweep
            with progress:
                outcome = tuner.run()
            # before Ray stops: a launch thread still inside Ray then (a job started as Ctrl-C came) makes Ray end
            # this process, so the summary and the resume hint must be written by then
            self._finish(outcome, plan, sweep_dir)
        return outcome

    def _resume_log(self, journal: Journal, settings: HPOSettings) -> ResumeLog | None:
        if settings.resume:
            if not journal.exists():
                log.warning("hpo.resume=true but %s holds no journal: starting a new sweep", journal.path)
                return None
            return ResumeLog(journal.read())
        if journal.exists():
            raise JournalError(
                f"{journal.path.parent} already holds a sweep journal: pass hpo.resume=true to continue that "
                "sweep, or choose another hydra.sweep.dir"
            )
        return None

    def _executor(self, settings: HPOSettings, overrides: JobOverrides, collect: ResultCollector, devices=None,
                  keep_alive: KeepAlive | None = None):
        sequential = _runs_in_process(self.launcher)
        mode = settings.executor if settings.executor != "auto" else ("batch" if sequential else "async")
        if mode == "async" and sequential:
            raise SettingsError("hpo.executor=async cannot drive hydra/launcher=basic: its jobs run in this "
                                "process; use hydra/launcher=joblib or submitit_local")
        if settings.keep_alive is True and mode == "batch":
            raise SettingsError("hpo.keep_alive=true: needs jobs in their own processes, driven asynchronously "
                                f"(hpo.executor={settings.executor} runs batches{' in this process' if sequential else ''}); "
                                "use hydra/launcher=joblib or submitit_local with hpo.executor=auto, or hpo.keep_alive=auto")
        if mode == "batch":
            return HydraBatchExecutor(self.launcher, settings.n_workers, overrides, collect, sequential=sequential,
                                      devices=devices)
        return HydraAsyncExecutor(self.launcher, settings.n_workers, overrides, collect, timeout=settings.trial_timeout,
                                  processes=JobProcesses(self.jobs_dir), devices=devices,
                                  keep_alive=keep_alive if settings.keep_alive is not False else None)

    def _finish(self, outcome: SweepOutcome, plan: SweepPlan, sweep_dir: Path) -> None:
        shutil.rmtree(sweep_dir / JOBS_DIR, ignore_errors=True)  # only files of jobs that have ended
        if plan.settings.scheduler == "pbt":
            self._finish_pbt(outcome, plan, sweep_dir)
        summary = write_summary(outcome, sweep_dir, plan.metric, plan.settings.mode)
        if summary.get("pareto_front"):
            from hydra_plugins.hydra_hpo_sweeper._pareto_configs import write_pareto_configs

            write_pareto_configs(self.config, summary["pareto_front"], outcome.trials, plan.settings.resource_key,
                                 sweep_dir)
            log.info("Pareto front: %d trials (%s), hypervolume %.4g; rerunnable configs in %s",
                     len(summary["pareto_front"]), ", ".join(str(m["trial_id"]) for m in summary["pareto_front"]),
                     summary.get("hypervolume", 0.0), sweep_dir / "pareto")
        if outcome.best is not None:
            best_path = sweep_dir / BEST_CONFIG
            atomic_write_text(best_path, self._best_config_yaml(outcome, plan))
            log.info("Best %s=%.4f (trial %d, %d epochs): %s", plan.metric, outcome.best.value, outcome.best.trial_id,
                     outcome.best.resource, summary["best_params"])
            log.info("Rerun it: python train.py --config-path %s --config-name %s", sweep_dir.resolve(),
                     BEST_CONFIG.removesuffix(".yaml"))
        log.info("Summary: %s, %s; %d trials, %d failed, %d epochs, utilization %.2f; %d jobs busy %.1f s: "
                 "training %.1f s, overhead %.1f s (median %.2f s per job)", sweep_dir / RESULTS_YAML,
                 sweep_dir / TRIALS_CSV, len(outcome.trials), outcome.failures, outcome.epochs_total,
                 outcome.utilization, summary["n_jobs"], summary["busy_seconds"], summary["train_seconds"],
                 summary["overhead_seconds"], summary["overhead_seconds_per_job_median"])
        if outcome.fatal is not None:
            raise outcome.fatal
        if outcome.interrupted:
            hint = f"sweep interrupted; resume with hpo.resume=true hydra.sweep.dir={sweep_dir}"
            log.warning(hint[0].upper() + hint[1:])  # at once: the exception is printed only after Ray has stopped
            raise KeyboardInterrupt(hint)
        if outcome.best is None:
            errors = [r.error for r in outcome.trials.values() if r.error]
            raise FatalSweepError(
                f"all {len(outcome.trials)} trials failed; see {sweep_dir / TRIALS_CSV}. "
                f"First error: {errors[0] if errors else 'unknown'}"
            )

    def _finish_pbt(self, outcome: SweepOutcome, plan: SweepPlan, sweep_dir: Path) -> None:
        """Population based training: lineage.png, and the best result's history as a schedule."""
        from hydra_hpo.lineage import history, plot_lineage, schedule
        from hydra_hpo.schedulers.pbt import mutable_keys

        mutable = list(mutable_keys(plan.settings.scheduler_options.get("mutable"), plan.space))
        best = (outcome.best.trial_id, outcome.best.resource) if outcome.best is not None else None
        if best is not None:
            steps = history(outcome.trials, *best)
            outcome.extra["best_schedule"] = schedule(steps, mutable)
            outcome.extra["best_history_trials"] = sorted({step.trial_id for step in steps})
        if outcome.trials:
            plot_lineage(outcome.trials, mutable, sweep_dir / LINEAGE_PNG, best)

    def _best_config_yaml(self, outcome: SweepOutcome, plan: SweepPlan) -> str:
        assert self.config is not None and outcome.best is not None
        best = outcome.trials[outcome.best.trial_id]
        config = OmegaConf.create({k: v for k, v in OmegaConf.to_container(self.config, resolve=False).items()
                                   if k != "hydra"})
        params, seed = best.config, best.seed
        entries = outcome.extra.get("best_schedule")
        if entries:  # PBT: the history's first config, then its values per epoch range (applied by the runner)
            from hydra_hpo.lineage import history

            steps = history(outcome.trials, outcome.best.trial_id, outcome.best.resource)
            params, seed = steps[0].config, outcome.trials[steps[0].trial_id].seed
            OmegaConf.update(config, "trial.schedule", [dict(e) for e in entries], merge=False)
        for key, value in params.items():
            OmegaConf.update(config, key, value, merge=False)
        OmegaConf.update(config, plan.settings.resource_key, outcome.best.resource, merge=False)
        config.seed = seed
        header = (f"# Best configuration of sweep {Path(str(self.config.hydra.sweep.dir)).resolve()}\n"
                  f"# {plan.metric}={outcome.best.value} (trial {best.trial_id}, {outcome.best.resource} epochs)\n"
                  f"# Rerun: python train.py --config-path <this folder> --config-name best_config\n")
        return header + OmegaConf.to_yaml(config)
