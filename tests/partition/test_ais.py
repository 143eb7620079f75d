"""AIS against exact log Z: Gaussians (closed form), mixtures (quadrature), binary
energies (enumeration); schedules, bases, samplers, weights and warnings.

Each estimate is checked against the truth within ``Z_TOL`` of its own
delta-method standard error, after checking that the effective sample size is
large enough for that standard error to mean something.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.partition import (
    ais_log_z,
    annealing_schedule,
    enumerate_log_z,
    exact_log_probs,
    log_z,
    parse_domain,
    reverse_ais_log_z,
    weight_stats,
)
from ebmlab.partition._gibbs import Gibbs
from ebmlab.samplers import MALA
from helpers import assert_tv_below

from .targets import Boltzmann, Fields, Shifted, correlated_gaussian, mixture

Z_TOL = 4.0


def assert_close_to_truth(est, truth, *, min_ess_fraction=0.25):
    msg = (
        f"estimate {est.value:.5f} ± {est.stderr:.5f} (ESS {est.ess:.1f}/{est.n_samples}), "
        f"truth {truth:.5f}, error {est.value - truth:+.5f}"
    )
    assert est.ess >= min_ess_fraction * est.n_samples, "ESS too low: " + msg
    assert abs(est.value - truth) <= Z_TOL * est.stderr, msg


@pytest.mark.parametrize(("d", "n_temperatures"), [(2, 100), (10, 200), (50, 300)])
def test_gaussians_match_closed_form(d, n_temperatures, generator):
    target = correlated_gaussian(d, seed=d)
    est = ais_log_z(target, n_chains=128, n_temperatures=n_temperatures, generator=generator)
    assert est.method == "ais" and est.n_samples == 128
    assert est.lower < est.value < est.upper
    assert_close_to_truth(est, float(target.log_z))
    betas = est.details["betas"]
    assert float(betas[0]) == 0.0 and float(betas[-1]) == 1.0
    assert bool((betas.diff() > 0).all())


@pytest.mark.slow
def test_mixtures_match_quadrature_and_exact(generator):
    m2 = Shifted(mixture(2, 8, seed=1), 1.7)  # no sample(); log Z = -1.7
    q = log_z(m2, "quadrature", bounds=[(-12.0, 12.0)] * 2)
    assert abs(q.value + 1.7) < 1e-4
    est = ais_log_z(m2, n_chains=128, n_temperatures=200, generator=generator)
    assert_close_to_truth(est, q.value)
    m10 = mixture(10, 4, seed=0)
    est = ais_log_z(m10, n_chains=128, n_temperatures=300, generator=generator)
    assert_close_to_truth(est, 0.0)


@pytest.mark.parametrize("domain", ["binary", "spin"])
def test_binary_energies_match_enumeration(domain, generator):
    e = Boltzmann(12, seed=2, scale=2.0, domain=domain)
    exact = enumerate_log_z(e).value
    est = ais_log_z(e, n_chains=128, n_temperatures=100, generator=generator)
    assert est.details["base"] == "uniform" and "Gibbs" in est.details["sampler"]
    assert_close_to_truth(est, exact)


def test_categorical_one_hot_with_linear_schedule(generator):
    e = Fields(torch.randn(6, 3, dtype=torch.float64), "onehot")
    est = ais_log_z(e, n_chains=64, n_temperatures=50, schedule="linear", generator=generator)
    assert_close_to_truth(est, e.exact_log_z(None))


@pytest.mark.parametrize(
    "options",
    [
        {"schedule": "sigmoid", "sampler": "mala"},
        {"schedule": "linear", "sampler": "hmc", "n_leapfrog": 3},
        {"sampler": MALA(0.05), "n_transitions": 2},
        {"base": "data"},
        {"base": "given"},
        {"schedule": "explicit"},
    ],
    ids=["sigmoid-mala", "linear-hmc", "mala-object", "data-base", "given-base", "explicit"],
)
def test_schedules_samplers_and_bases(options, generator):
    target = correlated_gaussian(5, seed=4)
    options = dict(options)
    if options.get("base") == "data":
        options["data"] = target.sample(2000, generator=generator)
    if options.get("base") == "given":
        options["base"] = Gaussian(target.mean + 0.5, 3.0 * torch.eye(5, dtype=torch.float64))
    if options.get("schedule") == "explicit":
        options["schedule"] = annealing_schedule("sigmoid", 300) ** 2
    est = ais_log_z(target, n_chains=128, n_temperatures=300, generator=generator, **options)
    assert_close_to_truth(est, float(target.log_z))


def test_reverse_ais_from_exact_samples_is_an_upper_bound(generator):
    target = correlated_gaussian(5, seed=5)
    x = target.sample(128, generator=generator)
    est = reverse_ais_log_z(target, x, n_temperatures=200, generator=generator)
    assert est.method == "reverse-ais"
    assert_close_to_truth(est, float(target.log_z))


def test_low_ess_warns():
    target = Gaussian(torch.full((20,), 4.0, dtype=torch.float64), torch.eye(20) * 0.1)
    base = Gaussian.standard(20, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="effective sample size"):
        est = ais_log_z(target, base=base, n_chains=64, n_temperatures=2, schedule="linear")
    assert est.ess < 30


def test_non_finite_energies_get_zero_weight():
    class Holey(Gaussian):
        def forward(self, x):
            e = super().forward(x)
            return torch.where(x[:, 0] > 2.5, torch.full_like(e, float("nan")), e)

    target = Holey(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    base = Gaussian.standard(2, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        est = ais_log_z(target, base=base, n_chains=256, n_temperatures=20, schedule="linear")
    assert math.isfinite(est.value)


def test_input_errors():
    g = Gaussian.standard(2)
    with pytest.raises(ValueError, match="schedule"):
        ais_log_z(g, schedule="cosine")
    with pytest.raises(ValueError, match=r"start at 0\.0"):
        ais_log_z(g, schedule=torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="strictly increasing"):
        ais_log_z(g, schedule=torch.tensor([0.0, 0.5, 0.5, 1.0]))
    with pytest.raises(ValueError, match="base"):
        ais_log_z(g, base="uniform")
    with pytest.raises(ValueError, match="data="):
        ais_log_z(g, base="data")
    with pytest.raises(ValueError, match="log_z"):
        ais_log_z(g, base=torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="n_chains"):
        ais_log_z(g, n_chains=1)
    with pytest.raises(ValueError, match="sampler"):
        ais_log_z(g, sampler="nuts")
    with pytest.raises(ValueError, match="gibbs"):
        ais_log_z(Boltzmann(4), sampler="hmc")


def test_weight_stats():
    assert weight_stats(torch.zeros(10)) == (0.0, 0.0, 10.0)
    lw = torch.tensor([0.0, -1000.0, -1000.0, -1000.0], dtype=torch.float64)
    m, se, ess = weight_stats(lw)
    assert m == pytest.approx(-math.log(4)) and ess == pytest.approx(1.0)
    lw = torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = lw.exp()
    m, se, ess = weight_stats(lw + 800.0)  # a shift must not overflow
    assert m == pytest.approx(float(w.mean().log()) + 800.0)
    assert se == pytest.approx(float(w.std() / (w.mean() * math.sqrt(1000))))
    assert ess == pytest.approx(float(w.sum() ** 2 / (w**2).sum()))
    with pytest.raises(ValueError, match="NaN"):
        weight_stats(torch.tensor([0.0, float("nan")]))


def test_schedules_shape():
    for name in ("linear", "sigmoid"):
        b = annealing_schedule(name, 50)
        assert b.shape == (51,) and float(b[0]) == 0.0 and float(b[-1]) == 1.0
        assert bool((b.diff() > 0).all())
    with pytest.raises(ValueError, match="n_temperatures"):
        annealing_schedule("linear", 0)


@pytest.mark.parametrize("scan", ["systematic", "random"])
def test_gibbs_keeps_the_exact_distribution(scan, generator):
    e = Boltzmann(5, seed=7, scale=2.0)
    x, lp = exact_log_probs(e)
    n = 20000
    idx = torch.multinomial(lp.exp(), n, replacement=True, generator=generator)
    sampler = Gibbs(parse_domain("binary"), (5,), scan=scan)
    state = sampler.init(x[idx], e)
    for _ in range(3):
        state, info = sampler.step(state, e, generator=generator)
    assert torch.allclose(state.energy, e(state.x))
    assert 0.0 < float(info.acceptance_rate.mean()) < 1.0
    codes = (state.x * torch.tensor([16.0, 8.0, 4.0, 2.0, 1.0], dtype=torch.float64)).sum(1)
    counts = torch.bincount(codes.long(), minlength=32)
    assert_tv_below(counts, lp.exp())


def test_no_warning_on_a_healthy_run(generator):
    target = correlated_gaussian(3, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ais_log_z(target, n_chains=64, n_temperatures=100, generator=generator)


@pytest.mark.parametrize("schedule", ["linear", "sigmoid"])
def test_fixed_schedule_step_sizes_are_set_before_the_main_run(schedule, generator):
    """With adapt_step_size, a fixed schedule's step sizes come from a pilot run: two main
    runs with different chains use the same ones (step sizes adapted from the chains' own
    acceptance would make the weights depend on their history, hence biased)."""
    from ebmlab.partition._engine import _forward, _plan

    target = correlated_gaussian(3, seed=6)
    plan = _plan(
        target, event_shape=None, domain=None, base=None, data=None, base_inflation=None,
        n_chains=32, n_temperatures=40, schedule=schedule, sampler="mala", n_transitions=1,
        n_leapfrog=2, step_size=None, target_acceptance=None, adapt_step_size=True,
        pilot_chains=None, pilot_temperatures=None, generator=generator, dtype=None,
        device=None,
    )  # fmt: skip
    runs = [
        _forward(plan, 32, torch.Generator().manual_seed(seed), final_transition=False)[0]
        for seed in (1, 2)
    ]
    assert plan.step_sizes is not None and len(plan.step_sizes) == len(plan.betas)
    assert runs[0].step_sizes == runs[1].step_sizes == plan.step_sizes[1:-1]
    assert len(set(plan.step_sizes)) > 1, "the pilot tuned nothing"
