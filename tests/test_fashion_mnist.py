"""Fashion-MNIST from tiny IDX files laid out as torchvision expects: held-out validation, no test set, errors."""

import os
import struct

import pytest
import torch
import torchvision

from hydra_hpo.training import data
from hydra_hpo.training.data import FashionMNISTDataModule
from hydra_hpo.training.resultfile import read_result
from test_runner import config

TEST_PIXEL = 77  # every test-set pixel: the test set must never show up


def write_idx(root, n_train=200, n_test=50):
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_train, 28, 28), generator=generator, dtype=torch.uint8)
    images[images == TEST_PIXEL] = 0
    labels = torch.arange(n_train, dtype=torch.uint8) % 10
    for prefix, x, y in [
        ("train", images, labels),
        ("t10k", torch.full((n_test, 28, 28), TEST_PIXEL, dtype=torch.uint8), torch.full((n_test,), 9, dtype=torch.uint8)),
    ]:
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, len(x), 28, 28) + x.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, len(y)) + y.numpy().tobytes())
    return images, labels


@pytest.fixture(autouse=True)
def fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


def test_training_images_split_into_train_and_validation(tmp_path):
    images, labels = write_idx(tmp_path)
    dm = FashionMNISTDataModule(root=str(tmp_path), download=False, val_size=50, batch_size=16)
    dm.setup("fit")
    assert dm.x_train.shape == (150, 1, 28, 28) and dm.x_val.shape == (50, 1, 28, 28)
    everything = torch.cat([dm.x_train, dm.x_val])
    assert not (everything == TEST_PIXEL / 255).flatten(1).all(1).any()
    assert torch.equal(torch.sort((everything * 255).round().to(torch.uint8).flatten(1).sum(1)).values,
                       torch.sort(images.flatten(1).sum(1)).values)  # exactly the 200 training images
    assert len(dm.train_dataloader()) == 10


def test_resize_and_relative_root(tmp_path, monkeypatch):
    write_idx(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    dm = FashionMNISTDataModule(root="data", download=False, val_size=50, resize=32)
    assert dm.root == (tmp_path / "data").resolve()
    assert dm.input_shape == (1, 32, 32)


def test_missing_data_names_root_and_suggests_digits(tmp_path):
    dm = FashionMNISTDataModule(root=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(FileNotFoundError, match=r"nowhere.*download=False.*data=digits"):
        dm.setup()


def test_failed_download_names_root_and_suggests_digits(tmp_path, monkeypatch):
    def offline(self):
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    dm = FashionMNISTDataModule(root=str(tmp_path), download=True)
    with pytest.raises(FileNotFoundError, match=r"download failed \(RuntimeError: no network\).*data=digits"):
        dm.setup()


def test_one_epoch_through_the_runner(tmp_path, monkeypatch):
    from hydra_hpo.training.runner import train

    write_idx(tmp_path / "fm")
    monkeypatch.chdir(tmp_path)
    cfg = config("data=fashion_mnist", f"data.root={tmp_path / 'fm'}", "data.download=false", "data.val_size=50")
    value = train(cfg)
    result = read_result(tmp_path)
    assert result["status"] == "completed" and result["value"] == value and len(result["curve"]) == 1
    assert sorted(os.listdir(tmp_path)) == ["fm", "result.json"]  # nothing else litters the working directory
