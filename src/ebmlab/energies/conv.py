"""Convolutional energies for images ``(N, C, H, W) -> (N,)``.

:class:`ConvEnergy` is the small strided CNN of the MNIST energies in IGEBM
(Du & Mordatch 2019) and the UvA deep-learning tutorial on EBMs (Lippe 2022):
strided convolutions with Swish (SiLU), then a small MLP head.
:class:`ResNetEnergy` stacks residual blocks with average-pool downsampling and
a global sum pool. Both take any image size that the strides allow (each
stride-2 layer halves the side, rounding up), both accept spectral
normalization, and both follow the sign convention: low energy = probable.

References:
    Du, Y. & Mordatch, I. (2019). Implicit generation and modeling with
    energy-based models. NeurIPS. https://arxiv.org/abs/1903.08689
    Lippe, P. (2022). UvA deep learning tutorials, tutorial 8: deep energy-based
    generative models. https://uvadlc-notebooks.readthedocs.io
"""

from __future__ import annotations

__all__ = ["ConvEnergy", "ResNetEnergy"]

from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .base import Energy
from .mlp import ACTIVATIONS


def _image_shape(event_shape: tuple[int, ...] | Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in event_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"event_shape must be (C, H, W) with positive sizes, got {shape}")
    return shape  # type: ignore[return-value]


def _widths(channels: Sequence[int], name: str = "channels") -> tuple[int, ...]:
    widths = tuple(int(c) for c in channels)
    if not widths or min(widths) < 1:
        raise ValueError(f"{name} must be a non-empty list of positive widths, got {channels}")
    return widths


