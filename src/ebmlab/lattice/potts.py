"""The q-state Potts model on periodic or open lattices (1D to 3D) and on graphs.

States :math:`s_i \\in \\{0, \\dots, q - 1\\}` with couplings :math:`J_{ij}`,
fields :math:`h_i` and inverse temperature :math:`\\beta`:

.. math:: H(s) = -\\sum_{\\langle ij \\rangle} J_{ij} \\delta_{s_i s_j} - \\sum_i h_i[s_i],

and :math:`E(s) = \\beta H(s)` (low energy = probable). It shares the lattice and
graph machinery of :mod:`ebmlab.lattice.ising` (the spin-system base class), so the
same samplers and exact enumeration apply.

References:
    Wu, F. Y. (1982). The Potts model. Reviews of Modern Physics 54, 235.
"""

from __future__ import annotations

__all__ = ["PottsModel"]

from collections.abc import Sequence

import torch
from torch import Tensor

from .ising import _as_shape, _bond_pairs, _graph_edges, _SpinSystem


class PottsModel(_SpinSystem):
    """q-state Potts model: states in ``{0, ..., q - 1}``, ``E(s) = beta * H(s)``.

    .. math:: H(s) = -\\sum_{\\langle ij \\rangle} J_{ij} \\delta_{s_i s_j} - \\sum_i h_i[s_i]

    Configurations are float tensors of integer values, shape
    ``(N, *event_shape)``. The 2-state model equals the Ising model with
    coupling ``J / 2`` up to a constant; the 2D square-lattice ferromagnet
    orders at ``T_c = J / ln(1 + sqrt(q))``.

    Attributes:
        n_states: ``q``.
        field: Buffer broadcastable to ``(N, *event_shape, q)``: ``h_i[k]``.
        domain: ``q``, for exact enumeration in :mod:`ebmlab.partition`.

    Example:
        >>> model = PottsModel.lattice(4, n_states=3, beta=1.0)
        >>> model(torch.zeros(2, 4, 4))  # all aligned: -32 bonds
        tensor([-32., -32.])
    """

    @property
    def domain(self) -> int:  # type: ignore[override]
        """Number of states, the domain understood by :mod:`ebmlab.partition`."""
        return self.n_states

    @property
    def field_event_shape(self) -> tuple[int, ...]:
        """Shape of the field of one chain: ``(*event_shape, q)``."""
        return (*self.event_shape, self.n_states)

    @classmethod
    def lattice(
        cls,
        size: int | Sequence[int],
        dim: int = 2,
        *,
        n_states: int = 3,
        coupling: float = 1.0,
        field: float | Tensor = 0.0,
        beta: float | Tensor = 1.0,
        periodic: bool = True,
    ) -> PottsModel:
        """Nearest-neighbour Potts model on a hypercubic lattice.

        Arguments as in :meth:`IsingModel.lattice`, plus ``n_states`` (``q``).
        """
        shape = _as_shape(size, dim)
        return cls(
            shape,
            n_states=n_states,
            lattice_shape=shape,
            periodic=periodic,
            coupling=coupling,
            edge_index=None,
            edge_weight=None,
            field=field,
            beta=beta,
            field_event_shape=(*shape, n_states),
        )

    @classmethod
    def graph(
        cls,
        couplings: Tensor,
        *,
        n_states: int = 3,
        field: float | Tensor = 0.0,
        beta: float | Tensor = 1.0,
    ) -> PottsModel:
        """Potts model on a graph given by a symmetric ``(n, n)`` coupling matrix."""
        index, value, n = _graph_edges(couplings)
        return cls(
            (n,),
            n_states=n_states,
            lattice_shape=None,
            periodic=False,
            coupling=0.0,
            edge_index=index,
            edge_weight=value,
            field=field,
            beta=beta,
            field_event_shape=(n, n_states),
        )

    def one_hot(self, x: Tensor) -> Tensor:
        """One-hot states, shape ``(N, *event_shape, q)``."""
        return torch.nn.functional.one_hot(x.round().long(), self.n_states).to(self.field.dtype)

    def local_field(self, x: Tensor) -> Tensor:
        """``sum_j J_ij [s_j = k] + h_i[k]`` for every site and state ``k``.

        Shape ``(N, *event_shape, q)``, no ``beta``: the conditional of one
        site is ``softmax(beta * local_field_i)``.
        """
        oh = self.one_hot(x).to(self.field.dtype)
        return self._neighbour_sum(oh) + self.field

    def hamiltonian(self, x: Tensor) -> Tensor:
        """``H(s)`` of each configuration, shape ``(N,)`` (no ``beta``)."""
        self.check_input(x)
        n = x.shape[0]
        oh = self.one_hot(x).to(self.field.dtype)
        field_term = (oh * self.field).reshape(n, -1).sum(1)
        if self.lattice_shape is not None:
            pairs = _bond_pairs(x, x, len(self.lattice_shape), self.periodic)
            same = sum(
                ((a == b).reshape(n, -1).sum(1) for a, b in pairs),
                torch.zeros(n, dtype=torch.long, device=x.device),
            )
            return (-self.coupling * same - field_term).to(oh.dtype)
        index, weight = self.edges()
        flat = x.reshape(n, -1)
        same = (flat[:, index[0]] == flat[:, index[1]]).to(oh.dtype)
        return -(same * weight.to(oh.dtype)).sum(1) - field_term

    def with_beta(self, beta: float | Tensor) -> PottsModel:
        """A copy at another inverse temperature (scalar or per chain)."""
        other = PottsModel(
            self.event_shape,
            n_states=self.n_states,
            lattice_shape=self.lattice_shape,
            periodic=self.periodic,
            coupling=self.coupling,
            edge_index=self.edge_index,
            edge_weight=self.edge_weight,
            field=self.field,
            beta=beta,
            field_event_shape=self.field_event_shape,
        )
        other._colors = self._colors
        return other.to(self.field.device)
