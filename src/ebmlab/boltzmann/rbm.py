"""Restricted Boltzmann machines: the RBM base class and the Bernoulli-Bernoulli RBM.

An RBM couples visible units ``v`` and binary hidden units ``h`` with no
visible-visible or hidden-hidden connections. Bernoulli-Bernoulli:

.. math:: E(v, h) = -b^\\top v - c^\\top h - h^\\top W v, \\qquad
          F(v) = -b^\\top v - \\sum_j \\operatorname{softplus}(c_j + W_j v),

Gaussian-Bernoulli (real-valued ``v`` with standard deviations ``sigma``):

.. math:: E(v, h) = \\sum_i \\frac{(v_i - b_i)^2}{2 \\sigma_i^2} - c^\\top h
          - h^\\top W (v / \\sigma), \\qquad
          F(v) = \\sum_i \\frac{(v_i - b_i)^2}{2 \\sigma_i^2}
          - \\sum_j \\operatorname{softplus}(c_j + W_j (v / \\sigma)).

``p(v) = exp(-F(v)) / Z``: ``forward(v)`` returns the free energy ``F(v)`` (low =
probable). The structure is exposed as methods (:meth:`RBM.sample_hidden`,
:meth:`RBM.sample_visible`, :meth:`RBM.free_energy`,
:meth:`RBM.hidden_free_energy`), so block Gibbs sampling, exact enumeration of
the smaller layer (at most 26 units) and annealed importance sampling
(:mod:`ebmlab.boltzmann.ais`) need no special cases. The Gaussian-Bernoulli RBM
lives in :mod:`ebmlab.boltzmann.gaussian_rbm`.

Training is contrastive divergence (:mod:`ebmlab.boltzmann.cd`): :class:`CDTrainer`
(one update at a time) and :func:`fit_cd` (epochs over a data set) work with any
model offering ``free_energy(v)`` and ``gibbs(v, n_steps, generator=)``.

References:
    Smolensky (1986); Hinton (2002), "Training products of experts by minimizing
    contrastive divergence", https://doi.org/10.1162/089976602760128018;
    Tieleman (2008), "Training restricted Boltzmann machines using
    approximations to the likelihood gradient",
    https://doi.org/10.1145/1390156.1390290; Hinton (2012), "A practical guide
    to training restricted Boltzmann machines",
    https://doi.org/10.1007/978-3-642-35289-8_32.
"""

from __future__ import annotations

__all__ = ["RBM", "BernoulliRBM"]

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..energies.base import Energy
from ..partition.estimate import Estimate
from .ais import rbm_ais_log_z
from .enumeration import MAX_ENUMERATION_UNITS, _bernoulli, _enumerate_log_sum_exp, _gdev


