"""Checkerboard (block) Gibbs and Metropolis sweeps for Ising and Potts models,
and a generic block Gibbs loop.

A spin model (:class:`~ebmlab.lattice.IsingModel`, :class:`~ebmlab.lattice.PottsModel`
or anything exposing the same structure) splits its sites into colours, sets
of sites with no bond between them (the two checkerboard colours of a
bipartite lattice). Sites of one colour are conditionally independent given
the others, so a whole colour is updated at once, for every chain:

- :class:`CheckerboardGibbs` draws each site from its exact conditional (heat
  bath): ``p(s_i = +1 | rest) = sigmoid(2 beta h_i)`` with ``h_i`` the local
  field, ``softmax(beta h_i)`` for Potts;
- :class:`Metropolis` proposes a flip (Potts: another state, uniformly) and
  accepts it with probability ``min(1, exp(-Delta E))``.

Both leave ``p(s) ~ exp(-E(s))`` invariant. Periodic Ising lattices with even
sides and a field uniform over sites (per chain at most) take a fast path: the
spins are packed by sublattice as bytes and thresholds are drawn ahead, so a
sweep costs a few byte operations per site (see ``_lattice.py``); other models
use the local field (lattice shifts or a sparse product). Sweeps run on one
intra-op thread below 2^20 sites and whenever the machine's cores are busy
(there a parallel region waits for a descheduled thread: 100 times slower was
measured on a shared 2-core machine); the caller's setting is restored after.

:class:`BlockGibbs` is the generic loop for any model whose blocks have exact
conditional samplers (restricted Boltzmann machines, mixtures): it applies a
list of ``update(x, generator) -> x`` functions in turn.

References:
    Geman, S. & Geman, D. (1984). Stochastic relaxation, Gibbs distributions,
    and the Bayesian restoration of images. IEEE TPAMI 6(6), 721-741.
"""

from __future__ import annotations

__all__ = [
    "BlockGibbs",
    "BlockGibbsState",
    "CheckerboardGibbs",
    "Metropolis",
    "SpinInfo",
    "SpinState",
]

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._lattice import PackedLattice, flip_probabilities, threads_for, torch_threads


class SpinState(NamedTuple):
    """Chains of a spin sampler.

    Attributes:
        x: Configurations, shape ``(n_chains, *event_shape)``: ``-1.0``/``+1.0``
            (Ising) or ``0.0 .. q - 1`` (Potts).
    """

    x: Tensor


class SpinInfo(NamedTuple):
    """Per-step diagnostics.

    Attributes:
        acceptance_rate: Fraction of sites whose value changed during the step,
            per chain, shape ``(n_chains,)``. With one sweep per step this is
            the Metropolis acceptance rate (every site is proposed once).
    """

    acceptance_rate: Tensor


def _check_model(model: Any, x: Tensor) -> None:
    for name in ("colors", "local_field", "beta", "field", "event_shape"):
        if not hasattr(model, name):
            raise TypeError(
                f"spin samplers need a spin model (IsingModel, PottsModel), got "
                f"{type(model).__name__} without {name!r}"
            )
    if tuple(x.shape[1:]) != tuple(model.event_shape):
        raise ValueError(
            f"x must have shape (n_chains, {', '.join(map(str, model.event_shape))}), "
            f"got {tuple(x.shape)}"
        )
    model._check_chains(x.shape[0])


def _is_ising(model: Any) -> bool:
    return int(getattr(model, "n_states", 2)) == 2 and getattr(model, "domain", None) == "spin"


def _site_beta(model: Any, x: Tensor) -> Tensor:
    """``beta`` broadcastable to ``x`` ``(N, *event_shape)``."""
    beta = model.beta.to(x.dtype)
    return beta.reshape((-1,) + (1,) * (x.dim() - 1)) if beta.dim() == 1 else beta


def _per_chain(t: Tensor, n_chains: int) -> Tensor:
    """A scalar or ``(N,)`` tensor as ``(N, 1)`` for broadcasting over sites."""
    return t.reshape(-1, 1) if t.dim() == 1 else t.reshape(1, 1).expand(n_chains, 1)


def _color_masks(model: Any, device: torch.device) -> list[Tensor]:
    """One boolean mask per colour, shaped like one configuration."""
    masks = []
    for idx in model.colors():
        m = torch.zeros(model.n_sites, dtype=torch.bool, device=device)
        m[idx.to(device)] = True
        masks.append(m.view(model.event_shape))
    return masks


