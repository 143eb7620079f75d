"""Annealed importance sampling of an RBM's log Z (Salakhutdinov & Murray, 2008).

The path runs from a base model with no couplings, ``p_0``, to the RBM, ``p_1``,
through unnormalized marginals of the visible units in which the hidden units
are summed out analytically (Bernoulli-Bernoulli; ``b0`` the base biases):

.. math:: \\log p^*_\\beta(v) = (1 - \\beta)\\, b_0^\\top v + \\beta\\, b^\\top v
          + \\sum_j \\operatorname{softplus}(\\beta (c_j + W_j v)),

``log Z_0 = sum_i softplus(b0_i) + n_hidden log 2``. Each temperature is left
invariant by one block Gibbs step (``h ~ sigmoid(beta (c + W v))``, then
``v ~ sigmoid((1 - beta) b0 + beta (b + W^T h))``). For Gaussian visible units
the base is ``N(b, sigma^2)`` times uniform hidden units and only the coupling
is annealed. ``log Z_hat = log Z_0 + log mean(w)`` is unbiased in ``Z`` and so a
stochastic lower bound in ``log Z``; the standard error is the delta-method one.

References:
    Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief
    networks", https://doi.org/10.1145/1390156.1390266; Neal (2001), "Annealed
    importance sampling", https://doi.org/10.1023/A:1008923215028.
"""

from __future__ import annotations

__all__ = ["AnnealableRBM", "rbm_ais_log_z", "sm_schedule"]

import math
import time
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from ..partition.estimate import Estimate, weight_stats


