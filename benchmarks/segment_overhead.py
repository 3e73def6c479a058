"""Per-job (segment) overhead of real sweeps: wall time of a job minus its training epochs, per launcher.

    python benchmarks/segment_overhead.py                          # basic, joblib, submitit_local; 2 repeats
    python benchmarks/segment_overhead.py --launchers joblib --repeats 3 --profile
    python benchmarks/segment_overhead.py --baseline-src /path/to/old/src   # before/after, same run

Each repeat runs the same real sweep once per launcher (``train.py -m hpo=asha model=mlp search_space=mlp
hpo.n_workers=2 hpo.n_trials=12``: ~18 jobs of 1-9 epochs on digits) in a fresh process, and reads every
job's times back from the sweep's journal (launch and result, as the sweeper saw them) and its result.json.

- overhead of a job = busy seconds (from its launch to its result reaching the sweeper) minus its training
  seconds (its epochs, each with its validation, as the job measured them): the ``overhead_seconds`` of
  trials.csv and optimization_results.yaml.
- continued: segments a waiting job process trained after its previous one (``hpo.keep_alive``, result.json
  ``continued``): no launch, no Hydra job, no start-up or restore; run with ``hpo.type=stopping`` for many.
- warm: new jobs that were not the first job of their process (``process_job`` > 1 in result.json; with an
  older source tree without it, jobs numbered >= hpo.n_workers). A cold job also imports torch and
  Lightning and loads the dataset. submitit_local starts a process per job, so all its jobs are cold.
- CPU overhead of a warm job: its worker process's CPU seconds from the previous job's result to its own,
  minus its epochs' CPU seconds (result.json ``process_cpu_seconds``, ``train_cpu_seconds``). Other
  processes on a busy machine inflate the wall figures but not this one; it leaves out the sweeper's side.
- profile (medians over warm jobs): ``outside train()`` is the busy time outside the job's own function
  (the launcher's dispatch, Hydra's per-job config composition, logging and .hydra/ files, the result's
  way back); the rest are the phases the job timed itself (result.json ``phases``).

With ``--baseline-src`` the same sweeps also run with that source tree on PYTHONPATH (e.g. an older
checkout's ``src``), alternating with ours in every repeat, so before and after share the machine's load.
``--profile`` adds cProfile's per-job cumulative times of the main steps of one basic-launcher sweep.
Prints the figures; speed is never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["hpo=asha", "model=mlp", "search_space=mlp", "hpo.n_workers=2", "hpo.n_trials=12"]
LAUNCHERS = ("basic", "joblib", "submitit_local")
PHASES = ("setup", "data", "model", "trainer", "fit_start_and_restore", "epochs", "checkpoint_save", "fit_other",
          "result")
# functions whose cumulative time per call the --profile view prints: (label, pstats regex)
PROFILED = [
    ("Hydra: compose the job's config (load_sweep_config)", r"config_loader_impl.py.*load_sweep_config"),
    ("Hydra: run_job (set-up, .hydra/ files, logging, the task)", r"hydra/core/utils.py.*run_job"),
    ("Hydra: write .hydra/*.yaml (_save_config)", r"hydra/core/utils.py.*_save_config"),
    ("Hydra: configure job logging", r"hydra/core/utils.py.*configure_log"),
    ("ours: train()", r"runner.py.*\(train\)"),
    ("ours: build the Trainer", r"runner.py.*make_trainer"),
    ("Lightning: Trainer.fit", r"trainer/trainer.py.*\(fit\)"),
    ("Lightning: restore a checkpoint", r"checkpoint_connector.py.*restore_training_state"),
    ("ours: save last.ckpt", r"callbacks.py.*save_checkpoint_atomically"),
    ("ours: write result.json", r"resultfile.py.*write_result"),
]


def run_sweep(launcher: str, src: Path, extra: list[str], workdir: Path, profile: Path | None = None) -> list[dict]:
    """Run one real sweep; one dict per finished job with its times."""
    sweep_dir = workdir / f"{launcher}-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(src), "HYDRA_FULL_ERROR": "1"}
    command = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), str(REPO / "train.py"),
               "-m", *SWEEP, f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep_dir}", *extra]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"sweep with hydra/launcher={launcher} failed:\n{done.stderr[-3000:]}")
    jobs = []
    for line in (sweep_dir / "journal.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") != "segment_finished" or event.get("status") != "completed":
            continue
        result_path = Path(event["output_dir"]) / "result.json"
        result = json.loads(result_path.read_text()) if result_path.is_file() else {}
        busy = event["finished"] - event["started"]
        jobs.append({
            "job_idx": event["job_idx"], "busy": busy, "train": event["seconds"],
            "overhead": busy - event["seconds"], "job_seconds": result.get("job_seconds"),
            "phases": result.get("phases") or {}, "process_job": result.get("process_job"),
            "pid": result.get("pid"), "process_cpu": result.get("process_cpu_seconds"),
            "train_cpu": result.get("train_cpu_seconds"), "continued": bool(result.get("continued")),
        })
    add_cpu_overhead(jobs)
    return jobs


def add_cpu_overhead(jobs: list[dict]) -> None:
    """``cpu_overhead`` of a job that followed another in the same process: the process's CPU seconds between
    the two result writes minus the job's training CPU seconds (None where unknown)."""
    by_process: dict[int, dict[int, dict]] = {}
    for job in jobs:
        job["cpu_overhead"] = None
        if job["pid"] is not None and job["process_cpu"] is not None:
            by_process.setdefault(job["pid"], {})[job["process_job"]] = job
    for numbered in by_process.values():
        for number, job in numbered.items():
            previous = numbered.get(number - 1)
            if previous is not None:
                job["cpu_overhead"] = job["process_cpu"] - previous["process_cpu"] - job["train_cpu"]