class _BernoulliFreeEnergy(torch.autograd.Function):
    """``F(v) = -v b - sum softplus(v W^T + c)`` with a hand-written backward.

    The backward pass reuses the saved pre-activations: the gradients are
    ``dF/dv = -b - sigmoid(a) W``, ``dF/dW = -sigmoid(a)^T v``,
    ``dF/db = -v`` and ``dF/dc = -sigmoid(a)`` (weighted by the incoming
    gradient), which is what contrastive divergence needs, at the cost of one
    matrix product per parameter.
    """

    @staticmethod
    def forward(ctx: Any, v: Tensor, weight: Tensor, vbias: Tensor, hbias: Tensor) -> Tensor:
        a = torch.addmm(hbias, v, weight.t())
        ctx.save_for_backward(v, weight, vbias, a)
        return -(v @ vbias) - F.softplus(a).sum(-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        v, weight, vbias, a = ctx.saved_tensors
        gp = torch.sigmoid(a) * grad[:, None]  # (N, H)
        grad_v = grad_w = grad_b = grad_c = None
        if ctx.needs_input_grad[0]:
            grad_v = -(grad[:, None] * vbias + gp @ weight)
        if ctx.needs_input_grad[1]:
            grad_w = -(gp.t() @ v)
        if ctx.needs_input_grad[2]:
            grad_b = -(grad @ v)
        if ctx.needs_input_grad[3]:
            grad_c = -gp.sum(0)
        return grad_v, grad_w, grad_b, grad_c


class RBM(Energy):
    """Base class of restricted Boltzmann machines (see the module docstring).

    Parameters: ``weight`` of shape ``(n_hidden, n_visible)`` (scikit-learn's
    ``components_`` layout), ``visible_bias`` ``(n_visible,)`` and
    ``hidden_bias`` ``(n_hidden,)``. Subclasses define the visible layer.

    Arguments:
        n_visible: Number of visible units.
        n_hidden: Number of hidden units.
        weight_scale: Standard deviation of the initial weights (biases start
            at 0).
        generator: Random generator for the initial weights.
        dtype: Parameter dtype (default torch's default).
        device: Parameter device.
    """

    domain: str = "binary"

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        weight_scale: float = 0.01,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if int(n_visible) < 1:
            raise ValueError(f"n_visible must be >= 1, got {n_visible}")
        if int(n_hidden) < 1:
            raise ValueError(f"n_hidden must be >= 1, got {n_hidden}")
        if not weight_scale >= 0:
            raise ValueError(f"weight_scale must be >= 0, got {weight_scale}")
        super().__init__(int(n_visible))
        dtype = dtype or torch.get_default_dtype()
        w = torch.randn(  # float64 draws: the same weights in every dtype
            int(n_hidden),
            int(n_visible),
            generator=generator,
            dtype=torch.float64,
            device=_gdev(generator),
        ).to(dtype)
        self.weight = nn.Parameter((w * weight_scale).to(device))
        self.visible_bias = nn.Parameter(torch.zeros(int(n_visible), dtype=dtype, device=device))
        self.hidden_bias = nn.Parameter(torch.zeros(int(n_hidden), dtype=dtype, device=device))

    @property
    def n_visible(self) -> int:
        """Number of visible units."""
        return int(self.weight.shape[1])

    @property
    def n_hidden(self) -> int:
        """Number of hidden units."""
        return int(self.weight.shape[0])

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}"

    # -- structure ---------------------------------------------------------
    def _visible_input(self, v: Tensor) -> Tensor:
        """What the hidden units see of ``v`` (``v`` itself; ``v / sigma`` for Gaussian)."""
        return v

    def _as_param(self, x: Tensor) -> Tensor:
        w = self.weight
        if x.dtype == w.dtype and x.device == w.device:
            return x
        return x.to(dtype=w.dtype, device=w.device)

    def hidden_logits(self, v: Tensor) -> Tensor:
        """Pre-activations ``c + W v`` of the hidden units, shape ``(N, n_hidden)``."""
        return F.linear(self._visible_input(self._as_param(v)), self.weight, self.hidden_bias)

    def hidden_probs(self, v: Tensor) -> Tensor:
        """``p(h_j = 1 | v)``, shape ``(N, n_hidden)``."""
        return torch.sigmoid(self.hidden_logits(v))

    def sample_hidden(self, v: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``h ~ p(h | v)`` in {0, 1}, shape ``(N, n_hidden)``."""
        return _bernoulli(self.hidden_probs(v), generator)

    def _gibbs_step(self, v: Tensor, generator: torch.Generator | None) -> Tensor:
        """``v -> h -> v`` for ``v`` already in the parameters' dtype and device."""
        logits = F.linear(self._visible_input(v), self.weight, self.hidden_bias)
        return self._sample_visible(_bernoulli(torch.sigmoid(logits), generator), generator)

    def _sample_visible(
        self, h: Tensor, generator: torch.Generator | None
    ) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def visible_mean(self, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``E[v | h]``, shape ``(N, n_visible)``."""
        raise NotImplementedError

    def sample_visible(
        self, h: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:  # pragma: no cover - abstract
        """Draw ``v ~ p(v | h)``, shape ``(N, n_visible)``."""
        raise NotImplementedError

    def energy(self, v: Tensor, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Joint energy ``E(v, h)``, shape ``(N,)``."""
        raise NotImplementedError

    def free_energy(self, v: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``F(v) = -log sum_h exp(-E(v, h))``, shape ``(N,)``; low = probable."""
        raise NotImplementedError

    def hidden_free_energy(self, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``-log sum_v exp(-E(v, h))`` (an integral for real ``v``), shape ``(N,)``."""
        raise NotImplementedError

    def forward(self, v: Tensor) -> Tensor:
        """The free energy ``F(v)``, shape ``(N,)`` (see :meth:`free_energy`)."""
        return self.free_energy(v)

    def _visible_bias_grad_scale(self) -> Tensor | float:
        """``dF/db = -(v - b) * scale`` up to a ``v``-free term (1; ``1 / sigma^2``)."""
        return 1.0

    def cd_parameters(self) -> list[nn.Parameter] | None:
        """The parameters :meth:`cd_grads` differentiates, or ``None`` when others train too."""
        params = [p for p in self.parameters() if p.requires_grad]
        expected = [self.weight, self.visible_bias, self.hidden_bias]
        if len(params) != 3 or any(p is not q for p, q in zip(params, expected, strict=True)):
            return None
        return params

    def cd_grads(self, v_pos: Tensor, v_neg: Tensor) -> list[Tensor]:
        """Hand-written gradient of ``mean F(v_pos) - mean F(v_neg)``.

        With ``p = sigmoid(c + W x)`` (``x = v``, or ``v / sigma``):
        ``d/dW = mean p- x-^T - mean p+ x+^T``, ``d/dc = mean p- - mean p+``,
        ``d/db = (mean v- - mean v+) * scale`` (``scale = 1``, or
        ``1 / sigma^2``). :class:`~ebmlab.objectives.BlockGibbsCD` uses it
        (through :meth:`cd_grads_and_free_energy`) when :meth:`cd_parameters`
        are all the trained parameters.

        Arguments:
            v_pos: Data batch ``(B, n_visible)``.
            v_neg: Negatives ``(M, n_visible)``.

        Returns:
            Gradients for ``[weight, visible_bias, hidden_bias]`` (not tracked
            by autograd).
        """
        return self.cd_grads_and_free_energy(v_pos, v_neg)[0]

    def cd_grads_and_free_energy(
        self, v_pos: Tensor, v_neg: Tensor
    ) -> tuple[list[Tensor], Tensor]:
        """:meth:`cd_grads` and the free energies of ``[v_pos; v_neg]``, shape ``(B + M,)``.

        The free energies reuse the hidden pre-activations of the gradient
        (a few operations more, no second pass).
        """
        # One pass over the stacked rows [v_pos; v_neg] with row weights
        # s = -1/B (data) and +1/M (negatives): grad W = (s p)^T x,
        # grad c = sum s p, grad b = scale * (s^T v). Few, larger tensor ops:
        # for small RBMs the per-operation overhead is what costs.
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self.cd_grads_and_free_energy(v_pos, v_neg)
        v = torch.cat([self._as_param(v_pos), self._as_param(v_neg)])
        x = self._visible_input(v)
        a = F.linear(x, self.weight, self.hidden_bias)
        p = torch.sigmoid(a)
        s = self._row_weights(v_pos.shape[0], v_neg.shape[0])
        sp = p * s[:, None]
        g_w = sp.t() @ x
        g_c = sp.sum(0)
        g_b = s @ v
        scale = self._visible_bias_grad_scale()
        if not isinstance(scale, float) or scale != 1.0:
            g_b = g_b * scale
        free = self._visible_free_energy(v) - F.softplus(a).sum(-1)
        return [g_w, g_b, g_c], free

    def _visible_free_energy(self, v: Tensor) -> Tensor:
        """The visible term of ``F(v)`` (``-b v``; the Gaussian quadratic), shape ``(N,)``."""
        return -(v @ self.visible_bias)

    def _row_weights(self, n_pos: int, n_neg: int) -> Tensor:
        key = (n_pos, n_neg, self.weight.dtype, self.weight.device)
        cache: dict[Any, Tensor] = self.__dict__.setdefault("_row_weight_cache", {})
        if key not in cache:
            kw: dict[str, Any] = {"dtype": self.weight.dtype, "device": self.weight.device}
            s = torch.cat(
                [torch.full((n_pos,), -1.0 / n_pos, **kw), torch.full((n_neg,), 1.0 / n_neg, **kw)]
            )
            cache.clear()
            cache[key] = s
        return cache[key]

    # -- sampling ----------------------------------------------------------
    def gibbs(
        self, v: Tensor, n_steps: int = 1, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n_steps`` of block Gibbs sampling ``v -> h -> v``.

        Arguments:
            v: Visible states, shape ``(N, n_visible)``.
            n_steps: Full steps (each draws all hidden, then all visible units).
            generator: Random generator.

        Returns:
            New visible states, shape ``(N, n_visible)``.
        """
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self.gibbs(v, n_steps, generator=generator)
        v = self._as_param(v)
        for _ in range(int(n_steps)):
            v = self._gibbs_step(v, generator)
        return v

    @torch.no_grad()
    def sample(
        self,
        n: int,
        n_steps: int = 1000,
        *,
        init: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``n`` approximate samples from ``n`` independent Gibbs chains.

        Arguments:
            n: Number of chains (ignored when ``init`` is given).
            n_steps: Gibbs steps per chain.
            init: Starting visible states ``(N, n_visible)``; default: a draw of
                ``p(v | h)`` with ``h`` uniform.
            generator: Random generator.

        Returns:
            Visible states, shape ``(n, n_visible)``.
        """
        if init is None:
            h = torch.rand(
                int(n),
                self.n_hidden,
                generator=generator,
                dtype=torch.float64,
                device=self.weight.device,
            )
            init = self.sample_visible((h < 0.5).to(self.weight.dtype), generator)
        return self.gibbs(init, n_steps, generator=generator)

    # -- partition function ------------------------------------------------
    def _enumerable_layers(self) -> list[str]:
        return ["hidden"]

    def _log_normalizer_gap(self) -> float:
        """Constant added to ``log Z`` by integration over real visible units."""
        return 0.0

    @torch.no_grad()
    def exact_log_z(self, layer: str = "auto", *, chunk_size: int = 2**16) -> Estimate:
        """Exact ``log Z`` by enumerating one layer (at most 26 units).

        ``Z = sum_h exp(-G(h))`` with ``G`` the hidden free energy
        (:meth:`hidden_free_energy`), or ``Z = sum_v exp(-F(v))`` for binary
        visible units. ``"auto"`` enumerates the smaller enumerable layer.

        Arguments:
            layer: ``"auto"``, ``"hidden"`` or ``"visible"`` (binary visible
                units only).
            chunk_size: States per batch (memory stays at one chunk).

        Returns:
            An :class:`~ebmlab.partition.Estimate` with ``method="exact"``.

        Raises:
            ValueError: For an unknown layer or one with more than 26 units.
        """
        t0 = time.perf_counter()
        choices = self._enumerable_layers()
        sizes = {"hidden": self.n_hidden, "visible": self.n_visible}
        if layer == "auto":
            layer = min(choices, key=lambda name: sizes[name])
        if layer not in choices:
            raise ValueError(f"layer must be 'auto' or one of {choices}, got {layer!r}")
        n_units = sizes[layer]
        if n_units > MAX_ENUMERATION_UNITS:
            raise ValueError(
                f"the {layer} layer has {n_units} units, more than {MAX_ENUMERATION_UNITS}: "
                "enumeration would take too long; use method='ais'"
            )
        fn: Callable[[Tensor], Tensor] = (
            self.hidden_free_energy if layer == "hidden" else self.free_energy
        )
        value = _enumerate_log_sum_exp(
            fn, n_units, dtype=self.weight.dtype, device=self.weight.device, chunk_size=chunk_size
        )
        total = 2**n_units
        return Estimate.exact(
            value,
            time.perf_counter() - t0,
            n_samples=total,
            details={"layer": layer, "n_units": n_units},
        )

    def ais_log_z(
        self,
        *,
        n_chains: int = 100,
        n_betas: int = 1000,
        betas: Tensor | None = None,
        base_visible_bias: Tensor | None = None,
        data: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Estimate:
        """``log Z`` by the annealed importance sampling of Salakhutdinov & Murray (2008).

        See :func:`ebmlab.boltzmann.ais.rbm_ais_log_z` for the arguments.
        """
        return rbm_ais_log_z(
            self,
            n_chains=n_chains,
            n_betas=n_betas,
            betas=betas,
            base_visible_bias=base_visible_bias,
            data=data,
            generator=generator,
        )

    def log_z(self, method: str = "auto", **kwargs: Any) -> Estimate:
        """``log Z``: exact when a layer has at most 26 units, else AIS.

        Arguments:
            method: ``"auto"``, ``"exact"`` or ``"ais"``.
            **kwargs: Passed to :meth:`exact_log_z` or :meth:`ais_log_z`.

        Returns:
            An :class:`~ebmlab.partition.Estimate`.
        """
        if method not in ("auto", "exact", "ais"):
            raise ValueError(f"method must be 'auto', 'exact' or 'ais', got {method!r}")
        if method == "auto":
            sizes = {"hidden": self.n_hidden, "visible": self.n_visible}
            small = min(sizes[name] for name in self._enumerable_layers())
            method = "exact" if small <= MAX_ENUMERATION_UNITS else "ais"
        if method == "exact":
            return self.exact_log_z(**kwargs)
        return self.ais_log_z(**kwargs)

    @torch.no_grad()
    def log_prob(self, v: Tensor, log_z: float | Estimate | None = None) -> Tensor:
        """``log p(v) = -F(v) - log Z``, shape ``(N,)`` (a log density for real ``v``).

        Arguments:
            v: Visible states, shape ``(N, n_visible)``.
            log_z: A known ``log Z``; default :meth:`log_z` (exact or AIS).
        """
        if log_z is None:
            log_z = self.log_z()
        return -self.free_energy(v).double() - float(log_z)

    # -- annealing path used by AIS (p_0 = base, p_1 = this RBM) -----------
    # log p*_beta(v) = (1 - beta) lin0(v) + beta lin1(v) + sum_j softplus(beta a_j(v)),
    # a = hidden_logits(v); _ais_stats returns (a, lin0, lin1) so that one matrix
    # product serves both neighbouring temperatures and the transition.
    def _ais_base(
        self, n: int, base_visible_bias: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _ais_stats(
        self, v: Tensor, base_visible_bias: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _ais_transition(
        self,
        a: Tensor,
        beta: float,
        base_visible_bias: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:  # pragma: no cover - abstract
        """One Gibbs step at ``beta`` from a state whose hidden logits are ``a``."""
        raise NotImplementedError


class BernoulliRBM(RBM):
    """RBM with binary visible and hidden units (values in {0, 1}).

    ``forward(v)`` is the free energy ``F(v) = -b v - sum_j softplus(c_j + W_j v)``,
    computed with a hand-written backward pass (checked by ``gradcheck``).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> rbm = BernoulliRBM(6, 3, generator=g)
        >>> v = torch.bernoulli(torch.full((5, 6), 0.5), generator=g)
        >>> rbm(v).shape, rbm.gibbs(v, 2, generator=g).shape
        (torch.Size([5]), torch.Size([5, 6]))
        >>> est = rbm.log_z()  # enumerates the 3 hidden units
        >>> est.method, float(rbm.log_prob(v, est).exp().sum()) <= 1.0
        ('exact', True)
    """

    domain = "binary"

    def visible_mean(self, h: Tensor) -> Tensor:
        """``p(v_i = 1 | h)``, shape ``(N, n_visible)``."""
        return torch.sigmoid(torch.addmm(self.visible_bias, self._as_param(h), self.weight))

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``v ~ p(v | h)`` in {0, 1}, shape ``(N, n_visible)``."""
        return self._sample_visible(self._as_param(h), generator)

    def _sample_visible(self, h: Tensor, generator: torch.Generator | None) -> Tensor:
        logits = torch.addmm(self.visible_bias, h, self.weight)
        return _bernoulli(torch.sigmoid(logits), generator)

    def energy(self, v: Tensor, h: Tensor) -> Tensor:
        """``E(v, h) = -b v - c h - h W v``, shape ``(N,)``."""
        v, h = self._as_param(v), self._as_param(h)
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((h @ self.weight) * v).sum(-1)

    def free_energy(self, v: Tensor) -> Tensor:
        """``F(v) = -b v - sum_j softplus(c_j + W_j v)``, shape ``(N,)``."""
        self.check_input(v)
        out: Tensor = _BernoulliFreeEnergy.apply(
            self._as_param(v), self.weight, self.visible_bias, self.hidden_bias
        )
        return out

    def hidden_free_energy(self, h: Tensor) -> Tensor:
        """``G(h) = -c h - sum_i softplus(b_i + (h W)_i)``, shape ``(N,)``."""
        h = self._as_param(h)
        a = torch.addmm(self.visible_bias, h, self.weight)
        return -(h @ self.hidden_bias) - F.softplus(a).sum(-1)

    def _enumerable_layers(self) -> list[str]:
        return ["hidden", "visible"]

    def _ais_base(
        self, n: int, base_visible_bias: Tensor | None, generator: torch.Generator | None
    ) -> tuple[Tensor, float]:
        b0 = self.visible_bias if base_visible_bias is None else base_visible_bias
        v = _bernoulli(torch.sigmoid(b0).expand(n, -1).contiguous(), generator)
        log_z0 = float(F.softplus(b0).sum()) + self.n_hidden * math.log(2.0)
        return v, log_z0

    def _ais_stats(
        self, v: Tensor, base_visible_bias: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        b0 = self.visible_bias if base_visible_bias is None else base_visible_bias
        return self.hidden_logits(v), v @ b0, v @ self.visible_bias

    def _ais_transition(
        self,
        a: Tensor,
        beta: float,
        base_visible_bias: Tensor | None,
        generator: torch.Generator | None,
    ) -> Tensor:
        b0 = self.visible_bias if base_visible_bias is None else base_visible_bias
        h = _bernoulli(torch.sigmoid(beta * a), generator)
        logits = (1.0 - beta) * b0 + beta * torch.addmm(self.visible_bias, h, self.weight)
        return _bernoulli(torch.sigmoid(logits), generator)
