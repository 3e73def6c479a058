import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def clean_hydra():
    """Hydra's global state cleared before and after a test that runs Hydra in this process."""
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()
