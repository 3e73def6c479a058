"""Per-segment overhead of real sweeps on Ray against joblib: wall time of a job minus its training epochs.

    python benchmarks/ray_overhead.py                                  # ray and joblib, 3 repeats
    python benchmarks/ray_overhead.py --repeats 2 --baseline-src /work/main/src   # before/after, same run
    python benchmarks/ray_overhead.py --startup 3                      # also time ray.init/shutdown alone
    python benchmarks/ray_overhead.py --launchers ray_gpu,ray_gpu_reuse --repeats 2  # GPU tasks (logical GPUs)

Each repeat runs the issue's sweep once per launcher in a fresh process (``train.py -m hpo=asha model=mlp
search_space=mlp hpo.n_workers=2 hpo.n_trials=8 trainer.max_epochs=4``; joblib with ``n_jobs=2``, Ray
with ``num_cpus=2``) and reads every completed job back from the sweep's journal: overhead = busy seconds
(from the job's launch to its result reaching the sweeper) minus its training seconds (its epochs, as the
job timed them). A job is *warm* when its worker process had run a job before (result.json ``pid`` where
the job records it, otherwise: job number >= n_workers). For Ray the sweep runs in its own Ray temp
folder, and the number of Ray worker processes it started (one log file each) is printed beside the
number of jobs: fewer processes than jobs means workers were reused. ``--baseline-src`` runs the same
sweeps with another source tree on PYTHONPATH (alternating with ours), e.g. the code before the fix.
Prints medians over all jobs of all repeats; speed is never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_WORKERS = 2
SWEEP = ["hpo=asha", "model=mlp", "search_space=mlp", f"hpo.n_workers={N_WORKERS}", "hpo.n_trials=8",
         "trainer.max_epochs=4"]
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={N_WORKERS}"],
    "ray": ["hydra/launcher=ray", f"+hydra.launcher.ray.init.num_cpus={N_WORKERS}"],
    # one (logical: Ray needs no real device to schedule them) GPU per job; Ray's default for GPU tasks is
    # max_calls=1, a new worker process per job ...
    "ray_gpu": ["hydra/launcher=ray", f"+hydra.launcher.ray.init.num_cpus={N_WORKERS}",
                f"+hydra.launcher.ray.init.num_gpus={N_WORKERS}", "+hydra.launcher.ray.remote.num_gpus=1"],
    # ... unless max_calls=0 (no limit) keeps reusing them
    "ray_gpu_reuse": ["hydra/launcher=ray", f"+hydra.launcher.ray.init.num_cpus={N_WORKERS}",
                      f"+hydra.launcher.ray.init.num_gpus={N_WORKERS}", "+hydra.launcher.ray.remote.num_gpus=1",
                      "+hydra.launcher.ray.remote.max_calls=0"],
}


def run_sweep(launcher: str, src: Path, extra: list[str], workdir: Path) -> dict:
    """Run one real sweep in a fresh process; its jobs' times, wall seconds and Ray worker count."""
    sweep_dir = workdir / f"{launcher}-{time.monotonic_ns()}"
    overrides = list(LAUNCHERS[launcher])
    ray_tmp = None
    if launcher.startswith("ray"):  # short path: Ray's socket paths must stay under 108 characters
        ray_tmp = Path(tempfile.mkdtemp(prefix="ro", dir="/tmp"))
        overrides.append(f"+hydra.launcher.ray.init._temp_dir={ray_tmp}")
    env = {**os.environ, "PYTHONPATH": str(src), "HYDRA_FULL_ERROR": "1"}
    command = [sys.executable, str(REPO / "train.py"), "-m", *SWEEP, *overrides, f"hydra.sweep.dir={sweep_dir}",
               *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    error = None
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        marks = ("Failed to connect", "Error:", "Error ", "Traceback")
        error = next((line for line in reversed(lines) if any(m in line for m in marks)), lines[-1] if lines else "")
        error = error[error.find("]") + 1:].strip() if "Failed to connect" in error else error
    jobs = []
    journal = sweep_dir / "journal.jsonl"
    for line in journal.read_text().splitlines() if journal.exists() else []:
        event = json.loads(line)
        if event.get("event") != "segment_finished" or event.get("status") != "completed":
            continue
        result_path = Path(event["output_dir"]) / "result.json"
        result = json.loads(result_path.read_text()) if result_path.is_file() else {}
        busy = event["finished"] - event["started"]
        jobs.append({"job_idx": event["job_idx"], "busy": busy, "train": event["seconds"],
                     "overhead": busy - event["seconds"], "pid": result.get("pid")})
    workers = None
    if ray_tmp is not None:
        workers = len(list(ray_tmp.glob("session_*/logs/worker-*.out")))
        shutil.rmtree(ray_tmp, ignore_errors=True)
    mark_warm(jobs)
    return {"jobs": jobs, "wall": wall, "workers": workers, "error": error}


def mark_warm(jobs: list[dict]) -> None:
    seen: set[int] = set()
    for job in sorted(jobs, key=lambda j: j["job_idx"]):
        if job["pid"] is None:
            job["warm"] = job["job_idx"] >= N_WORKERS
        else:
            job["warm"] = job["pid"] in seen
            seen.add(job["pid"])


def ray_startup(repeats: int) -> list[tuple[str, float, float]]:
    """Median seconds of ray.init and of ray.shutdown, with and without Ray's dashboard, in a fresh process each."""
    code = ("import time, ray, sys; t=time.perf_counter(); ray.init(num_cpus=2, include_dashboard=sys.argv[1]=='1',"
            " _temp_dir=sys.argv[2]); s=time.perf_counter(); ray.shutdown(); e=time.perf_counter();"
            " print(s-t, e-s)")
    rows = []
    for dashboard in ("1", "0"):
        inits, shutdowns = [], []
        for _ in range(repeats):
            folder = tempfile.mkdtemp(prefix="rs", dir="/tmp")
            out = subprocess.run([sys.executable, "-c", code, dashboard, folder], capture_output=True, text=True)
            shutil.rmtree(folder, ignore_errors=True)
            if out.returncode != 0:
                print(out.stderr[-2000:])
                continue
            init, shutdown = map(float, out.stdout.split()[-2:])
            inits.append(init)
            shutdowns.append(shutdown)
        rows.append(("with dashboard" if dashboard == "1" else "include_dashboard=false", median(inits),
                     median(shutdowns)))
    return rows


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launchers", default="ray,joblib")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="another source tree (a checkout's src/) to measure in the same run, as 'before'")
    parser.add_argument("--startup", type=int, default=0, help="also time ray.init/ray.shutdown alone, N times")
    parser.add_argument("overrides", nargs="*", help="extra overrides for every sweep")
    args = parser.parse_args(argv)
    launchers = args.launchers.split(",")
    trees = [("ours", REPO / "src")]
    if args.baseline_src is not None:
        trees.insert(0, ("before", args.baseline_src.resolve()))
    runs: dict[tuple[str, str], list[dict]] = {(n, launcher): [] for n, _ in trees for launcher in launchers}
    print(f"sweep: train.py -m {' '.join(SWEEP + args.overrides)}; {args.repeats} repeats; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M %Z')}", flush=True)
    with tempfile.TemporaryDirectory(prefix="ray_overhead_") as folder:
        for repeat in range(args.repeats):
            for launcher in launchers:
                for name, src in trees:
                    run = run_sweep(launcher, src, args.overrides, Path(folder))
                    runs[(name, launcher)].append(run)
                    workers = f", {run['workers']} Ray worker processes" if run["workers"] is not None else ""
                    status = f"FAILED: {run['error'][:160]}" if run["error"] else "ok"
                    print(f"  repeat {repeat + 1} {name:6s} {launcher:7s} {len(run['jobs'])} jobs completed in "
                          f"{run['wall']:.1f} s{workers}; {status}", flush=True)
    print("\nOverhead per segment (busy seconds minus training seconds), medians over all completed jobs:")
    print("| source | launcher | sweeps ok | jobs (warm) | overhead | warm | cold | training | sweep wall s |"
          " Ray workers / jobs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, _ in trees:
        for launcher in launchers:
            sweeps = runs[(name, launcher)]
            jobs = [j for run in sweeps for j in run["jobs"]]
            warm = [j["overhead"] for j in jobs if j["warm"]]
            cold = [j["overhead"] for j in jobs if not j["warm"]]
            ok = sum(run["error"] is None for run in sweeps)
            workers = ", ".join(f"{run['workers']}/{len(run['jobs'])}" for run in sweeps if run["workers"] is not None)
            print(f"| {name} | {launcher} | {ok}/{len(sweeps)} | {len(jobs)} ({len(warm)}) | "
                  f"{median([j['overhead'] for j in jobs]):.2f} | {median(warm):.2f} | {median(cold):.2f} | "
                  f"{median([j['train'] for j in jobs]):.2f} | {median([r['wall'] for r in sweeps]):.1f} | "
                  f"{workers or '-'} |")
    if args.startup:
        print(f"\nRay start-up alone (fresh process, num_cpus=2), medians of {args.startup}:")
        print("| ray.init | init s | shutdown s |\n|---|---|---|")
        for label, init, shutdown in ray_startup(args.startup):
            print(f"| {label} | {init:.2f} | {shutdown:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