def _uniform_field(model: Any) -> Tensor | None:
    """The field per chain ``(R,)`` (``R`` = 1 or chains) when it is uniform over sites."""
    f = model.field
    if f.numel() == 1:
        return f.reshape(1)
    n_event = len(model.event_shape)
    if f.dim() == n_event + 1 and all(s == 1 for s in f.shape[1:]):
        return f.reshape(-1)
    return None


def _packed_probs(model: Any, kind: str) -> Tensor | None:
    """Flip-probability table for the packed path, or ``None`` when it does not apply."""
    shape = getattr(model, "lattice_shape", None)
    if shape is None or not model.periodic or any(s % 2 for s in shape):
        return None
    field = _uniform_field(model)
    if field is None:
        return None
    beta = model.beta.reshape(-1)
    n = max(beta.numel(), field.numel())
    beta = beta.expand(n) if beta.numel() == 1 else beta
    field = field.expand(n) if field.numel() == 1 else field
    return flip_probabilities(beta, float(model.coupling), field, 2 * len(shape), kind)


class _SpinSweeper:
    """Shared machinery of :class:`CheckerboardGibbs` and :class:`Metropolis`."""

    kind = "gibbs"
    has_acceptance = False

    def __init__(self, sweeps_per_step: int = 1) -> None:
        if not isinstance(sweeps_per_step, int) or sweeps_per_step < 1:
            raise ValueError(f"sweeps_per_step must be an integer >= 1, got {sweeps_per_step!r}")
        self.sweeps_per_step = sweeps_per_step

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sweeps_per_step={self.sweeps_per_step})"

    def init(self, x: Tensor, energy: Any) -> SpinState:
        """Chains at ``x`` ``(n_chains, *event_shape)``."""
        _check_model(energy, x)
        return SpinState(x.detach().clone())

    def step(
        self, state: SpinState, energy: Any, *, generator: torch.Generator | None = None
    ) -> tuple[SpinState, SpinInfo]:
        """``sweeps_per_step`` sweeps of every chain (every colour once per sweep)."""
        x0 = state.x
        n = x0.shape[0]
        with torch.no_grad(), torch_threads(threads_for(x0.numel()), x0.device):
            probs = _packed_probs(energy, self.kind) if _is_ising(energy) else None
            if probs is not None:
                packed = PackedLattice(tuple(energy.lattice_shape), n, x0.device)
                packed.load(x0)
                before = packed.data.clone()
                packed.sweep(
                    self.sweeps_per_step,
                    probs,
                    antiferro=energy.coupling < 0,
                    generator=generator,
                )
                x = packed.spins(x0.dtype)
                changed = packed.changed_fraction(before, x0.dtype)
                return SpinState(x), SpinInfo(changed)
            else:
                x = x0.clone()
                masks = _color_masks(energy, x0.device)
                for _ in range(self.sweeps_per_step):
                    for mask in masks:
                        x = self._update(energy, x, mask, generator)
            changed = (x != x0).reshape(n, -1).to(x0.dtype).mean(1)
        return SpinState(x), SpinInfo(changed)

    def _update(
        self, model: Any, x: Tensor, mask: Tensor, generator: torch.Generator | None
    ) -> Tensor:  # pragma: no cover - abstract
        """``x`` with the sites of ``mask`` (one colour) updated."""
        raise NotImplementedError


