"""GPUs per trial end to end: stub-app sweeps on joblib with a fake device count (subprocess runs, slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hydra_hpo.devices import FAKE_GPUS_ENV

STUB = Path(__file__).parent / "stub_app" / "stub.py"
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
pytestmark = pytest.mark.slow


def run_stub(sweep_dir: Path, gpus: int, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, FAKE_GPUS_ENV: str(gpus)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def jobs(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("[0-9]*/times.json")}


def overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_every_job_in_flight_sees_its_own_gpu(tmp_path):
    # Trial 0 waits until trial 1 has started: two jobs surely in flight together (progress, not timing).
    proc = run_stub(tmp_path / "s", 2, *JOBLIB, "hpo.n_workers=auto", "hpo.n_trials=6", "+wait_for.0=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 trials, 2 workers" in proc.stderr + proc.stdout  # n_workers=auto: what 2 GPUs allow
    seen = jobs(tmp_path / "s")
    assert sorted(seen) == list(range(6)) and seen[0]["waited"] is True
    assert {t["cuda_visible_devices"] for t in seen.values()} == {"0", "1"}
    assert seen[0]["cuda_visible_devices"] != seen[1]["cuda_visible_devices"]
    for i, a in seen.items():
        for j, b in seen.items():
            if i < j and overlap(a, b):
                assert a["cuda_visible_devices"] != b["cuda_visible_devices"], (i, j, seen)


def test_trials_per_gpu_two_share_one_gpu_and_too_many_workers_is_refused(tmp_path):
    proc = run_stub(tmp_path / "shared", 1, *JOBLIB, "hpo.n_workers=auto", "+hpo.trials_per_gpu=2",
                    "hpo.n_trials=4", "+wait_for.0=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = jobs(tmp_path / "shared")
    assert seen[0]["waited"] is True and {t["cuda_visible_devices"] for t in seen.values()} == {"0"}

    refused = run_stub(tmp_path / "refused", 2, *JOBLIB, "hpo.n_workers=3", "hpo.n_trials=4")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("Error: hpo.n_workers=3 exceeds the 2 jobs the GPUs")
    assert not list((tmp_path / "refused").glob("[0-9]*"))  # before any job
