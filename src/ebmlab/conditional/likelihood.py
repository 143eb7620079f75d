"""Maximum likelihood as energy-based learning with a known normalizer.

When the integral over answers is known in closed form, the negative
log-likelihood loss ``-log P(y | x) = F(x, y) + log Z(x)`` (``beta = 1``) is the
classic loss of each model:

===============  ==========================  ===================================
energy           ``F(x, y)``                 ``log Z(x)``, and the NLL it gives
===============  ==========================  ===================================
Gaussian         ``|y - m(x)|^2 / (2 s^2)``  ``D/2 log(2 pi s^2)``: squared error
Bernoulli        ``-y s(x)``, ``y in {0,1}`` ``softplus(s)``: binary cross-entropy
categorical      ``-s_y(x)``                 ``logsumexp(s)``: cross-entropy
exponential      ``r(x) y``, ``y >= 0``      ``-log r(x)``
===============  ==========================  ===================================

``m``, ``s`` and ``r`` come from a network of ``x`` (``x_dim = 0``: a learned
constant, an unconditional distribution). Every class has ``log_z(x, beta)``
and ``nll(x, y)``; :func:`fit_mle` fits a distribution to a sample in closed
form and :func:`fit_likelihood` fits any of these energies by gradient descent
on the NLL.

Shapes: ``x`` is ``(N, x_dim)``; ``y`` is ``(N, y_dim)`` (Gaussian,
exponential with ``y_dim = 1``) or ``(N,)`` (Bernoulli labels 0/1, class indices).
"""

from __future__ import annotations

__all__ = [
    "FAMILIES",
    "BernoulliEnergy",
    "CategoricalEnergy",
    "ExponentialEnergy",
    "GaussianEnergy",
    "fit_likelihood",
    "fit_mle",
]

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F_
from torch import Tensor, nn

from ..errors import TrainingDivergedError
from ..train.loop import TrainSettings, fit
from .energies import ConditionalEnergy, DiscreteConditionalEnergy, make_mlp
from .fit import fit_conditional


def _network(
    network: nn.Module | None,
    x_dim: int,
    n_out: int,
    hidden: Sequence[int],
    generator: torch.Generator | None,
) -> nn.Module:
    return network if network is not None else make_mlp(x_dim, n_out, hidden, generator=generator)


