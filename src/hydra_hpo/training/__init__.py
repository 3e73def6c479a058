"""Lightning models, in-memory datamodules and the trial runner that ``train.py`` calls.

Heavy imports (torch, Lightning) happen when a name is first used, so ``import hydra_hpo.training`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Classifier": "models",
    "SoftmaxRegression": "models",
    "MLP": "models",
    "LeNet": "models",
    "DigitsDataModule": "data",
    "FashionMNISTDataModule": "data",
    "InMemoryDataModule": "data",
    "TensorLoader": "data",
    "train": "runner",
    "read_result": "resultfile",
    "write_result": "resultfile",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
