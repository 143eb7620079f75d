"""Contrastive divergence for Boltzmann machines with a free energy.

:class:`CDTrainer` (one update at a time) and :func:`fit_cd` (epochs over a data
set) train any model offering ``free_energy(v)`` and ``gibbs(v, n_steps,
generator=)``: the RBMs of :mod:`ebmlab.boltzmann.rbm`, the fully visible
:class:`~ebmlab.boltzmann.BoltzmannMachine` and the layers of a
:class:`~ebmlab.boltzmann.DBN`. Negatives come from block Gibbs sampling, from the
data batch (CD-k) or from persistent chains (PCD-k).

References:
    Hinton (2002), "Training products of experts by minimizing contrastive
    divergence", https://doi.org/10.1162/089976602760128018; Tieleman (2008),
    "Training restricted Boltzmann machines using approximations to the
    likelihood gradient", https://doi.org/10.1145/1390156.1390290.
"""

from __future__ import annotations

__all__ = ["LR_SCHEDULES", "CDResult", "CDStepInfo", "CDTrainer", "fit_cd", "parse_training"]

import math
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .enumeration import _gdev

#: Learning-rate schedules of :func:`fit_cd`: constant, or linear decay to 0.
LR_SCHEDULES = ("constant", "linear")

# -- contrastive divergence --------------------------------------------------


def parse_training(training: str) -> tuple[str, int]:
    """Parse a training mode: ``"pcd"``, ``"cd"``, ``"cd-k"`` or ``"pcd-k"``.

    Returns:
        ``(mode, k)`` with ``mode`` in ``{"cd", "pcd"}`` and ``k >= 1`` Gibbs
        steps per update.

    Example:
        >>> parse_training("cd-5"), parse_training("pcd")
        (('cd', 5), ('pcd', 1))
    """
    match = re.fullmatch(r"(p?cd)(?:-(\d+))?", str(training))
    if match is None or (match.group(2) is not None and int(match.group(2)) < 1):
        raise ValueError(
            "training must be 'pcd', 'cd', 'cd-k' or 'pcd-k' with k >= 1 Gibbs steps "
            f"(e.g. 'cd-1'), got {training!r}"
        )
    return match.group(1), int(match.group(2) or 1)


class CDStepInfo(NamedTuple):
    """Diagnostics of one contrastive-divergence update (0-d tensors).

    Attributes:
        free_energy_pos: Mean free energy of the data batch.
        free_energy_neg: Mean free energy of the negatives.
        gap: ``free_energy_neg - free_energy_pos``: large when the chains lag.
    """

    free_energy_pos: Tensor
    free_energy_neg: Tensor
    gap: Tensor


