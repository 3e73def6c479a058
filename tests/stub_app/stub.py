"""A stub task for sweeper tests: no training, a known loss, and failures on request.

``behaviour`` maps a trial id to what that trial does: "fail" raises, "diverge" returns NaN, "kill"
kills its own process with SIGKILL, "hang" waits until the sweep has written its summary (or is
interrupted; at most ``hang_seconds``), so it outlives any timeout on a machine of any speed. ``sleep``
makes the job take that many seconds (a list: per trial id, cycled). ``wait_for`` maps a trial id to
another trial id: the job waits until that trial's job has started (at most ``wait_seconds``), so tests
observe overlapping jobs from progress, not from timing. ``after`` maps a trial id to a list of trial
ids: the job does nothing (not even its ``behaviour``) until the sweep has journaled a finished segment
of each (at most ``wait_seconds``). Every job marks its start in the sweep
directory (``trial_<id>.started``) and writes ``times.json`` (start, end, pid, whether a wait succeeded,
the config it received, its CUDA_VISIBLE_DEVICES, and whether another job of its trial was still running when it started).
``hang_once``: no hang on a retry; ``ignore_stop``: deaf to the sweeper's stop signal; ``ckpt_bytes``
writes a checkpoint of that size into the trial's checkpoint directory.
"""

import json
import logging
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


def wait_until(condition, cap: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``cap`` seconds pass (False): a guard, not a timing."""
    deadline = time.monotonic() + cap
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def finished_trials(journal: Path) -> set[int]:
    """Trial ids with a segment_finished line in the sweep's journal (a torn last line is skipped)."""
    if not journal.exists():
        return set()
    ids = set()
    for line in journal.read_text().splitlines():
        if '"segment_finished"' in line:
            try:
                ids.add(int(json.loads(line)["trial_id"]))
            except (ValueError, KeyError):
                pass
    return ids


@hydra.main(version_base="1.3", config_path=str(Path(__file__).parent / "conf"), config_name="stub")
def main(cfg: DictConfig) -> float:
    trial = cfg.trial.id if cfg.trial.id is not None else -1
    out = Path(HydraConfig.get().runtime.output_dir)
    started = time.time()
    sweep = out.parent
    if trial >= 0:
        (sweep / f"trial_{trial}.started").touch()
    after = cfg.get("after", {}).get(str(trial), None)
    if after is not None:
        wait_until(lambda: set(after) <= finished_trials(sweep / "journal.jsonl"), float(cfg.get("wait_seconds", 120)))
    what = cfg.behaviour.get(str(trial), None)
    logging.getLogger("stub").info("stub job trial=%s num=%s", trial, HydraConfig.get().job.num)
    if what == "fail":
        raise RuntimeError(f"trial {trial} fails on purpose")
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    # Like a training run, a job "writes" its trial's checkpoint directory while it runs: writer.pid says who.
    writer = Path(cfg.trial.checkpoint_dir) / "writer.pid" if cfg.trial.checkpoint_dir else None
    shared, retry = False, False
    if writer is not None:
        writer.parent.mkdir(parents=True, exist_ok=True)
        retry = (writer.parent / "attempted").exists()
        (writer.parent / "attempted").touch()
        shared = writer.exists() and _alive(int(writer.read_text() or 0))  # another job of this trial still runs
        writer.write_text(str(os.getpid()))
        if cfg.get("ckpt_bytes", 0):  # a checkpoint like a training run's, of a known size
            (writer.parent / "last.ckpt").write_bytes(b"\0" * int(cfg.ckpt_bytes))
    if cfg.get("ignore_stop", False):  # like a job stuck in native code: deaf to the sweeper's stop signal
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        if what == "hang" and not (retry and cfg.get("hang_once", False)):
            wait_until(lambda: (sweep / "optimization_results.yaml").exists(), float(cfg.get("hang_seconds", 300)))
    except Exception as error:  # stopped by the sweeper
        (out / "stopped.json").write_text(json.dumps({"at": time.time(), "error": repr(error), "pid": os.getpid()}))
        if writer is not None:  # this job no longer writes (a pool worker lives on)
            writer.unlink(missing_ok=True)
        raise
    waited = None
    other = cfg.get("wait_for", {}).get(str(trial), None)
    if other is not None:
        waited = wait_until((sweep / f"trial_{other}.started").exists, float(cfg.get("wait_seconds", 120)))
    sleeps = list(cfg.sleep) if cfg.sleep else [0.0]
    time.sleep(float(sleeps[trial % len(sleeps)]) if trial >= 0 else 0.0)
    value = float("nan") if what == "diverge" else (cfg.x - 0.3) ** 2 + (0.1 if cfg.act == "tanh" else 0.0)
    seen = OmegaConf.to_container(cfg, resolve=True)  # the config as the job received it, for tests to check
    times = {"start": started, "end": time.time(), "pid": os.getpid(), "waited": waited, "trial": trial,
             "config": seen, "shared_checkpoint": shared, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    (out / "times.json").write_text(json.dumps(times))
    return value


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (killed, not yet reaped by its parent) no longer writes anything
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return True


if __name__ == "__main__":
    main()
