"""Neural energies: a multilayer perceptron over flattened configurations."""

from __future__ import annotations

__all__ = ["MLPEnergy"]

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .base import Energy

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}


class MLPEnergy(Energy):
    """Energy given by an MLP: ``E(x) = f_theta(flatten(x)) + |x|^2 / (2 s^2)``.

    The optional quadratic term (``base_scale = s``) is a broad Gaussian
    reference: it makes ``exp(-E)`` integrable whatever the network does far
    from the data, so ``Z`` is finite and quadrature over a bounded grid can be
    checked. Low energy = high probability.

    Arguments:
        event_shape: Shape of one configuration (an int for vectors).
        hidden: Widths of the hidden layers.
        activation: One of ``silu`` (Swish), ``elu``, ``softplus``, ``tanh``,
            ``gelu``.
        spectral_norm: Wrap every linear layer in spectral normalization.
        base_scale: Standard deviation ``s`` of the Gaussian reference term, or
            ``None`` for no such term.

    Example:
        >>> energy = MLPEnergy(2, hidden=(32, 32))
        >>> tuple(energy(torch.randn(7, 2)).shape)
        (7,)
    """

    def __init__(
        self,
        event_shape: tuple[int, ...] | int,
        hidden: Sequence[int] = (128, 128, 128),
        *,
        activation: str = "silu",
        spectral_norm: bool = False,
        base_scale: float | None = None,
    ) -> None:
        super().__init__(event_shape)
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        if base_scale is not None and not base_scale > 0:
            raise ValueError(f"base_scale must be > 0 or None, got {base_scale}")
        if any(int(h) <= 0 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {list(hidden)}")
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.spectral_norm = spectral_norm
        self.base_scale = base_scale
        layers: list[nn.Module] = []
        width = self.dim
        for h in (*self.hidden, 1):
            linear = nn.Linear(width, h)
            layers.append(_spectral_norm(linear) if spectral_norm else linear)
            layers.append(_ACTIVATIONS[activation]())
            width = h
        layers.pop()  # no activation after the output layer
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Energies, shape ``(N,)``, of configurations ``(N, *event_shape)``."""
        flat = x.reshape(x.shape[0], -1)
        e = self.net(flat).squeeze(-1)
        if self.base_scale is not None:
            e = e + flat.pow(2).sum(-1) / (2.0 * self.base_scale**2)
        return e

    def extra_repr(self) -> str:
        return (
            f"event_shape={self.event_shape}, hidden={self.hidden}, "
            f"activation={self.activation!r}, spectral_norm={self.spectral_norm}, "
            f"base_scale={self.base_scale}"
        )