class CDTrainer:
    """Contrastive divergence (CD-k) or persistent CD for models with a free energy.

    Each :meth:`step` draws negatives by block Gibbs sampling
    (``model.gibbs(v, k, generator=)``): from the data batch (``"cd-k"``) or from
    persistent chains (``"pcd-k"``, Tieleman 2008), then descends
    ``mean F(v+) - mean F(v-)``, whose gradient is the maximum-likelihood
    gradient with the model expectation replaced by the negatives. The
    gradient comes from the model's ``cd_grads(v_pos, v_neg)`` when its
    ``cd_parameters()`` are all the trained parameters (the hand-written RBM
    gradients), else from autograd. Updates are SGD with
    momentum (``buf = momentum * buf + grad``, ``p -= lr * buf``); weight
    decay (L2) applies to matrices only, never to biases.

    Arguments:
        model: A module with ``free_energy(v) -> (N,)`` and
            ``gibbs(v, n_steps, generator=)`` (an :class:`RBM`, a
            :class:`~ebmlab.boltzmann.BoltzmannMachine`).
        learning_rate: Step size on the batch-mean gradient.
        training: ``"pcd"`` (default), ``"cd"``, ``"cd-k"`` or ``"pcd-k"``.
        n_chains: Persistent chains (default: the first batch's size).
        momentum: SGD momentum in ``[0, 1)``.
        weight_decay: L2 penalty on weight matrices (``>= 0``).
        chains: Starting persistent chains ``(n_chains, *event_shape)``
            (default: rows of the first batch).

    Attributes:
        chains: The persistent chains (``"pcd"``), ``None`` before the first step.
        last_info: The :class:`CDStepInfo` of the last step that computed one.

    Example:
        >>> from ebmlab.boltzmann import BernoulliRBM
        >>> g = torch.Generator().manual_seed(0)
        >>> rbm = BernoulliRBM(6, 4, generator=g)
        >>> trainer = CDTrainer(rbm, learning_rate=0.1, training="cd-1")
        >>> info = trainer.step(torch.ones(8, 6), generator=g)
        >>> info.gap.shape
        torch.Size([])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        learning_rate: float = 0.1,
        training: str = "pcd",
        n_chains: int | None = None,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        chains: Tensor | None = None,
    ) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        if n_chains is not None and int(n_chains) < 1:
            raise ValueError(f"n_chains must be >= 1, got {n_chains}")
        self.model = model
        self.mode, self.k = parse_training(training)
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.n_chains = None if n_chains is None else int(n_chains)
        self.chains = chains
        self.params: list[Tensor] = [p for p in model.parameters() if p.requires_grad]
        self.buffers: list[Tensor] | None = None
        self.last_info: CDStepInfo | None = None
        fast = getattr(model, "cd_parameters", None)
        fast_params = fast() if callable(fast) else None
        self.is_fast = fast_params is not None and [id(p) for p in fast_params] == [
            id(p) for p in self.params
        ]

    def negatives(self, v_pos: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Negatives for one batch (advances the persistent chains in ``"pcd"``)."""
        model: Any = self.model
        if self.mode == "cd":
            return model.gibbs(v_pos, self.k, generator=generator)  # type: ignore[no-any-return]
        if self.chains is None:
            n = self.n_chains or v_pos.shape[0]
            idx = torch.randint(v_pos.shape[0], (n,), generator=generator, device=_gdev(generator))
            self.chains = v_pos[idx.to(v_pos.device)].clone()
        self.chains = model.gibbs(self.chains, self.k, generator=generator)
        return self.chains

    def _grads(self, v_pos: Tensor, v_neg: Tensor) -> list[Tensor]:
        model: Any = self.model
        if self.is_fast:
            return model.cd_grads(v_pos, v_neg)  # type: ignore[no-any-return]
        with torch.enable_grad():
            loss = model.free_energy(v_pos).mean() - model.free_energy(v_neg).mean()
            out = torch.autograd.grad(loss, self.params, allow_unused=True)
        return [
            torch.zeros_like(p) if g is None else g for p, g in zip(self.params, out, strict=True)
        ]

    @torch.no_grad()
    def step(
        self,
        v_pos: Tensor,
        *,
        generator: torch.Generator | None = None,
        learning_rate: float | None = None,
        return_info: bool = True,
    ) -> CDStepInfo | None:
        """One update on a data batch ``(B, *event_shape)``.

        Arguments:
            v_pos: Data batch.
            generator: Random generator for the Gibbs sampler.
            learning_rate: Overrides the learning rate for this and later steps
                (a schedule).
            return_info: Compute the free energies of the batch and the
                negatives (two extra passes) for the diagnostics.

        Returns:
            The :class:`CDStepInfo` of this update (``None`` without
            ``return_info``).
        """
        if learning_rate is not None:
            self.learning_rate = float(learning_rate)
        v_neg = self.negatives(v_pos, generator=generator)
        grads = self._grads(v_pos, v_neg)
        if self.weight_decay > 0:
            grads = [
                g.add(p, alpha=self.weight_decay) if p.dim() >= 2 else g
                for p, g in zip(self.params, grads, strict=True)
            ]
        if self.momentum > 0:
            if self.buffers is None:
                self.buffers = [torch.zeros_like(p) for p in self.params]
            # buf = momentum * buf + grad, for all parameters in one call each
            torch._foreach_mul_(self.buffers, self.momentum)
            torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        torch._foreach_add_(self.params, grads, alpha=-self.learning_rate)
        if not return_info:
            return None
        model: Any = self.model
        fp, fn = model.free_energy(v_pos).mean(), model.free_energy(v_neg).mean()
        self.last_info = CDStepInfo(fp, fn, fn - fp)
        return self.last_info


