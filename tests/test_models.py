"""The d2l classifiers: shapes, argument errors, the sample-weighted validation error, one epoch of training."""

import lightning as L
import pytest
import torch

from hydra_hpo.training.data import DigitsDataModule, TensorLoader
from hydra_hpo.training.models import MLP, LeNet, SoftmaxRegression


def trainer(**kwargs):
    options = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0, max_epochs=1)
    return L.Trainer(**{**options, **kwargs})


@pytest.mark.parametrize(
    "model, shape",
    [
        (SoftmaxRegression(), (4, 1, 8, 8)),
        (MLP(num_layers=3, num_units=32, activation="tanh"), (4, 1, 8, 8)),
        (MLP(num_layers=0), (4, 1, 8, 8)),
        (LeNet(), (4, 1, 28, 28)),
    ],
)
def test_output_shape(model, shape):
    assert model(torch.rand(shape)).shape == (4, 10)


def test_mlp_layers():
    model = MLP(num_layers=2, num_units=16)
    model(torch.rand(2, 1, 8, 8))
    linear = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 16), (16, 16), (16, 10)]


def test_unknown_activation_names_key_and_value():
    with pytest.raises(ValueError, match=r"model\.activation='swish'"):
        MLP(activation="swish")


def test_lenet_needs_bigger_images_than_digits():
    with pytest.raises(ValueError, match="image_size=28"):
        LeNet().materialize(torch.zeros(2, 1, 8, 8))


def test_lenet_xavier_init_after_materialize():
    model = LeNet()
    model.materialize(torch.zeros(2, 1, 28, 28))
    fc = [m for m in model.net if isinstance(m, torch.nn.Linear)][0]  # 400 -> 120
    bound = (6 / (400 + 120)) ** 0.5  # xavier-uniform; PyTorch's default bound would be 1/sqrt(400) = 0.05
    assert fc.weight.abs().max() <= bound and fc.weight.abs().max() > 0.05


class ConstantPrediction(SoftmaxRegression):
    """Always predicts class 0."""

    def __init__(self):
        super().__init__(lr=0.1)
        self.materialize(torch.zeros(1, 1, 2, 2))
        with torch.no_grad():
            linear = self.net[1]
            linear.weight.zero_()
            linear.bias.zero_()
            linear.bias[0] = 1.0


def test_validation_error_is_weighted_by_samples_not_batches():
    # batch 1: 10 samples, 5 of class 0 (accuracy 0.5); batch 2: 3 samples, all class 0 (accuracy 1.0).
    y = torch.tensor([0, 1] * 5 + [0, 0, 0])
    x = torch.zeros(13, 1, 2, 2)
    results = trainer().validate(ConstantPrediction(), dataloaders=TensorLoader(x, y, batch_size=10), verbose=False)
    error = results[0]["validation_error"]
    assert error == pytest.approx(5 / 13)
    assert error != pytest.approx(1 - (0.5 + 1.0) / 2)


def test_one_epoch_logs_per_epoch_metrics_and_counts_steps():
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=64)
    model = SoftmaxRegression(lr=0.5)
    fit = trainer(max_epochs=3)
    fit.fit(model, datamodule=dm)
    metrics = fit.callback_metrics
    assert {"train_loss", "validation_error", "validation_loss"} <= set(metrics)
    assert fit.global_step == 3 * len(dm.train_dataloader())
    assert float(metrics["validation_error"]) < 0.2  # learns: chance level is 0.9
    assert float(metrics["train_loss"]) < 1.0
    with torch.no_grad():
        error = 1 - (model(dm.x_val).argmax(1) == dm.y_val).double().mean()
    assert float(metrics["validation_error"]) == pytest.approx(float(error))


def test_lenet_trains_on_upsampled_digits():
    torch.manual_seed(0)
    fit = trainer(max_epochs=1, limit_train_batches=5)
    fit.fit(LeNet(lr=0.1), datamodule=DigitsDataModule(batch_size=32, image_size=28))
    assert 0.0 <= float(fit.callback_metrics["validation_error"]) <= 1.0


def test_non_positive_learning_rate_names_the_key():
    with pytest.raises(ValueError, match="model.lr"):
        SoftmaxRegression(lr=0.0)


def test_lazy_layers_materialize_where_the_module_is_while_lightning_fakes_the_device():
    # In the setup hook Lightning already reports the training device (self.device == cuda:0 on a GPU) but moves
    # the module only afterwards: the lazy layers must be given their shapes on the device they still are on.
    # "meta" stands in for the GPU here (a CPU layer fed a meta tensor fails as it failed fed a CUDA one).
    from types import SimpleNamespace

    model = LeNet(lr=0.1)
    model._device = torch.device("meta")  # what lightning.pytorch.trainer.call._call_setup_hook does
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(input_shape=(1, 28, 28)))
    model.setup("fit")
    model._trainer = None
    assert all(p.device.type == "cpu" and not isinstance(p, torch.nn.parameter.UninitializedParameter)
               for p in model.parameters())
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