class CheckerboardGibbs(_SpinSweeper):
    """Block Gibbs (heat bath) sweeps over the colours of a spin model.

    Each step runs ``sweeps_per_step`` sweeps; in a sweep every colour is
    redrawn from its exact conditional given the others, for all chains at
    once. ``p(s) ~ exp(-E(s))`` is invariant and the chain is ergodic at any
    finite temperature.

    Arguments:
        sweeps_per_step: Sweeps per :meth:`step`. Several sweeps per step
            amortize the per-step conversion of the fast lattice path (and are
            what to use when only every k-th configuration is kept).

    Example:
        >>> from ebmlab.lattice import IsingModel
        >>> model = IsingModel.lattice(16, beta=0.3)
        >>> sampler = CheckerboardGibbs(sweeps_per_step=5)
        >>> g = torch.Generator().manual_seed(0)
        >>> state = sampler.init(torch.ones(4, 16, 16), model)
        >>> state, info = sampler.step(state, model, generator=g)
        >>> tuple(state.x.shape), tuple(info.acceptance_rate.shape)
        ((4, 16, 16), (4,))
    """

    kind = "gibbs"
    has_acceptance = False

    def _update(
        self, model: Any, x: Tensor, mask: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        n = x.shape[0]
        beta = _site_beta(model, x)
        field = model.local_field(x)
        if _is_ising(model):
            p_up = torch.sigmoid(2.0 * beta * field)
            u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            new = torch.where(u < p_up, 1.0, -1.0).to(x.dtype)
            return torch.where(mask, new, x)
        q = model.n_states
        cdf = torch.softmax(beta[..., None] * field, -1).cumsum(-1)
        u = torch.rand(x.shape, generator=generator, dtype=cdf.dtype, device=x.device)
        new = (cdf < u[..., None]).sum(-1).clamp_max(q - 1).to(x.dtype)
        del n
        return torch.where(mask, new, x)


class Metropolis(_SpinSweeper):
    """Single-site Metropolis sweeps over the colours of a spin model.

    Every site of a colour proposes a change at once (Ising: a flip; Potts: one
    of the other ``q - 1`` states, uniformly) and accepts it with probability
    ``min(1, exp(-Delta E))``. Sites of one colour do not interact, so the
    simultaneous moves are independent single-site moves.

    Arguments:
        sweeps_per_step: Sweeps per :meth:`step` (see :class:`CheckerboardGibbs`).

    Example:
        >>> from ebmlab.lattice import PottsModel
        >>> model = PottsModel.lattice(6, n_states=3, beta=0.5)
        >>> sampler = Metropolis()
        >>> state = sampler.init(torch.zeros(2, 6, 6), model)
        >>> state, info = sampler.step(state, model)
        >>> bool(((state.x >= 0) & (state.x <= 2)).all())
        True
    """

    kind = "metropolis"
    has_acceptance = True

    def _update(
        self, model: Any, x: Tensor, mask: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        beta = _site_beta(model, x)
        field = model.local_field(x)
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        if _is_ising(model):
            # Flipping s_i changes E by 2 beta s_i h_i.
            accept = torch.log(u) < -2.0 * beta * x * field
            return torch.where(mask & accept, -x, x)
        q = model.n_states
        shift = torch.randint(1, q, x.shape, generator=generator, device=x.device)
        old = x.long()
        new = (old + shift) % q
        gain = field.gather(-1, new[..., None]) - field.gather(-1, old[..., None])
        accept = torch.log(u) < beta * gain.squeeze(-1)
        return torch.where(mask & accept, new.to(x.dtype), x)


class BlockGibbsState(NamedTuple):
    """Chains of :class:`BlockGibbs`: ``x`` ``(n_chains, *event_shape)``."""

    x: Tensor


class BlockGibbs:
    """Generic block Gibbs: apply exact conditional updates of blocks in turn.

    Each update is a function ``update(x, generator) -> x`` that redraws one
    block of every chain from its conditional given the rest (and leaves the
    other entries unchanged). A step applies them all in order (a systematic
    scan), which leaves the joint distribution invariant when each update is
    exact. The energy passed to :meth:`init` / :meth:`step` is not used: the
    updates carry the model.

    Arguments:
        updates: One conditional sampler per block, in scan order.

    Example:
        >>> # Two independent fair coins, updated one after the other.
        >>> def coin(i):
        ...     def update(x, generator):
        ...         x = x.clone()
        ...         x[:, i] = torch.randint(0, 2, (x.shape[0],), generator=generator).to(x)
        ...         return x
        ...     return update
        >>> sampler = BlockGibbs([coin(0), coin(1)])
        >>> state, _ = sampler.step(sampler.init(torch.zeros(3, 2), None), None)
        >>> tuple(state.x.shape)
        (3, 2)
    """

    has_acceptance = False

    def __init__(
        self, updates: Sequence[Callable[[Tensor, torch.Generator | None], Tensor]]
    ) -> None:
        updates = list(updates)
        if not updates or not all(callable(u) for u in updates):
            raise ValueError(f"updates must be a non-empty list of callables, got {updates!r}")
        self.updates = updates

    def __repr__(self) -> str:
        return f"BlockGibbs(n_blocks={len(self.updates)})"

    def init(self, x: Tensor, energy: Any = None) -> BlockGibbsState:
        """Chains at ``x``."""
        return BlockGibbsState(x.detach().clone())

    def step(
        self,
        state: BlockGibbsState,
        energy: Any = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[BlockGibbsState, SpinInfo]:
        """One systematic scan over the blocks."""
        x = state.x
        with torch.no_grad():
            for update in self.updates:
                x = update(x, generator)
        changed = (x != state.x).reshape(x.shape[0], -1).to(torch.get_default_dtype()).mean(1)
        return BlockGibbsState(x), SpinInfo(changed)
