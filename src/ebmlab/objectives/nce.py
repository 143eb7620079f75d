"""Noise-contrastive estimation: learn an energy and its log Z by classifying
data against samples of a known noise distribution.

Gutmann & Hyvärinen (2010, 2012): with the model ``log p(x) = -E(x) - c`` (``c``
a learned parameter, the log normalizer) and a noise density ``q`` that can be
sampled and evaluated exactly, classify data (label 1) against ``nu`` noise
samples per data point (label 0) by logistic regression on

.. math:: G(x) = \\log p(x) - \\log q(x) - \\log \\nu.

The loss (per data point)

.. math:: J = -\\mathbb E_{x \\sim data}[\\log \\sigma(G(x))]
              - \\nu\\, \\mathbb E_{y \\sim q}[\\log \\sigma(-G(y))]

is minimized by the data density, with ``c`` its exact log normalizer: NCE
learns a *normalized* model. No MCMC; the price is the noise. It must cover
the data (where ``q`` is tiny and the data are not, the classifier wins
without learning the shape) and should not be too easy to tell apart, or the
gradients vanish: in high dimension a Gaussian is hopeless.

:class:`NoiseContrastiveEstimation` is an ``nn.Module`` that owns ``log_z``
(an ``nn.Parameter``); :func:`ebmlab.train.fit` trains the parameters of an
objective that is an ``nn.Module`` alongside the energy's and checkpoints them.
"""

from __future__ import annotations

__all__ = [
    "NCEDiagnostics",
    "NoiseContrastiveEstimation",
    "NoiseModel",
    "fit_gaussian_noise",
    "fit_mixture_noise",
]

import math
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._types import EnergyFn
from ..energies.gaussian import Gaussian, GaussianMixture


@runtime_checkable
class NoiseModel(Protocol):
    """A distribution with exact samples and exact normalized log density
    (e.g. :class:`~ebmlab.energies.Gaussian`, :class:`~ebmlab.energies.GaussianMixture`)."""

    def log_prob(self, x: Tensor) -> Tensor:
        """Normalized log density ``(N,)`` of ``x`` ``(N, *event_shape)``."""
        ...

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact samples ``(n, *event_shape)``."""
        ...


class NCEDiagnostics(NamedTuple):
    """Diagnostics of one NCE evaluation (0-d tensors, detached).

    Attributes:
        loss: The scalar loss that was returned.
        energy_pos: Mean energy of the data batch.
        energy_neg: Mean energy of the noise samples.
        energy_gap: ``energy_neg - energy_pos``.
        log_z: The current learned log normalizer.
        accuracy: Share of data and noise points classified correctly
            (``G > 0`` for data, ``G < 0`` for noise); 0.5 when the model
            matches the noise, 1 when the two are trivially separable.
    """

    loss: Tensor
    energy_pos: Tensor
    energy_neg: Tensor
    energy_gap: Tensor
    log_z: Tensor
    accuracy: Tensor


def fit_gaussian_noise(data: Tensor, scale: float = 1.0, jitter: float = 1e-6) -> Gaussian:
    """A Gaussian with the data's mean and covariance (times ``scale^2``), as NCE noise.

    Arguments:
        data: Samples ``(N, D)`` (higher event shapes are flattened).
        scale: Widen (> 1) or narrow the fitted Gaussian.
        jitter: Added to the covariance diagonal, relative to its mean variance.

    Returns:
        A :class:`~ebmlab.energies.Gaussian` in the data's dtype.

    Example:
        >>> g = fit_gaussian_noise(torch.randn(1000, 2) * 3, scale=1.5)
        >>> g.mean.shape, g.covariance.shape
        (torch.Size([2]), torch.Size([2, 2]))
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    x = data.detach().reshape(data.shape[0], -1)
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 points to fit a Gaussian, got {x.shape[0]}")
    mean = x.mean(0)
    cov = torch.atleast_2d(torch.cov(x.T))
    cov = 0.5 * (cov + cov.T) * scale**2
    cov = cov + jitter * cov.diagonal().mean() * torch.eye(
        cov.shape[0], dtype=x.dtype, device=x.device
    )
    return Gaussian(mean, cov)