def is_warm(job: dict, launcher: str) -> bool:
    if job["continued"]:
        return False
    if launcher == "submitit_local":
        return False
    if job["process_job"] is not None:
        return job["process_job"] > 1
    return job["job_idx"] >= 2  # hpo.n_workers


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(name: str, launcher: str, jobs: list[dict]) -> dict:
    continued = [j for j in jobs if j["continued"]]
    warm = [j for j in jobs if is_warm(j, launcher)]
    cold = [j for j in jobs if not is_warm(j, launcher) and not j["continued"]]
    row = {
        "name": name, "launcher": launcher, "jobs": len(jobs), "warm": len(warm),
        "median": median([j["overhead"] for j in jobs]),
        "warm_median": median([j["overhead"] for j in warm]),
        "cold_median": median([j["overhead"] for j in cold]),
        "continued": len(continued), "continued_median": median([j["overhead"] for j in continued]),
        "mean": statistics.fmean(j["overhead"] for j in jobs) if jobs else float("nan"),
        "train_median": median([j["train"] for j in jobs]),
        "cpu_median": median([j["cpu_overhead"] for j in warm if j["cpu_overhead"] is not None]),
    }
    profiled = warm or jobs
    with_job = [j for j in profiled if j["job_seconds"] is not None]
    profile = {}
    if with_job:
        profile["outside train()"] = median([j["busy"] - j["job_seconds"] for j in with_job])
        for phase in PHASES:
            profile[phase] = median([j["phases"].get(phase, 0.0) for j in with_job])
    row["profile"] = profile
    return row


def profile_table(path: Path, n_jobs: int) -> str:
    """Calls and cumulative seconds per call of the ``PROFILED`` steps in a cProfile dump."""
    import re

    stats = pstats.Stats(str(path))
    lines = [f"\ncProfile of one basic-launcher sweep ({n_jobs} jobs, in-process; cProfile inflates every figure):",
             "| step | calls | cumulative s per call |", "|---|---|---|"]
    for label, pattern in PROFILED:
        regex = re.compile(pattern)
        hits = [(key, value) for key, value in stats.stats.items()
                if regex.search(f"{key[0]}:{key[1]}({key[2]})")]
        if not hits:
            continue
        calls = sum(value[1] for _, value in hits)
        cumulative = sum(value[3] for _, value in hits)
        lines.append(f"| {label} | {calls} | {cumulative / max(calls, 1):.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launchers", default=",".join(LAUNCHERS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="another source tree (a checkout's src/) to measure in the same run, as 'before'")
    parser.add_argument("--profile", action="store_true", help="cProfile one basic-launcher sweep")
    parser.add_argument("overrides", nargs="*", help="extra overrides for every sweep")
    args = parser.parse_args(argv)
    launchers = args.launchers.split(",")
    trees = [("ours", REPO / "src")]
    if args.baseline_src is not None:
        trees.insert(0, ("baseline", args.baseline_src.resolve()))
    jobs: dict[tuple[str, str], list[dict]] = {(n, launcher): [] for n, _ in trees for launcher in launchers}
    print(f"sweep: train.py -m {' '.join(SWEEP + args.overrides)}; {args.repeats} repeats; "
          f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M %Z')}", flush=True)
    with tempfile.TemporaryDirectory(prefix="segment_overhead_") as folder:
        workdir = Path(folder)
        for repeat in range(args.repeats):
            for launcher in launchers:
                for name, src in trees:
                    started = time.perf_counter()
                    new = run_sweep(launcher, src, args.overrides, workdir)
                    jobs[(name, launcher)] += new
                    print(f"  repeat {repeat + 1} {name:8s} {launcher:15s} {len(new)} jobs in "
                          f"{time.perf_counter() - started:.1f} s", flush=True)
        profile_text = ""
        if args.profile:
            profile = workdir / "basic.prof"
            profiled_jobs = run_sweep("basic", REPO / "src", args.overrides, workdir, profile=profile)
            profile_text = profile_table(profile, len(profiled_jobs))
    rows = [report(name, launcher, jobs[(name, launcher)]) for name, _ in trees for launcher in launchers]
    print("\nOverhead per segment (busy seconds minus training seconds), seconds:")
    print("| source | launcher | jobs (warm, continued) | median | warm median | cold median | continued median "
          "| mean | median training | warm median, CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['launcher']} | {r['jobs']} ({r['warm']}, {r['continued']}) | {r['median']:.3f} | "
              f"{r['warm_median']:.3f} | {r['cold_median']:.3f} | {r['continued_median']:.3f} | {r['mean']:.3f} "
              f"| {r['train_median']:.3f} | {r['cpu_median']:.3f} |")
    for r in rows:
        if r["profile"]:
            parts = ", ".join(f"{k} {v * 1000:.0f}" for k, v in r["profile"].items())
            print(f"profile, {r['name']} {r['launcher']} ({'warm' if r['warm'] else 'all'} jobs, median ms): {parts}")
    if profile_text:
        print(profile_text)
    for r in rows:
        if r["name"] == "ours" and r["launcher"] == "joblib":
            print(f"\njoblib_warm_median_overhead={r['warm_median']:.3f} s wall, {r['cpu_median']:.3f} CPU s of the "
                  f"worker (target <= 0.2 s); load average {os.getloadavg()[0]:.1f}")
            if r["continued"]:
                print(f"joblib_continued_median_overhead={r['continued_median']:.3f} s wall over {r['continued']} "
                      "continued segments (the simulator's continue_overhead_seconds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
