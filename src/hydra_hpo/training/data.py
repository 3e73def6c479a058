"""In-memory Lightning datamodules: the whole dataset lives in tensors, batches are slices of them.

Small datasets make per-sample ``Dataset.__getitem__`` + collation the dominant cost of a training step, so
both datamodules keep their split tensors in a process-wide cache (trials that run in the same process do not
reload) and serve batches by indexing a shuffled permutation. The shuffle order is a pure function of
``(seed, epoch)``, with the epoch taken from the trainer's epoch progress (restored from checkpoints): a trial
resumed from a checkpoint at epoch k sees the same batches as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from hydra_hpo.errors import DatasetMissing

# (dataset name, load arguments..., split arguments...) -> (x_train, y_train, x_val, y_val)
_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def clear_cache() -> None:
    """Forget every cached dataset (tests; freeing memory)."""
    _CACHE.clear()


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffle order of ``n`` samples in ``epoch``: the same for the same ``(seed, epoch)``, on any run."""
    # SeedSequence mixes both numbers well; a private generator leaves the global torch RNG alone.
    state = np.random.SeedSequence([int(seed) % 2**63, int(epoch)]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=generator)


class TensorLoader:
    """Iterable of ``(x, y)`` batches sliced from in-memory tensors; ``len()`` is the number of batches.

    With ``shuffle``, epoch ``e`` visits the samples in ``epoch_permutation(n, seed, e)``. The epoch comes from
    ``epoch_fn`` when given (the trainer's epoch), else from a counter advanced by each ``iter()``.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch_fn: Callable[[], int] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        if len(x) != len(y):
            raise ValueError(f"inputs and targets differ in length: {len(x)} != {len(y)}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch_fn = epoch_fn
        self._epochs_started = 0

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch_fn() if self.epoch_fn is not None else self._epochs_started
        self._epochs_started += 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y, size = self.x, self.y, self.batch_size
        if not self.shuffle:
            for start in range(0, len(x), size):
                yield x[start : start + size], y[start : start + size]
            return
        # One gather per epoch, then every batch is a view: cheaper per step than gathering 16 rows each time.
        order = epoch_permutation(len(x), self.seed, epoch)
        x, y = x[order], y[order]
        for start in range(0, len(x), size):
            yield x[start : start + size], y[start : start + size]


class InMemoryDataModule(L.LightningDataModule):
    """Shared parts: cached split tensors, sliced loaders, the trainer-driven shuffle epoch.

    Subclasses implement ``_cache_key()`` and ``_load_split()``.
    """

    def __init__(self, batch_size: int, seed: int = 0, eval_batch_size: int = 1024) -> None:
        super().__init__()
        if int(batch_size) < 1:
            raise ValueError(f"data.batch_size must be a positive integer, got {batch_size!r}")
        if int(eval_batch_size) < 1:
            raise ValueError(f"data.eval_batch_size must be a positive integer, got {eval_batch_size!r}")
        self.batch_size = int(batch_size)
        # Validation batches only change speed, never the (sample-weighted) validation error.
        self.eval_batch_size = int(eval_batch_size)
        self.seed = int(seed)
        self.x_train = self.y_train = self.x_val = self.y_val = None

    def _cache_key(self) -> tuple:
        raise NotImplementedError

    def _load_split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.x_train is not None:
            return
        key = self._cache_key()
        if key not in _CACHE:
            _CACHE[key] = self._load_split()
        self.x_train, self.y_train, self.x_val, self.y_val = _CACHE[key]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample, ``(channels, height, width)``."""
        self.setup()
        return tuple(self.x_train.shape[1:])

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        # Batches usually are on the device already (CPU training): skip Lightning's generic collection walk.
        if all(t.device == device for t in batch):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _current_epoch(self) -> int:
        # Lightning creates (and prefetches from) the first epoch's iterator before the epoch starts. Resumed from
        # a checkpoint saved at the end of epoch k, trainer.current_epoch still reads k there while the epoch that
        # runs is k + 1; the epoch loop's "processed" count names the epoch about to run in both cases.
        trainer = self.trainer
        progress = getattr(getattr(getattr(trainer, "fit_loop", None), "epoch_progress", None), "current", None)
        processed = getattr(progress, "processed", None)
        return processed if isinstance(processed, int) else trainer.current_epoch

    def train_dataloader(self) -> TensorLoader:
        self.setup()
        epoch_fn = self._current_epoch if self.trainer is not None else None
        return TensorLoader(self.x_train, self.y_train, self.batch_size, shuffle=True, seed=self.seed, epoch_fn=epoch_fn)

    def val_dataloader(self) -> TensorLoader:
        self.setup()
        return TensorLoader(self.x_val, self.y_val, self.eval_batch_size)


