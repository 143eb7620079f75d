"""The result type of every log Z estimator, and the statistics of importance weights.

An :class:`Estimate` carries a point value, a standard error and an interval
``[lower, upper]`` whose meaning depends on the method (exact: the value
itself; quadrature: plus or minus the error estimate; AIS: plus or minus
``z`` standard errors; BDMC: the stochastic lower and upper bounds widened by
their noise). All values are natural logarithms (nats).

Importance weights are handled in log space only: :func:`log_mean_exp` and
:func:`weight_stats` never exponentiate an unshifted log weight.
"""

from __future__ import annotations

__all__ = ["Estimate", "log_mean_exp", "weight_stats"]

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Estimate:
    """A log partition function with its uncertainty.

    Attributes:
        value: The estimate of ``log Z`` (nats), ``Z = sum or integral of exp(-E)``.
        stderr: Its standard error (0 for enumeration; the error estimate for
            quadrature; the delta-method standard error for AIS; for BDMC the
            half gap between the two bounds combined with their noise).
        lower: Lower end of the interval (see the module docstring).
        upper: Upper end of the interval.
        method: ``"exact"``, ``"quadrature"``, ``"ais"``, ``"reverse-ais"`` or ``"bdmc"``.
        seconds: Wall-clock time spent.
        ess: Effective sample size of the final importance weights (AIS).
        n_samples: Number of states summed (exact), grid points (quadrature) or
            chains (AIS).
        is_tight: BDMC only: whether ``upper - lower`` is below the tolerance.
        details: Method-specific extras (schedule, step sizes, acceptance,
            the forward and reverse estimates of BDMC...), JSON-friendly
            except for tensors kept under ``log_weights`` and ``samples``.

    Example:
        >>> est = Estimate(1.5, 0.1, 1.2, 1.8, "ais", 0.5, ess=90.0, n_samples=100)
        >>> est.to_dict()["value"], str(est).startswith("log Z = 1.5")
        (1.5, True)
    """

    value: float
    stderr: float
    lower: float
    upper: float
    method: str
    seconds: float
    ess: float | None = None
    n_samples: int | None = None
    is_tight: bool | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        text = f"log Z = {self.value:.6g} ± {self.stderr:.2g} [{self.lower:.6g}, {self.upper:.6g}]"
        text += f" ({self.method}"
        if self.ess is not None and self.n_samples is not None:
            text += f", ESS {self.ess:.0f}/{self.n_samples}"
        if self.is_tight is not None:
            text += ", tight" if self.is_tight else ", NOT tight"
        return text + f", {self.seconds:.2f} s)"

    @classmethod
    def exact(
        cls, value: float, seconds: float, *, n_samples: int, details: dict[str, Any]
    ) -> Estimate:
        """An exact value (enumeration): zero standard error, a point interval."""
        return cls(value, 0.0, value, value, "exact", seconds, None, n_samples, None, details)

    @classmethod
    def normal(
        cls,
        value: float,
        stderr: float,
        z: float,
        method: str,
        seconds: float,
        *,
        ess: float | None = None,
        n_samples: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> Estimate:
        """An estimate with the interval ``value ± z * stderr`` (AIS, reverse AIS)."""
        return cls(
            value,
            stderr,
            value - z * stderr,
            value + z * stderr,
            method,
            seconds,
            ess=ess,
            n_samples=n_samples,
            details={} if details is None else details,
        )

    def with_seconds(self, seconds: float) -> Estimate:
        """A copy with ``seconds`` replaced."""
        return replace(self, seconds=seconds)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python fields for JSON (details without tensors)."""
        out: dict[str, Any] = {
            "value": self.value,
            "stderr": self.stderr,
            "lower": self.lower,
            "upper": self.upper,
            "method": self.method,
            "seconds": self.seconds,
            "ess": self.ess,
            "n_samples": self.n_samples,
            "is_tight": self.is_tight,
        }
        out["details"] = _jsonable(self.details)
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Estimate):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if not isinstance(v, Tensor)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def log_mean_exp(log_w: Tensor) -> Tensor:
    """``log(mean(exp(log_w)))`` computed stably, a 0-d tensor.

    Example:
        >>> round(float(log_mean_exp(torch.log(torch.tensor([1.0, 3.0])))), 6)  # log 2
        0.693147
    """
    lw = log_w.detach().double().flatten()
    return torch.logsumexp(lw, 0) - math.log(lw.numel())


def weight_stats(log_w: Tensor) -> tuple[float, float, float]:
    """Log mean weight, its delta-method standard error, and the ESS.

    With ``w_i = exp(log_w_i)``, ``Z_hat = mean(w)`` and the standard error of
    ``log Z_hat`` is ``sd(w) / (sqrt(n) mean(w))`` (delta method), computed on
    weights shifted by their maximum so nothing overflows. The effective
    sample size is ``(sum w)^2 / sum w^2``.

    Arguments:
        log_w: Log importance weights, shape ``(n,)``; ``-inf`` allowed (zero
            weight), ``nan`` and ``+inf`` are not.

    Returns:
        ``(log_mean, stderr, ess)`` as Python floats; ``stderr`` is ``inf`` for
        fewer than two weights or when every weight is zero.

    Example:
        >>> m, se, ess = weight_stats(torch.zeros(100))
        >>> m, se, ess
        (0.0, 0.0, 100.0)
    """
    lw = log_w.detach().double().flatten()
    n = lw.numel()
    if n == 0:
        raise ValueError("log_w must hold at least one weight")
    if bool(torch.isnan(lw).any()) or bool((lw == math.inf).any()):
        raise ValueError("log_w must not contain NaN or +inf")
    top = lw.max()
    if not bool(torch.isfinite(top)):
        return -math.inf, math.inf, 0.0
    w = torch.exp(lw - top)
    mean = w.mean()
    log_mean = float(torch.log(mean) + top)
    ess = float(w.sum() ** 2 / (w * w).sum())
    se = float(w.std() / (math.sqrt(n) * mean)) if n > 1 else math.inf
    return log_mean, se, ess
