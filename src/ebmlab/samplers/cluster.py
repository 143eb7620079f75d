"""Cluster moves for Ising and Potts models: Swendsen-Wang and Wolff.

Near a critical point single-site updates slow down dramatically (the
autocorrelation time of checkerboard Gibbs grows like ``L^2.17`` on the 2D
Ising model); cluster moves flip whole correlated regions at once and keep it
within a small power of ``L``. Both use the Fortuin-Kasteleyn bonds: every
satisfied bond (Ising: ``J_ij s_i s_j > 0``; Potts: equal states, ``J_ij > 0``)
is activated with probability ``1 - exp(-2 beta |J_ij|)`` (Potts:
``1 - exp(-beta J_ij)``), and the connected components of active bonds are the
clusters.

- :class:`SwendsenWang` redraws every cluster at once: Ising clusters flip with
  probability 1/2, Potts clusters take a uniform new state (with a field, each
  cluster's state is drawn from its exact conditional).
- :class:`Wolff` picks one random site per chain and flips its cluster (Potts:
  to one of the other ``q - 1`` states); with a field the flip is accepted with
  the Metropolis probability of the field energy change.

Clusters are found for all chains at once, with no loop over sites: bonds are
drawn for every edge, then a label propagation with hooking and pointer
jumping (Shiloach-Vishkin style) gives each site the smallest index of its
component in a handful of rounds. Both moves leave ``exp(-E)`` invariant.

References:
    Swendsen, R. H. & Wang, J.-S. (1987). Nonuniversal critical dynamics in
    Monte Carlo simulations. Physical Review Letters 58, 86.

    Wolff, U. (1989). Collective Monte Carlo updating for spin systems.
    Physical Review Letters 62, 361.
"""

from __future__ import annotations

__all__ = ["ClusterInfo", "SwendsenWang", "Wolff", "connected_components"]

from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._lattice import threads_for, torch_threads
from .gibbs import SpinState, _check_model, _is_ising, _per_chain


class ClusterInfo(NamedTuple):
    """Per-step diagnostics.

    Attributes:
        acceptance_rate: Fraction of sites that changed value, per chain,
            shape ``(n_chains,)``.
    """

    acceptance_rate: Tensor


def connected_components(
    n_nodes: int, src: Tensor, dst: Tensor, active: Tensor | None = None
) -> Tensor:
    """Label every node with the smallest node index of its connected component.

    Hooking plus pointer jumping: each round links the root of the larger end
    of every edge to the smaller root of the other, then compresses every
    label to its root; a handful of rounds suffice on lattice percolation
    clusters. Active edges are compacted once; each round is two
    ``index_select``, one ``scatter_reduce`` and the jumps (advanced indexing
    is an order of magnitude slower than ``index_select`` on CPU).

    Arguments:
        n_nodes: Number of nodes.
        src: Edge starts, shape ``(M,)``, long.
        dst: Edge ends, shape ``(M,)``, long.
        active: Optional mask ``(M,)``: only these edges connect.

    Returns:
        Labels, shape ``(n_nodes,)``, long.

    Example:
        >>> connected_components(5, torch.tensor([0, 3]), torch.tensor([1, 4])).tolist()
        [0, 0, 2, 3, 3]
    """
    index_dtype = torch.int32 if n_nodes < 2**31 else torch.long
    label = torch.arange(n_nodes, device=src.device, dtype=index_dtype)
    if active is not None:
        keep = torch.nonzero(active).flatten()
        src, dst = src.index_select(0, keep), dst.index_select(0, keep)
    if src.numel() == 0:
        return label.long()
    src, dst = src.to(index_dtype), dst.to(index_dtype)
    while True:
        ls, ld = label.index_select(0, src), label.index_select(0, dst)
        if torch.equal(ls, ld):
            # Equal ends on every edge: one label per component, a site of it,
            # hence its root (label[root] == root), the smallest index.
            return label.long()
        # Labels only decrease and stay in their component, so hooking a
        # (possibly non-root) label onto a smaller one keeps every tree valid;
        # settled edges (ls == ld) are no-ops.
        label.scatter_reduce_(0, torch.maximum(ls, ld).long(), torch.minimum(ls, ld), "amin")
        for _ in range(2):  # pointer jumping
            label = label.index_select(0, label)