class GaussianEnergy(ConditionalEnergy):
    """``F(x, y) = |y - m(x)|^2 / (2 s^2)``, Gibbs distribution ``N(m(x), s^2 I)``.

    Its negative log-likelihood is the squared error ``|y - m(x)|^2 / (2 s^2)``
    plus the constant ``D/2 log(2 pi s^2)``: least-squares regression is
    maximum likelihood under this energy.

    Arguments:
        x_dim: Width of ``x`` (0: unconditional).
        y_dim: Width of ``y``.
        hidden: Hidden widths of ``m`` (default: linear).
        network: Optional module ``(N, x_dim) -> (N, y_dim)`` for ``m`` (e.g.
            ending in a sigmoid).
        sigma: The standard deviation ``s``.
        learn_sigma: Learn ``log s`` too (then the NLL is not plain MSE).
        generator: Draw the initial weights from it.

    Example:
        >>> F = GaussianEnergy(3, 1, sigma=1.0)
        >>> x, y = torch.randn(5, 3), torch.randn(5, 1)
        >>> mse = ((y - F.mean(x)) ** 2).squeeze(1)
        >>> bool(torch.allclose(F.nll(x, y), mse / 2 + 0.5 * math.log(2 * math.pi)))
        True
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int = 1,
        hidden: Sequence[int] = (),
        *,
        network: nn.Module | None = None,
        sigma: float = 1.0,
        learn_sigma: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, y_dim=y_dim)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.network = _network(network, self.x_dim, y_dim, hidden, generator)
        log_sigma = torch.tensor(math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def mean(self, x: Tensor) -> Tensor:
        """``m(x)``, shape ``(N, y_dim)``: the lowest-energy answer."""
        return self.network(x)  # type: ignore[no-any-return]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` of pairs ``x (N, x_dim)``, ``y (N, y_dim)``."""
        r = y - self.mean(x)
        return r.pow(2).sum(-1) / (2.0 * torch.exp(2.0 * self.log_sigma))

    def log_z(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """``log`` of the integral of ``exp(-beta F(x, y)) dy``, shape ``(N,)``."""
        d = int(self.y_dim or 1)
        value = 0.5 * d * (math.log(2 * math.pi / beta) + 2.0 * self.log_sigma)
        return value.expand(x.shape[0]).to(x.dtype)

    def nll(self, x: Tensor, y: Tensor) -> Tensor:
        """``-log P(y | x)``, shape ``(N,)``."""
        return self(x, y) + self.log_z(x)


class BernoulliEnergy(ConditionalEnergy):
    """``F(x, y) = -y s(x)`` for ``y in {0, 1}``: logistic regression.

    ``P(y = 1 | x) = sigmoid(s(x))``, ``log Z = softplus(s)`` and the NLL
    ``softplus(s) - y s`` is the binary cross-entropy of the logit ``s``.

    Arguments:
        x_dim: Width of ``x`` (0: unconditional).
        hidden: Hidden widths of ``s`` (default: linear).
        network: Optional module ``(N, x_dim) -> (N, 1)`` for the logit.
        generator: Draw the initial weights from it.

    Example:
        >>> F = BernoulliEnergy(3)
        >>> x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
        >>> bce = F_.binary_cross_entropy_with_logits(F.logit(x), y.float(), reduction="none")
        >>> bool(torch.allclose(F.nll(x, y), bce))
        True
    """

    def __init__(
        self,
        x_dim: int,
        hidden: Sequence[int] = (),
        *,
        network: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, n_classes=2)
        self.network = _network(network, self.x_dim, 1, hidden, generator)

    def logit(self, x: Tensor) -> Tensor:
        """``s(x)``, shape ``(N,)``."""
        return self.network(x).squeeze(-1)  # type: ignore[no-any-return]

    def energies(self, x: Tensor) -> Tensor:
        """``(N, 2)``: ``F(x, 0) = 0`` and ``F(x, 1) = -s(x)``."""
        s = self.logit(x)
        return torch.stack([torch.zeros_like(s), -s], dim=1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` of labels ``y (N,)`` in ``{0, 1}`` (soft labels allowed)."""
        return -y.to(x.dtype).reshape(-1) * self.logit(x)

    def log_z(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """``log(1 + exp(beta s(x)))``, shape ``(N,)``."""
        return F_.softplus(beta * self.logit(x))

    def nll(self, x: Tensor, y: Tensor) -> Tensor:
        """``-log P(y | x)``: the binary cross-entropy, shape ``(N,)``."""
        return self(x, y) + self.log_z(x)


class CategoricalEnergy(DiscreteConditionalEnergy):
    """``F(x, k) = -s_k(x)``: softmax regression; the NLL is the cross-entropy.

    A :class:`~ebmlab.conditional.DiscreteConditionalEnergy` with the
    closed-form ``log Z = logsumexp(beta s)`` (default: linear logits).

    Example:
        >>> F = CategoricalEnergy(3, 4)
        >>> x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0])
        >>> bool(torch.allclose(F.nll(x, y), F_.cross_entropy(-F.energies(x), y,
        ...                                                    reduction="none")))
        True
    """

    def __init__(
        self,
        x_dim: int,
        n_classes: int,
        hidden: Sequence[int] = (),
        *,
        network: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, n_classes, hidden, network=network, generator=generator)

    def log_z(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """``logsumexp_k(-beta F(x, k))``, shape ``(N,)``."""
        return torch.logsumexp(-beta * self.energies(x), 1)

    def nll(self, x: Tensor, y: Tensor) -> Tensor:
        """``-log P(y | x)``: the cross-entropy, shape ``(N,)``."""
        return self(x, y) + self.log_z(x)


class ExponentialEnergy(ConditionalEnergy):
    """``F(x, y) = r(x) y`` for ``y >= 0``, rate ``r = softplus(network(x))``.

    ``log Z = -log r`` (``-log(beta r)`` at inverse temperature ``beta``) and
    the NLL is ``r y - log r``: the exponential distribution of mean ``1 / r``.

    Arguments:
        x_dim: Width of ``x`` (0: unconditional).
        hidden: Hidden widths (default: linear).
        network: Optional module ``(N, x_dim) -> (N, 1)`` before the softplus.
        generator: Draw the initial weights from it.

    Example:
        >>> F = ExponentialEnergy(0)
        >>> y = torch.rand(6, 1)
        >>> r = F.rate(torch.empty(6, 0))
        >>> bool(torch.allclose(F.nll(torch.empty(6, 0), y), r * y[:, 0] - r.log()))
        True
    """

    def __init__(
        self,
        x_dim: int,
        hidden: Sequence[int] = (),
        *,
        network: nn.Module | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, y_dim=1)
        self.network = _network(network, self.x_dim, 1, hidden, generator)

    def rate(self, x: Tensor) -> Tensor:
        """``r(x) > 0``, shape ``(N,)``."""
        return F_.softplus(self.network(x).squeeze(-1)) + 1e-12

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` of ``y (N, 1) >= 0`` (``+inf`` where ``y < 0``)."""
        e = self.rate(x) * y[:, 0]
        return torch.where(y[:, 0] >= 0, e, torch.full_like(e, math.inf))

    def log_z(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """``-log(beta r(x))``, shape ``(N,)``."""
        return -torch.log(beta * self.rate(x))

    def nll(self, x: Tensor, y: Tensor) -> Tensor:
        """``-log P(y | x) = r y - log r``, shape ``(N,)``."""
        return self(x, y) + self.log_z(x)


#: The families of :func:`fit_mle`, each fitted by maximum likelihood in closed form.
FAMILIES = ("gaussian", "bernoulli", "categorical", "exponential")


def fit_mle(family: str, sample: Tensor, *, n_classes: int | None = None) -> dict[str, Tensor]:
    """Closed-form maximum-likelihood fit of a distribution to a sample.

    ==============  ===============  ==========================================
    family          sample           returns
    ==============  ===============  ==========================================
    ``gaussian``    ``(n, D)``       ``mean (D,)``, ``covariance (D, D)`` (1/n)
    ``bernoulli``   ``(n,)`` 0/1     ``p`` (0-d)
    ``categorical`` ``(n,)`` ints    ``probs (K,)`` (class frequencies)
    ``exponential`` ``(n,)`` >= 0    ``rate`` (0-d) ``= 1 / mean``
    ==============  ===============  ==========================================

    Arguments:
        family: One of :data:`FAMILIES`.
        sample: The observations.
        n_classes: ``K`` for ``categorical`` (default: largest class + 1).

    Returns:
        The maximum-likelihood parameters by name.

    Example:
        >>> fit_mle("exponential", torch.tensor([1.0, 3.0]))["rate"].item()
        0.5
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if sample.shape[0] < 1:
        raise ValueError("sample is empty")
    if not bool(torch.isfinite(sample.to(torch.float64)).all()):
        raise ValueError("sample holds NaN or infinite values")
    if family == "gaussian":
        x = sample.reshape(sample.shape[0], -1).to(torch.float64)
        mean = x.mean(0)
        centred = x - mean
        return {"mean": mean, "covariance": centred.T @ centred / x.shape[0]}
    flat = sample.reshape(-1)
    if family == "bernoulli":
        if not bool(((flat == 0) | (flat == 1)).all()):
            raise ValueError("a bernoulli sample must hold only 0 and 1")
        return {"p": flat.to(torch.float64).mean()}
    if family == "categorical":
        if flat.is_floating_point() and not bool((flat == flat.round()).all()):
            raise ValueError("a categorical sample must hold class indices")
        labels = flat.long()
        if bool((labels < 0).any()):
            raise ValueError("class indices must be >= 0")
        k = int(labels.max()) + 1 if n_classes is None else int(n_classes)
        if int(labels.max()) >= k:
            raise ValueError(f"class index {int(labels.max())} >= n_classes={k}")
        counts = torch.bincount(labels, minlength=k).to(torch.float64)
        return {"probs": counts / counts.sum()}
    if bool((flat < 0).any()):
        raise ValueError("an exponential sample must be >= 0")
    mean = flat.to(torch.float64).mean()
    if not float(mean) > 0:
        raise ValueError("an exponential sample must not be all zeros")
    return {"rate": 1.0 / mean}


OPTIMIZERS = ("lbfgs", "adam")


def fit_likelihood(
    energy: ConditionalEnergy,
    x: Tensor,
    y: Tensor,
    *,
    optimizer: str = "lbfgs",
    n_steps: int = 100,
    batch_size: int = 256,
    lr: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Maximum likelihood by gradient descent on ``F(x, y) + log Z(x)``.

    The ``nll`` loss functional with the energy's closed-form ``log_z``.
    ``optimizer="lbfgs"`` minimizes the full-data NLL with L-BFGS (strong
    Wolfe line search, 20 curvature pairs): precise, for data that fit in
    memory. ``optimizer="adam"`` takes minibatch steps
    (:func:`~ebmlab.conditional.fit_conditional`). Both train through
    :func:`ebmlab.train.fit` (``TrainSettings(optimizer="lbfgs",
    batches="full")`` for L-BFGS: one iteration per step).

    Arguments:
        energy: One of the energies of this module (trained in place).
        x: Inputs ``(N, x_dim)`` (``(N, 0)`` for an unconditional fit).
        y: Answers as the energy expects them.
        optimizer: ``"lbfgs"`` or ``"adam"``.
        n_steps: L-BFGS iterations, or Adam updates.
        batch_size: Pairs per Adam update.
        lr: Learning rate (default 1 for L-BFGS, 1e-2 for Adam).
        generator: Random generator of Adam's minibatches.

    Returns:
        The mean NLL of every step (L-BFGS: at the start of each iteration;
        Adam: of each minibatch), shape ``(n_steps,)``.

    Example:
        >>> F = GaussianEnergy(0, 1, learn_sigma=True).double()
        >>> y = 3.0 + torch.randn(500, 1, dtype=torch.float64)
        >>> _ = fit_likelihood(F, torch.empty(500, 0, dtype=torch.float64), y)
        >>> abs(F.mean(torch.empty(1, 0, dtype=torch.float64)).item() - y.mean().item()) < 1e-6
        True
    """
    if not hasattr(energy, "log_z") or not hasattr(energy, "nll"):
        raise ValueError(f"energy must have a closed-form log_z, got {type(energy).__name__}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    if optimizer == "adam":
        return fit_conditional(
            energy,
            x,
            y,
            "nll",
            n_steps=n_steps,
            batch_size=batch_size,
            lr=1e-2 if lr is None else lr,
            generator=generator,
        )
    if x.shape[0] != y.shape[0] or x.shape[0] < 1:
        raise ValueError(
            f"x and y must hold the same number (>= 1) of rows, got {x.shape[0]} and {y.shape[0]}"
        )
    nll = _NLL()
    settings = TrainSettings(
        steps=int(n_steps),
        lr=1.0 if lr is None else float(lr),
        lr_schedule="constant",
        warmup_steps=0,
        log_every=1,
        checkpoint_every=0,
        device=str(x.device),
        batches="full",
        optimizer="lbfgs",
    )
    if int(n_steps) == 0:
        return torch.empty(0, dtype=torch.float64)
    try:
        result = fit(energy, x, nll, settings, labels=y, progress=False)
    except TrainingDivergedError:
        raise ValueError(
            "the NLL became non-finite; start from other weights or use adam"
        ) from None
    return torch.tensor([row["loss"] for row in result.metrics], dtype=torch.float64)


class _NLL:
    """The ``nll`` loss functional on a batch ``(x, y)``: mean ``F(x, y) + log Z(x)``."""

    def __call__(
        self, energy: Any, batch: tuple[Tensor, Tensor], state: Any, *, generator: Any = None
    ) -> tuple[Tensor, None, Any]:
        x, y = batch
        return energy.nll(x, y).mean(), None, state