def _activation(name: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def _with_base(e: Tensor, x: Tensor, base_scale: float | None) -> Tensor:
    if base_scale is None:
        return e
    return e + x.reshape(x.shape[0], -1).pow(2).sum(-1) / (2.0 * base_scale**2)


class _ImageEnergy(Energy):
    """What both image energies share: the ``(C, H, W)`` shape, the widths, the
    activation, spectral normalization and the Gaussian reference term."""

    def __init__(
        self,
        event_shape: tuple[int, ...] | Sequence[int],
        channels: Sequence[int],
        activation: str,
        spectral_norm: bool,
        base_scale: float | None,
    ) -> None:
        shape = _image_shape(event_shape)
        super().__init__(shape)
        if base_scale is not None and not base_scale > 0:
            raise ValueError(f"base_scale must be > 0 or None, got {base_scale}")
        self.base_scale = None if base_scale is None else float(base_scale)
        _activation(activation)
        self.activation = activation
        self.channels = _widths(channels)
        self.spectral_norm = bool(spectral_norm)

    def _act(self) -> nn.Module:
        """A new activation layer."""
        return ACTIVATIONS[self.activation]()

    def _wrap(self, layer: nn.Module) -> nn.Module:
        """``layer``, spectrally normalized when asked."""
        return _spectral_norm(layer) if self.spectral_norm else layer


class ConvEnergy(_ImageEnergy):
    """A strided CNN energy with Swish activations.

    Layer ``i`` is a stride-2 convolution to ``channels[i]`` channels (the first
    one ``5x5`` with padding 4, the others ``3x3`` with padding 1, as in the UvA
    tutorial's MNIST network), then a linear layer to ``hidden`` units and one
    to the scalar energy. The defaults give the tutorial's network (about 80k
    parameters on 28x28 digits).

    Arguments:
        event_shape: ``(C, H, W)``.
        channels: Output channels of the strided convolutions.
        hidden: Width of the hidden linear layer.
        activation: Name from :data:`ebmlab.energies.mlp.ACTIVATIONS`.
        spectral_norm: Wrap every convolution and linear layer in spectral
            normalization.
        base_scale: Standard deviation ``s`` of a Gaussian reference term
            ``|x|^2 / (2 s^2)`` added to the energy (``None``: none); it makes
            ``exp(-E)`` integrable, which a log-likelihood by AIS needs.

    Example:
        >>> import torch
        >>> energy = ConvEnergy((1, 12, 12), channels=(4, 8))
        >>> tuple(energy(torch.randn(3, 1, 12, 12)).shape)
        (3,)
    """

    def __init__(
        self,
        event_shape: tuple[int, ...] | Sequence[int],
        channels: Sequence[int] = (16, 32, 64, 64),
        *,
        hidden: int = 64,
        activation: str = "silu",
        spectral_norm: bool = False,
        base_scale: float | None = None,
    ) -> None:
        super().__init__(event_shape, channels, activation, spectral_norm, base_scale)
        if int(hidden) < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.hidden = int(hidden)
        act, wrap = self._act, self._wrap
        layers: list[nn.Module] = []
        shape = self.event_shape
        c_in, h, w = shape
        for i, c_out in enumerate(self.channels):
            k, pad = (5, 4) if i == 0 else (3, 1)
            layers += [wrap(nn.Conv2d(c_in, c_out, k, stride=2, padding=pad)), act()]
            h, w = (h + 2 * pad - k) // 2 + 1, (w + 2 * pad - k) // 2 + 1
            if h < 1 or w < 1:  # pragma: no cover - padding keeps sides >= 1
                raise ValueError(f"image {shape} is too small for {len(self.channels)} layers")
            c_in = c_out
        layers += [
            nn.Flatten(),
            wrap(nn.Linear(c_in * h * w, self.hidden)),
            act(),
            wrap(nn.Linear(self.hidden, 1)),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` of images ``(N, C, H, W)``."""
        return _with_base(self.net(x).squeeze(-1), x, self.base_scale)

    def extra_repr(self) -> str:
        return (
            f"event_shape={self.event_shape}, channels={self.channels}, hidden={self.hidden}, "
            f"activation={self.activation!r}, spectral_norm={self.spectral_norm}, "
            f"base_scale={self.base_scale}"
        )


class _Block(nn.Module):
    """``x + conv(act(conv(act(x))))`` with an optional spectral norm."""

    def __init__(
        self, width: int, act: Callable[[], nn.Module], wrap: Callable[[nn.Module], nn.Module]
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            act(),
            wrap(nn.Conv2d(width, width, 3, padding=1)),
            act(),
            wrap(nn.Conv2d(width, width, 3, padding=1)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNetEnergy(_ImageEnergy):
    """A residual energy: stem, ``len(channels)`` stages of blocks, sum pool, linear.

    Stage ``i`` maps to ``channels[i]`` channels with a ``1x1`` convolution,
    runs ``depth`` residual blocks (two ``3x3`` convolutions each, pre-
    activation) and halves the side by average pooling when it is at least 2.
    The features are summed over space and a linear layer gives the energy.

    Arguments:
        event_shape: ``(C, H, W)``.
        channels: Width of each stage.
        depth: Residual blocks per stage.
        activation: Name from :data:`ebmlab.energies.mlp.ACTIVATIONS`.
        spectral_norm: Wrap every convolution and the head in spectral
            normalization.
        base_scale: As in :class:`ConvEnergy`.

    Example:
        >>> import torch
        >>> energy = ResNetEnergy((1, 8, 8), channels=(8, 16), depth=1)
        >>> tuple(energy(torch.randn(2, 1, 8, 8)).shape)
        (2,)
    """

    def __init__(
        self,
        event_shape: tuple[int, ...] | Sequence[int],
        channels: Sequence[int] = (32, 64),
        *,
        depth: int = 1,
        activation: str = "silu",
        spectral_norm: bool = False,
        base_scale: float | None = None,
    ) -> None:
        super().__init__(event_shape, channels, activation, spectral_norm, base_scale)
        if int(depth) < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = int(depth)
        act, wrap = self._act, self._wrap
        shape = self.event_shape
        layers: list[nn.Module] = [wrap(nn.Conv2d(shape[0], self.channels[0], 3, padding=1))]
        c_in, side = self.channels[0], min(shape[1:])
        for c_out in self.channels:
            if c_out != c_in:
                layers.append(wrap(nn.Conv2d(c_in, c_out, 1)))
            layers += [_Block(c_out, act, wrap) for _ in range(self.depth)]
            if side >= 2:
                layers.append(nn.AvgPool2d(2, ceil_mode=True))
                side = (side + 1) // 2
            c_in = c_out
        layers.append(act())
        self.features = nn.Sequential(*layers)
        self.head = wrap(nn.Linear(c_in, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` of images ``(N, C, H, W)``."""
        e = self.head(self.features(x).sum((2, 3))).squeeze(-1)
        return _with_base(e, x, self.base_scale)

    def extra_repr(self) -> str:
        return (
            f"event_shape={self.event_shape}, channels={self.channels}, depth={self.depth}, "
            f"activation={self.activation!r}, spectral_norm={self.spectral_norm}, "
            f"base_scale={self.base_scale}"
        )
