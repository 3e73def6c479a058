"""hydra/launcher=submitit_slurm driven by the asynchronous executor, against a fake SLURM (slow).

There is no SLURM here: ``sbatch``, ``srun`` and ``scontrol`` are small shell scripts on PATH that keep
the job script submitit writes and run it on this machine with the environment SLURM would give it
(``SLURM_JOB_ID``, ...). So the sbatch settings are the ones a cluster would receive, the jobs run
submitit's real SLURM code path, and a preempted job (SIGUSR2, what SLURM sends before it preempts or
times out a job submitted with ``--signal=USR2@...``) is requeued through submitit's own handler.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from test_launchers import run_stub

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[launchers]'")
pytestmark = pytest.mark.slow

SBATCH = r"""#!/bin/bash
# fake sbatch: keep the job script, run it in the background as SLURM would, print the job id
script="${@: -1}"
id=4200
until mkdir "$FAKE_SLURM_DIR/$id" 2>/dev/null; do id=$((id + 1)); done
cp "$script" "$FAKE_SLURM_DIR/$id/job.sh"
export SLURM_JOB_ID=$id SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_JOB_NUM_NODES=1 \
  SLURM_JOB_NODELIST=localhost
nohup bash "$FAKE_SLURM_DIR/$id/job.sh" </dev/null >>"$FAKE_SLURM_DIR/$id/out" 2>&1 &
echo "Submitted batch job $id"
"""

SRUN = r"""#!/bin/bash
# fake srun: drop srun's options and run the command. The first run of the job whose Hydra overrides hold
# $FAKE_SLURM_PREEMPT gets SIGUSR2 once it has written its Hydra config (submitit's handlers are set by then)
while [[ "$1" == --* ]]; do case "$1" in --output|--error) shift 2 ;; *) shift ;; esac; done
"$@" &
pid=$!
if [ -n "$FAKE_SLURM_PREEMPT" ] && [ ! -e "$FAKE_SLURM_DIR/$SLURM_JOB_ID/requeued" ]; then
  while kill -0 $pid 2>/dev/null; do
    config=$(grep -l "^    id: '$SLURM_JOB_ID'\$" "$FAKE_SLURM_SWEEP"/*/.hydra/hydra.yaml 2>/dev/null | head -1)
    if [ -n "$config" ]; then
      if grep -q -- "- $FAKE_SLURM_PREEMPT\$" "$(dirname "$config")/overrides.yaml"; then kill -USR2 $pid; fi
      break
    fi
    sleep 0.05
  done
fi
wait $pid
"""

SCONTROL = r"""#!/bin/bash
# fake scontrol requeue <job id>: run the job's script again (submitit has saved its state to resume from)
[ "$1" = requeue ] || exit 1
id=$2
touch "$FAKE_SLURM_DIR/$id/requeued" "$FAKE_SLURM_ON_REQUEUE"
export SLURM_JOB_ID=$id SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODEID=0 SLURM_JOB_NUM_NODES=1 \
  SLURM_JOB_NODELIST=localhost
nohup bash "$FAKE_SLURM_DIR/$id/job.sh" </dev/null >>"$FAKE_SLURM_DIR/$id/out" 2>&1 &
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"sbatch": SBATCH, "srun": SRUN, "scontrol": SCONTROL}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    jobs = tmp_path / "slurm_jobs"
    jobs.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(jobs))
    return jobs


def sbatch_flags(script: Path) -> dict[str, str]:
    flags = {}
    for line in script.read_text().splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --"):].partition("=")
            flags[key] = value
    return flags


SETTINGS = ["hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1",
            "hydra.launcher.cpus_per_task=4", "hydra.launcher.mem_gb=16", "hydra.launcher.timeout_min=120",
            "hydra.launcher.signal_delay_s=90", "hydra.launcher.max_num_timeout=3",
            "+hydra.launcher.additional_parameters.requeue=true"]


def test_slurm_jobs_get_the_launcher_settings_unchanged(tmp_path, fake_slurm):
    # Every one-job launch of the asynchronous executor is its own sbatch job with exactly the settings given
    # to hydra.launcher; nothing of the sweeper's per-job overrides reaches them.
    sweep = tmp_path / "sweep"
    run_stub(sweep, *SETTINGS, "hpo.n_workers=2", "hpo.n_trials=4")
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_trials == 4 and summary.n_failures == 0
    scripts = sorted(fake_slurm.glob("*/job.sh"))
    assert len(scripts) == 4  # one sbatch job per Hydra job (segment)
    for script in scripts:
        flags = sbatch_flags(script)
        assert flags["partition"] == "gpu" and flags["gpus-per-node"] == "1" and flags["cpus-per-task"] == "4"
        assert flags["mem"] == "16GB" and flags["time"] == "120"  # minutes
        assert flags["signal"] == "USR2@90"  # submitit's warning signal, 90 s before SLURM stops the job
        assert "requeue" in flags and flags["requeue"] == ""
        assert flags["job-name"] == "stub"
    job_ids = {int(s.parent.name) for s in scripts}
    assert len(job_ids) == 4


def test_preempted_slurm_job_is_requeued_and_completes(tmp_path, fake_slurm, monkeypatch):
    # Trial 0 blocks until trial 1 is journaled; trial 1 waits until the requeue has happened. So trial 0's
    # first run is surely running when it is preempted (SIGUSR2 from the fake srun), submitit requeues it
    # (scontrol requeue), and its second run completes the trial: the sweep records no failure.
    sweep = tmp_path / "sweep"
    monkeypatch.setenv("FAKE_SLURM_SWEEP", str(sweep))
    monkeypatch.setenv("FAKE_SLURM_PREEMPT", "trial.id=0")
    monkeypatch.setenv("FAKE_SLURM_ON_REQUEUE", str(sweep / "trial_99.started"))
    run_stub(sweep, *SETTINGS, "hpo.n_workers=2", "hpo.n_trials=2", "+after.0=[1]", "+wait_for.1=99")
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_trials == 2 and summary.n_failures == 0, summary
    requeued = list(fake_slurm.glob("*/requeued"))
    assert len(requeued) == 1, "exactly one job was preempted and requeued"
    out = (requeued[0].parent / "out").read_text()
    assert "this job is preempted" in out, out[-3000:]
    rows = (sweep / "trials.csv").read_text().splitlines()[1:]
    assert all(",completed," in row for row in rows), rows
