"""Ising and Potts models on periodic or open lattices (1D to 3D) and on graphs.

Ising spins :math:`s_i \\in \\{-1, +1\\}`, Potts states :math:`s_i \\in \\{0, \\dots,
q - 1\\}`, with couplings :math:`J_{ij}`, fields :math:`h_i` and inverse
temperature :math:`\\beta`:

.. math::

    H_\\text{Ising}(s) = -\\sum_{\\langle ij \\rangle} J_{ij} s_i s_j - \\sum_i h_i s_i,
    \\qquad
    H_\\text{Potts}(s) = -\\sum_{\\langle ij \\rangle} J_{ij} \\delta_{s_i s_j}
    - \\sum_i h_i[s_i],

and the energy of the library's convention is :math:`E(s) = \\beta H(s)`, so
:math:`p(s) \\propto \\exp(-E(s))`: low energy = high probability. Each bond
:math:`\\langle ij \\rangle` counts once. ``J > 0`` is ferromagnetic.

A lattice model (:meth:`IsingModel.lattice`) has one uniform coupling between
nearest neighbours and periodic or open boundaries; configurations have the
lattice's shape, ``(N, L, L)`` in 2D. A graph model (:meth:`IsingModel.graph`)
takes any symmetric coupling matrix, dense or sparse, and configurations of
shape ``(N, n)``. The field may differ per site and per chain (shape
broadcastable to ``(N, *event_shape)``; Potts adds a last axis of size ``q``),
and ``beta`` may be a scalar or one value per chain (``(N,)``), which runs a
temperature scan in one batch.

The samplers of :mod:`ebmlab.samplers` (checkerboard Gibbs, Metropolis,
Swendsen-Wang, Wolff) read the structure exposed here (``lattice_shape``,
``periodic``, ``coupling``, ``edges``, ``colors``, ``local_field``), never the
class itself. :class:`~ebmlab.lattice.potts.PottsModel` builds on the spin-system
base class defined here.

References:
    Onsager, L. (1944). Crystal statistics. I. A two-dimensional model with an
    order-disorder transition. Physical Review 65, 117.
    Wu, F. Y. (1982). The Potts model. Reviews of Modern Physics 54, 235.
"""

from __future__ import annotations

__all__ = [
    "CRITICAL_TEMPERATURE",
    "IsingModel",
    "greedy_coloring",
]

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ..energies.base import Energy

#: Critical temperature of the 2D square-lattice Ising model with ``J = 1``:
#: ``2 / ln(1 + sqrt(2))`` (Onsager 1944).
CRITICAL_TEMPERATURE = 2.0 / math.log1p(math.sqrt(2.0))


def _as_shape(size: int | Sequence[int], dim: int) -> tuple[int, ...]:
    if isinstance(size, int):
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim}")
        shape = (size,) * dim
    else:
        shape = tuple(int(s) for s in size)
        if not 1 <= len(shape) <= 3:
            raise ValueError(f"size must have 1 to 3 entries, got {tuple(size)}")
    if any(s < 2 for s in shape):
        raise ValueError(f"lattice sizes must be >= 2, got {shape}")
    return shape


def _shift_sum(x: Tensor, n_axes: int, periodic: bool) -> Tensor:
    """Sum over the ``2 * n_axes`` nearest neighbours of every site (last axes)."""
    out = torch.zeros_like(x)
    for a in range(x.dim() - n_axes, x.dim()):
        if periodic:
            out += torch.roll(x, 1, a) + torch.roll(x, -1, a)
        else:
            n = x.shape[a]
            out.narrow(a, 1, n - 1).add_(x.narrow(a, 0, n - 1))
            out.narrow(a, 0, n - 1).add_(x.narrow(a, 1, n - 1))
    return out


def _bond_pairs(x: Tensor, y: Tensor, n_axes: int, periodic: bool) -> list[tuple[Tensor, Tensor]]:
    """``(x_i, y_j)`` over the bonds ``j = i + e_a`` of the last ``n_axes`` axes."""
    pairs = []
    for a in range(x.dim() - n_axes, x.dim()):
        if periodic:
            pairs.append((x, torch.roll(y, -1, a)))
        else:
            n = x.shape[a]
            pairs.append((x.narrow(a, 0, n - 1), y.narrow(a, 1, n - 1)))
    return pairs


