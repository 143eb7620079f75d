"""Kernels for spin systems (private): the packed checkerboard sweep, thread choice.

Packed layout
-------------
An Ising lattice with periodic boundaries and even sides splits into ``2^d``
sublattices by the parity of each coordinate: site ``x = 2 y + p`` with
``p`` in ``{0, 1}^d`` lives in sublattice ``p`` at index ``y``. Every
neighbour of a site of parity ``p`` lies in a sublattice ``p xor e_a``, at the
same index or shifted by one along axis ``a``, so neighbour counts are sums of
whole arrays and shifted slices: no gathers, no masks. Spins are stored as
``uint8`` (1 = up), shape ``(2^d, n_chains, *half_shape)``, the ``2^(d-1)``
sublattices of the even colour first.

Heat-bath and Metropolis decisions with uniform coupling and field depend only
on the number ``c`` of up neighbours (and, for Metropolis, on the current
spin): the new spin is up with a probability ``P[s, c]`` that does not decrease
with ``c`` (``J >= 0``; for ``J < 0`` down neighbours are counted). With
``u`` uniform, "up" is ``u < P[s, c]``, i.e. ``c >= k(u)`` with the threshold
``k(u) = #{c : P[s, c] <= u}``. Thresholds are drawn ahead in chunks, from two
random bytes per site: ``u = (256 hi + lo + v) / 65536``; the bytes decide every
comparison except when they equal ``floor(65536 P)``, and those rare ties
(about ``z / 65536`` of the sites) are settled exactly with a float64 ``v``, so
the update is exact, not quantized. The sweep itself is then a dozen ``uint8``
additions and one comparison per half sweep (CPU torch vectorizes comparisons
only between ``uint8`` tensors of one shape, hence the full-size constants).
"""

from __future__ import annotations

__all__ = [
    "PackedLattice",
    "flip_probabilities",
    "threads_for",
    "torch_threads",
]

import itertools
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

#: Below this many sites per operation a second thread costs more than it gives.
_PARALLEL_MIN_SITES = 1 << 20

#: Sites per colour swept together (chains are processed in tiles of about this size).
_TILE_SITES = 1 << 17

#: Sites whose thresholds are drawn in one call (amortizes the per-call work).
_DRAW_SITES = 1 << 19


def threads_for(n_sites: int) -> int:
    """Intra-op threads for sweeps over ``n_sites`` sites: 1 unless it pays.

    A parallel region waits for its slowest thread. On small lattices thread
    start-up costs more than the work; on a machine whose cores are already
    busy (1-minute load average plus this process above the core count) a
    descheduled thread stalls every region, and sweeps measured 100 times
    slower with two threads than with one on a shared 2-core machine. So:
    one thread below ``2^20`` sites or on a busy machine, else torch's setting.
    """
    if n_sites < _PARALLEL_MIN_SITES:
        return 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - platforms without a load average
        load = 0.0
    if load + 1.0 > (os.cpu_count() or 1):
        return 1
    return torch.get_num_threads()


