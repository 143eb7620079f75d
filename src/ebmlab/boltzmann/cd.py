"""Contrastive divergence for Boltzmann machines with a free energy.

:class:`BlockGibbsCD` is the objective: negatives by block Gibbs sampling
(``model.gibbs(v, k, generator=)``), from the data batch (CD-k) or from
persistent chains (PCD-k, the :class:`PersistentChains` state), and the loss
``mean F(v+) - mean F(v-)``. It trains through :func:`ebmlab.train.fit` like
every other objective (SGD with momentum, checkpoints, exact resume with the
chains, the divergence guard). :func:`fit_cd` (epochs over a data set) and
:class:`CDTrainer` (one update at a time) are that loop with the classic RBM
settings: the RBMs of :mod:`ebmlab.boltzmann.rbm`, the fully visible
:class:`~ebmlab.boltzmann.BoltzmannMachine` and the layers of a
:class:`~ebmlab.boltzmann.DBN`.

The objective lives here rather than in :mod:`ebmlab.objectives` because it
needs the block Gibbs structure (and the hand-written gradients) of these
models, as the conditional loss functionals live in
:mod:`ebmlab.conditional.losses`.

References:
    Hinton (2002), "Training products of experts by minimizing contrastive
    divergence", https://doi.org/10.1162/089976602760128018; Tieleman (2008),
    "Training restricted Boltzmann machines using approximations to the
    likelihood gradient", https://doi.org/10.1145/1390156.1390290.
"""

from __future__ import annotations

__all__ = [
    "LR_SCHEDULES",
    "BlockGibbsCD",
    "CDResult",
    "CDStepInfo",
    "CDTrainer",
    "GibbsCDDiagnostics",
    "PersistentChains",
    "fit_cd",
    "parse_training",
]

import math
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..samplers.replay import _StoredStates
from ..train.loop import TrainSettings, fit
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


class GibbsCDDiagnostics(NamedTuple):
    """Diagnostics of one :class:`BlockGibbsCD` evaluation (0-d tensors).

    Attributes:
        loss: ``mean F(v+) - mean F(v-)``.
        energy_pos: Mean free energy of the data batch.
        energy_neg: Mean free energy of the negatives.
        energy_gap: ``energy_neg - energy_pos``: large when the chains lag.
    """

    loss: Tensor
    energy_pos: Tensor
    energy_neg: Tensor
    energy_gap: Tensor


class PersistentChains(_StoredStates):
    """The persistent Gibbs chains of PCD: the state :class:`BlockGibbsCD` advances.

    :func:`ebmlab.train.fit` checkpoints it through :meth:`state_dict` (the
    replay-buffer layout: ``buffer`` and ``n_seen``), so a resumed run continues
    the same chains.

    Arguments:
        chains: Starting states ``(n_chains, *event_shape)`` (copied).

    Attributes:
        buffer: The chains now.
        n_seen: Updates that advanced them.
    """

    _noun = "chains"

    def __init__(self, chains: Tensor) -> None:
        if chains.dim() < 2 or chains.shape[0] < 1:
            raise ValueError(f"chains must be (n_chains, *event_shape), got {tuple(chains.shape)}")
        self.buffer = chains.detach().clone()
        self.n_seen = 0

    @classmethod
    def from_data(
        cls, data: Tensor, n_chains: int, *, generator: torch.Generator | None = None
    ) -> PersistentChains:
        """``n_chains`` chains started at rows of ``data`` drawn with replacement."""
        if int(n_chains) < 1:
            raise ValueError(f"n_chains must be >= 1, got {n_chains}")
        idx = torch.randint(data.shape[0], (int(n_chains),), generator=generator,
                            device=_gdev(generator))  # fmt: skip
        return cls(data[idx.to(data.device)])

    def __len__(self) -> int:
        return int(self.buffer.shape[0])

    def __repr__(self) -> str:
        return f"PersistentChains(n_chains={len(self)}, n_seen={self.n_seen})"


class _GivenGradients(torch.autograd.Function):
    """A loss whose value is ``value`` and whose gradients are ``grads`` exactly.

    ``_GivenGradients.apply(value, grads, *params)``: the backward pass hands
    ``grads`` (times the incoming gradient) to ``params``, the way a surrogate
    ``sum(p * g.detach())`` would, in one autograd node.
    """

    @staticmethod
    def forward(ctx: Any, value: Tensor, grads: list[Tensor], *params: Tensor) -> Tensor:
        ctx.grads = grads
        return value.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return (None, None, *torch._foreach_mul(ctx.grads, grad))


