"""Neural energies: a multilayer perceptron over flattened configurations."""

from __future__ import annotations

__all__ = ["MLPEnergy"]

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ._blocked import BlockedMLPGrad, supported
from .base import Energy, energy_and_grad

#: Activation names accepted by the MLP energies (and the JEM classifier).
ACTIVATIONS: dict[str, type[nn.Module]] = {
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

    With ``fourier_features = m > 0`` the network sees ``[x, sin(2 pi B x),
    cos(2 pi B x)]`` for a fixed random ``B`` of shape ``(m, D)`` with entries
    ``N(0, fourier_scale^2)`` (Tancik et al. 2020): this removes the MLP's bias
    towards overly smooth functions, so sharp, separated modes are learned in
    far fewer updates.

    Arguments:
        event_shape: Shape of one configuration (an int for vectors).
        hidden: Widths of the hidden layers.
        activation: One of ``silu`` (Swish), ``elu``, ``softplus``, ``tanh``,
            ``gelu``.
        spectral_norm: Wrap every linear layer in spectral normalization.
        base_scale: Standard deviation ``s`` of the Gaussian reference term, or
            ``None`` for no such term.
        fourier_features: Number ``m`` of random Fourier frequencies (0: none).
        fourier_scale: Standard deviation of the frequencies.

    References:
        Tancik, M. et al. (2020). Fourier features let networks learn high
        frequency functions in low dimensional domains. NeurIPS.
        https://arxiv.org/abs/2006.10739

    Example:
        >>> energy = MLPEnergy(2, hidden=(32, 32))
        >>> tuple(energy(torch.randn(7, 2)).shape)
        (7,)
    """

    freqs: Tensor

    def __init__(
        self,
        event_shape: tuple[int, ...] | int,
        hidden: Sequence[int] = (128, 128, 128),
        *,
        activation: str = "silu",
        spectral_norm: bool = False,
        base_scale: float | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
    ) -> None:
        super().__init__(event_shape)
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}"
            )
        if base_scale is not None and not base_scale > 0:
            raise ValueError(f"base_scale must be > 0 or None, got {base_scale}")
        if any(int(h) <= 0 for h in hidden):
            raise ValueError(f"hidden widths must be positive, got {list(hidden)}")
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.spectral_norm = spectral_norm
        self.base_scale = base_scale
        if int(fourier_features) < 0 or not fourier_scale > 0:
            raise ValueError(
                f"fourier_features must be >= 0 and fourier_scale > 0, got "
                f"{fourier_features} and {fourier_scale}"
            )
        self.fourier_features = int(fourier_features)
        self.fourier_scale = float(fourier_scale)
        freqs = torch.randn(self.fourier_features, self.dim) * self.fourier_scale
        self.register_buffer("freqs", 2.0 * math.pi * freqs)
        layers: list[nn.Module] = []
        width = self.dim + 2 * self.fourier_features
        for h in (*self.hidden, 1):
            linear = nn.Linear(width, h)
            layers.append(_spectral_norm(linear) if spectral_norm else linear)
            layers.append(ACTIVATIONS[activation]())
            width = h
        layers.pop()  # no activation after the output layer
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Energies, shape ``(N,)``, of configurations ``(N, *event_shape)``."""
        flat = x.reshape(x.shape[0], -1)
        if self.fourier_features:
            proj = flat @ self.freqs.T
            e = self.net(torch.cat([flat, proj.sin(), proj.cos()], dim=-1)).squeeze(-1)
        else:
            e = self.net(flat).squeeze(-1)
        if self.base_scale is not None:
            e = e + flat.pow(2).sum(-1) / (2.0 * self.base_scale**2)
        return e

    def fused_energy_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Energies and input gradients without autograd, in cache-sized row blocks.

        The CPU fast path of the gradient samplers (``compile=True``): the
        forward pass and the hand-derived backward pass run one block of rows
        at a time in buffers that stay in cache, with the same BLAS products
        and ATen activation derivatives as autograd, so the results equal
        :func:`~ebmlab.energies.energy_and_grad`'s up to rounding. Energies
        with Fourier features, subclasses that override :meth:`forward`, and
        an ``x`` whose dtype differs from the weights' take the autograd path.
        The results are detached (no graph); forward hooks are not run; one
        energy's kernel reuses its buffers, so do not call it from two
        threads at once.

        Arguments:
            x: Configurations, shape ``(N, *event_shape)``.

        Returns:
            ``(e, g)``: energies ``(N,)`` and :math:`\\nabla_x E(x)` shaped like
            ``x`` (the energy gradient, minus the score).

        Example:
            >>> energy = MLPEnergy(3, hidden=(16, 16))
            >>> e, g = energy.fused_energy_and_grad(torch.randn(5, 3))
            >>> tuple(e.shape), tuple(g.shape)
            ((5,), (5, 3))
        """
        blocked = self._blocked_kernel()
        if blocked is None or x.dtype != self.freqs.dtype:
            return energy_and_grad(self, x)
        flat = x.detach().reshape(x.shape[0], math.prod(x.shape[1:])).contiguous()
        with torch.no_grad():
            e, g = blocked(flat)
            if self.base_scale is not None:
                inv_var = 1.0 / self.base_scale**2
                e.add_(flat.square().sum(-1), alpha=0.5 * inv_var)
                g.add_(flat, alpha=inv_var)
        return e, g.view_as(x)

    def _blocked_kernel(self) -> BlockedMLPGrad | None:
        kernel = self.__dict__.get("_blocked")
        if (
            kernel is None
            and not self.fourier_features
            and type(self).forward is MLPEnergy.forward
            and supported(self.net)
        ):
            kernel = self.__dict__["_blocked"] = BlockedMLPGrad(self.net)
        return kernel

    def extra_repr(self) -> str:
        return (
            f"event_shape={self.event_shape}, hidden={self.hidden}, "
            f"activation={self.activation!r}, spectral_norm={self.spectral_norm}, "
            f"base_scale={self.base_scale}, fourier_features={self.fourier_features}"
        )
