"""Check real sweeps on a machine with a GPU: every job trains on the GPU it was given, or on the CPU when told.

    python benchmarks/gpu_check.py --out /tmp/gpu_check            # needs a CUDA GPU; prints a table, exits 1 on a miss

Runs short LeNet-on-digits ASHA sweeps through the real CLI (``python train.py -m ...``) and reads every job's
folder afterwards:

- ``joblib``, ``hpo.gpus_per_trial`` left at ``auto`` and ``hpo.trials_per_gpu=2``: two jobs share each GPU;
- ``submitit_local``, the same: a fresh process per job;
- ``joblib``, ``hpo.gpus_per_trial=0``: jobs must train on the CPU, with the GPU hidden.

For each job it reads result.json: ``device`` (the Trainer's device: ``cuda:0`` for a GPU job, ``cpu``),
``cuda_visible_devices`` (what the sweeper showed the job) and ``peak_memory_mb``, which a GPU job reports as
``torch.cuda.max_memory_allocated`` (a few MB for LeNet) and a CPU job as the process's max RSS (hundreds of MB).
Exits 1 when a sweep fails or a job trained elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SWEEPS = {
    "joblib_2_per_gpu": (["hydra/launcher=joblib", "hpo.trials_per_gpu=2"], True),
    "submitit_2_per_gpu": (["hydra/launcher=submitit_local", "hpo.trials_per_gpu=2"], True),
    "joblib_cpu_only": (["hydra/launcher=joblib", "hpo.gpus_per_trial=0", "hpo.n_workers=2"], False),
}
COMMON = ["hpo=asha", "model=lenet", "search_space=lenet_digits", "data.image_size=28", "hpo.n_trials=6",
          "hpo.r_min=1", "hpo.eta=3", "trainer.max_epochs=3", "hpo.progress=log"]


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.rglob("result.json"))


def check(sweep: Path, on_gpu: bool) -> list[str]:
    """Lines describing each job, and a final verdict line starting with OK or MISS."""
    lines, misses = [], 0
    for job in job_dirs(sweep):
        result = json.loads((job / "result.json").read_text())
        metrics = result.get("metrics", {})
        device, shown = result.get("device"), result.get("cuda_visible_devices")
        peak = metrics.get("peak_memory_mb")
        ok = result.get("status") == "completed"
        if on_gpu:
            ok = ok and str(device).startswith("cuda") and shown not in (None, "") and peak is not None and peak < 200
        else:
            ok = ok and device == "cpu" and shown == ""
        used = f"device={device} CUDA_VISIBLE_DEVICES={shown!r}"
        misses += not ok
        lines.append(f"  {job.relative_to(sweep)}: status={result.get('status')} val_error={metrics.get('validation_error')} "
                     f"peak_memory_mb={peak} inference_ms={metrics.get('inference_ms')} | {used} | "
                     f"{'ok' if ok else 'MISS'}")
    if not lines:
        misses += 1
        lines.append("  no job wrote a result.json")
    lines.append(("OK" if misses == 0 else f"MISS ({misses} job(s))") + f": {len(job_dirs(sweep))} jobs")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--sweeps", default=",".join(SWEEPS))
    args = parser.parse_args(argv)
    failed = 0
    for name in args.sweeps.split(","):
        overrides, on_gpu = SWEEPS[name]
        sweep = args.out / name
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "train.py", "-m", *COMMON, *overrides, f"hydra.sweep.dir={sweep}"],
                              cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        print(f"== {name} ({' '.join(overrides)}): exit {proc.returncode} in {time.perf_counter() - start:.1f} s")
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
        else:
            print("\n".join(line for line in proc.stdout.splitlines() if "GPU" in line or "best" in line.lower()))
        lines = check(sweep, on_gpu)
        print("\n".join(lines), flush=True)
        failed += proc.returncode != 0 or not lines[-1].startswith("OK")
    print("ALL OK" if not failed else f"{failed} sweep(s) missed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
