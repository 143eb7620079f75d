"""A classifier read as an energy (JEM, Grathwohl et al. 2019).

:class:`ClassifierEnergy` wraps a network ``f: x -> logits`` of shape
``(N, n_classes)`` and reads it twice: ``p(y | x) = softmax(f(x))[y]`` and

.. math:: E(x) = -\\log \\sum_y \\exp f(x)[y], \\qquad E(x, y) = -f(x)[y],

so ``p(x) = exp(-E(x)) / Z`` and ``p(x, y) = exp(-E(x, y)) / Z`` with the same
``Z``. Any backbone works: a module that already outputs logits, or one of the
scalar energies of this package used as a trunk (:class:`MLPEnergy`,
:class:`ConvEnergy`, :class:`ResNetEnergy`: their last linear layer is replaced
by one to ``n_classes`` outputs). :func:`make_mlp` builds the logits MLP of the
estimators, initialized from an explicit generator.
"""

from __future__ import annotations

__all__ = ["ClassifierEnergy", "make_mlp"]

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import Energy
from .conv import ConvEnergy, ResNetEnergy
from .mlp import ACTIVATIONS, MLPEnergy


def make_mlp(
    sizes: Sequence[int],
    activation: str,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """An MLP ``sizes[0] -> ... -> sizes[-1]`` with PyTorch's default
    initialization (uniform in ``+-1/sqrt(fan_in)``) drawn from ``generator``.

    Example:
        >>> net = make_mlp([4, 8, 3], "silu", torch.Generator().manual_seed(0))
        >>> tuple(net(torch.randn(5, 4)).shape)
        (5, 3)
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b, dtype=dtype)
        bound = 1.0 / math.sqrt(a)
        with torch.no_grad():
            w = torch.rand(lin.weight.shape, generator=generator, dtype=dtype)
            lin.weight.copy_((2 * w - 1) * bound)
            c = torch.rand(lin.bias.shape, generator=generator, dtype=dtype)
            lin.bias.copy_((2 * c - 1) * bound)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _retarget(linear: nn.Module, n_classes: int) -> nn.Linear:
    """A fresh linear layer with the input width of ``linear`` and ``n_classes`` outputs."""
    inner = getattr(linear, "module", linear)  # spectral norm keeps the layer as is
    if not isinstance(inner, nn.Linear):
        raise ValueError(f"the trunk's last layer must be nn.Linear, got {type(inner).__name__}")
    return nn.Linear(inner.in_features, n_classes)


def _trunk(backbone: nn.Module, n_classes: int) -> tuple[nn.Module, tuple[int, ...] | None]:
    """The logits network made from ``backbone`` and its event shape when it has one."""
    if isinstance(backbone, ConvEnergy):
        if backbone.base_scale is not None:
            raise ValueError("a ConvEnergy trunk must have base_scale=None")
        layers = list(backbone.net)
        return nn.Sequential(*layers[:-1], _retarget(layers[-1], n_classes)), backbone.event_shape
    if isinstance(backbone, ResNetEnergy):
        if backbone.base_scale is not None:
            raise ValueError("a ResNetEnergy trunk must have base_scale=None")
        head = _retarget(backbone.head, n_classes)
        return _ResNetLogits(backbone.features, head), backbone.event_shape
    if isinstance(backbone, MLPEnergy):
        if backbone.fourier_features or backbone.base_scale is not None:
            raise ValueError("an MLPEnergy trunk must have no fourier_features and no base_scale")
        layers = list(backbone.net)
        head = _retarget(layers[-1], n_classes)
        return nn.Sequential(nn.Flatten(), *layers[:-1], head), backbone.event_shape
    shape = getattr(backbone, "event_shape", None)
    return backbone, tuple(shape) if shape is not None else None


class _ResNetLogits(nn.Module):
    def __init__(self, features: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).sum((2, 3)))  # type: ignore[no-any-return]


class ClassifierEnergy(Energy):
    """Energy ``E(x) = -logsumexp_y f(x)[y]`` of a classifier ``f`` with ``n_classes`` logits.

    Arguments:
        backbone: The logits network ``(N, *event_shape) -> (N, n_classes)``,
            or a :class:`MLPEnergy`, :class:`ConvEnergy` or
            :class:`ResNetEnergy` used as a trunk (its last linear layer is
            replaced by a fresh one to ``n_classes`` outputs; no
            ``base_scale``).
        n_classes: Number of classes (``>= 2``).
        event_shape: Shape of one input; taken from an energy backbone when
            omitted, required otherwise.

    Example:
        >>> net = make_mlp([4, 16, 3], "silu", torch.Generator().manual_seed(0))
        >>> energy = ClassifierEnergy(net, 3, event_shape=(4,))
        >>> x = torch.randn(5, 4)
        >>> tuple(energy(x).shape), tuple(energy.logits(x).shape)
        ((5,), (5, 3))
        >>> bool((energy(x) <= energy.joint(x, torch.zeros(5, dtype=torch.long))).all())
        True
        >>> trunk = ConvEnergy((1, 12, 12), channels=(4, 8))
        >>> tuple(ClassifierEnergy(trunk, 10).logits(torch.randn(2, 1, 12, 12)).shape)
        (2, 10)
    """

    def __init__(
        self,
        backbone: nn.Module,
        n_classes: int,
        *,
        event_shape: tuple[int, ...] | Sequence[int] | None = None,
    ) -> None:
        if int(n_classes) < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        net, own_shape = _trunk(backbone, int(n_classes))
        shape = tuple(event_shape) if event_shape is not None else own_shape
        if shape is None:
            raise ValueError("event_shape is required for a backbone that is not an Energy")
        super().__init__(shape)
        self.n_classes = int(n_classes)
        self.net = net

    def logits(self, x: Tensor) -> Tensor:
        """Logits ``f(x)``, shape ``(N, n_classes)``, of inputs ``(N, *event_shape)``."""
        out: Tensor = self.net(x)
        if out.dim() != 2 or out.shape[1] != self.n_classes:
            raise ValueError(
                f"the backbone must output (N, {self.n_classes}) logits, got {tuple(out.shape)}"
            )
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``E(x) = -logsumexp_y f(x)[y]``, shape ``(N,)``."""
        return -torch.logsumexp(self.logits(x), 1)

    def joint(self, x: Tensor, y: Tensor) -> Tensor:
        """``E(x, y) = -f(x)[y]``, shape ``(N,)``, for class indices ``y`` of shape ``(N,)``."""
        return -self.logits(x).gather(1, y.long()[:, None])[:, 0]

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, event_shape={self.event_shape}"