def _fast_params(model: Any) -> list[Tensor] | None:
    """The parameters when the model's ``cd_grads`` covers all it trains, else None."""
    fast = getattr(model, "cd_parameters", None)
    fast_params = fast() if callable(fast) else None
    if fast_params is None:
        return None
    trained = [p for p in model.parameters() if p.requires_grad]
    if [id(p) for p in fast_params] != [id(p) for p in trained]:
        return None
    return list(fast_params)


class BlockGibbsCD:
    """Contrastive divergence (CD-k) or persistent CD with block Gibbs negatives.

    The objective of :func:`ebmlab.train.fit` for models with a free energy
    ``F(v)`` (their ``forward``) and ``gibbs(v, n_steps, generator=)``. Each
    call draws negatives ``v-`` by ``k`` Gibbs steps from the data batch
    (``"cd-k"``) or from the persistent chains of the state (``"pcd-k"``,
    Tieleman 2008), and returns the loss ``mean F(v+) - mean F(v-)``, whose
    gradient is the maximum-likelihood gradient with the model expectation
    replaced by the negatives.

    When the model's ``cd_parameters()`` are all its trained parameters (the
    RBMs), the gradient is the hand-written ``cd_grads_and_free_energy`` (one
    pass over the stacked rows, no autograd graph), handed to the parameters
    by a one-node surrogate whose backward gives exactly those gradients;
    otherwise (a learned ``sigma``, a :class:`~ebmlab.boltzmann.BoltzmannMachine`,
    several processes) autograd differentiates the free energies.

    Arguments:
        training: ``"pcd"``, ``"cd"``, ``"cd-k"`` or ``"pcd-k"``.

    Example:
        >>> from ebmlab.boltzmann import BernoulliRBM
        >>> g = torch.Generator().manual_seed(0)
        >>> rbm = BernoulliRBM(6, 4, generator=g)
        >>> cd = BlockGibbsCD("pcd-2")
        >>> v = torch.ones(8, 6)
        >>> chains = cd.init_state(v, 5, generator=g)
        >>> loss, diag, chains = cd(rbm, v, chains, generator=g)
        >>> loss.shape, diag.energy_gap.shape, chains.buffer.shape
        (torch.Size([]), torch.Size([]), torch.Size([5, 6]))
    """

    def __init__(self, training: str = "pcd") -> None:
        self.mode, self.k = parse_training(training)
        self._weights: dict[Any, Tensor] = {}
        self._fast: tuple[Any, list[Tensor] | None] | None = None

    def __repr__(self) -> str:
        return f"BlockGibbsCD(mode={self.mode!r}, k={self.k})"

    def init_state(
        self, data: Tensor, n_chains: int, *, generator: torch.Generator | None = None
    ) -> PersistentChains | None:
        """The state to pass to :func:`~ebmlab.train.fit`: chains at rows of ``data``
        for ``"pcd"``, ``None`` for ``"cd"``."""
        if self.mode != "pcd":
            return None
        return PersistentChains.from_data(data, n_chains, generator=generator)

    def negatives(
        self,
        model: Any,
        v_pos: Tensor,
        state: PersistentChains | None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Negatives for one batch (advances the persistent chains in ``"pcd"``)."""
        if self.mode == "cd":
            return model.gibbs(v_pos, self.k, generator=generator)  # type: ignore[no-any-return]
        if state is None:
            raise ValueError("mode 'pcd' needs a PersistentChains state (see init_state)")
        state.buffer = model.gibbs(state.buffer, self.k, generator=generator)
        state.n_seen += 1
        return state.buffer

    def _summary(self, n_pos: int, n_neg: int, like: Tensor) -> Tensor:
        """Rows mapping the free energies to (mean F+, mean F-, gap, loss)."""
        key = (n_pos, n_neg, like.dtype, like.device)
        if key not in self._weights:
            pos = torch.zeros(n_pos + n_neg, dtype=like.dtype, device=like.device)
            pos[:n_pos] = 1.0 / n_pos
            neg = torch.zeros_like(pos)
            neg[n_pos:] = 1.0 / n_neg
            self._weights.clear()
            self._weights[key] = torch.stack([pos, neg, neg - pos, pos - neg])
        return self._weights[key]

    def __call__(
        self,
        model: Any,
        v_pos: Tensor,
        state: PersistentChains | None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, GibbsCDDiagnostics, PersistentChains | None]:
        """Loss for one data batch ``(B, *event_shape)``.

        Returns:
            ``(loss, diagnostics, state)``; ``loss`` is 0-d.
        """
        bare = model.module if isinstance(model, DistributedDataParallel) else model
        if self._fast is None or self._fast[0] is not bare:  # decided once per model
            self._fast = (bare, _fast_params(bare))
        params = None if bare is not model else self._fast[1]
        with torch.no_grad():
            v_neg = self.negatives(bare, v_pos, state, generator=generator)
            if params is not None:
                grads, free = bare.cd_grads_and_free_energy(v_pos, v_neg)
                summary = self._summary(v_pos.shape[0], v_neg.shape[0], free) @ free
        if params is not None:
            e_pos, e_neg, gap, value = summary.unbind()
            loss = _GivenGradients.apply(value, grads, *params)
            return loss, GibbsCDDiagnostics(value, e_pos, e_neg, gap), state
        # Through the (possibly distributed) module's forward: the free energies.
        e = model(torch.cat([v_pos, v_neg.to(v_pos.dtype)]))
        e_pos, e_neg = e[: v_pos.shape[0]].mean(), e[v_pos.shape[0] :].mean()
        loss = e_pos - e_neg
        mp, mn = e_pos.detach(), e_neg.detach()
        return loss, GibbsCDDiagnostics(loss.detach(), mp, mn, mn - mp), state


class CDStepInfo(NamedTuple):
    """Diagnostics of one :meth:`CDTrainer.step` (0-d tensors, before the update).

    Attributes:
        free_energy_pos: Mean free energy of the data batch.
        free_energy_neg: Mean free energy of the negatives.
        gap: ``free_energy_neg - free_energy_pos``: large when the chains lag.
    """

    free_energy_pos: Tensor
    free_energy_neg: Tensor
    gap: Tensor


def _check(learning_rate: float, momentum: float, weight_decay: float, n_chains: Any) -> None:
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if n_chains is not None and int(n_chains) < 1:
        raise ValueError(f"n_chains must be >= 1, got {n_chains}")


def _seed(generator: torch.Generator | None) -> int:
    """A seed for :func:`ebmlab.train.fit` drawn from ``generator`` (advancing it)."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator, device=_gdev(generator)))


def _settings(
    steps: int, batch_size: int, learning_rate: float, momentum: float, weight_decay: float,
    *, lr_schedule: str, batches: str, log_every: int, seed: int, device: torch.device,
) -> TrainSettings:  # fmt: skip
    # SGD with momentum (buf = momentum * buf + grad; p -= lr * buf), L2 weight
    # decay on the weight matrices only, no warm-up: the classic RBM recipe.
    return TrainSettings(
        steps=steps,
        batch_size=batch_size,
        lr=learning_rate,
        optimizer="sgd",
        momentum=momentum,
        weight_decay=weight_decay,
        weight_decay_matrices_only=True,
        lr_schedule=lr_schedule,
        warmup_steps=0,
        batches=batches,
        log_every=log_every,
        checkpoint_every=0,
        seed=seed,
        device=str(device),
    )


class CDTrainer:
    """Contrastive divergence one update at a time, through :func:`ebmlab.train.fit`.

    Each :meth:`step` is one step of the training loop with the
    :class:`BlockGibbsCD` objective on the given batch: negatives by block
    Gibbs sampling from the batch (``"cd-k"``) or from persistent chains
    (``"pcd-k"``), then SGD with momentum (``buf = momentum * buf + grad``,
    ``p -= lr * buf``; the momentum buffers carry over between steps) and L2
    weight decay on the weight matrices only, never on biases.

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
        objective: The :class:`BlockGibbsCD`.
        state: Its :class:`PersistentChains` (``"pcd"``), ``None`` before the
            first step.
        optimizer_state: The SGD state (momentum buffers) after the last step.
        last_info: The :class:`CDStepInfo` of the last step.

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
        _check(learning_rate, momentum, weight_decay, n_chains)
        self.model = model
        self.objective = BlockGibbsCD(training)
        self.mode, self.k = self.objective.mode, self.objective.k
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.n_chains = None if n_chains is None else int(n_chains)
        self.state = (
            PersistentChains(chains) if chains is not None and self.mode == "pcd" else None
        )
        self.optimizer_state: dict[str, Any] | None = None
        self.last_info: CDStepInfo | None = None

    @property
    def chains(self) -> Tensor | None:
        """The persistent chains (``"pcd"``), ``None`` before the first step."""
        return None if self.state is None else self.state.buffer

    @property
    def is_fast(self) -> bool:
        """Whether the model's hand-written ``cd_grads`` give the gradient."""
        return _fast_params(self.model) is not None

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
            generator: Random generator (the chains' start, the seed of the step).
            learning_rate: Overrides the learning rate for this and later steps
                (a schedule).
            return_info: Return the :class:`CDStepInfo` of this update.

        Returns:
            The :class:`CDStepInfo` of this update (``None`` without
            ``return_info``).
        """
        if learning_rate is not None:
            self.learning_rate = float(learning_rate)
        param = next(self.model.parameters())
        v_pos = v_pos.to(dtype=param.dtype, device=param.device)
        if self.mode == "pcd" and self.state is None:
            n = self.n_chains or v_pos.shape[0]
            self.state = PersistentChains.from_data(v_pos, n, generator=generator)
        settings = _settings(
            1, v_pos.shape[0], self.learning_rate, self.momentum, self.weight_decay,
            lr_schedule="constant", batches="full", log_every=1, seed=_seed(generator),
            device=param.device,
        )  # fmt: skip
        result = fit(
            self.model,
            v_pos,
            self.objective,
            settings,
            state=self.state,
            progress=False,
            optimizer_state=self.optimizer_state,
        )
        self.state, self.optimizer_state = result.state, result.optimizer_state
        row = result.metrics[-1]
        self.last_info = CDStepInfo(
            *(torch.tensor(row[k]) for k in ("energy_pos", "energy_neg", "energy_gap"))
        )
        return self.last_info if return_info else None


class CDResult(NamedTuple):
    """What :func:`fit_cd` returns.

    Attributes:
        chains: The persistent chains at the end (``"pcd"``), else ``None``.
        gaps: Mean free-energy gap ``F(v-) - F(v+)`` of each epoch.
        seconds: Wall-clock training time.
        metrics: The metrics rows of :func:`ebmlab.train.fit`, one per epoch.
    """

    chains: Tensor | None
    gaps: list[float]
    seconds: float
    metrics: list[dict[str, float]]


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
    generator: torch.Generator | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    run_dir: Any = None,
    resume: bool = False,
    progress: bool = False,
) -> CDResult:
    """Train ``model`` in place by CD-k or persistent CD over ``n_epochs`` epochs.

    :func:`ebmlab.train.fit` with the :class:`BlockGibbsCD` objective: the rows
    in a fresh random order every epoch (the last batch holds the
    remainder), SGD with momentum, L2 weight decay on the weight matrices.

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
        generator: Random generator: the chains' start and the seed of the loop
            (the row order, the Gibbs sampling).
        callback: Called as ``callback(epoch, metrics)`` after every epoch
            with that epoch's metrics row (``energy_gap``, ``loss``, ...).
        run_dir: Checkpoints and ``metrics.csv`` go here (``None``: nothing is
            written); the persistent chains are checkpointed too.
        resume: Continue from ``run_dir``'s checkpoint (the same weights as an
            uninterrupted fit).
        progress: Show a progress bar.

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
    _check(learning_rate, momentum, weight_decay, n_chains)
    param = next(model.parameters())
    data = data.to(dtype=param.dtype, device=param.device)
    objective = BlockGibbsCD(training)
    state = objective.init_state(data, n_chains or int(batch_size), generator=generator)
    per_epoch = math.ceil(data.shape[0] / int(batch_size))
    settings = _settings(
        int(n_epochs) * per_epoch, int(batch_size), learning_rate, momentum, weight_decay,
        lr_schedule=lr_schedule, batches="epochs", log_every=per_epoch, seed=_seed(generator),
        device=param.device,
    )  # fmt: skip

    def on_log(row: dict[str, float]) -> None:
        if callback is not None:
            callback(round(row["step"]) // per_epoch - 1, row)

    result = fit(
        model,
        data,
        objective,
        settings,
        state=state,
        run_dir=run_dir,
        resume=resume,
        progress=progress,
        on_log=on_log,
    )
    chains = None if result.state is None else result.state.buffer
    gaps = [row["energy_gap"] for row in result.metrics]
    return CDResult(chains, gaps, result.seconds, result.metrics)
