"""Lightning classifiers from d2l.ai: softmax regression, an MLP and LeNet.

They share ``Classifier``: cross-entropy, SGD, the training loss logged once per epoch as ``train_loss``, and
``validation_error`` = 1 - accuracy over the whole validation set: correct predictions and samples are summed
over the epoch, so a smaller last batch weighs less, not equally.

These models are small enough that Lightning's per-step machinery costs more than the arithmetic, so they use
manual optimization and, under 32-bit precision, step the raw optimizer after ``loss.backward()``: callbacks'
``on_before_backward``, ``on_after_backward``, ``on_before_optimizer_step`` and ``on_before_zero_grad`` hooks
do not fire for them (``trainer.global_step`` still counts). Nothing is logged per step. Your own
LightningModules need none of this: the runner works with any module that logs the metric.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class _EpochSums:
    """Per-epoch accumulators, kept off the module so that updating them skips ``nn.Module.__setattr__``."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.sizes: list[int] = []
        self.correct: torch.Tensor | int = 0
        self.loss_sum: torch.Tensor | float = 0.0
        self.count = 0


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
        self._direct_backward = False
        self._step_progress: Any = None
        self._train_sums = _EpochSums()
        self._val_sums = _EpochSums()

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name around every hook call, about 30 times a step; nn.Module.__setattr__
        # (parameter, buffer and submodule bookkeeping) made that ~100 us a step, a fifth of the whole step.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

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
        # Where the layers are now: Lightning fakes self.device (the GPU) in setup and moves the module afterwards.
        device = next(self.parameters()).device
        datamodule = getattr(self.trainer, "datamodule", None)
        shape = getattr(datamodule, "input_shape", None)
        if shape is not None:
            self.materialize(torch.zeros((2, *shape), device=device))
        elif datamodule is not None:
            self.materialize(next(iter(datamodule.train_dataloader()))[0][:2].to(device))
        # else: plain dataloaders; the first forward pass initializes the lazy layers (without init_weights)

    def on_train_start(self) -> None:
        # Under 32-bit precision, step with the raw optimizer and loss.backward(): Lightning's wrappers run four
        # hook dispatches per step (on_before/after_backward, on_before_optimizer_step, on_before_zero_grad) and
        # cost about as much as the whole step of a tiny model. Other precisions need the wrappers: keep them.
        # The step counter (trainer.global_step, max_steps) is advanced here as LightningOptimizer would.
        loop = getattr(self.trainer.fit_loop.epoch_loop, "manual_optimization", None)
        self._step_progress = getattr(loop, "optim_step_progress", None)
        plain = str(self.trainer.precision).startswith("32") and self._step_progress is not None
        self._optimizer = self.optimizers(use_pl_optimizer=not plain)
        self._direct_backward = plain

    def on_train_epoch_start(self) -> None:
        self._train_sums = _EpochSums()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        optimizer = self._optimizer
        loss = F.cross_entropy(self(x), y)
        optimizer.zero_grad(set_to_none=True)
        if self._direct_backward:
            loss.backward()
            optimizer.step()
            self._step_progress.increment_ready()
            self._step_progress.increment_completed()
        else:
            self.manual_backward(loss)
            optimizer.step()
        loss = loss.detach()
        sums = self._train_sums
        sums.losses.append(loss)  # summed once per epoch: no per-step tensor op, no device sync
        sums.sizes.append(len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        sums = self._train_sums
        if sums.losses:
            sizes = torch.tensor(sums.sizes, dtype=torch.float32, device=self.device)
            self.log("train_loss", (torch.stack(sums.losses) * sizes).sum() / sizes.sum())

    def on_validation_epoch_start(self) -> None:
        self._val_sums = _EpochSums()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        sums = self._val_sums
        sums.correct = sums.correct + (logits.argmax(dim=1) == y).sum()
        sums.loss_sum = sums.loss_sum + F.cross_entropy(logits, y, reduction="sum")
        sums.count += len(y)

    def on_validation_epoch_end(self) -> None:
        sums = self._val_sums
        if not sums.count:
            return
        correct = torch.as_tensor(sums.correct, device=self.device)
        self.log("validation_error", 1.0 - correct.double() / sums.count)
        self.log("validation_loss", torch.as_tensor(sums.loss_sum, device=self.device) / sums.count)


# Lightning inspects training_step's signature at every step (for batch_idx); a precomputed one is ~4x cheaper.
Classifier.training_step.__signature__ = inspect.signature(Classifier.training_step)  # type: ignore[attr-defined]


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
    use it on digits with ``data.image_size=28``. ``momentum``, ``weight_decay`` (SGD's) and ``activation``
    are optional extras for tuning; their defaults (0, 0, sigmoid) are d2l's model."""

    def __init__(
        self,
        lr: float = 0.1,
        num_outputs: int = 10,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        activation: str = "sigmoid",
    ) -> None:
        super().__init__(lr=lr)
        if activation not in ACTIVATIONS:
            raise ValueError(f"model.activation={activation!r} is not supported; choose one of {sorted(ACTIVATIONS)}")
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"model.momentum must lie in [0, 1), got {momentum!r}")
        if not float(weight_decay) >= 0.0:
            raise ValueError(f"model.weight_decay must be >= 0, got {weight_decay!r}")
        self.save_hyperparameters()
        # Optional SGD extras for tuning; the defaults (0, 0) are d2l's plain SGD.
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        act = ACTIVATIONS[activation]
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), act(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), act(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), act(),
            nn.LazyLinear(84), act(),
            nn.LazyLinear(num_outputs),
        )  # fmt: skip

    def optimizer_kwargs(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}

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