def _split(
    x: torch.Tensor, y: torch.Tensor, n_val: int, split_seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(split_seed)))
    val, train = order[:n_val], order[n_val:]
    return x[train].contiguous(), y[train].contiguous(), x[val].contiguous(), y[val].contiguous()


def _resize(x: torch.Tensor, size: int | tuple[int, int] | list[int] | None) -> torch.Tensor:
    if size is None:
        return x
    size = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def load_digits_tensors(image_size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled digits (1797 images, no download): ``x`` (N,1,S,S) in [0,1], ``y`` int64."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(digits.target, dtype=torch.int64)
    return _resize(x, image_size).clamp_(0.0, 1.0), y


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's 8x8 digits with a fixed seeded validation split; works offline.

    ``image_size`` upsamples the images once at load (bilinear), e.g. 28 for LeNet, whose two 5x5 convolutions
    and poolings need more than 8x8 pixels. ``split_seed`` fixes the split independently of the trial ``seed``,
    which only drives the shuffle order.
    """

    def __init__(
        self,
        batch_size: int = 16,
        val_fraction: float = 0.2,
        split_seed: int = 0,
        image_size: int = 8,
        seed: int = 0,
        eval_batch_size: int = 1024,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, eval_batch_size=eval_batch_size)
        if not 0.0 < float(val_fraction) < 1.0:
            raise ValueError(f"data.val_fraction must lie in (0, 1), got {val_fraction!r}")
        if int(image_size) < 1:
            raise ValueError(f"data.image_size must be a positive integer, got {image_size!r}")
        self.val_fraction = float(val_fraction)
        self.split_seed = int(split_seed)
        self.image_size = int(image_size)

    def _cache_key(self) -> tuple:
        return ("digits", self.image_size, self.val_fraction, self.split_seed)

    def _load_split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = load_digits_tensors(self.image_size)
        n_val = max(1, round(self.val_fraction * len(x)))
        return _split(x, y, n_val, self.split_seed)


def _absolute(root: str | Path) -> Path:
    # Relative roots mean the directory the user launched from, also inside Hydra jobs that changed directory.
    from hydra.core.hydra_config import HydraConfig

    path = Path(root).expanduser()
    if not path.is_absolute() and HydraConfig.initialized():
        path = Path(HydraConfig.get().runtime.cwd) / path
    return path.resolve()


def load_fashion_mnist_tensors(
    root: str | Path, download: bool = True, resize: int | tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's 60000 training images as ``x`` (N,1,H,W) in [0,1] and ``y`` int64; never the test set."""
    from torchvision.datasets import FashionMNIST

    root = Path(root)
    try:
        dataset = FashionMNIST(str(root), train=True, download=download)
    except Exception as error:  # torchvision raises RuntimeError or URLError, depending on what failed
        how = "data.download=False" if not download else f"the download failed ({type(error).__name__}: {error})"
        raise DatasetMissing(
            f"Fashion-MNIST is not under data.root={str(root)!r} (expected {root / 'FashionMNIST' / 'raw'}/"
            f"train-images-idx3-ubyte and friends) and {how}. Download it once with network access "
            f"(data.download=true), point data.root at a copy, or use the bundled offline dataset: data=digits"
        ) from error
    x = dataset.data.to(torch.float32).unsqueeze(1) / 255.0
    return _resize(x, resize), dataset.targets.to(torch.int64)


class FashionMNISTDataModule(InMemoryDataModule):
    """Fashion-MNIST's training set, split into training and a held-out validation set of ``val_size``.

    The official test set is never read: tuning on it would leak. A relative ``root`` is taken relative to the
    directory the run was launched from. ``resize`` (int or (h, w)) rescales once at load, bilinearly.
    """

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 16,
        download: bool = True,
        val_size: int = 10000,
        split_seed: int = 0,
        resize: int | tuple[int, int] | None = None,
        seed: int = 0,
        eval_batch_size: int = 1024,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, eval_batch_size=eval_batch_size)
        if int(val_size) < 1:
            raise ValueError(f"data.val_size must be a positive integer, got {val_size!r}")
        self.root = _absolute(root)
        self.download = bool(download)
        self.val_size = int(val_size)
        self.split_seed = int(split_seed)
        self.resize = None if resize is None else (tuple(resize) if not isinstance(resize, int) else resize)

    def _cache_key(self) -> tuple:
        return ("fashion_mnist", str(self.root), self.resize, self.val_size, self.split_seed)

    def _load_split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = load_fashion_mnist_tensors(self.root, download=self.download, resize=self.resize)
        if self.val_size >= len(x):
            raise ValueError(f"data.val_size={self.val_size} leaves no training data: the set has {len(x)} images")
        return _split(x, y, self.val_size, self.split_seed)