@contextmanager
def torch_threads(n: int, device: torch.device) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads on CPU, then restore the setting."""
    if device.type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    if n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def flip_probabilities(
    beta: Tensor, coupling: float, field: Tensor, n_neighbours: int, kind: str
) -> Tensor:
    """``P[chain, s, c]``: probability that the new spin is up.

    Arguments:
        beta: Inverse temperatures, shape ``(C,)`` (``C`` = 1 or chains).
        coupling: ``J``.
        field: Uniform field per chain, shape ``(C,)``.
        n_neighbours: ``z = 2 d``.
        kind: ``"gibbs"`` (heat bath, one row) or ``"metropolis"`` (rows for the
            current spin down, up).

    Returns:
        Float64, shape ``(C, S, z + 1)`` with ``S`` = 1 or 2, indexed by the
        number of up neighbours when ``J >= 0`` and of down neighbours when
        ``J < 0``, so that every row is non-decreasing.
    """
    c = torch.arange(n_neighbours + 1, dtype=torch.float64, device=beta.device)
    j = abs(coupling)
    # Local field with c counted neighbours: J (2c - z) (sign folded in) + h.
    f = j * (2.0 * c - n_neighbours)[None, :] + field.double()[:, None]
    x = 2.0 * beta.double()[:, None] * f
    if kind == "gibbs":
        return torch.sigmoid(x)[:, None, :]
    down_to_up = torch.exp(x.clamp(max=0.0))  # min(1, exp(2 beta f))
    up_stays = 1.0 - torch.exp((-x).clamp(max=0.0))  # 1 - min(1, exp(-2 beta f))
    return torch.stack([down_to_up, up_stays], 1)


def _parities(d: int) -> list[tuple[int, ...]]:
    """Sublattice parities, even colour first."""
    ps = list(itertools.product((0, 1), repeat=d))
    return [p for p in ps if sum(p) % 2 == 0] + [p for p in ps if sum(p) % 2 == 1]


class PackedLattice:
    """Spins of ``n_chains`` periodic lattices in the packed layout (module docstring).

    Arguments:
        shape: Lattice shape, every side even.
        n_chains: Number of chains.
        device: Torch device.
    """

    def __init__(self, shape: tuple[int, ...], n_chains: int, device: torch.device) -> None:
        if any(s % 2 for s in shape):
            raise ValueError(f"packed lattices need even sides, got {shape}")
        self.shape = shape
        self.d = len(shape)
        self.half = tuple(s // 2 for s in shape)
        self.n_chains = n_chains
        self.device = device
        self.parities = _parities(self.d)
        self.n_sub = 1 << (self.d - 1)
        self.data = torch.empty(
            (2 * self.n_sub, n_chains, *self.half), dtype=torch.uint8, device=device
        )

    # ---------------------------------------------------------------- conversions
    def _slices(self, p: tuple[int, ...]) -> tuple[slice, ...]:
        return (slice(None), *tuple(slice(pa, None, 2) for pa in p))

    def load(self, x: Tensor) -> None:
        """Store spins ``x`` of shape ``(n_chains, *shape)`` (values +-1, up = positive)."""
        for i, p in enumerate(self.parities):
            torch.gt(x[self._slices(p)], 0, out=self.data[i].view(torch.bool))

    def spins(self, dtype: torch.dtype) -> Tensor:
        """Spins as ``-1.0`` / ``+1.0``, shape ``(n_chains, *shape)``."""
        x = torch.empty((self.n_chains, *self.shape), dtype=dtype, device=self.device)
        for i, p in enumerate(self.parities):
            x[self._slices(p)].copy_(self.data[i])  # 0 / 1
        return x.mul_(2.0).sub_(1.0)

    def changed_fraction(self, before: Tensor, dtype: torch.dtype) -> Tensor:
        """Per chain, the fraction of spins that differ from ``before`` (a copy of ``data``)."""
        flat = (self.data ^ before).view(self.data.shape[0], self.n_chains, -1)
        diff = flat.sum(-1, dtype=torch.int32).sum(0)
        return diff.to(dtype) / math.prod(self.shape)

    # ---------------------------------------------------------------- sweeping
    def _plan(self, data: Tensor, cnt: Tensor, color: int) -> list[tuple[Tensor, Tensor] | Tensor]:
        """Views for the neighbour counts of one colour: ``[(dst, src), ...]``.

        A bare tensor entry ``dst`` means ``dst = src_a + src_b`` (the first two
        same-index terms), encoded as the 2-tuple that follows it.
        """
        index = {p: i for i, p in enumerate(self.parities)}
        ops: list[tuple[Tensor, Tensor] | Tensor] = []
        targets = self.parities[color * self.n_sub : (color + 1) * self.n_sub]
        for t, p in enumerate(targets):
            out = cnt[t]
            sources = []
            for a in range(self.d):
                q = list(p)
                q[a] ^= 1
                sources.append(data[index[tuple(q)]])
            ops.append(out)
            if self.d >= 2:
                ops.append((sources[0], sources[1]))
            else:
                ops.append((sources[0], torch.zeros_like(sources[0])))
            for a in range(2, self.d):
                ops.append((out, sources[a]))
            for a in range(self.d):
                dim = 1 + a
                m = self.half[a]
                src = sources[a]
                if p[a] == 0:  # neighbour at y - e_a
                    ops.append((out.narrow(dim, 1, m - 1), src.narrow(dim, 0, m - 1)))
                    ops.append((out.narrow(dim, 0, 1), src.narrow(dim, m - 1, 1)))
                else:  # neighbour at y + e_a
                    ops.append((out.narrow(dim, 0, m - 1), src.narrow(dim, 1, m - 1)))
                    ops.append((out.narrow(dim, m - 1, 1), src.narrow(dim, 0, 1)))
        return ops

    @staticmethod
    def _run_plan(ops: list[tuple[Tensor, Tensor] | Tensor]) -> None:
        it = iter(ops)
        for op in it:
            if isinstance(op, Tensor):
                a, b = next(it)  # type: ignore[misc]
                torch.add(a, b, out=op)
            else:
                op[0].add_(op[1])

    def sweep(
        self,
        n_sweeps: int,
        probs: Tensor,
        *,
        antiferro: bool,
        generator: torch.Generator | None,
    ) -> None:
        """``n_sweeps`` checkerboard sweeps in place.

        Arguments:
            n_sweeps: Full sweeps (both colours).
            probs: ``P[chain, s, c]`` from :func:`flip_probabilities`, shape
                ``(C, S, z + 1)`` with ``C`` = 1 or ``n_chains``; ``S`` = 1
                is a heat-bath update, 2 a Metropolis one.
            antiferro: Count down neighbours (``J < 0``).
            generator: Random generator.
        """
        if n_sweeps <= 0:
            return
        per_chain = self.n_sub * math.prod(self.half)  # sites per colour per chain
        ct = max(1, min(self.n_chains, _TILE_SITES // per_chain))
        z = 2 * self.d
        for c0 in range(0, self.n_chains, ct):
            c1 = min(self.n_chains, c0 + ct)
            data = self.data[:, c0:c1]
            p = probs if probs.shape[0] == 1 else probs[c0:c1]
            self._sweep_tile(data, n_sweeps, p, z, antiferro, generator)

    def _sweep_tile(
        self,
        data: Tensor,
        n_sweeps: int,
        probs: Tensor,
        z: int,
        antiferro: bool,
        generator: torch.Generator | None,
    ) -> None:
        nc = data.shape[1]
        cnt = torch.empty((self.n_sub, nc, *self.half), dtype=torch.uint8, device=self.device)
        plans = [self._plan(data, cnt, color) for color in (0, 1)]
        outs = [
            data[color * self.n_sub : (color + 1) * self.n_sub].view(torch.bool)
            for color in (0, 1)
        ]
        half_sites = cnt.numel()
        per = max(1, _DRAW_SITES // half_sites)  # half sweeps per chunk of thresholds
        total = 2 * n_sweeps
        is_metropolis = probs.shape[1] == 2
        tmp = torch.empty_like(cnt) if is_metropolis else None
        draws = _Thresholds(probs, (min(per, total), *cnt.shape))
        done = 0
        while done < total:
            m = min(per, total - done)
            k = draws.draw(m, generator)  # (S, m, *cnt.shape)
            for t in range(m):
                color = (done + t) % 2
                self._run_plan(plans[color])
                if antiferro:
                    cnt.neg_().add_(z)  # uint8: z - c
                out = outs[color]
                if tmp is None:
                    torch.ge(cnt, k[0, t], out=out)
                else:
                    torch.where(out, k[1, t], k[0, t], out=tmp)
                    torch.ge(cnt, tmp, out=out)
            done += m


class _Thresholds:
    """Draws exact thresholds ``k = #{c : P[s, c] <= u}`` as ``uint8``, in chunks.

    Two random bytes per site, ``hi`` and ``lo``, give ``u = (256 hi + lo + v) /
    65536``. With ``F = floor(65536 P)`` split into bytes ``F_hi``, ``F_lo``,

        u >= P  <=>  hi > F_hi  or  (hi == F_hi and (lo > F_lo or (lo == F_lo and v >= frac)))

    with ``frac = 65536 P - F``. Every comparison is between ``uint8`` arrays
    of the same shape (the one form torch vectorizes on CPU), the constants
    being stored as full arrays; the rare sites where ``hi == F_hi`` and
    ``lo == F_lo`` (about ``Z / 65536``) are settled exactly with a float64
    ``v``.

    Arguments:
        probs: ``P[chain, s, c]``, float64, shape ``(R, S, Z)``, rows
            non-decreasing, ``R`` = 1 or the number of chains of ``shape``.
        shape: Shape of one chunk, ``(m, n_sub, chains, *half)``.
    """

    def __init__(self, probs: Tensor, shape: tuple[int, ...]) -> None:
        self.probs = probs
        self.shape = shape
        self.device = probs.device
        n_rows, n_s, n_c = probs.shape
        self.n_s = n_s
        self.per_chain = n_rows > 1
        scaled = probs * 65536.0
        whole = scaled.floor().clamp(max=65535.0)
        frac = scaled - whole
        whole_i = whole.long()
        view = (1, 1, n_rows) + (1,) * (len(shape) - 3)

        def full(values: Tensor) -> Tensor:
            v = values.to(torch.uint8).view(view)
            return v.expand(shape).contiguous()

        # Per (s, c): ("const", n) adds n; ("ge_hi", F_hi) adds [hi >= F_hi];
        # ("two", F_hi, F_lo, is_strict_lo, needs_tie).
        self.plan: list[list[tuple[object, ...]]] = []
        for s in range(n_s):
            row: list[tuple[object, ...]] = []
            for c in range(n_c):
                p_sc = probs[:, s, c]
                if bool((p_sc <= 0).all()):
                    row.append(("const", 1))
                    continue
                if bool((p_sc >= 1).all()):
                    continue  # u >= 1 never holds
                hi = whole_i[:, s, c] >> 8
                lo = whole_i[:, s, c] & 255
                fr = frac[:, s, c]
                if bool(((lo == 0) & (fr == 0)).all()):
                    row.append(("ge_hi", full(hi)))
                elif bool((fr == 0).all()):
                    # lo + v >= F_lo  <=>  lo >= F_lo  <=>  lo > F_lo - 1 (F_lo >= 1 here)
                    row.append(("two", full(hi), full(lo - 1), False))
                else:
                    row.append(("two", full(hi), full(lo), True))
            self.plan.append(row)
        self.needs_tie = any(op[0] == "two" and op[3] for row in self.plan for op in row)
        n = math.prod(shape)
        self.n = n
        n_pad = (n + 7) // 8 * 8
        self._words = torch.empty(((2 * n + 7) // 8,), dtype=torch.int64, device=self.device)
        self._tie = torch.zeros(n_pad, dtype=torch.bool, device=self.device)
        self._b1 = torch.empty(shape, dtype=torch.bool, device=self.device)
        self._b2 = torch.empty(shape, dtype=torch.bool, device=self.device)
        self._b3 = torch.empty(shape, dtype=torch.bool, device=self.device)
        self._out = torch.empty((n_s, *shape), dtype=torch.uint8, device=self.device)

    def draw(self, m: int, generator: torch.Generator | None) -> Tensor:
        """Thresholds for the first ``m`` half sweeps of a chunk: ``(S, m, *shape[1:])``."""
        shape = (m, *self.shape[1:])
        n = math.prod(shape)
        # Full 64-bit range: plain random_() on int64 leaves the top bit 0.
        self._words.random_(-(2**63), None, generator=generator)
        raw = self._words.view(torch.uint8)
        hi = raw[:n].view(shape)
        lo = raw[self.n : self.n + n].view(shape)
        out = self._out[:, :m]
        out.zero_()
        tie = self._tie[:n].view(shape)
        if self.needs_tie:
            tie.zero_()
        b1, b2, b3 = self._b1[:m], self._b2[:m], self._b3[:m]
        for s, row in enumerate(self.plan):
            acc = out[s]
            for op in row:
                if op[0] == "const":
                    acc.add_(int(op[1]))  # type: ignore[call-overload]
                    continue
                f_hi = op[1][:m]  # type: ignore[index]
                if op[0] == "ge_hi":
                    torch.ge(hi, f_hi, out=b1)
                    acc.add_(b1.view(torch.uint8))
                    continue
                f_lo = op[2][:m]  # type: ignore[index]
                torch.gt(hi, f_hi, out=b1)
                torch.eq(hi, f_hi, out=b2)
                torch.gt(lo, f_lo, out=b3)
                b3.logical_and_(b2)
                b1.logical_or_(b3)
                acc.add_(b1.view(torch.uint8))
                if op[3]:
                    torch.eq(lo, f_lo, out=b3)
                    b3.logical_and_(b2)
                    tie.logical_or_(b3)
        if self.needs_tie:
            self._settle_ties(out, hi, lo, n, generator)
        return out

    def _settle_ties(
        self, out: Tensor, hi: Tensor, lo: Tensor, n: int, generator: torch.Generator | None
    ) -> None:
        words = self._tie[: (n + 7) // 8 * 8].view(torch.int64)
        if not bool(words.any()):
            return
        flagged = torch.nonzero(words).flatten()
        cand = (flagged[:, None] * 8 + torch.arange(8, device=self.device)).flatten()
        cand = cand[cand < n]
        idx = cand[self._tie[cand]]
        if idx.numel() == 0:
            return
        v = torch.rand(idx.shape, generator=generator, dtype=torch.float64, device=self.device)
        hi_v = hi.reshape(-1)[idx].double()
        lo_v = lo.reshape(-1)[idx].double()
        u = (hi_v * 256.0 + lo_v + v) / 65536.0
        if self.per_chain:
            inner = math.prod(self.shape[3:])
            row = (idx // inner) % self.shape[2]
            p = self.probs[row]
        else:
            p = self.probs[torch.zeros_like(idx)]
        exact_k = (u[:, None, None] >= p).sum(-1).to(torch.uint8)  # (n_tie, S)
        for s in range(self.n_s):
            out[s].view(-1)[idx] = exact_k[:, s]