def greedy_coloring(edges: Tensor, n_sites: int) -> list[Tensor]:
    """Colour the sites of a graph so that no bond joins two sites of one colour.

    Greedy, in site order: each site takes the smallest colour unused by its
    already coloured neighbours (at most ``max degree + 1`` colours). Sites of
    one colour are conditionally independent given the others, so they can be
    updated at once (block Gibbs).

    Arguments:
        edges: Bonds, shape ``(2, M)``, site indices ``i`` with ``0 <= i < n_sites``.
        n_sites: Number of sites.

    Returns:
        One sorted index tensor per colour.

    Example:
        >>> ring = torch.tensor([[0, 1, 2], [1, 2, 0]])
        >>> [c.tolist() for c in greedy_coloring(ring, 3)]
        [[0], [1], [2]]
    """
    neighbours: list[list[int]] = [[] for _ in range(n_sites)]
    for i, j in edges.t().tolist():
        if i != j:
            neighbours[i].append(j)
            neighbours[j].append(i)
    color = [-1] * n_sites
    for i in range(n_sites):
        used = {color[j] for j in neighbours[i]}
        c = 0
        while c in used:
            c += 1
        color[i] = c
    colors = torch.tensor(color, dtype=torch.long)
    return [torch.nonzero(colors == c).flatten() for c in range(int(colors.max()) + 1)]


