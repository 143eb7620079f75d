"""Loss functionals of energy-based learning for conditional energies F(x, y).

Learning shapes ``F`` so that the correct answer ``y_i`` gets the lowest
energy. A loss functional is a function of a few energies of each training
pair (LeCun et al. 2006, section 2):

* ``E_i = F(x_i, y_i)``, the energy of the correct answer;
* ``E_bar = F(x_i, y_bar)``, the energy of the *most offending incorrect
  answer*: the lowest-energy wrong class (discrete ``y``), or the lowest-energy
  ``y`` farther than ``epsilon`` from ``y_i`` (continuous ``y``);
* ``E_min = min_y F(x_i, y)``, over all answers (the perceptron);
* ``F_beta = -1/beta log integral exp(-beta F(x_i, y)) dy``, the free energy
  of the whole answer space (negative log-likelihood).

The losses, selectable by name through :data:`LOSS_FUNCTIONALS`:

=====================  ====================================================
``energy``             ``E_i`` (no contrastive term: can collapse)
``perceptron``         ``E_i - E_min``
``hinge``              ``max(0, m + E_i - E_bar)`` (generalized margin)
``log``                ``log(1 + exp(E_i - E_bar))`` (soft hinge)
``lvq2``               ``min(1, max(0, (E_i - E_bar) / (delta E_bar)))``
``mce``                ``sigmoid(E_i - E_bar)`` (minimum classification error)
``square-square``      ``E_i^2 + max(0, m - E_bar)^2``
``square-exponential`` ``E_i^2 + gamma exp(-E_bar)``
``nll`` (``mmi``)      ``E_i - F_beta = E_i + 1/beta log integral exp(-beta F)``
=====================  ====================================================

Every loss pushes ``E_i`` down; all but ``energy`` push the energy of the
offending answers (or of every answer, weighted by its probability, for
``nll``) up. ``lvq2`` assumes positive energies, as in the tutorial.

How the offending answer, the minimum and the free energy are found:
discrete ``y``: exact enumeration. Continuous ``y``: with ``search="grid"``,
on a grid over ``bounds`` (``y_dim`` up to 2); with ``search="descent"``, by
multi-restart gradient descent (:func:`ebmlab.conditional.inference.descend`),
end points closer than ``epsilon`` to ``y_i`` being pushed out to distance
``epsilon``. The free energy uses the energy's closed-form ``log_z(x, beta)``
when it has one, else enumeration or quadrature on the grid (``y_dim`` up to 3).
The search is done without gradients; the energies at the answers it found are
then differentiated, which gives the loss functional's exact gradient.

References:
    LeCun, Y., Chopra, S., Hadsell, R., Ranzato, M. and Huang, F. J. (2006).
    A tutorial on energy-based learning. In Predicting Structured Data, MIT
    Press. http://yann.lecun.com/exdb/publis/pdf/lecun-06.pdf
"""

from __future__ import annotations

__all__ = [
    "LOSS_FUNCTIONALS",
    "EnergyTerms",
    "LossDiagnostics",
    "LossFunctional",
    "LossSpec",
    "build_loss_functional",
    "energy_loss",
    "hinge_loss",
    "log_loss",
    "lvq2_loss",
    "mce_loss",
    "nll_loss",
    "perceptron_loss",
    "square_exponential_loss",
    "square_square_loss",
]

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F_
from torch import Tensor

from ..partition.quadrature import grid_points
from .inference import descend, restart_points


class EnergyTerms(NamedTuple):
    """The energies a loss functional is made of, one per training pair.

    Attributes:
        correct: ``E_i = F(x_i, y_i)``, shape ``(N,)``.
        offending: ``E_bar``, energy of the most offending incorrect answer,
            shape ``(N,)``, or ``None`` when not needed.
        minimum: ``min_y F(x_i, y)``, shape ``(N,)``, or ``None``.
        free_energy: ``-1/beta log integral exp(-beta F(x_i, y)) dy``, shape
            ``(N,)``, or ``None``.
    """

    correct: Tensor
    offending: Tensor | None = None
    minimum: Tensor | None = None
    free_energy: Tensor | None = None


def _need(t: Tensor | None, what: str) -> Tensor:
    if t is None:
        raise ValueError(f"this loss functional needs the {what} energy in EnergyTerms")
    return t


def energy_loss(t: EnergyTerms, **_: float) -> Tensor:
    """``E_i``: pushes the correct answer down and nothing up (may collapse)."""
    return t.correct


