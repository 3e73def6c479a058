import logging
import os
import signal
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

sys.path.insert(0, str(Path(__file__).parent))

# The suite tests CPU behaviour on any machine: a real GPU would change hpo.gpus_per_trial=auto (one per trial, so
# n_workers=2 is refused on a 1-GPU box) and trainer.accelerator=auto. GPU logic is tested with fake devices
# (HYDRA_HPO_FAKE_GPUS, tests/test_devices.py, tests/test_gpus_e2e.py); real GPUs with benchmarks/gpu_check.py.
# Set before torch initializes CUDA; subprocess sweeps inherit it.
os.environ["CUDA_VISIBLE_DEVICES"] = ""

# Ctrl-C tests send SIGINT to a sweep: when the suite runs as a background job (`bash .ci/run &`), SIGINT is
# ignored and every process started from here would inherit that; Python's handler resets to the default in a child.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def script_logging():
    """Benchmark scripts quiet the hydra_hpo logger (their output is a table); tests after one need it back."""
    logger = logging.getLogger("hydra_hpo")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture
def clean_hydra():
    """Hydra's global state cleared before and after a test that runs Hydra in this process."""
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()
