"""The energy contract and the two helpers every sampler uses.

Convention, stated once for the whole library: an energy maps configurations
``x`` of shape ``(N, *event_shape)`` to energies of shape ``(N,)`` and

.. math:: p(x) = \\exp(-E(x)) / Z, \\qquad \\log p(x) = -E(x) - \\log Z.

Low energy = high probability. The score is :math:`\\nabla_x \\log p(x) =
-\\nabla_x E(x)`; functions that return it say so in their name.
"""

from __future__ import annotations

__all__ = ["Energy", "energy_and_grad", "score"]

import torch
from torch import Tensor, nn

from .._types import EnergyFn


class Energy(nn.Module):
    """Base class of every energy: ``forward(x) -> E(x)``.

    Subclasses implement :meth:`forward` mapping ``(N, *event_shape)`` to
    ``(N,)``. An energy holds parameters only: no chains, no optimizer, no RNG.

    Attributes:
        event_shape: Shape of one configuration, e.g. ``(2,)`` for points in
            the plane or ``(1, 28, 28)`` for images.
        is_sample_exact: True only for energies whose ``sample(n, generator=)``
            draws exactly from ``exp(-E) / Z`` (closed-form targets); MCMC-based
            ``sample`` methods leave it False. BDMC trusts only these.
    """

    event_shape: tuple[int, ...]
    is_sample_exact: bool = False

    def __init__(self, event_shape: tuple[int, ...] | int) -> None:
        super().__init__()
        if isinstance(event_shape, int):
            event_shape = (event_shape,)
        event_shape = tuple(int(s) for s in event_shape)
        if not event_shape or any(s <= 0 for s in event_shape):
            raise ValueError(f"event_shape must be positive sizes, got {event_shape}")
        self.event_shape = event_shape

    @property
    def dim(self) -> int:
        """Number of scalar variables in one configuration."""
        n = 1
        for s in self.event_shape:
            n *= s
        return n

    def forward(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Energy of each configuration.

        Arguments:
            x: Configurations, shape ``(N, *event_shape)``.

        Returns:
            Energies, shape ``(N,)``; low energy = high probability.
        """
        raise NotImplementedError

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` when ``x`` is not ``(N, *event_shape)``."""
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"x must have shape (N, {', '.join(map(str, self.event_shape))}), "
                f"got {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}"


def energy_and_grad(energy: EnergyFn, x: Tensor) -> tuple[Tensor, Tensor]:
    """Energy and its gradient in ``x`` from one forward and one backward pass.

    The gradient is taken of ``E(x).sum()`` with respect to a detached copy of
    ``x``; only the input gradient is computed (no parameter gradients are
    accumulated), and both results are detached.

    Arguments:
        energy: Callable mapping ``(N, *event_shape)`` to ``(N,)``.
        x: Configurations, shape ``(N, *event_shape)``.

    Returns:
        ``(e, g)``: energies of shape ``(N,)`` and :math:`\\nabla_x E(x)` shaped
        like ``x``. Note the sign: this is the energy gradient, minus the score.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> e, g = energy_and_grad(Gaussian.standard(3), torch.zeros(5, 3))
        >>> tuple(e.shape), tuple(g.shape)
        ((5,), (5, 3))
    """
    if torch.is_grad_enabled():  # skip the context manager on the hot path
        x_ = x.detach().requires_grad_(True)
        e = energy(x_)
        (g,) = torch.autograd.grad(e.sum(), x_)
    else:
        with torch.enable_grad():
            x_ = x.detach().requires_grad_(True)
            e = energy(x_)
            (g,) = torch.autograd.grad(e.sum(), x_)
    # autograd.grad without create_graph returns a tensor outside any graph.
    return e.detach(), g


def score(energy: EnergyFn, x: Tensor) -> Tensor:
    """The score :math:`\\nabla_x \\log p(x) = -\\nabla_x E(x)`, shaped like ``x``.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> score(Gaussian.standard(2), torch.ones(1, 2))
        tensor([[-1., -1.]])
    """
    return -energy_and_grad(energy, x)[1]
