"""The Gaussian-Bernoulli RBM: real-valued visible units, binary hidden units.

.. math:: E(v, h) = \\sum_i \\frac{(v_i - b_i)^2}{2 \\sigma_i^2} - c^\\top h
          - h^\\top W (v / \\sigma), \\qquad
          F(v) = \\sum_i \\frac{(v_i - b_i)^2}{2 \\sigma_i^2}
          - \\sum_j \\operatorname{softplus}(c_j + W_j (v / \\sigma)).

Built on :class:`ebmlab.boltzmann.rbm.RBM` (block Gibbs, enumeration of the
hidden layer, AIS); low energy = probable.

References:
    Hinton (2012), "A practical guide to training restricted Boltzmann
    machines", https://doi.org/10.1007/978-3-642-35289-8_32.
"""

from __future__ import annotations

__all__ = ["GaussianBernoulliRBM"]

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .enumeration import _bernoulli, _randn
from .rbm import RBM


class GaussianBernoulliRBM(RBM):
    """RBM with real visible units (Gaussian given ``h``) and binary hidden units.

    ``p(v | h) = N(b + sigma * (W^T h), sigma^2)`` and
    ``p(h_j = 1 | v) = sigmoid(c_j + W_j (v / sigma))``. The standard deviations
    are ``exp(log_sigma)``, learned when ``learn_sigma`` (else a fixed buffer,
    1 by default: standardize the data first).

    Arguments:
        n_visible: Number of visible units.
        n_hidden: Number of hidden units.
        sigma: Initial standard deviation of the visible units (``> 0``).
        learn_sigma: Make ``log_sigma`` a trained parameter.
        **kwargs: See :class:`RBM`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> rbm = GaussianBernoulliRBM(4, 3, generator=g)
        >>> v = torch.randn(5, 4, generator=g)
        >>> rbm(v).shape, rbm.sample_visible(rbm.sample_hidden(v, g), g).shape
        (torch.Size([5]), torch.Size([5, 4]))
        >>> rbm.log_z().method
        'exact'
    """

    domain = "continuous"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        sigma: float = 1.0,
        learn_sigma: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(n_visible, n_hidden, **kwargs)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        log_sigma = torch.full_like(self.visible_bias.detach(), math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def sigma(self) -> Tensor:
        """Standard deviations of the visible units, shape ``(n_visible,)``."""
        return self.log_sigma.exp()

    def extra_repr(self) -> str:
        learn = isinstance(self.log_sigma, nn.Parameter)
        return f"{super().extra_repr()}, learn_sigma={learn}"

    def _visible_input(self, v: Tensor) -> Tensor:
        return v / self.sigma

    def _visible_bias_grad_scale(self) -> Tensor | float:
        return torch.exp(-2 * self.log_sigma)

    def _visible_free_energy(self, v: Tensor) -> Tensor:
        return (((v - self.visible_bias) / self.sigma) ** 2).sum(-1) / 2

    def visible_mean(self, h: Tensor) -> Tensor:
        """``E[v | h] = b + sigma * (W^T h)``, shape ``(N, n_visible)``."""
        return self.visible_bias + self.sigma * (self._as_param(h) @ self.weight)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``v ~ N(b + sigma * (W^T h), sigma^2)``, shape ``(N, n_visible)``."""
        return self._sample_visible(self._as_param(h), generator)

    def _sample_visible(self, h: Tensor, generator: torch.Generator | None) -> Tensor:
        mean = self.visible_mean(h)
        noise = _randn(mean.shape, mean, generator)
        return mean + self.sigma * noise

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """``E(v, h) = sum (v - b)^2 / (2 sigma^2) - c h - h W (v / sigma)``, shape ``(N,)``."""
        v, h = self._as_param(v), self._as_param(h)
        quad = (((v - self.visible_bias) / self.sigma) ** 2).sum(-1) / 2
        return quad - h @ self.hidden_bias - ((h @ self.weight) * (v / self.sigma)).sum(-1)

    def free_energy(self, v: Tensor) -> Tensor:
        """``F(v) = sum (v - b)^2 / (2 sigma^2) - sum_j softplus(c_j + W_j v / sigma)``."""
        self.check_input(v)
        v = self._as_param(v)
        quad = (((v - self.visible_bias) / self.sigma) ** 2).sum(-1) / 2
        return quad - F.softplus(self.hidden_logits(v)).sum(-1)

    def _log_normalizer_gap(self) -> float:
        return 0.5 * self.n_visible * math.log(2 * math.pi) + float(self.log_sigma.sum())

    def hidden_free_energy(self, h: Tensor) -> Tensor:
        """``-log int exp(-E(v, h)) dv`` with ``u = W^T h``:
        ``-c h - sum_i (b_i u_i / sigma_i + u_i^2 / 2) - sum_i log(sqrt(2 pi) sigma_i)``.
        """
        h = self._as_param(h)
        u = h @ self.weight
        inner = (self.visible_bias / self.sigma * u + u * u / 2).sum(-1)
        return -(h @ self.hidden_bias) - inner - self._log_normalizer_gap()

    def _ais_base(
        self, n: int, base_visible_bias: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, float]:
        shape = (n, self.n_visible)
        eps = _randn(shape, self.weight, generator)
        v = self.visible_bias + self.sigma * eps
        return v, self._log_normalizer_gap() + self.n_hidden * math.log(2.0)

    def _ais_stats(
        self, v: Tensor, base_visible_bias: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        quad = -(((v - self.visible_bias) / self.sigma) ** 2).sum(-1) / 2
        return self.hidden_logits(v), quad, quad

    def _ais_transition(
        self,
        a: Tensor,
        beta: float,
        base_visible_bias: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        h = _bernoulli(torch.sigmoid(beta * a), generator)
        mean = self.visible_bias + self.sigma * (beta * (h @ self.weight))
        noise = _randn(mean.shape, mean, generator)
        return mean + self.sigma * noise
