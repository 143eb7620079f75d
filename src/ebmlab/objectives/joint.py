"""The joint energy objective of JEM (Grathwohl et al. 2019).

A classifier ``f: x -> logits`` (:class:`~ebmlab.energies.ClassifierEnergy`)
is trained on labelled batches ``(x, y)`` by

.. math:: \\mathrm{CE}(f(x), y) + w\\,\\big(\\overline{E(x)} - \\overline{E(x^-)}\\big)
          + \\alpha\\,\\big(\\overline{E(x)^2} + \\overline{E(x^-)^2}\\big),

with ``E(x) = -logsumexp_y f(x)[y]`` and negatives ``x-`` from ``n_steps``
steps of stochastic gradient Langevin dynamics (SGLD)
``x <- x - step_size * grad E(x) + noise * eps`` started from a replay buffer
(each start fresh from ``init_fn`` with the buffer's ``reinit_prob``). With
``conditional=True`` the negatives are drawn from ``p(x | y)`` for classes
``y`` drawn uniformly (energy ``E(x, y) = -f(x)[y]``), and the contrastive
term compares ``E(x, y)`` on data with ``E(x-, y-)``.

Negative data augmentation (Sinha et al. 2021): with ``nda_weight > 0`` the
loss gains ``w_nda * (mean E(x) - mean E(x~))`` (and the energy penalty
``alpha * mean E(x~)^2``), where ``x~`` are known negatives made from the
labelled batch by ``nda_fn`` (default :func:`chimera_negatives`: the first part
of one input joined to the rest of an input of another class, i.e. for images
the top of one digit over the bottom of another). They look like data but lie
off its manifold, which SGLD negatives from noise rarely do; ``E`` stays the
model's energy (``score_samples`` is still ``-E(x)``), only its training
signal changes.

Stability measures (what JEM's users needed): the energy penalty ``alpha``
keeps energies near 0; ``data_noise`` adds a little Gaussian noise to the data
batch; ``clamp`` keeps the negatives in the data's box; ``grad_clamp`` bounds
each SGLD gradient entry; gradient clipping, the divergence guard and
checkpoints come from :func:`ebmlab.train.fit`, through which this objective
trains (batches ``(x, y)`` with ``fit(..., labels=y)``).
"""

from __future__ import annotations

__all__ = ["JointDiagnostics", "JointEnergyObjective", "chimera_negatives"]

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..samplers.replay import ReplayBuffer


class JointDiagnostics(NamedTuple):
    """Diagnostics of one JEM evaluation (0-d tensors).

    Attributes:
        loss: The scalar loss (detached).
        cross_entropy: Cross-entropy of the labelled batch.
        accuracy: Training accuracy of the batch.
        energy_pos: Mean energy of the data batch.
        energy_neg: Mean energy of the negatives (``None`` without a generative term).
        energy_gap: ``energy_neg - energy_pos`` (``None`` likewise).
        regularization: ``alpha * (E+^2 + E-^2)``.
    """

    loss: Tensor
    cross_entropy: Tensor
    accuracy: Tensor
    energy_pos: Tensor
    energy_neg: Tensor | None
    energy_gap: Tensor | None
    regularization: Tensor


def chimera_negatives(
    x: Tensor,
    y: Tensor,
    *,
    generator: torch.Generator | None = None,
    low: float = 0.25,
    high: float = 0.75,
) -> Tensor:
    """Chimeras of the batch: the head of each input joined to the tail of another class's.

    For each row ``i`` a partner ``j`` with ``y[j] != y[i]`` is drawn
    uniformly from the batch and a cut ``c`` uniformly from
    ``[low * D, high * D]`` (``D`` the number of entries of one input, in
    row-major order); the chimera takes entries ``[0, c)`` of ``x[i]`` and
    ``[c, D)`` of ``x[j]``. For ``(C, H, W)`` images with one channel that is
    the top rows of one image over the bottom rows of an image of another class
    (the cut may fall inside a row). Every entry comes from a data row, so the
    chimeras keep the data's shape, dtype and range. Rows whose class is the
    only one in the batch get no chimera.

    Arguments:
        x: Inputs, shape ``(N, *event_shape)``.
        y: Class indices, shape ``(N,)``.
        generator: Drives the partners and cuts.
        low, high: Range of the cut as fractions of ``D``, ``0 <= low <= high <= 1``.

    Returns:
        Chimeras, shape ``(M, *event_shape)`` with ``M <= N`` (``M = N`` when
        the batch holds at least two classes for every row, i.e. >= 2 classes).

    Example:
        >>> x, y = torch.arange(12.0).reshape(3, 4), torch.tensor([0, 0, 1])
        >>> chimera_negatives(x, y, generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 4])

    References:
        Sinha, A. et al. (2021). Negative data augmentation. ICLR 2021.
        https://arxiv.org/abs/2102.05113
    """
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"need 0 <= low <= high <= 1, got low={low}, high={high}")
    n = x.shape[0]
    other = (y[:, None] != y[None, :]).to(torch.float64).cpu()
    keep = other.sum(1) > 0
    if not bool(keep.any()):
        return x[:0]
    rows = torch.nonzero(keep)[:, 0]
    partner = torch.multinomial(other[rows], 1, generator=generator)[:, 0]
    flat = x.reshape(n, -1)
    d = flat.shape[1]
    lo, hi = round(low * d), round(high * d)
    cut = torch.randint(lo, hi + 1, (rows.shape[0],), generator=generator)
    head = torch.arange(d)[None, :] < cut[:, None]
    rows, partner, head = rows.to(x.device), partner.to(x.device), head.to(x.device)
    out = torch.where(head, flat[rows], flat[partner])
    return out.reshape((rows.shape[0], *x.shape[1:]))