def fit_mixture_noise(
    data: Tensor,
    n_components: int = 8,
    scale: float = 1.0,
    *,
    random_state: int = 0,
    max_points: int = 20_000,
) -> GaussianMixture:
    """A Gaussian mixture fitted to the data by EM, as NCE noise.

    NCE learns fastest when the noise is close to the data (the classifier
    then learns only the residual ``log p - log q``); a mixture covers
    multimodal data far better than one Gaussian, whose mass mostly falls
    between the modes. The fit uses scikit-learn's ``GaussianMixture`` (full
    covariances) on at most ``max_points`` rows.

    Arguments:
        data: Samples ``(N, D)`` (higher event shapes are flattened).
        n_components: Mixture components (at most ``N``).
        scale: Widen (> 1) each component's covariance by ``scale^2``.
        random_state: Seed of the EM initialization (and of the subsample).
        max_points: Rows used for the fit.

    Returns:
        A :class:`~ebmlab.energies.GaussianMixture` (exact samples and
        normalized ``log_prob``) in the data's dtype and on its device.

    Example:
        >>> q = fit_mixture_noise(torch.randn(500, 2), n_components=3)
        >>> q.means.shape
        torch.Size([3, 2])
    """
    from sklearn.mixture import GaussianMixture as _SkGMM

    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    x = data.detach().reshape(data.shape[0], -1)
    if not 1 <= int(n_components) <= x.shape[0]:
        raise ValueError(
            f"n_components must be between 1 and the number of points {x.shape[0]}, "
            f"got {n_components}"
        )
    rows = x.cpu().double().numpy()
    if rows.shape[0] > max_points:
        keep = torch.randperm(
            rows.shape[0], generator=torch.Generator().manual_seed(random_state)
        )[:max_points]
        rows = rows[keep.numpy()]
    gmm = _SkGMM(int(n_components), covariance_type="full", random_state=random_state)
    gmm.fit(rows)

    def t(a: Any) -> Tensor:
        return torch.as_tensor(a, dtype=x.dtype, device=x.device)

    return GaussianMixture(t(gmm.weights_), t(gmm.means_), t(gmm.covariances_) * scale**2)


def _dtype_device(noise: Any, like: Tensor) -> tuple[torch.dtype, torch.device]:
    """Where the noise's tensors live (its first floating buffer or parameter), else ``like``'s."""
    if isinstance(noise, nn.Module):
        for t in (*noise.parameters(), *noise.buffers()):
            if t.is_floating_point():
                return t.dtype, t.device
    return like.dtype, like.device