class _SpinSystem(Energy):
    """Shared structure of :class:`IsingModel` and :class:`PottsModel`."""

    #: Number of states per site.
    n_states: int
    field: Tensor
    beta: Tensor
    edge_index: Tensor | None
    edge_weight: Tensor | None

    def __init__(
        self,
        event_shape: tuple[int, ...],
        *,
        lattice_shape: tuple[int, ...] | None,
        periodic: bool,
        coupling: float,
        edge_index: Tensor | None,
        edge_weight: Tensor | None,
        field: float | Tensor,
        beta: float | Tensor,
        field_event_shape: tuple[int, ...],
        n_states: int = 2,
    ) -> None:
        super().__init__(event_shape)
        if not isinstance(n_states, int) or n_states < 2:
            raise ValueError(f"n_states must be an integer >= 2, got {n_states!r}")
        self.n_states = n_states
        self.lattice_shape = lattice_shape
        self.periodic = bool(periodic)
        if not math.isfinite(coupling):
            raise ValueError(f"coupling must be finite, got {coupling}")
        self.coupling = float(coupling)
        dtype = torch.get_default_dtype()
        if isinstance(field, Tensor) and field.is_floating_point():
            dtype = field.dtype
        field_t = torch.as_tensor(field, dtype=dtype).detach().clone()
        beta_t = torch.as_tensor(beta, dtype=dtype).detach().clone()
        if not bool(torch.isfinite(field_t).all()):
            raise ValueError("field must be finite")
        if beta_t.dim() > 1 or not bool(torch.isfinite(beta_t).all()):
            raise ValueError(
                f"beta must be a finite scalar or one value per chain (N,), got shape "
                f"{tuple(beta_t.shape)}"
            )
        try:
            torch.broadcast_shapes(field_t.shape, (1, *field_event_shape))
        except RuntimeError:
            raise ValueError(
                f"field must broadcast to (N, {', '.join(map(str, field_event_shape))}), "
                f"got shape {tuple(field_t.shape)}"
            ) from None
        if field_t.dim() > len(field_event_shape) + 1:
            raise ValueError(
                f"field must broadcast to (N, {', '.join(map(str, field_event_shape))}), "
                f"got shape {tuple(field_t.shape)}"
            )
        self.register_buffer("field", field_t)
        self.register_buffer("beta", beta_t)
        if edge_index is not None:
            assert edge_weight is not None
            self.register_buffer("edge_index", edge_index)
            self.register_buffer("edge_weight", edge_weight.to(dtype))
        else:
            self.edge_index = None
            self.edge_weight = None
        self._colors: list[Tensor] | None = None
        self._adjacency_cache: dict[tuple[object, ...], Tensor] = {}

    # ------------------------------------------------------------------ structure
    @property
    def n_sites(self) -> int:
        """Number of sites (spins) of one configuration."""
        return self.dim

    @property
    def is_lattice(self) -> bool:
        """Whether the model is a nearest-neighbour lattice with one coupling."""
        return self.lattice_shape is not None

    @property
    def is_bipartite_lattice(self) -> bool:
        """A lattice whose parity colouring is valid: open, or every size even."""
        return self.lattice_shape is not None and (
            not self.periodic or all(s % 2 == 0 for s in self.lattice_shape)
        )

    def edges(self) -> tuple[Tensor, Tensor]:
        """Bonds as ``(index, weight)``: shapes ``(2, M)`` (flat site indices) and ``(M,)``.

        Each bond appears once; on a lattice ``weight`` is the uniform coupling.
        """
        if self.edge_index is not None:
            assert self.edge_weight is not None
            return self.edge_index, self.edge_weight
        assert self.lattice_shape is not None
        shape = self.lattice_shape
        idx = torch.arange(self.n_sites, device=self.field.device).view(shape)
        pairs = _bond_pairs(idx, idx, len(shape), self.periodic)
        i = torch.cat([p[0].reshape(-1) for p in pairs])
        j = torch.cat([p[1].reshape(-1) for p in pairs])
        w = torch.full(i.shape, self.coupling, dtype=self.field.dtype, device=i.device)
        return torch.stack([i, j]), w

    def bond_ends(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Values at both ends of every bond, in the order of :meth:`edges`.

        Arguments:
            x: Configurations, shape ``(N, *event_shape)``.

        Returns:
            ``(x_i, x_j)``, each of shape ``(N, M)``.
        """
        n = x.shape[0]
        if self.lattice_shape is not None:
            pairs = _bond_pairs(x, x, len(self.lattice_shape), self.periodic)
            return (
                torch.cat([a.reshape(n, -1) for a, _ in pairs], 1),
                torch.cat([b.reshape(n, -1) for _, b in pairs], 1),
            )
        index, _ = self.edges()
        flat = x.reshape(n, -1)
        return flat[:, index[0]], flat[:, index[1]]

    def colors(self) -> list[Tensor]:
        """Sites split into independent sets (flat indices), for block Gibbs updates.

        The two parity classes of a bipartite lattice (the checkerboard), else a
        greedy colouring of the bonds.
        """
        if self._colors is None:
            if self.is_bipartite_lattice:
                assert self.lattice_shape is not None
                grids = torch.meshgrid(
                    *[torch.arange(s) for s in self.lattice_shape], indexing="ij"
                )
                parity = (sum(grids) % 2).reshape(-1)  # type: ignore[union-attr]
                self._colors = [torch.nonzero(parity == c).flatten() for c in (0, 1)]
            else:
                index, weight = self.edges()
                keep = (weight != 0) & (index[0] != index[1])
                self._colors = greedy_coloring(index[:, keep].cpu(), self.n_sites)
        dev = self.field.device
        return [c.to(dev) for c in self._colors]

    def _adjacency(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Symmetric sparse coupling matrix ``(n, n)`` (graph models)."""
        w_buf = self.edge_weight
        key = (dtype, device, 0 if w_buf is None else (w_buf.data_ptr(), w_buf._version))
        cached = self._adjacency_cache.get(key)
        if cached is not None:
            return cached
        index, weight = self.edges()
        both = torch.cat([index, index.flip(0)], 1).to(device)
        w = torch.cat([weight, weight]).to(device=device, dtype=dtype)
        n = self.n_sites
        adj = torch.sparse_coo_tensor(both, w, (n, n), check_invariants=False).coalesce()
        self._adjacency_cache = {key: adj}
        return adj

    def _neighbour_sum(self, y: Tensor) -> Tensor:
        """``sum_j J_ij y_j`` for ``y`` of shape ``(N, *event_shape, *extra)``."""
        n_extra = y.dim() - 1 - len(self.event_shape)
        if self.lattice_shape is not None:
            if n_extra:
                y = y.movedim(tuple(range(-n_extra, 0)), tuple(range(1, 1 + n_extra)))
            out = self.coupling * _shift_sum(y, len(self.lattice_shape), self.periodic)
            if n_extra:
                out = out.movedim(tuple(range(1, 1 + n_extra)), tuple(range(-n_extra, 0)))
            return out
        adj = self._adjacency(y.dtype, y.device)
        n = y.shape[0]
        flat = y.reshape(n, self.n_sites, -1).transpose(0, 1).reshape(self.n_sites, -1)
        out = torch.sparse.mm(adj, flat).reshape(self.n_sites, n, -1).transpose(0, 1)
        return out.reshape(y.shape)

    def _beta_for(self, n: int, like: Tensor) -> Tensor:
        beta = self.beta.to(like.dtype)
        if beta.dim() == 1 and beta.shape[0] != n:
            raise ValueError(
                f"this model has one beta per chain ({beta.shape[0]} chains), got {n} "
                "configurations"
            )
        return beta

    def _check_chains(self, n: int) -> None:
        if self.beta.dim() == 1 and self.beta.shape[0] != n:
            raise ValueError(f"beta has {self.beta.shape[0]} chains, got {n} configurations")
        lead = self.field.dim() - len(self.field_event_shape)
        if lead == 1 and self.field.shape[0] not in (1, n):
            raise ValueError(f"field has {self.field.shape[0]} chains, got {n} configurations")

    @property
    def field_event_shape(self) -> tuple[int, ...]:
        """Shape of the field of one chain."""
        return self.event_shape

    def forward(self, x: Tensor) -> Tensor:
        """Energy ``beta * H(x)`` of each configuration, shape ``(N,)``."""
        self.check_input(x)
        return self._beta_for(x.shape[0], x) * self.hamiltonian(x)

    def hamiltonian(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``H(x)`` without the inverse temperature, shape ``(N,)``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        where = (
            f"lattice={self.lattice_shape}, periodic={self.periodic}, coupling={self.coupling}"
            if self.lattice_shape is not None
            else f"graph, n_sites={self.n_sites}, n_bonds={self.edges()[0].shape[1]}"
        )
        beta = f"{float(self.beta):.6g}" if self.beta.dim() == 0 else f"({self.beta.shape[0]},)"
        field = (
            f"{float(self.field):.6g}"
            if self.field.numel() == 1
            else f"shape {tuple(self.field.shape)}"
        )
        return f"{where}, field={field}, beta={beta}"


def _graph_edges(couplings: Tensor) -> tuple[Tensor, Tensor, int]:
    """Validate a symmetric coupling matrix and return its bonds ``i < j``."""
    if couplings.dim() != 2 or couplings.shape[0] != couplings.shape[1]:
        raise ValueError(f"couplings must be a square (n, n) matrix, got {tuple(couplings.shape)}")
    n = couplings.shape[0]
    if couplings.is_sparse or couplings.layout != torch.strided:
        dense_free = couplings.to_sparse_coo().coalesce()
        index, value = dense_free.indices(), dense_free.values()
    else:
        index = torch.nonzero(couplings).t()
        value = couplings[index[0], index[1]]
    if not bool(torch.isfinite(value).all()):
        raise ValueError("couplings must be finite")
    if bool((index[0] == index[1]).any()):
        raise ValueError("couplings must have a zero diagonal (no self-interaction)")
    # Symmetry: the (i, j) and (j, i) entries must agree.
    key = index[0] * n + index[1]
    key_t = index[1] * n + index[0]
    order = torch.argsort(key)
    pos = torch.searchsorted(key[order], key_t)
    pos = pos.clamp_max(key.numel() - 1)
    found = key[order][pos] == key_t if key.numel() else key_t == key_t
    if key.numel() and (not bool(found.all()) or not bool(torch.equal(value[order][pos], value))):
        raise ValueError("couplings must be symmetric: J[i, j] == J[j, i]")
    upper = index[0] < index[1]
    return index[:, upper].long(), value[upper], n


class IsingModel(_SpinSystem):
    """Ising model: spins in ``{-1, +1}``, ``E(s) = beta * H(s)``.

    .. math:: H(s) = -\\sum_{\\langle ij \\rangle} J_{ij} s_i s_j - \\sum_i h_i s_i

    Build one with :meth:`lattice` or :meth:`graph`. Configurations are float
    tensors of ``-1.0`` and ``+1.0``, shape ``(N, *event_shape)``.

    Attributes:
        lattice_shape: The lattice, e.g. ``(64, 64)``, or ``None`` for a graph.
        periodic: Periodic boundaries (lattices).
        coupling: The uniform nearest-neighbour coupling ``J`` (lattices).
        field: Buffer, broadcastable to ``(N, *event_shape)``.
        beta: Buffer, a scalar or one inverse temperature per chain ``(N,)``.
        domain: ``"spin"``, for exact enumeration in :mod:`ebmlab.partition`.

    Example:
        >>> model = IsingModel.lattice(8, beta=0.4)
        >>> s = torch.ones(3, 8, 8)
        >>> model(s)  # beta * (-2 bonds per site * 64 sites)
        tensor([-51.2000, -51.2000, -51.2000])
    """

    domain = "spin"

    @classmethod
    def lattice(
        cls,
        size: int | Sequence[int],
        dim: int = 2,
        *,
        coupling: float = 1.0,
        field: float | Tensor = 0.0,
        beta: float | Tensor = 1.0,
        periodic: bool = True,
    ) -> IsingModel:
        """Nearest-neighbour model on a hypercubic lattice.

        Arguments:
            size: Side length (``size ** dim`` sites) or the full shape, e.g. ``(8, 12)``.
            dim: 1, 2 or 3 (ignored when ``size`` is a shape).
            coupling: ``J`` of every bond (``> 0`` ferromagnetic).
            field: ``h``, scalar or broadcastable to ``(N, *shape)``.
            beta: Inverse temperature ``1 / T``: scalar or ``(N,)``.
            periodic: Periodic (torus) or open (free) boundaries.
        """
        shape = _as_shape(size, dim)
        return cls(
            shape,
            lattice_shape=shape,
            periodic=periodic,
            coupling=coupling,
            edge_index=None,
            edge_weight=None,
            field=field,
            beta=beta,
            field_event_shape=shape,
        )

    @classmethod
    def graph(
        cls, couplings: Tensor, *, field: float | Tensor = 0.0, beta: float | Tensor = 1.0
    ) -> IsingModel:
        """Model on any graph: ``couplings`` is a symmetric ``(n, n)`` matrix, dense or sparse.

        Zero entries are absent bonds; the diagonal must be zero. Each bond
        ``{i, j}`` contributes ``-J_ij s_i s_j`` once.
        """
        index, value, n = _graph_edges(couplings)
        return cls(
            (n,),
            lattice_shape=None,
            periodic=False,
            coupling=0.0,
            edge_index=index,
            edge_weight=value,
            field=field,
            beta=beta,
            field_event_shape=(n,),
        )

    def local_field(self, x: Tensor) -> Tensor:
        """``sum_j J_ij s_j + h_i`` at every site, shaped like ``x`` (no ``beta``).

        The conditional of one spin given the others is
        ``p(s_i = +1 | rest) = sigmoid(2 beta * local_field_i)``.
        """
        return self._neighbour_sum(x) + self.field.to(x.dtype)

    def hamiltonian(self, x: Tensor) -> Tensor:
        """``H(s)`` of each configuration, shape ``(N,)`` (no ``beta``)."""
        self.check_input(x)
        n = x.shape[0]
        field_term = (x * self.field.to(x.dtype)).reshape(n, -1).sum(1)
        if self.lattice_shape is not None:
            pairs = _bond_pairs(x, x, len(self.lattice_shape), self.periodic)
            bonds = sum(
                ((a * b).reshape(n, -1).sum(1) for a, b in pairs), torch.zeros_like(field_term)
            )
            return -self.coupling * bonds - field_term
        # Each bond once: half of s^T J s.
        return -0.5 * (x * self._neighbour_sum(x)).reshape(n, -1).sum(1) - field_term

    def magnetization(self, x: Tensor) -> Tensor:
        """Mean spin of each configuration, shape ``(N,)``."""
        return x.reshape(x.shape[0], -1).mean(1)

    def with_beta(self, beta: float | Tensor) -> IsingModel:
        """A copy at another inverse temperature (scalar or per chain)."""
        other = IsingModel(
            self.event_shape,
            lattice_shape=self.lattice_shape,
            periodic=self.periodic,
            coupling=self.coupling,
            edge_index=self.edge_index,
            edge_weight=self.edge_weight,
            field=self.field,
            beta=beta,
            field_event_shape=self.event_shape,
        )
        other._colors = self._colors
        return other.to(self.field.device)