def perceptron_loss(t: EnergyTerms, **_: float) -> Tensor:
    """``E_i - min_y F(x_i, y)`` (generalized perceptron; no margin)."""
    return t.correct - _need(t.minimum, "minimum")


def hinge_loss(t: EnergyTerms, *, margin: float = 1.0, **_: float) -> Tensor:
    """``max(0, m + E_i - E_bar)``: the generalized margin (hinge) loss."""
    return F_.relu(margin + t.correct - _need(t.offending, "offending"))


def log_loss(t: EnergyTerms, **_: float) -> Tensor:
    """``log(1 + exp(E_i - E_bar))``: a soft hinge with an infinite margin."""
    return F_.softplus(t.correct - _need(t.offending, "offending"))


def lvq2_loss(t: EnergyTerms, *, delta: float = 1.0, **_: float) -> Tensor:
    """``min(1, max(0, (E_i - E_bar) / (delta E_bar)))`` (for positive energies)."""
    e_bar = _need(t.offending, "offending")
    return (F_.relu(t.correct - e_bar) / (delta * e_bar)).clamp(max=1.0)


def mce_loss(t: EnergyTerms, **_: float) -> Tensor:
    """``sigmoid(E_i - E_bar)``: minimum classification error."""
    return torch.sigmoid(t.correct - _need(t.offending, "offending"))


def square_square_loss(t: EnergyTerms, *, margin: float = 1.0, **_: float) -> Tensor:
    """``E_i^2 + max(0, m - E_bar)^2`` (for non-negative energies)."""
    return t.correct.pow(2) + F_.relu(margin - _need(t.offending, "offending")).pow(2)


def square_exponential_loss(t: EnergyTerms, *, gamma: float = 1.0, **_: float) -> Tensor:
    """``E_i^2 + gamma exp(-E_bar)`` (for non-negative energies)."""
    return t.correct.pow(2) + gamma * torch.exp(-_need(t.offending, "offending"))


def nll_loss(t: EnergyTerms, **_: float) -> Tensor:
    """``E_i + 1/beta log integral exp(-beta F) = -1/beta log P(y_i | x_i)``."""
    return t.correct - _need(t.free_energy, "free_energy")


class LossSpec(NamedTuple):
    """A loss functional in the registry.

    Attributes:
        fn: ``fn(terms, **hyperparameters) -> (N,)`` per-pair losses.
        needs: Which of ``offending``, ``minimum``, ``free_energy`` it uses.
        summary: One-line formula.
    """

    fn: Callable[..., Tensor]
    needs: tuple[str, ...]
    summary: str


#: Loss functionals by name (``"mmi"`` and ``"margin"`` are aliases).
LOSS_FUNCTIONALS: dict[str, LossSpec] = {
    "energy": LossSpec(energy_loss, (), "E_i"),
    "perceptron": LossSpec(perceptron_loss, ("minimum",), "E_i - min_y E"),
    "hinge": LossSpec(hinge_loss, ("offending",), "max(0, m + E_i - E_bar)"),
    "margin": LossSpec(hinge_loss, ("offending",), "max(0, m + E_i - E_bar)"),
    "log": LossSpec(log_loss, ("offending",), "log(1 + exp(E_i - E_bar))"),
    "lvq2": LossSpec(lvq2_loss, ("offending",), "min(1, max(0, (E_i - E_bar)/(delta E_bar)))"),
    "mce": LossSpec(mce_loss, ("offending",), "sigmoid(E_i - E_bar)"),
    "square-square": LossSpec(square_square_loss, ("offending",), "E_i^2 + max(0, m - E_bar)^2"),
    "square-exponential": LossSpec(
        square_exponential_loss, ("offending",), "E_i^2 + gamma exp(-E_bar)"
    ),
    "nll": LossSpec(nll_loss, ("free_energy",), "E_i + 1/beta log int exp(-beta E)"),
    "mmi": LossSpec(nll_loss, ("free_energy",), "E_i + 1/beta log int exp(-beta E)"),
}

SEARCHES = ("auto", "grid", "descent")


class LossDiagnostics(NamedTuple):
    """Diagnostics of one evaluation (0-d tensors, detached; NaN when not computed).

    Attributes:
        loss: The mean loss.
        energy_correct: Mean ``E_i``.
        energy_offending: Mean ``E_bar``.
        energy_gap: Mean ``E_bar - E_i`` (positive: the correct answer wins).
        error_rate: Share of pairs with ``E_bar <= E_i``.
    """

    loss: Tensor
    energy_correct: Tensor
    energy_offending: Tensor
    energy_gap: Tensor
    error_rate: Tensor


