"""Fit a quadratic energy to Gaussian data with any objective; sandwich standard errors.

An objective's loss with its random draws held fixed (a generator re-seeded on
every call) is a deterministic function of the data sample, so its minimizer is
an M-estimator. Its sampling covariance is the sandwich ``H^-1 V H^-1``: ``H``
the Hessian of the loss at the optimum, ``V`` the variance of the loss gradient
there, estimated from the gradients of disjoint groups of data points (each
group with its own noise draws). Tests then check ``|theta_hat - theta*| < z SE``
per coordinate: tolerances from the sample size, never a bare ``atol``.

Parameters: ``theta = (mu (D), upper triangle of the precision P (D (D + 1) / 2))``
and ``E(x) = (x - mu)^T P (x - mu) / 2``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from helpers import bonferroni_z


def unpack(theta: Tensor, d: int) -> tuple[Tensor, Tensor]:
    """``(mu, P)`` from the parameter vector."""
    mu = theta[:d]
    rows, cols = torch.triu_indices(d, d)
    upper = torch.zeros(d, d, dtype=theta.dtype).index_put((rows, cols), theta[d:])
    return mu, upper + upper.T - torch.diag(upper.diagonal())


def pack(mu: Tensor, precision: Tensor) -> Tensor:
    rows, cols = torch.triu_indices(mu.shape[0], mu.shape[0])
    return torch.cat([mu, precision[rows, cols]])


def quadratic(theta: Tensor, d: int) -> Callable[[Tensor], Tensor]:
    """The energy ``x -> (x - mu)^T P (x - mu) / 2`` of ``theta`` (differentiable in it)."""
    mu, precision = unpack(theta, d)

    def energy(x: Tensor) -> Tensor:
        r = x - mu
        return 0.5 * ((r @ precision) * r).sum(-1)

    return energy


LossFn = Callable[[Tensor, Tensor, int], Tensor]


def objective_loss(objective: Any, d: int) -> LossFn:
    """``loss(theta, x, seed)`` of an ebmlab objective on the quadratic energy."""

    def loss(theta: Tensor, x: Tensor, seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        return objective(quadratic(theta, d), x, None, generator=g)[0]

    return loss


def minimize(loss: LossFn, theta0: Tensor, x: Tensor, seed: int = 0) -> Tensor:
    """Minimize ``loss(theta, x, seed)`` (fixed draws) by L-BFGS to a tiny gradient."""
    theta = theta0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=500,
        tolerance_grad=1e-11,
        tolerance_change=1e-15,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        value = loss(theta, x, seed)
        value.backward()
        return value

    for _ in range(3):
        opt.step(closure)
    theta = theta.detach()
    grad = torch.autograd.functional.jacobian(lambda t: loss(t, x, seed), theta)
    assert grad.abs().max() < 1e-7, f"optimizer did not converge: gradient {grad}"
    return theta


def sandwich_se(
    loss: LossFn, theta: Tensor, x: Tensor, seed: int = 0, n_groups: int = 50
) -> Tensor:
    """Standard errors ``(k,)`` of the minimizer of ``loss(., x, seed)`` at ``theta``."""
    hess = torch.autograd.functional.hessian(lambda t: loss(t, x, seed), theta)
    grads = torch.stack(
        [
            torch.autograd.functional.jacobian(
                lambda t, c=chunk, i=i: loss(t, c, 10_000 + i), theta
            )
            for i, chunk in enumerate(x.chunk(n_groups))
        ]
    )
    v = torch.atleast_2d(torch.cov(grads.T)) / n_groups  # variance of the mean gradient
    h_inv = torch.linalg.inv(hess)
    return torch.sqrt(torch.diagonal(h_inv @ v @ h_inv))


def assert_recovers(
    estimate: Tensor, expected: Tensor, se: Tensor, names: list[str], z: float = 4.0
) -> None:
    """``|estimate - expected| < z SE`` per coordinate (Bonferroni over coordinates)."""
    threshold = bonferroni_z(z, len(names))
    score = (estimate - expected) / se
    table = "\n".join(
        f"{n:>10} observed {float(a):+.5f} expected {float(b):+.5f} SE {float(s):.2e} "
        f"z {float(t):+.2f}"
        for n, a, b, s, t in zip(names, estimate, expected, se, score, strict=True)
    )
    print(table)
    assert bool((score.abs() < threshold).all()), f"|z| >= {threshold:.2f}:\n{table}"


def parameter_names(d: int) -> list[str]:
    rows, cols = torch.triu_indices(d, d)
    return [f"mu[{i}]" for i in range(d)] + [
        f"P[{int(i)},{int(j)}]" for i, j in zip(rows, cols, strict=True)
    ]