class NoiseContrastiveEstimation(nn.Module):
    """Noise-contrastive estimation with a learned log normalizer.

    Arguments:
        noise: A :class:`NoiseModel` (any energy with exact ``sample`` and
            normalized ``log_prob``), or a data tensor ``(N, *event_shape)`` to
            fit a Gaussian to (see :func:`fit_gaussian_noise`).
        noise_ratio: ``nu``, noise samples per data point (> 0; the number
            drawn per update is ``round(nu * batch)``).
        noise_scale: When fitting a Gaussian to data: widen it by this factor.
        log_z_init: Initial ``log Z``; ``None`` sets it at the first call to an
            importance-sampling estimate from the noise samples,
            ``log mean exp(-E(y) - log q(y))``, so the classifier starts near
            balance instead of spending its first updates on ``log Z``.

    Attributes:
        log_z: The learned log normalizer (``nn.Parameter``, 0-d).
        noise: The noise distribution.

    Example:
        >>> from ebmlab.energies import MLPEnergy
        >>> data = torch.randn(500, 2)
        >>> nce = NoiseContrastiveEstimation(data, noise_ratio=2.0)
        >>> loss, diag, state = nce(MLPEnergy(2, hidden=(8,)), data[:32], None)
        >>> loss.shape, [n for n, _ in nce.named_parameters()]
        (torch.Size([]), ['log_z'])

    References:
        Gutmann, M. & Hyvärinen, A. (2010). Noise-contrastive estimation: a new
        estimation principle for unnormalized statistical models. AISTATS.
        Gutmann, M. & Hyvärinen, A. (2012). Noise-contrastive estimation of
        unnormalized statistical models, with applications to natural image
        statistics. JMLR 13. https://jmlr.org/papers/v13/gutmann12a.html
    """

    is_initialized: Tensor
    noise: NoiseModel

    def __init__(
        self,
        noise: NoiseModel | Tensor,
        noise_ratio: float = 1.0,
        *,
        noise_scale: float = 1.0,
        log_z_init: float | None = None,
    ) -> None:
        super().__init__()
        if not (isinstance(noise_ratio, int | float) and math.isfinite(noise_ratio)):
            raise ValueError(f"noise_ratio must be a finite number > 0, got {noise_ratio!r}")
        if noise_ratio <= 0:
            raise ValueError(f"noise_ratio must be > 0, got {noise_ratio}")
        if isinstance(noise, Tensor):
            noise = fit_gaussian_noise(noise, scale=noise_scale)
        elif not isinstance(noise, NoiseModel):
            raise TypeError(
                "noise must be a data tensor or have sample(n, generator=) and log_prob(x), "
                f"got {type(noise).__name__}"
            )
        # A plain attribute, not a submodule: the noise is fixed, never trained.
        object.__setattr__(self, "noise", noise)
        self.noise_ratio = float(noise_ratio)
        self.log_z = nn.Parameter(torch.tensor(0.0 if log_z_init is None else float(log_z_init)))
        self.register_buffer("is_initialized", torch.tensor(log_z_init is not None))
        # Host copy of the flag, so that a training step does not read the buffer back from
        # the device; reset whenever a state dict is loaded.
        self._initialized: bool | None = log_z_init is not None

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._initialized = None

    def extra_repr(self) -> str:
        return f"noise={type(self.noise).__name__}, noise_ratio={self.noise_ratio}"

    def init_state(self, *args: Any, **kwargs: Any) -> None:
        """NCE keeps no sampler state between updates (``log_z`` is a parameter)."""
        return None

    def _noise(self, n: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
        y = self.noise.sample(n, generator=generator)
        return y.to(device=like.device, dtype=like.dtype).reshape((n, *like.shape[1:]))

    def forward(
        self,
        energy: EnergyFn,
        x_pos: Tensor,
        state: Any = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, NCEDiagnostics, Any]:
        """Loss for one data batch ``x_pos`` of shape ``(B, *event_shape)``.

        Returns:
            ``(loss, diagnostics, state)``; ``state`` is returned unchanged.
            The loss's gradient reaches the energy's parameters and ``log_z``.
        """
        b = x_pos.shape[0]
        n_noise = max(1, round(self.noise_ratio * b))
        y = self._noise(n_noise, x_pos, generator)
        both = torch.cat([x_pos, y])
        e = energy(both)
        with torch.no_grad():
            dtype, device = _dtype_device(self.noise, both)
            log_q = self.noise.log_prob(both.to(device=device, dtype=dtype))
            log_q = log_q.to(device=e.device, dtype=e.dtype)
            if self._initialized is None:
                self._initialized = bool(self.is_initialized)
            if not self._initialized:
                w = -e[b:] - log_q[b:]
                self.log_z.copy_(torch.logsumexp(w, 0) - math.log(n_noise))
                self.is_initialized.fill_(True)
                self._initialized = True
        log_z = self.log_z.to(e.dtype)
        g = -e - log_z - log_q - math.log(self.noise_ratio)
        loss = -(F.logsigmoid(g[:b]).mean() + self.noise_ratio * F.logsigmoid(-g[b:]).mean())
        with torch.no_grad():
            mp, mn = e[:b].mean(), e[b:].mean()
            correct = torch.cat([g[:b] > 0, g[b:] < 0]).to(e.dtype)
            # Data and noise count as the loss weighs them: 1 and nu per data point.
            accuracy = (correct[:b].mean() + self.noise_ratio * correct[b:].mean()) / (
                1.0 + self.noise_ratio
            )
        diag = NCEDiagnostics(
            loss.detach(), mp, mn, mn - mp, self.log_z.detach().clone(), accuracy
        )
        return loss, diag, state
