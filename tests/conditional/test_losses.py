"""Loss functionals of energy-based learning: gradient directions, searches, collapse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from ebmlab.conditional import (
    LOSS_FUNCTIONALS,
    ConditionalEnergy,
    DiscreteConditionalEnergy,
    EnergyTerms,
    JointEmbeddingEnergy,
    LossFunctional,
    QuadraticConditionalEnergy,
    build_loss_functional,
    fit_conditional,
)

CONTRASTIVE = ["perceptron", "hinge", "margin", "log", "lvq2", "mce", "square-square",
               "square-exponential"]  # fmt: skip
NLL = ["nll", "mmi"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_registry_lists_every_loss_of_the_tutorial():
    assert set(LOSS_FUNCTIONALS) == {"energy", *CONTRASTIVE, *NLL}
    with pytest.raises(ValueError, match="loss must be one of"):
        LossFunctional("squared")
    with pytest.raises(ValueError, match="bad options"):
        build_loss_functional("hinge", marginn=1.0)
    with pytest.raises(ValueError, match="beta"):
        LossFunctional("nll", beta=0.0)


# -- discrete answers: one energy parameter per class -------------------------------


class Table(nn.Module):
    """Logits ``-E`` from a table of energies, the same for every ``x``."""

    def __init__(self, energies: list[float]) -> None:
        super().__init__()
        self.e = nn.Parameter(torch.tensor(energies, dtype=torch.float64))

    def forward(self, x):
        return -self.e.expand(x.shape[0], -1)


def _grad_on_table(name: str, energies: list[float], **options) -> tuple[float, torch.Tensor]:
    table = Table(energies)
    F = DiscreteConditionalEnergy(1, len(energies), network=table)
    loss, _, _ = LossFunctional(name, **options)(F, torch.zeros(1, 1), torch.tensor([0]))
    (g,) = torch.autograd.grad(loss, table.e)
    return float(loss.detach()), g


@pytest.mark.parametrize("name", ["energy", *CONTRASTIVE, *NLL])
def test_discrete_gradient_pushes_correct_down_and_offending_up(name):
    # Correct class 0 at energy 2.0; class 1 (1.5) is the most offending
    # answer; classes 2 and 3 are higher. Gradient descent moves the energies
    # along -g: g > 0 lowers an energy, g < 0 raises it.
    energies = [2.0, 1.5, 3.0, 2.5]
    loss, g = _grad_on_table(name, energies, margin=2.0)
    assert loss > 0, "the loss must be active in this configuration"
    assert float(g[0]) > 0, f"{name}: the correct answer's energy is not pushed down ({g})"
    if name == "energy":
        assert torch.equal(g[1:], torch.zeros(3, dtype=g.dtype)), g
    elif name in NLL:
        # d/dE_k [E_0 + log sum exp(-E)] = 1[k = 0] - P(k): every wrong answer up.
        p = torch.softmax(-torch.tensor(energies, dtype=torch.float64), 0)
        assert torch.allclose(g, torch.tensor([1.0, 0, 0, 0], dtype=torch.float64) - p)
        assert bool((g[1:] < 0).all()), g
    else:
        assert float(g[1]) < 0, f"{name}: the most offending answer is not pushed up ({g})"
        assert torch.equal(g[2:], torch.zeros(2, dtype=g.dtype)), g


@pytest.mark.parametrize("name", ["perceptron", "hinge", "lvq2", "square-square"])
def test_discrete_satisfied_margin_stops_pushing_up(name):
    # Correct answer lowest, every wrong answer more than the margin above it.
    loss, g = _grad_on_table(name, [0.5, 3.0, 4.0, 5.0], margin=1.0)
    assert torch.equal(g[1:], torch.zeros(3, dtype=g.dtype)), (name, g)
    if name == "square-square":
        assert float(g[0]) > 0  # E_i^2 still pulls the correct energy to 0
    else:
        assert loss == 0.0 and float(g[0]) == 0.0


def test_per_pair_formulas():
    t = EnergyTerms(
        correct=torch.tensor([2.0]),
        offending=torch.tensor([1.0]),
        minimum=torch.tensor([0.5]),
        free_energy=torch.tensor([-1.0]),
    )
    expected = {
        "energy": 2.0,
        "perceptron": 1.5,
        "hinge": 1.0 + 2.0 - 1.0,
        "log": float(torch.nn.functional.softplus(torch.tensor(1.0))),
        "lvq2": 1.0,  # min(1, (2 - 1) / (0.5 * 1)) with delta = 0.5
        "mce": float(torch.sigmoid(torch.tensor(1.0))),
        "square-square": 4.0 + 0.25,  # margin 1.5: (1.5 - 1)^2
        "square-exponential": 4.0 + 2.0 * float(torch.exp(torch.tensor(-1.0))),
        "nll": 3.0,
    }
    for name, value in expected.items():
        f = LossFunctional(name, margin=1.5 if name == "square-square" else 1.0,
                           delta=0.5, gamma=2.0)  # fmt: skip
        assert float(f.per_pair(t)) == pytest.approx(value), name


# -- continuous answers: a piecewise-constant energy with one parameter per bin -----


class BinEnergy(ConditionalEnergy):
    """``F(x, y) = theta[bin(y)]``: bins of width 0.25 on [-2, 2], ``x`` ignored."""

    def __init__(self, theta: torch.Tensor) -> None:
        super().__init__(1, y_dim=1)
        self.theta = nn.Parameter(theta.clone())

    def bin(self, y):
        return ((y[:, 0] + 2.0) / 0.25).floor().long().clamp(0, 15)

    def forward(self, x, y):
        return self.theta[self.bin(y)]


@pytest.mark.parametrize("name", ["energy", *CONTRASTIVE, *NLL])
def test_continuous_gradient_pushes_correct_down_and_offending_up(name, generator):
    theta = 2.2 + torch.rand(16, dtype=torch.float64, generator=generator)
    theta[9] = 2.0  # the correct answer's bin, y = 0.3
    theta[3] = 1.3  # the lowest bin, far from y: the most offending answer
    F = BinEnergy(theta)
    x, y = torch.zeros(1, 1, dtype=torch.float64), torch.tensor([[0.3]], dtype=torch.float64)
    functional = LossFunctional(name, margin=2.0, bounds=(-2, 2), resolution=64, epsilon=0.3)
    terms = functional.terms(F, x, y)
    if terms.offending is not None:
        # The grid search found the lowest energy farther than epsilon from y.
        assert float(terms.offending.detach()) == pytest.approx(1.3)
    loss, _, _ = functional(F, x, y)
    assert float(loss.detach()) > 0
    (g,) = torch.autograd.grad(loss, F.theta)
    assert float(g[9]) > 0, f"{name}: correct answer not pushed down ({g})"
    others = torch.ones(16, dtype=torch.bool)
    others[9] = False
    if name == "energy":
        assert torch.equal(g[others], torch.zeros(15, dtype=g.dtype))
    elif name in NLL:
        assert bool((g[others] < 0).all()), f"{name}: some wrong answers not pushed up ({g})"
    else:
        assert float(g[3]) < 0, f"{name}: the most offending answer not pushed up ({g})"
        others[3] = False
        assert torch.equal(g[others], torch.zeros(14, dtype=g.dtype)), g


class DoubleWell(ConditionalEnergy):
    """``F(x, y) = (y^2 - x)^2``: minima at +-sqrt(x)."""

    def __init__(self) -> None:
        super().__init__(1, y_dim=1)

    def forward(self, x, y):
        return (y[:, 0] ** 2 - x[:, 0]) ** 2


def test_descent_search_finds_the_other_branch(generator):
    F = DoubleWell()
    x = torch.ones(3, 1, dtype=torch.float64)
    y = torch.tensor([[1.0], [-1.0], [0.2]], dtype=torch.float64)
    for search, bounds in (("descent", (-2.0, 2.0)), ("descent", None), ("grid", (-2.0, 2.0))):
        f = LossFunctional("hinge", search=search, bounds=bounds, epsilon=0.3, n_steps=100)
        t = f._continuous_terms(F, x, y, ("offending", "minimum"), generator)
        assert t.offending is not None and t.minimum is not None
        # Rows 0 and 1 sit at a minimum: the offending answer is the other one.
        assert torch.allclose(t.offending[:2], torch.zeros(2, dtype=torch.float64), atol=1e-3)
        assert torch.allclose(t.minimum, torch.zeros(3, dtype=torch.float64), atol=1e-3)
        assert float(t.correct[2]) > 0.9


def test_nll_uses_closed_form_log_z_and_matches_the_grid():
    F = QuadraticConditionalEnergy(2, 1, precision=torch.tensor([[3.0]])).double()
    x = torch.randn(5, 2, dtype=torch.float64)
    y = torch.randn(5, 1, dtype=torch.float64)
    closed = LossFunctional("nll", beta=2.0).terms(F, x, y)

    # Same free energy by quadrature: the grid path on an energy without log_z.
    class NoLogZ(ConditionalEnergy):
        def __init__(self):
            super().__init__(2, y_dim=1)

        def forward(self, x, y):
            return F(x, y)

    grid = LossFunctional("nll", beta=2.0, bounds=(-12, 12), resolution=4000).terms(NoLogZ(), x, y)
    assert torch.allclose(closed.free_energy, grid.free_energy, atol=1e-6)
    with pytest.raises(ValueError, match="needs bounds"):
        LossFunctional("nll").terms(NoLogZ(), x, y)


def test_diagnostics():
    F = DiscreteConditionalEnergy(1, 3, network=Table([0.0, 1.0, 2.0]))
    x, y = torch.zeros(2, 1), torch.tensor([0, 2])
    _, diag, state = LossFunctional("hinge")(F, x, y, "kept")
    assert state == "kept"
    assert float(diag.energy_correct) == 1.0 and float(diag.energy_offending) == 0.5
    assert float(diag.error_rate) == 0.5 and float(diag.energy_gap) == -0.5
    _, diag, _ = LossFunctional("energy")(F, x, y)
    assert torch.isnan(diag.energy_offending)


# -- collapse ---------------------------------------------------------------------


def _flatness(F: ConditionalEnergy, x: torch.Tensor, bounds=(-2.0, 2.0)) -> torch.Tensor:
    """Per-row energy range over a grid of answers (0 = perfectly flat)."""
    grid = torch.linspace(*bounds, 81, dtype=x.dtype)[:, None]
    with torch.no_grad():
        e = F(x.repeat_interleave(81, 0), grid.repeat(x.shape[0], 1)).reshape(x.shape[0], 81)
    return e.max(1).values - e.min(1).values


def test_energy_loss_collapses_where_contrastive_loss_does_not(generator):
    # F(x, y) = |G(x) - H(y)|^2 (two embedding networks): the architecture can
    # make every answer equally good by making G and H constant. The energy
    # loss, which only pushes the data's energy down, drives it there (the
    # tutorial's degenerate solution); the hinge loss also pushes the most
    # offending answer up and keeps a sharp energy, lowest at the right answer.
    x = torch.rand(256, 1, dtype=torch.float64, generator=generator) * 2 - 1
    y = 0.8 * x + 0.05 * torch.randn(256, 1, dtype=torch.float64, generator=generator)
    x_test = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64)[:, None]
    grid = torch.linspace(-2.0, 2.0, 81, dtype=torch.float64)[:, None]
    options = {
        "energy": {},
        "hinge": {"margin": 1.0, "bounds": (-2, 2), "epsilon": 0.2, "resolution": 64},
    }
    for name, opts in options.items():
        F = JointEmbeddingEnergy(
            1, 1, embed_dim=4, hidden=(16,), generator=torch.Generator().manual_seed(0)
        ).double()
        before = _flatness(F, x_test)
        fit_conditional(F, x, y, name, n_steps=300, lr=0.05, generator=generator, **opts)
        after = _flatness(F, x_test)
        if name == "energy":
            assert bool((after < 0.1 * before).all()), (before, after)
            assert float(after.max()) < 0.1, f"energy loss did not collapse: {after}"
        else:
            assert float(after.min()) > 1.0, f"hinge loss energy is flat: {after}"
            with torch.no_grad():
                e = F(x_test.repeat_interleave(81, 0), grid.repeat(7, 1)).reshape(7, 81)
            best = grid[e.argmin(1)]
            assert torch.allclose(best, 0.8 * x_test, atol=0.1), best
