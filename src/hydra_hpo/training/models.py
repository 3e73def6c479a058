"""Lightning classifiers from d2l.ai: softmax regression, an MLP and LeNet.

They share ``Classifier``: cross-entropy, SGD, manual optimization (it skips the closure machinery of automatic
optimization, which costs more than a whole step of these tiny models), the training loss logged once per
epoch as ``train_loss``, and ``validation_error`` = 1 - accuracy over the whole validation set: correct
predictions and samples are summed over the epoch, so a smaller last batch weighs less, not equally.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class Classifier(L.LightningModule):
    """Base class: subclasses set ``self.net`` and may override ``optimizer_kwargs`` and ``init_weights``."""

    net: nn.Module

    def __init__(self, lr: float) -> None:
        super().__init__()
        if not float(lr) > 0.0:
            raise ValueError(f"model.lr must be positive, got {lr!r}")
        self.lr = float(lr)
        self.automatic_optimization = False
        self._optimizer: Any = None
        self._train_loss_sum = self._train_count = None
        self._val_correct = self._val_count = self._val_loss_sum = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def optimizer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``torch.optim.SGD`` besides the parameters."""
        return {"lr": self.lr}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), **self.optimizer_kwargs())

    def init_weights(self) -> None:
        """Called once the lazy layers know their shapes (before a checkpoint, if any, is loaded)."""

    def materialize(self, example: torch.Tensor) -> None:
        """Give the lazy layers their shapes from an example batch, then apply ``init_weights``."""
        with torch.no_grad():
            self.net(example)
        self.init_weights()

    def setup(self, stage: str) -> None:
        # Lazy layers must exist before the optimizer is built and a checkpoint is restored.
        if not any(isinstance(m, LazyModuleMixin) and m.has_uninitialized_params() for m in self.modules()):
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        shape = getattr(datamodule, "input_shape", None)
        if shape is not None:
            example = torch.zeros((2, *shape), device=self.device)
        else:
            example = next(iter(datamodule.train_dataloader()))[0][:2].to(self.device)
        self.materialize(example)

    def on_train_start(self) -> None:
        # The raw optimizer: LightningOptimizer.step adds precision-plugin and profiler hooks to every step. Under
        # a precision plugin other than 32-bit those hooks are needed, so keep the wrapper there.
        precision = str(self.trainer.precision)
        self._optimizer = self.optimizers(use_pl_optimizer=not precision.startswith("32"))

    def on_train_epoch_start(self) -> None:
        self._train_loss_sum = torch.zeros((), device=self.device)
        self._train_count = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        optimizer = self._optimizer
        loss = F.cross_entropy(self(x), y)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        loss = loss.detach()
        self._train_loss_sum += loss * len(y)
        self._train_count += len(y)
        return loss

    def on_train_epoch_end(self) -> None:
        if self._train_count:
            self.log("train_loss", self._train_loss_sum / self._train_count)

    def on_validation_epoch_start(self) -> None:
        self._val_correct = torch.zeros((), dtype=torch.int64, device=self.device)
        self._val_loss_sum = torch.zeros((), device=self.device)
        self._val_count = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self._val_correct += (logits.argmax(dim=1) == y).sum()
        self._val_loss_sum += F.cross_entropy(logits, y, reduction="sum")
        self._val_count += len(y)

    def on_validation_epoch_end(self) -> None:
        if not self._val_count:
            return
        self.log("validation_error", 1.0 - self._val_correct.double() / self._val_count)
        self.log("validation_loss", self._val_loss_sum / self._val_count)


class SoftmaxRegression(Classifier):
    """d2l's softmax regression: flatten, one linear layer, cross-entropy, SGD."""

    def __init__(self, num_outputs: int = 10, lr: float = 0.1) -> None:
        super().__init__(lr=lr)
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_outputs))


class MLP(Classifier):
    """A multilayer perceptron: ``num_layers`` hidden layers of ``num_units``, SGD with momentum."""

    def __init__(
        self,
        num_layers: int = 2,
        num_units: int = 256,
        activation: str = "relu",
        lr: float = 0.01,
        momentum: float = 0.9,
        num_outputs: int = 10,
    ) -> None:
        super().__init__(lr=lr)
        if activation not in ACTIVATIONS:
            raise ValueError(f"model.activation={activation!r} is not supported; choose one of {sorted(ACTIVATIONS)}")
        if int(num_layers) < 0 or int(num_units) < 1:
            raise ValueError(f"model.num_layers={num_layers!r} and model.num_units={num_units!r} must be >= 0 and >= 1")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"model.momentum must lie in [0, 1), got {momentum!r}")
        self.save_hyperparameters()
        self.momentum = float(momentum)
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(int(num_layers)):
            layers += [nn.LazyLinear(int(num_units)), ACTIVATIONS[activation]()]
        layers.append(nn.LazyLinear(num_outputs))
        self.net = nn.Sequential(*layers)

    def optimizer_kwargs(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum}


class LeNet(Classifier):
    """d2l's LeNet-5 (sigmoid, average pooling, Xavier-uniform weights). Needs inputs of at least 12x12 pixels:
    use it on digits with ``data.image_size=28``."""

    def __init__(self, lr: float = 0.1, num_outputs: int = 10) -> None:
        super().__init__(lr=lr)
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_outputs),
        )  # fmt: skip

    def materialize(self, example: torch.Tensor) -> None:
        if min(example.shape[-2:]) < 12:
            raise ValueError(
                f"LeNet needs images of at least 12x12 pixels, got {tuple(example.shape[-2:])}; "
                "with data=digits set data.image_size=28"
            )
        super().materialize(example)

    def init_weights(self) -> None:
        for module in self.net:
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                nn.init.xavier_uniform_(module.weight)