def _unwrap(energy: Any) -> Any:
    return energy.module if isinstance(energy, DistributedDataParallel) else energy


class JointEnergyObjective:
    """Cross-entropy plus the contrastive term on ``E(x)`` with SGLD negatives.

    Arguments:
        init_fn: ``(n, generator) -> (n, *event_shape)`` fresh chain starts
            (e.g. uniform noise over the data's box).
        generative_weight: Weight ``w`` of the contrastive term (0: a plain
            classifier, no sampling).
        energy_reg: Weight ``alpha`` of the energy penalty.
        n_steps: SGLD steps per update.
        step_size: SGLD gradient step.
        noise: SGLD noise standard deviation.
        conditional: Draw the negatives class-conditionally.
        label_smoothing: Cross-entropy label smoothing in ``[0, 1)``.
        data_noise: Standard deviation of Gaussian noise added to the data
            batch of the contrastive term.
        clamp: ``(low, high)`` bounds for the negatives (``None``: none).
        grad_clamp: Bound on each SGLD gradient entry (``None``: none).
        nda_weight: Weight ``w_nda`` of the negative-data-augmentation term
            (0: none; it acts only with a generative term, ``w > 0`` or
            ``alpha > 0``).
        nda_fn: ``(x, y, generator) -> (M, *event_shape)`` known negatives
            from the labelled batch (``None``: :func:`chimera_negatives`).

    The state is a :class:`~ebmlab.samplers.ReplayBuffer` (make one with
    :meth:`init_state`), or ``None`` without a generative term.

    Example:
        >>> from ebmlab.energies import ClassifierEnergy, make_mlp
        >>> g = torch.Generator().manual_seed(0)
        >>> energy = ClassifierEnergy(make_mlp([2, 16, 3], "silu", g), 3, event_shape=(2,))
        >>> jem = JointEnergyObjective(lambda n, g: torch.rand(n, 2, generator=g), n_steps=2)
        >>> buf = jem.init_state(64, generator=g)
        >>> x, y = torch.randn(8, 2), torch.randint(3, (8,))
        >>> loss, diag, buf = jem(energy, (x, y), buf, generator=g)
        >>> loss.shape, bool(diag.energy_gap.isfinite())
        (torch.Size([]), True)

    References:
        Grathwohl, W. et al. (2019). Your classifier is secretly an energy
        based model and you should treat it like one. ICLR 2020.
        https://arxiv.org/abs/1912.03263
        Sinha, A. et al. (2021). Negative data augmentation. ICLR 2021.
        https://arxiv.org/abs/2102.05113
    """

    def __init__(
        self,
        init_fn: Callable[[int, torch.Generator | None], Tensor],
        *,
        generative_weight: float = 1.0,
        energy_reg: float = 0.0,
        n_steps: int = 20,
        step_size: float = 1.0,
        noise: float = 0.01,
        conditional: bool = False,
        label_smoothing: float = 0.0,
        data_noise: float = 0.0,
        clamp: tuple[float, float] | None = None,
        grad_clamp: float | None = None,
        nda_weight: float = 0.0,
        nda_fn: Callable[[Tensor, Tensor, torch.Generator | None], Tensor] | None = None,
    ) -> None:
        if not generative_weight >= 0 or not energy_reg >= 0:
            raise ValueError("generative_weight and energy_reg must be >= 0")
        if n_steps < 0 or not step_size > 0 or not noise >= 0 or not data_noise >= 0:
            raise ValueError("n_steps, noise, data_noise must be >= 0 and step_size > 0")
        if not nda_weight >= 0:
            raise ValueError(f"nda_weight must be >= 0, got {nda_weight}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.init_fn = init_fn
        self.generative_weight = float(generative_weight)
        self.energy_reg = float(energy_reg)
        self.n_steps = int(n_steps)
        self.step_size = float(step_size)
        self.noise = float(noise)
        self.conditional = bool(conditional)
        self.label_smoothing = float(label_smoothing)
        self.data_noise = float(data_noise)
        self.clamp = clamp
        self.grad_clamp = grad_clamp
        self.nda_weight = float(nda_weight)
        self.nda_fn = nda_fn

    def _nda(self, x: Tensor, y: Tensor, generator: torch.Generator | None) -> Tensor:
        if self.nda_fn is not None:
            return self.nda_fn(x, y, generator)
        return chimera_negatives(x, y, generator=generator)

    @property
    def is_generative(self) -> bool:
        """Whether the objective draws negatives (``w > 0`` or ``alpha > 0``)."""
        return self.generative_weight > 0 or self.energy_reg > 0

    def init_state(
        self, capacity: int, *, reinit_prob: float = 0.05, generator: torch.Generator | None = None
    ) -> ReplayBuffer | None:
        """A replay buffer of ``capacity`` chains (``None`` without a generative term)."""
        if not self.is_generative:
            return None
        return ReplayBuffer(capacity, self.init_fn, reinit_prob=reinit_prob, generator=generator)

    def sgld(
        self,
        energy: Any,
        x: Tensor,
        y: Tensor | None,
        n_steps: int,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``n_steps`` SGLD steps on ``E(x)`` (on ``E(x, y)`` when ``y`` is given)."""
        energy = _unwrap(energy)
        params = [p for p in energy.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            for _ in range(n_steps):
                x = x.detach().requires_grad_(True)
                with torch.enable_grad():
                    e = energy(x) if y is None else energy.joint(x, y)
                    (grad,) = torch.autograd.grad(e.sum(), x)
                if self.grad_clamp is not None:
                    grad = grad.clamp(-self.grad_clamp, self.grad_clamp)
                eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = x.detach() - self.step_size * grad + self.noise * eps
                if self.clamp is not None:
                    x = x.clamp(*self.clamp)
        finally:
            for p in params:
                p.requires_grad_(True)
        return x.detach()

    def __call__(
        self,
        energy: Any,
        batch: Any,
        state: ReplayBuffer | None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, JointDiagnostics, ReplayBuffer | None]:
        """Loss, diagnostics and the updated buffer for a labelled batch ``(x, y)``.

        Arguments:
            energy: A :class:`~ebmlab.energies.ClassifierEnergy` (or one
                wrapped in ``DistributedDataParallel``).
            batch: ``(x, y)``: inputs ``(N, *event_shape)`` and class indices ``(N,)``.
            state: The replay buffer, or ``None`` without a generative term.
            generator: Drives the buffer and SGLD noise.
        """
        x, y = batch
        net = _unwrap(energy)
        n = x.shape[0]
        if not self.is_generative:
            logits = net.logits(x)
            ce = nn.functional.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
            e_pos = -torch.logsumexp(logits.detach(), 1).mean()
            acc = (logits.argmax(1) == y).float().mean()
            zero = torch.zeros((), device=x.device)
            return (
                ce,
                JointDiagnostics(ce.detach(), ce.detach(), acc, e_pos, None, None, zero),
                state,
            )
        if state is None:
            raise ValueError("a generative JointEnergyObjective needs a replay buffer state")
        x0, slots = state.sample(n, generator=generator)
        y_neg = (
            torch.randint(net.n_classes, (n,), generator=generator, device=x.device)
            if self.conditional
            else None
        )
        x_neg = self.sgld(net, x0.to(x.device), y_neg, self.n_steps, generator=generator)
        state.push(x_neg.to(x0.device), slots)
        x_pos = x
        if self.data_noise > 0:
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x_pos = x + self.data_noise * eps
        same = self.data_noise == 0
        x_nda = self._nda(x, y, generator) if self.nda_weight > 0 else x[:0]
        m = x_nda.shape[0]
        parts = [x, x_neg] if same else [x, x_pos, x_neg]
        logits_all = net.logits(torch.cat([*parts, x_nda]))
        logits_nda = logits_all[logits_all.shape[0] - m :]
        logits_all = logits_all[: logits_all.shape[0] - m]
        logits, logits_neg = logits_all[:n], logits_all[-n:]
        logits_pos = logits if same else logits_all[n : 2 * n]
        ce = nn.functional.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        if self.conditional:
            assert y_neg is not None
            e_pos = -logits_pos.gather(1, y[:, None])[:, 0]
            e_neg = -logits_neg.gather(1, y_neg[:, None])[:, 0]
        else:
            e_pos = -torch.logsumexp(logits_pos, 1)
            e_neg = -torch.logsumexp(logits_neg, 1)
        reg = self.energy_reg * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        loss = ce + self.generative_weight * (e_pos.mean() - e_neg.mean())
        if m > 0:
            e_nda = -torch.logsumexp(logits_nda, 1)
            e_data = e_pos if not self.conditional else -torch.logsumexp(logits_pos, 1)
            loss = loss + self.nda_weight * (e_data.mean() - e_nda.mean())
            reg = reg + self.energy_reg * e_nda.pow(2).mean()
        loss = loss + reg
        acc = (logits.detach().argmax(1) == y).float().mean()
        diag = JointDiagnostics(
            loss.detach(),
            ce.detach(),
            acc,
            e_pos.detach().mean(),
            e_neg.detach().mean(),
            (e_neg.detach().mean() - e_pos.detach().mean()),
            reg.detach(),
        )
        return loss, diag, state

    def __repr__(self) -> str:
        return (
            f"JointEnergyObjective(generative_weight={self.generative_weight}, "
            f"energy_reg={self.energy_reg}, n_steps={self.n_steps}, "
            f"step_size={self.step_size}, noise={self.noise}, conditional={self.conditional}, "
            f"nda_weight={self.nda_weight})"
        )