def _box(bounds: Any, d: int) -> list[tuple[float, float]]:
    if (
        isinstance(bounds, tuple | list)
        and len(bounds) == 2
        and all(isinstance(b, int | float) for b in bounds)
    ):
        box = [(float(bounds[0]), float(bounds[1]))] * d
    else:
        box = [(float(lo), float(hi)) for lo, hi in bounds]
    if len(box) != d:
        raise ValueError(f"bounds must give {d} (low, high) pairs, got {len(box)}")
    for lo, hi in box:
        if not hi > lo:
            raise ValueError(f"bounds must be (low, high) with low < high, got {(lo, hi)}")
    return box


class LossFunctional:
    """A loss functional by name, with the search for the answers it needs.

    Called like every ebmlab objective: ``loss, diagnostics, state =
    functional(F, x, y, state, generator=g)`` (``state`` is passed through).

    Arguments:
        name: A key of :data:`LOSS_FUNCTIONALS`.
        margin: ``m`` of ``hinge`` and ``square-square``.
        beta: Inverse temperature of ``nll``.
        gamma: Weight of ``square-exponential``'s push-up term.
        delta: Scale of ``lvq2``.
        epsilon: Continuous ``y``: answers closer than this to ``y_i`` are not
            incorrect (default: 5% of the widest side of ``bounds``).
        bounds: Continuous ``y``: the answer box, ``(low, high)`` or one pair
            per coordinate. Required for the grid search and for ``nll``
            without a closed-form ``log_z``; for descent the default is the
            batch's range of ``y`` widened by 1 on each side.
        resolution: Grid cells per axis (default 128, 32, 12 for ``y_dim``
            1, 2, 3).
        search: ``"grid"``, ``"descent"`` or ``"auto"`` (grid when ``bounds``
            is given and ``y_dim <= 2``).
        n_restarts: Starts of the descent search.
        n_steps: Steps of the descent search.
        step_size: Initial step of the descent search.

    Example:
        >>> from ebmlab.conditional.energies import DiscreteConditionalEnergy
        >>> F = DiscreteConditionalEnergy(4, 3)
        >>> hinge = LossFunctional("hinge", margin=0.5)
        >>> loss, diag, _ = hinge(F, torch.randn(8, 4), torch.randint(3, (8,)))
        >>> loss.shape, diag.error_rate.shape
        (torch.Size([]), torch.Size([]))
    """

    def __init__(
        self,
        name: str = "hinge",
        *,
        margin: float = 1.0,
        beta: float = 1.0,
        gamma: float = 1.0,
        delta: float = 1.0,
        epsilon: float | None = None,
        bounds: Sequence[tuple[float, float]] | tuple[float, float] | None = None,
        resolution: int | None = None,
        search: str = "auto",
        n_restarts: int = 16,
        n_steps: int = 30,
        step_size: float = 0.1,
    ) -> None:
        if name not in LOSS_FUNCTIONALS:
            raise ValueError(f"loss must be one of {sorted(LOSS_FUNCTIONALS)}, got {name!r}")
        if search not in SEARCHES:
            raise ValueError(f"search must be one of {list(SEARCHES)}, got {search!r}")
        if not beta > 0 or not delta > 0 or not gamma >= 0 or not margin >= 0:
            raise ValueError(
                f"need beta > 0, delta > 0, gamma >= 0, margin >= 0; got beta={beta}, "
                f"delta={delta}, gamma={gamma}, margin={margin}"
            )
        if epsilon is not None and not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0 or None, got {epsilon}")
        if resolution is not None and int(resolution) < 2:
            raise ValueError(f"resolution must be >= 2 or None, got {resolution}")
        if int(n_restarts) < 1 or int(n_steps) < 0 or not step_size > 0:
            raise ValueError(
                f"need n_restarts >= 1, n_steps >= 0, step_size > 0; got {n_restarts}, "
                f"{n_steps}, {step_size}"
            )
        self.name = name
        self.spec = LOSS_FUNCTIONALS[name]
        self.margin = float(margin)
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.delta = float(delta)
        self.epsilon = epsilon
        self.bounds = bounds
        self.resolution = resolution
        self.search = search
        self.n_restarts = int(n_restarts)
        self.n_steps = int(n_steps)
        self.step_size = float(step_size)

    def __repr__(self) -> str:
        return (
            f"LossFunctional({self.name!r}, margin={self.margin}, beta={self.beta}, "
            f"gamma={self.gamma}, delta={self.delta}, search={self.search!r})"
        )

    def per_pair(self, terms: EnergyTerms) -> Tensor:
        """The loss of every pair ``(N,)`` from its energy terms."""
        return self.spec.fn(
            terms, margin=self.margin, beta=self.beta, gamma=self.gamma, delta=self.delta
        )

    # -- the answers each loss needs ----------------------------------------------------

    def terms(
        self, energy: Any, x: Tensor, y: Tensor, *, generator: torch.Generator | None = None
    ) -> EnergyTerms:
        """Compute the energy terms this loss needs, with parameter gradients."""
        needs = self.spec.needs
        if getattr(energy, "n_classes", None) is not None:
            return self._discrete_terms(energy, x, y, needs)
        return self._continuous_terms(energy, x, y, needs, generator)

    def _discrete_terms(
        self, energy: Any, x: Tensor, y: Tensor, needs: tuple[str, ...]
    ) -> EnergyTerms:
        if not needs:
            return EnergyTerms(energy(x, y))
        e_all = (
            energy.energies(x)
            if hasattr(energy, "energies")
            else energy(
                x.repeat_interleave(int(energy.n_classes), 0),
                torch.arange(int(energy.n_classes), device=x.device).repeat(x.shape[0]),
            ).reshape(x.shape[0], -1)
        )
        y = y.long().reshape(-1, 1)
        correct = e_all.gather(1, y).squeeze(1)
        offending = minimum = free = None
        if "offending" in needs:
            masked = e_all.scatter(1, y, math.inf)
            offending = masked.min(1).values
        if "minimum" in needs:
            minimum = e_all.min(1).values
        if "free_energy" in needs:
            if hasattr(energy, "log_z"):
                free = -energy.log_z(x, self.beta) / self.beta
            else:
                free = -torch.logsumexp(-self.beta * e_all, 1) / self.beta
        return EnergyTerms(correct, offending, minimum, free)

    def _grid(self, d: int, box: list[tuple[float, float]], x: Tensor) -> tuple[Tensor, float]:
        res = self.resolution or {1: 128, 2: 32, 3: 12}.get(d, 8)
        grid, _ = grid_points(box, int(res), dtype=x.dtype, device=x.device)
        log_cell = sum(math.log((hi - lo) / int(res)) for lo, hi in box)
        return grid, log_cell

    def _continuous_terms(
        self,
        energy: Any,
        x: Tensor,
        y: Tensor,
        needs: tuple[str, ...],
        generator: torch.Generator | None,
    ) -> EnergyTerms:
        correct = energy(x, y)
        if not needs:
            return EnergyTerms(correct)
        n, d = y.shape
        closed_form = "free_energy" in needs and hasattr(energy, "log_z")
        if self.bounds is None:
            if "free_energy" in needs and not closed_form:
                raise ValueError(
                    "loss 'nll' on continuous y needs bounds (the box to integrate over) "
                    "or an energy with a closed-form log_z"
                )
            if self.search == "grid":
                raise ValueError("search='grid' needs bounds")
            lo = y.detach().amin(0) - 1.0
            hi = y.detach().amax(0) + 1.0
            box = [(float(a), float(b)) for a, b in zip(lo, hi, strict=True)]
        else:
            box = _box(self.bounds, d)
        eps = (
            float(self.epsilon) if self.epsilon is not None else 0.05 * max(b - a for a, b in box)
        )
        use_grid = self.search == "grid" or (
            self.search == "auto" and self.bounds is not None and d <= 2
        )
        offending = minimum = free = None
        grid_e: Tensor | None = None
        grid: Tensor | None = None
        if "free_energy" in needs:
            if closed_form:
                free = -energy.log_z(x, self.beta) / self.beta
            else:
                if d > 3:
                    raise ValueError(
                        f"loss 'nll' on continuous y integrates on a grid: y_dim must be "
                        f"<= 3, got {d}; use a contrastive loss or an energy with log_z"
                    )
                grid, log_cell = self._grid(d, box, x)
                g = grid.shape[0]
                grid_e = energy(x.repeat_interleave(g, 0), grid.repeat(n, 1)).reshape(n, g)
                free = -(torch.logsumexp(-self.beta * grid_e, 1) + log_cell) / self.beta
        wants = [k for k in ("offending", "minimum") if k in needs]
        if wants:
            if use_grid:
                if grid is None or grid_e is None:
                    grid, _ = self._grid(d, box, x)
                    g = grid.shape[0]
                    with torch.no_grad():
                        grid_e = energy(x.repeat_interleave(g, 0), grid.repeat(n, 1))
                    grid_e = grid_e.reshape(n, g)
                ge = grid_e.detach()
                cand = grid.unsqueeze(0).expand(n, -1, -1)
                if "offending" in wants:
                    far = torch.cdist(y.detach().unsqueeze(1), cand).squeeze(1) > eps
                    idx = torch.where(far, ge, torch.full_like(ge, math.inf)).argmin(1)
                    offending = energy(x, grid[idx])
                if "minimum" in wants:
                    minimum = torch.minimum(correct, energy(x, grid[ge.argmin(1)]))
            else:
                y_bar, y_min = self._descent_search(energy, x, y, box, eps, generator)
                if "offending" in wants:
                    offending = energy(x, y_bar)
                if "minimum" in wants:
                    minimum = torch.minimum(correct, energy(x, y_min))
        return EnergyTerms(correct, offending, minimum, free)

    def _descent_search(
        self,
        energy: Any,
        x: Tensor,
        y: Tensor,
        box: list[tuple[float, float]],
        eps: float,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:
        """``(y_bar, y_min)``: most offending answer and lowest answer, detached."""
        n, d = y.shape
        r = self.n_restarts
        starts = restart_points(box, r, generator=generator, dtype=y.dtype, device=y.device)
        x_rep = x.detach().repeat_interleave(r, 0)
        y0 = starts.repeat(n, 1)

        def fn(v: Tensor) -> Tensor:
            return energy(x_rep, v)  # type: ignore[no-any-return]

        y_end, e_end = descend(fn, y0, n_steps=self.n_steps, step_size=self.step_size, bounds=box)
        y_end, e_end = y_end.reshape(n, r, d), e_end.reshape(n, r)
        y_min = y_end[torch.arange(n), e_end.argmin(1)]
        diff = y_end - y.detach().unsqueeze(1)
        dist = diff.norm(dim=-1, keepdim=True)
        unit = torch.zeros_like(diff)
        unit[..., 0] = 1.0
        direction = torch.where(dist > 0, diff / dist.clamp_min(1e-30), unit)
        inside = (dist < eps).squeeze(-1)
        pushed = torch.where(
            inside.unsqueeze(-1), y.detach().unsqueeze(1) + eps * direction, y_end
        )
        with torch.no_grad():
            e_pushed = energy(x_rep, pushed.reshape(n * r, d)).reshape(n, r)
        e_pushed = torch.where(
            torch.isfinite(e_pushed), e_pushed, torch.full_like(e_pushed, math.inf)
        )
        y_bar = pushed[torch.arange(n), e_pushed.argmin(1)]
        return y_bar, y_min

    def __call__(
        self,
        energy: Any,
        x: Tensor,
        y: Tensor,
        state: Any = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, LossDiagnostics, Any]:
        """``(loss, diagnostics, state)``: the mean loss over the pairs.

        Arguments:
            energy: Conditional energy ``F(x, y) -> (N,)``.
            x: Inputs, shape ``(N, x_dim)``.
            y: Correct answers, ``(N, y_dim)`` or ``(N,)`` class indices.
            state: Passed through (no state).
            generator: Random generator of the descent search.
        """
        t = self.terms(energy, x, y, generator=generator)
        loss = self.per_pair(t).mean()
        nan = torch.tensor(math.nan, dtype=t.correct.dtype, device=t.correct.device)
        with torch.no_grad():
            e_c = t.correct.mean()
            if t.offending is not None:
                e_o = t.offending.mean()
                gap = (t.offending - t.correct).mean()
                err = (t.offending <= t.correct).to(t.correct.dtype).mean()
            else:
                e_o = gap = err = nan
        return loss, LossDiagnostics(loss.detach(), e_c, e_o, gap, err), state


def build_loss_functional(name: str, **options: Any) -> LossFunctional:
    """A :class:`LossFunctional` by name (see :data:`LOSS_FUNCTIONALS`).

    Raises:
        ValueError: For an unknown name or option, listing the valid ones.

    Example:
        >>> build_loss_functional("square-square", margin=2.0)
        LossFunctional('square-square', margin=2.0, beta=1.0, gamma=1.0, delta=1.0, search='auto')
    """
    try:
        return LossFunctional(name, **options)
    except TypeError as exc:
        raise ValueError(f"bad options for loss functional {name!r}: {exc}") from None
