"""In-memory datamodules: digits split and scaling, the process cache, sliced batches, (seed, epoch) order."""

from types import SimpleNamespace

import pytest
import torch

from hydra_hpo.training import data
from hydra_hpo.training.data import DigitsDataModule, TensorLoader, epoch_permutation


@pytest.fixture(autouse=True)
def fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


def test_digits_shapes_scaling_and_split_sizes():
    dm = DigitsDataModule(batch_size=32, val_fraction=0.2)
    dm.setup("fit")
    assert dm.x_train.shape[1:] == (1, 8, 8) and dm.input_shape == (1, 8, 8)
    assert len(dm.x_train) + len(dm.x_val) == 1797
    assert len(dm.x_val) == round(0.2 * 1797)
    assert dm.x_train.dtype == torch.float32 and dm.y_train.dtype == torch.int64
    assert 0.0 <= float(dm.x_train.min()) and float(dm.x_train.max()) == 1.0
    assert set(dm.y_train.tolist()) == set(range(10))


def test_digits_upsampled_once_for_lenet():
    dm = DigitsDataModule(image_size=28)
    dm.setup()
    assert dm.input_shape == (1, 28, 28)
    assert 0.0 <= float(dm.x_val.min()) and float(dm.x_val.max()) <= 1.0


def test_split_depends_on_split_seed_only():
    a = DigitsDataModule(seed=1, split_seed=0)
    b = DigitsDataModule(seed=2, split_seed=0)
    data.clear_cache()
    c = DigitsDataModule(seed=1, split_seed=5)
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.y_val, b.y_val) and torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.y_val, c.y_val)


def test_dataset_is_cached_for_the_process(monkeypatch):
    loads = []
    real = data.load_digits_tensors

    def counting(image_size=8):
        loads.append(image_size)
        return real(image_size)

    monkeypatch.setattr(data, "load_digits_tensors", counting)
    first = DigitsDataModule(batch_size=8)
    first.setup()
    second = DigitsDataModule(batch_size=64, seed=3)  # batch size and shuffle seed do not change the data
    second.setup()
    assert loads == [8]
    assert second.x_train is first.x_train
    DigitsDataModule(image_size=16).setup()
    assert loads == [8, 16]


def test_batches_are_slices_with_a_smaller_last_batch():
    x = torch.arange(10, dtype=torch.float32).reshape(10, 1)
    y = torch.arange(10)
    loader = TensorLoader(x, y, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 == len(batches)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[1] for b in batches]), y)
    assert batches[0][0].data_ptr() == x.data_ptr()  # a view, not a collated copy


def test_shuffle_order_is_a_function_of_seed_and_epoch():
    n = 50
    x, y = torch.randn(n, 3), torch.arange(n)
    epochs = {"now": 0}
    loader = TensorLoader(x, y, batch_size=7, shuffle=True, seed=11, epoch_fn=lambda: epochs["now"])
    order0 = torch.cat([b[1] for b in loader])
    assert torch.equal(torch.sort(order0).values, y)  # every sample once
    assert torch.equal(order0, epoch_permutation(n, 11, 0))
    assert torch.equal(torch.cat([b[1] for b in loader]), order0)  # same epoch, same order
    epochs["now"] = 1
    order1 = torch.cat([b[1] for b in loader])
    assert not torch.equal(order1, order0)
    other_seed = TensorLoader(x, y, batch_size=7, shuffle=True, seed=12, epoch_fn=lambda: 1)
    assert not torch.equal(torch.cat([b[1] for b in other_seed]), order1)
    # inputs stay paired with their targets
    first_x, first_y = next(iter(loader))
    assert torch.equal(first_x, x[first_y])


def test_without_epoch_source_each_iteration_is_the_next_epoch():
    x, y = torch.randn(20, 2), torch.arange(20)
    loader = TensorLoader(x, y, batch_size=20, shuffle=True, seed=4)
    assert torch.equal(next(iter(loader))[1], epoch_permutation(20, 4, 0))
    assert torch.equal(next(iter(loader))[1], epoch_permutation(20, 4, 1))


def test_train_loader_follows_the_trainer_epoch_and_leaves_global_rng_alone():
    dm = DigitsDataModule(batch_size=16, seed=7)
    dm.trainer = SimpleNamespace(current_epoch=3)  # as after resuming from a checkpoint at epoch 3
    state = torch.random.get_rng_state()
    targets = torch.cat([b[1] for b in dm.train_dataloader()])
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(targets, dm.y_train[epoch_permutation(len(dm.y_train), 7, 3)])
    assert len(dm.train_dataloader()) == -(-len(dm.y_train) // 16)
    assert torch.equal(torch.cat([b[1] for b in dm.val_dataloader()]), dm.y_val)  # validation unshuffled


@pytest.mark.parametrize("kwargs, key", [({"batch_size": 0}, "data.batch_size"), ({"val_fraction": 1.0}, "data.val_fraction")])
def test_bad_arguments_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        DigitsDataModule(**kwargs)