class CDResult(NamedTuple):
    """What :func:`fit_cd` returns.

    Attributes:
        trainer: The :class:`CDTrainer` (persistent chains, optimizer state):
            call :meth:`CDTrainer.step` to continue.
        gaps: Free-energy gap ``mean F(v-) - mean F(v+)`` on the last batch of
            each epoch.
        seconds: Wall-clock training time.
    """

    trainer: CDTrainer
    gaps: list[float]
    seconds: float


def _order(n: int, generator: torch.Generator | None, shuffle: bool) -> Tensor:
    if shuffle:
        return torch.randperm(n, generator=generator, device=_gdev(generator))
    return torch.arange(n)


def fit_cd(
    model: nn.Module,
    data: Tensor,
    *,
    n_epochs: int = 10,
    batch_size: int = 10,
    learning_rate: float = 0.1,
    training: str = "pcd",
    n_chains: int | None = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    callback: Callable[[int, CDTrainer], None] | None = None,
) -> CDResult:
    """Train ``model`` in place by CD-k or persistent CD over ``n_epochs`` epochs.

    Arguments:
        model: An :class:`RBM` or any module with ``free_energy`` and ``gibbs``.
        data: Training data, shape ``(N, *event_shape)``.
        n_epochs: Passes over the data.
        batch_size: Rows per update.
        learning_rate: Initial step size on the batch-mean gradient.
        training: ``"pcd"``, ``"cd"``, ``"cd-k"`` or ``"pcd-k"``.
        n_chains: Persistent chains (default ``batch_size``).
        momentum: SGD momentum in ``[0, 1)``.
        weight_decay: L2 penalty on weight matrices.
        lr_schedule: ``"constant"`` or ``"linear"`` (decays to 0 at the end).
        shuffle: Visit the rows in a new random order every epoch.
        generator: Random generator (order, chains, Gibbs sampling).
        callback: Called as ``callback(epoch, trainer)`` after every epoch.

    Returns:
        A :class:`CDResult`.

    Example:
        >>> from ebmlab.boltzmann import BernoulliRBM
        >>> g = torch.Generator().manual_seed(0)
        >>> data = torch.bernoulli(torch.full((40, 6), 0.3), generator=g)
        >>> rbm = BernoulliRBM(6, 4, generator=g)
        >>> result = fit_cd(rbm, data, n_epochs=2, batch_size=10, generator=g)
        >>> len(result.gaps)
        2
    """
    if int(n_epochs) < 0:
        raise ValueError(f"n_epochs must be >= 0, got {n_epochs}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {lr_schedule!r}")
    if data.dim() < 2 or data.shape[0] < 1:
        raise ValueError(f"data must be (N, *event_shape) with N >= 1, got {tuple(data.shape)}")
    t0 = time.perf_counter()
    param = next(model.parameters())
    data = data.to(dtype=param.dtype, device=param.device)
    trainer = CDTrainer(
        model,
        learning_rate=learning_rate,
        training=training,
        n_chains=n_chains or batch_size,
        momentum=momentum,
        weight_decay=weight_decay,
    )
    n = data.shape[0]
    n_updates = int(n_epochs) * math.ceil(n / int(batch_size))
    t = 0
    gaps: list[float] = []
    for epoch in range(int(n_epochs)):
        rows = data[_order(n, generator, shuffle).to(data.device)] if shuffle else data
        batches = rows.split(int(batch_size))
        for i, batch in enumerate(batches):
            lr = learning_rate * (1 - t / n_updates) if lr_schedule == "linear" else None
            last = i == len(batches) - 1
            info = trainer.step(batch, generator=generator, learning_rate=lr, return_info=last)
            t += 1
            if info is not None:
                gaps.append(float(info.gap))
        if callback is not None:
            callback(epoch, trainer)
    return CDResult(trainer, gaps, time.perf_counter() - t0)
