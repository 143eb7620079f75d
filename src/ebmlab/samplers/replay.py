"""Replay buffer of persistent chain states (Du & Mordatch 2019)."""

from __future__ import annotations

__all__ = ["ReplayBuffer"]

from collections.abc import Callable
from typing import Self

import torch
from torch import Tensor

#: ``init_fn(n, generator) -> Tensor (n, *event_shape)``: fresh starting points.
InitFn = Callable[[int, "torch.Generator | None"], Tensor]


class _StoredStates:
    """Stored chain states ``buffer`` and an update count ``n_seen``, checkpointed as such.

    The state layout that :func:`ebmlab.train.fit` saves and restores for
    :class:`ReplayBuffer` and for :class:`ebmlab.boltzmann.PersistentChains`.
    """

    buffer: Tensor
    n_seen: int
    _noun = "stored states"  # names the shape mismatch in load_state_dict

    def to(self, device: torch.device | str) -> Self:
        """Move the stored states to ``device`` (in place); returns ``self``."""
        self.buffer = self.buffer.to(device)
        return self

    def state_dict(self) -> dict[str, Tensor | int]:
        """Tensors and counters needed to restore the states exactly."""
        return {"buffer": self.buffer, "n_seen": self.n_seen}

    def load_state_dict(self, state: dict[str, Tensor | int]) -> None:
        """Restore from :meth:`state_dict`."""
        buf = state["buffer"]
        assert isinstance(buf, Tensor)
        if tuple(buf.shape) != tuple(self.buffer.shape):
            raise ValueError(
                f"{self._noun} of shape {tuple(buf.shape)} do not match {tuple(self.buffer.shape)}"
            )
        self.buffer = buf.to(self.buffer.device, self.buffer.dtype).clone()
        self.n_seen = int(state["n_seen"])


class ReplayBuffer(_StoredStates):
    """A store of past MCMC end-states used to start the next chains.

    :meth:`sample` draws ``n`` stored states; each is replaced by a fresh start
    from ``init_fn`` with probability ``reinit_prob`` (so chains do not all
    collapse into old modes). After sampling, :meth:`push` writes the new
    end-states back:

    * default: into the slots they were drawn from (persistent chains; a slot
      drawn by several chains keeps the last one's state);
    * ``reservoir=True``: reservoir sampling over everything ever pushed, so the
      buffer is a uniform sample of the whole history.

    Arguments:
        capacity: Number of stored states.
        init_fn: ``(n, generator) -> Tensor (n, *event_shape)`` fresh starts.
        reinit_prob: Probability in ``[0, 1]`` of a fresh start per draw.
        reservoir: Use reservoir sampling in :meth:`push`.
        generator: Generator for the initial fill.

    Example:
        >>> buf = ReplayBuffer(100, lambda n, g: torch.rand(n, 2, generator=g) * 2 - 1)
        >>> x, idx = buf.sample(8)
        >>> buf.push(x + 0.1, idx)
        >>> tuple(x.shape), len(buf)
        ((8, 2), 100)
    """

    _noun = "replay buffer states"

    def __init__(
        self,
        capacity: int,
        init_fn: InitFn,
        *,
        reinit_prob: float = 0.05,
        reservoir: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        if int(capacity) < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if not 0.0 <= reinit_prob <= 1.0:
            raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob}")
        self.capacity = int(capacity)
        self.init_fn = init_fn
        self.reinit_prob = float(reinit_prob)
        self.reservoir = bool(reservoir)
        self.buffer = init_fn(self.capacity, generator).detach().clone()
        if self.buffer.shape[0] != self.capacity:
            raise ValueError(f"init_fn({self.capacity}) returned {self.buffer.shape[0]} rows")
        #: Number of states pushed so far (reservoir sampling needs it).
        self.n_seen = 0

    def __len__(self) -> int:
        return self.capacity

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer(capacity={self.capacity}, reinit_prob={self.reinit_prob}, "
            f"reservoir={self.reservoir})"
        )

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` starting points (each stored state once when ``n == capacity``).

        Returns:
            ``(x, idx)``: states ``(n, *event_shape)`` (a copy) and the slots
            they came from ``(n,)``, to hand back to :meth:`push`.
        """
        dev = self.buffer.device
        if n == self.capacity and not self.reservoir:
            # Every chain exactly once: classic persistent chains (Tieleman 2008).
            idx = torch.randperm(n, generator=generator, device=dev)
        else:
            idx = torch.randint(self.capacity, (n,), generator=generator, device=dev)
        x = self.buffer[idx]
        if self.reinit_prob > 0:
            fresh = self.init_fn(n, generator).to(device=dev, dtype=x.dtype)
            u = torch.rand(n, generator=generator, device=dev)
            mask = (u < self.reinit_prob).reshape((n,) + (1,) * (x.dim() - 1))
            x = torch.where(mask, fresh, x)
        return x, idx

    def push(
        self, x: Tensor, idx: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> None:
        """Store end-states ``x`` ``(n, *event_shape)``.

        Arguments:
            x: New states.
            idx: Slots from :meth:`sample` (ignored with ``reservoir=True``).
            generator: Random generator for reservoir sampling.
        """
        x = x.detach().to(self.buffer.device, self.buffer.dtype)
        n = x.shape[0]
        if not self.reservoir:
            if idx is None:
                raise ValueError("push needs the idx returned by sample (or reservoir=True)")
            idx = idx.to(self.buffer.device)
            # Slots drawn with replacement (n != capacity) can repeat, and index assignment
            # with repeated slots has no defined winner (CUDA): the last chain that drew a
            # slot wins, as in a sequential loop.
            pos = torch.arange(n, device=idx.device)
            last = torch.full((self.capacity,), -1, dtype=pos.dtype, device=idx.device)
            last.scatter_reduce_(0, idx, pos, reduce="amax")
            wins = last[idx] == pos
            idx, x = idx[wins], x[wins]
            self.buffer[idx] = x
        else:
            # Algorithm R, vectorized: item number k (0-based) replaces slot
            # j ~ U{0..k} when j < capacity; later items win ties, as sequentially.
            dev = self.buffer.device
            k = torch.arange(self.n_seen, self.n_seen + n, device=dev)
            # float64: float32 cannot tell k from k + 1 past 2^24 pushes.
            u = torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
            j = (u * (k + 1).to(u.dtype)).long()
            j = torch.where(k < self.capacity, k, j)
            keep = j < self.capacity
            j, k, x = j[keep], k[keep], x[keep]
            # Index assignment with repeated slots has no defined winner (CUDA):
            # keep only the latest item per slot, as the sequential algorithm does.
            latest = torch.full((self.capacity,), -1, dtype=k.dtype, device=dev)
            latest.scatter_reduce_(0, j, k, reduce="amax")
            wins = latest[j] == k
            self.buffer[j[wins]] = x[wins]
        self.n_seen += n
