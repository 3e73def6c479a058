"""A stub task for sweeper tests: no training, a known loss, and failures on request.

``behaviour`` maps a trial id to what that trial does: "fail" raises, "diverge" returns NaN, "kill"
kills its own process with SIGKILL, "hang" waits until the sweep has written its summary (or is
interrupted; at most ``hang_seconds``), so it outlives any timeout on a machine of any speed. ``sleep``
makes the job take that many seconds (a list: per trial id, cycled). ``wait_for`` maps a trial id to
another trial id: the job waits until that trial's job has started (at most ``wait_seconds``), so tests
observe overlapping jobs from progress, not from timing. ``after`` maps a trial id to a list of trial
ids: the job does nothing (not even its ``behaviour``) until the sweep has journaled a finished segment
of each (at most ``wait_seconds``). Every job marks its start in the sweep
directory (``trial_<id>.started``) and writes ``times.json`` (start, end, pid, whether a wait succeeded).
"""

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


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
    if what == "fail":
        raise RuntimeError(f"trial {trial} fails on purpose")
    if what == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if what == "hang":
        wait_until(lambda: (sweep / "optimization_results.yaml").exists(), float(cfg.get("hang_seconds", 300)))
    waited = None
    other = cfg.get("wait_for", {}).get(str(trial), None)
    if other is not None:
        waited = wait_until((sweep / f"trial_{other}.started").exists, float(cfg.get("wait_seconds", 120)))
    sleeps = list(cfg.sleep) if cfg.sleep else [0.0]
    time.sleep(float(sleeps[trial % len(sleeps)]) if trial >= 0 else 0.0)
    value = float("nan") if what == "diverge" else (cfg.x - 0.3) ** 2 + (0.1 if cfg.act == "tanh" else 0.0)
    times = {"start": started, "end": time.time(), "pid": os.getpid(), "waited": waited}
    (out / "times.json").write_text(json.dumps(times))
    return value


if __name__ == "__main__":
    main()