class AnnealableRBM(Protocol):
    """What the annealing needs of an RBM (:class:`ebmlab.boltzmann.rbm.RBM` has it)."""

    @property
    def weight(self) -> Tensor: ...

    @property
    def domain(self) -> str: ...

    @property
    def n_visible(self) -> int: ...

    def _ais_base(
        self, n: int, base_visible_bias: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, float]: ...

    def _ais_stats(
        self, v: Tensor, base_visible_bias: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]: ...

    def _ais_transition(
        self,
        a: Tensor,
        beta: float,
        base_visible_bias: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor: ...


def sm_schedule(n_betas: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Inverse temperatures from 0 to 1, denser near 1, as in Salakhutdinov & Murray.

    Their 14,500 temperatures space ``[0, 0.5]``, ``[0.5, 0.9]`` and
    ``[0.9, 1]`` uniformly with 500, 4,000 and 10,000 steps; this keeps those
    proportions for ``n_betas`` steps.

    Arguments:
        n_betas: Number of annealing steps (``>= 3``).

    Returns:
        Increasing inverse temperatures, shape ``(n_betas + 1,)``, from 0 to 1.

    Example:
        >>> b = sm_schedule(29)
        >>> b.shape, float(b[0]), float(b[-1]), bool((b.diff() > 0).all())
        (torch.Size([30]), 0.0, 1.0, True)
    """
    if int(n_betas) < 3:
        raise ValueError(f"n_betas must be >= 3, got {n_betas}")
    n = int(n_betas)
    n1 = max(1, round(n * 500 / 14500))
    n2 = max(1, round(n * 4000 / 14500))
    n3 = n - n1 - n2
    parts = [
        torch.linspace(0.0, 0.5, n1 + 1, dtype=dtype)[:-1],
        torch.linspace(0.5, 0.9, n2 + 1, dtype=dtype)[:-1],
        torch.linspace(0.9, 1.0, n3 + 1, dtype=dtype),
    ]
    return torch.cat(parts)


def _base_bias_from_data(data: Tensor) -> Tensor:
    """Logits of the smoothed visible marginals of binary data (the base-rate model)."""
    n = data.shape[0]
    p = (data.sum(0) + 0.5) / (n + 1.0)
    return torch.log(p) - torch.log1p(-p)


@torch.no_grad()
def rbm_ais_log_z(
    rbm: AnnealableRBM,
    *,
    n_chains: int = 100,
    n_betas: int = 1000,
    betas: Tensor | None = None,
    base_visible_bias: Tensor | None = None,
    data: Tensor | None = None,
    z: float = 2.0,
    generator: torch.Generator | None = None,
) -> Estimate:
    """``log Z`` of an RBM by annealed importance sampling.

    Arguments:
        rbm: A :class:`~ebmlab.boltzmann.BernoulliRBM` or
            :class:`~ebmlab.boltzmann.GaussianBernoulliRBM`.
        n_chains: Independent annealing runs (importance weights).
        n_betas: Annealing steps of the default schedule (:func:`sm_schedule`).
        betas: An explicit increasing schedule from 0 to 1 (overrides
            ``n_betas``).
        base_visible_bias: Bernoulli only: biases ``b0`` of the base model
            (default: from ``data`` when given, else the RBM's visible biases).
        data: Bernoulli only: binary training data ``(N, n_visible)`` whose
            smoothed marginals define the base (the base-rate model of the
            paper, which shortens the path).
        z: Half-width of ``[lower, upper]`` in standard errors.
        generator: Random generator.

    Returns:
        An :class:`~ebmlab.partition.Estimate` with ``method="ais"``, the
        delta-method ``stderr``, ``ess`` of the final weights and
        ``details["log_weights"]``.

    Example:
        >>> from ebmlab.boltzmann import BernoulliRBM
        >>> g = torch.Generator().manual_seed(0)
        >>> rbm = BernoulliRBM(8, 4, weight_scale=0.5, generator=g)
        >>> est = rbm_ais_log_z(rbm, n_chains=50, n_betas=200, generator=g)
        >>> exact = rbm.exact_log_z().value
        >>> est.method, abs(est.value - exact) < 4 * est.stderr + 0.02
        ('ais', True)
    """
    t0 = time.perf_counter()
    if int(n_chains) < 1:
        raise ValueError(f"n_chains must be >= 1, got {n_chains}")
    dtype, device = rbm.weight.dtype, rbm.weight.device
    if betas is None:
        schedule = sm_schedule(n_betas, dtype=torch.float64)
    else:
        schedule = torch.as_tensor(betas, dtype=torch.float64).flatten().cpu()
        ok = schedule.numel() >= 2 and float(schedule[0]) == 0.0 and float(schedule[-1]) == 1.0
        if not ok or not bool((schedule.diff() > 0).all()):
            raise ValueError(
                "betas must increase strictly from 0 to 1 with at least 2 values, "
                f"got {schedule.numel()} values from {float(schedule[0]):.3g} "
                f"to {float(schedule[-1]):.3g}"
            )
    is_binary = rbm.domain == "binary"
    b0: Tensor | None = None
    if is_binary:
        if base_visible_bias is not None:
            b0 = torch.as_tensor(base_visible_bias, dtype=dtype, device=device).flatten()
            if b0.shape != (rbm.n_visible,):
                raise ValueError(
                    f"base_visible_bias must have shape ({rbm.n_visible},), got {tuple(b0.shape)}"
                )
        elif data is not None:
            b0 = _base_bias_from_data(torch.as_tensor(data, dtype=dtype, device=device))
    elif base_visible_bias is not None or data is not None:
        raise ValueError("base_visible_bias and data apply to binary visible units only")
    beta_list = [float(b) for b in schedule]
    v, log_z0 = rbm._ais_base(int(n_chains), b0, generator)
    log_w = torch.zeros(int(n_chains), dtype=torch.float64, device=device)

    def log_unnorm(stats: tuple[Tensor, Tensor, Tensor], beta: float) -> Tensor:
        a, lin0, lin1 = stats
        out = (1.0 - beta) * lin0 + beta * lin1 + F.softplus(beta * a).sum(-1)
        return out.double()

    stats = rbm._ais_stats(v, b0)
    for k in range(1, len(beta_list)):
        log_w += log_unnorm(stats, beta_list[k]) - log_unnorm(stats, beta_list[k - 1])
        if k < len(beta_list) - 1:
            v = rbm._ais_transition(stats[0], beta_list[k], b0, generator)
            stats = rbm._ais_stats(v, b0)
    log_mean, se, ess = weight_stats(log_w)
    value = log_z0 + log_mean
    if not math.isfinite(value):
        raise ValueError(f"AIS log Z is {value}: the RBM's parameters are not finite")
    return Estimate.normal(
        value,
        se,
        z,
        "ais",
        time.perf_counter() - t0,
        ess=ess,
        n_samples=int(n_chains),
        details={"n_betas": len(beta_list) - 1, "log_z_base": log_z0, "log_weights": log_w},
    )