def _clusters(model: Any, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Fortuin-Kasteleyn clusters of every chain: labels ``(N, n_sites)`` (global indices)."""
    n = x.shape[0]
    n_sites = x[0].numel()
    index, weight = model.edges()
    w = weight.to(x.dtype)
    xi, xj = model.bond_ends(x)
    beta = model.beta.to(x.dtype).reshape(-1, 1)  # (1 or N, 1)
    if _is_ising(model):
        satisfied = (xi * xj * torch.sign(w)) > 0
        p = -torch.expm1(-2.0 * beta * w.abs())
    else:
        if bool((w < 0).any()):
            raise ValueError("cluster moves on Potts models need couplings J >= 0")
        satisfied = (xi == xj) & (w > 0)
        p = -torch.expm1(-beta * w)
    u = torch.rand(satisfied.shape, generator=generator, dtype=torch.float32, device=x.device)
    active = satisfied & (u < p.to(torch.float32))
    # Active bonds of all chains as edges of one graph of n * n_sites nodes.
    keep = torch.nonzero(active.reshape(-1)).flatten()
    n_bonds = index.shape[1]
    chain, bond = keep // n_bonds, keep % n_bonds
    src = index[0].index_select(0, bond) + chain * n_sites
    dst = index[1].index_select(0, bond) + chain * n_sites
    return connected_components(n * n_sites, src, dst).view(n, n_sites)


def _cluster_sums(labels: Tensor, values: Tensor, n_total: int) -> Tensor:
    """Sum ``values`` ``(N, n_sites, *k)`` over each cluster: ``(n_total, *k)`` by root."""
    flat = values.reshape(labels.numel(), *values.shape[2:])
    out = torch.zeros((n_total, *values.shape[2:]), dtype=values.dtype, device=values.device)
    return out.index_add_(0, labels.reshape(-1), flat)


def _has_field(model: Any) -> bool:
    return bool((model.field != 0).any())


class _ClusterSampler:
    has_acceptance = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def init(self, x: Tensor, energy: Any) -> SpinState:
        """Chains at ``x`` ``(n_chains, *event_shape)``."""
        _check_model(energy, x)
        return SpinState(x.detach().clone())

    def step(
        self, state: SpinState, energy: Any, *, generator: torch.Generator | None = None
    ) -> tuple[SpinState, ClusterInfo]:
        """One cluster move of every chain."""
        x0 = state.x
        n = x0.shape[0]
        with torch.no_grad(), torch_threads(threads_for(x0.numel()), x0.device):
            labels = _clusters(energy, x0, generator)
            x = self._move(energy, x0, labels, generator)
            changed = (x != x0).reshape(n, -1).to(x0.dtype).mean(1)
        return SpinState(x), ClusterInfo(changed)

    def _move(
        self, model: Any, x: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class SwendsenWang(_ClusterSampler):
    """Swendsen-Wang: redraw every Fortuin-Kasteleyn cluster of every chain.

    Example:
        >>> from ebmlab.lattice import IsingModel
        >>> model = IsingModel.lattice(16, beta=0.44)
        >>> sampler = SwendsenWang()
        >>> g = torch.Generator().manual_seed(0)
        >>> state, info = sampler.step(sampler.init(torch.ones(3, 16, 16), model), model,
        ...                            generator=g)
        >>> tuple(state.x.shape), bool(((state.x == 1) | (state.x == -1)).all())
        ((3, 16, 16), True)
    """

    def _move(
        self, model: Any, x: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        n = x.shape[0]
        n_total = labels.numel()
        flat = x.reshape(n, -1)
        beta_root = _per_chain(model.beta.to(x.dtype), n).expand(n, flat.shape[1]).reshape(-1)
        if _is_ising(model):
            u = torch.rand(n_total, generator=generator, dtype=x.dtype, device=x.device)
            if _has_field(model):
                h = model.field.to(x.dtype).expand(x.shape).reshape(n, -1)
                s_sum = _cluster_sums(labels, h * flat, n_total)
                # Flip with probability exp(-beta S) / (exp(beta S) + exp(-beta S)).
                flip = u < torch.sigmoid(-2.0 * beta_root * s_sum)
            else:
                flip = u < 0.5
            flips = flip.index_select(0, labels.reshape(-1)).view(flat.shape)
            return torch.where(flips, -flat, flat).view(x.shape)
        q = model.n_states
        if _has_field(model):
            h = model.field.to(x.dtype).expand((*x.shape, q)).reshape(n, -1, q)
            logits = beta_root[:, None] * _cluster_sums(labels, h, n_total)
            cdf = torch.softmax(logits, -1).cumsum(-1)
            u = torch.rand(n_total, generator=generator, dtype=cdf.dtype, device=x.device)
            new = (cdf < u[:, None]).sum(-1).clamp_max(q - 1)
        else:
            new = torch.randint(q, (n_total,), generator=generator, device=x.device)
        return new.index_select(0, labels.reshape(-1)).to(x.dtype).view(x.shape)


class Wolff(_ClusterSampler):
    """Wolff: flip the Fortuin-Kasteleyn cluster of one random site per chain.

    Ising clusters flip sign; Potts clusters move to one of the other ``q - 1``
    states, uniformly. With a field the move is accepted with probability
    ``min(1, exp(-Delta E_field))`` (the bonds already account for the
    couplings).

    Example:
        >>> from ebmlab.lattice import IsingModel
        >>> model = IsingModel.lattice(16, beta=0.44)
        >>> sampler = Wolff()
        >>> state, info = sampler.step(sampler.init(torch.ones(3, 16, 16), model), model)
        >>> bool((info.acceptance_rate > 0).all())  # at least the seed flipped
        True
    """

    def _move(
        self, model: Any, x: Tensor, labels: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        n = x.shape[0]
        flat = x.reshape(n, -1)
        n_sites = flat.shape[1]
        seed = torch.randint(n_sites, (n, 1), generator=generator, device=x.device)
        mask = labels == labels.gather(1, seed)  # (n, n_sites): the seed's cluster
        beta = _per_chain(model.beta.to(x.dtype), n).reshape(-1)
        field = _has_field(model)
        if _is_ising(model):
            new = -flat
            if field:
                h = model.field.to(x.dtype).expand(x.shape).reshape(n, -1)
                delta = 2.0 * (h * flat * mask).sum(1)  # H(flipped) - H(current)
        else:
            q = model.n_states
            shift = torch.randint(1, q, (n, 1), generator=generator, device=x.device)
            old = flat.long()
            new_states = (old + shift) % q
            new = new_states.to(x.dtype)
            if field:
                h = model.field.to(x.dtype).expand((*x.shape, q)).reshape(n, -1, q)
                gain = h.gather(-1, new_states[..., None]) - h.gather(-1, old[..., None])
                delta = -(gain.squeeze(-1) * mask).sum(1)
        if field:
            u = torch.rand(n, generator=generator, dtype=x.dtype, device=x.device)
            accept = torch.log(u) < -beta * delta
            mask = mask & accept[:, None]
        return torch.where(mask, new, flat).view(x.shape)
