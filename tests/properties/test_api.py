"""Property-based tests (Hypothesis, default example counts) of the public API.

Inputs are kept small (a few rows, a few dimensions, a few steps) so that every
property runs its default 100 examples in about a second or two.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ebmlab
from ebmlab.data import validate_array
from ebmlab.energies import Gaussian, MLPEnergy
from ebmlab.errors import DataError
from ebmlab.objectives import DenoisingScoreMatching, ScoreMatching, SlicedScoreMatching
from ebmlab.partition import log_ratio, log_z

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([torch.float32, torch.float64])
finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=32)


def rows(n: int, d: int, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[torch.Tensor]:
    return st.lists(finite, min_size=n * d, max_size=n * d).map(
        lambda v: torch.tensor(v, dtype=dtype).reshape(n, d)
    )


@st.composite
def batch(draw: st.DrawFn) -> tuple[int, int, torch.dtype, torch.Tensor]:
    n, d, dtype = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(DTYPES)
    return n, d, dtype, draw(rows(n, d, dtype))


_MLPS: dict[tuple[int, torch.dtype], MLPEnergy] = {}


def mlp(d: int, dtype: torch.dtype) -> MLPEnergy:
    if (d, dtype) not in _MLPS:
        torch.manual_seed(d)
        _MLPS[d, dtype] = MLPEnergy((d,), [8]).to(dtype)
    return _MLPS[d, dtype]


# ------------------------------------------------------------------------------------ energies


@FAST
@given(batch())
def test_energies_map_a_batch_to_one_finite_value_per_row(b):
    n, d, dtype, x = b
    for energy in (
        mlp(d, dtype),
        Gaussian(torch.zeros(d, dtype=dtype), torch.eye(d, dtype=dtype)),
    ):
        e = energy(x)
        assert e.shape == (n,) and e.dtype == dtype and e.device == x.device
        assert torch.isfinite(e).all()


@FAST
@given(batch(), st.integers(1, 3))
def test_energies_refuse_a_wrong_event_shape(b, extra):
    n, d, dtype, _ = b
    x = torch.zeros(n, d + extra, dtype=dtype)
    with pytest.raises((ValueError, RuntimeError)):
        mlp(d, dtype)(x)


# ------------------------------------------------------------------------------------ samplers


@FAST
@given(
    batch(),
    st.sampled_from(["langevin", "mala", "hmc"]),
    st.floats(1e-3, 0.5),
    st.integers(1, 5),
    st.integers(0, 2**31),
)
def test_samplers_keep_shape_and_never_return_nan(b, method, step, n_steps, seed):
    _, d, dtype, x = b
    g = torch.Generator().manual_seed(seed)
    for energy in (
        mlp(d, dtype),
        Gaussian(torch.zeros(d, dtype=dtype), torch.eye(d, dtype=dtype)),
    ):
        out = ebmlab.sample(energy, x, method, n_steps, step_size=step, generator=g)
        assert out.shape == x.shape and out.dtype == dtype
        assert not torch.isnan(out).any()


@FAST
@given(st.sampled_from(["langevin", "mala", "hmc", "no-such"]), st.text(max_size=8))
def test_build_sampler_refuses_unknown_names_and_keywords(method, key):
    from ebmlab.samplers import build_sampler

    if method == "no-such" or (key.isidentifier() and key not in ("step_size", "method")):
        with pytest.raises(ValueError):
            build_sampler(method, **{key or "bogus_keyword": 1})


# ---------------------------------------------------------------------------------- objectives


@FAST
@given(batch(), st.sampled_from(["sm", "ssm", "dsm"]), st.integers(0, 2**31))
def test_objectives_give_a_finite_scalar_loss(b, name, seed):
    _, d, dtype, x = b
    objective = {
        "sm": lambda: ScoreMatching(),
        "ssm": lambda: SlicedScoreMatching(1),
        "dsm": lambda: DenoisingScoreMatching(0.5),
    }[name]()
    g = torch.Generator().manual_seed(seed)
    loss, _, state = objective(mlp(d, dtype), x, None, generator=g)
    assert loss.shape == () and loss.dtype == dtype and torch.isfinite(loss)
    assert state is None


# ---------------------------------------------------------------------------- log Z, log ratio


@FAST
@given(batch(), batch())
def test_log_ratio_is_antisymmetric(a, b):
    n, d, dtype, x = a
    y = b[3][:, :1].expand(b[0], d).to(dtype)
    if b[0] != n:
        y = y[:1]
    energy = mlp(d, dtype)
    forward, backward = log_ratio(energy, x, y), log_ratio(energy, y, x)
    assert forward.dtype == torch.float64
    assert torch.equal(forward, -backward)
    assert torch.equal(log_ratio(energy, x, x), torch.zeros(n, dtype=torch.float64))


@FAST
@given(
    st.integers(1, 6),
    st.lists(st.floats(-2, 2), min_size=36, max_size=36),
    st.floats(-50, 50, allow_nan=False),
)
def test_exact_log_z_shifts_by_the_constant_added_to_the_energy(n, w, c):
    """``E + c`` has ``Z e^{-c}``: exact log Z moves by exactly ``-c`` (to rounding)."""
    weights = torch.tensor(w, dtype=torch.float64).reshape(6, 6)[:n, :n]

    def energy(x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float64)
        return -(x @ weights * x).sum(1)

    def shifted(x: torch.Tensor) -> torch.Tensor:
        return energy(x) + c

    base = log_z(energy, "exact", event_shape=(n,), domain="binary").value
    moved = log_z(shifted, "exact", event_shape=(n,), domain="binary").value
    assert moved == pytest.approx(base - c, rel=0, abs=1e-9 * (1 + abs(base) + abs(c)))


# ------------------------------------------------------------------------------------- loaders

ANY_DTYPE = st.sampled_from(
    [np.bool_, np.int8, np.int64, np.uint16, np.float16, np.float32, np.float64,
     np.complex64, np.str_, np.datetime64, np.object_]
)  # fmt: skip


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


@FAST
@given(ANY_DTYPE.flatmap(lambda dt: hnp.arrays(dt, SHAPES)))
def test_validate_array_accepts_real_tables_and_refuses_the_rest_cleanly(arr):
    kind = arr.dtype.kind
    try:
        with np.errstate(all="ignore"):
            numeric = kind in "biuf" and np.isfinite(arr.astype(np.float64)).all()
    except (TypeError, ValueError):
        numeric = False
    ok = numeric and arr.ndim in (1, 2) and arr.size > 0
    if ok:
        out = validate_array(arr, name="X")
        assert out.ndim == 2 and out.dtype.kind == "f" and np.isfinite(out).all()
        assert out.shape == (arr.shape[0], arr.shape[1] if arr.ndim == 2 else 1)
    else:
        with pytest.raises(DataError) as info:
            validate_array(arr, name="X")
        assert "\n" not in str(info.value) and str(info.value).startswith("X:")


# ---------------------------------------------------------------------------------- estimators


@pytest.fixture(scope="module")
def density():
    from ebmlab.estimators import EnergyDensity

    x = np.random.default_rng(0).normal(size=(64, 2))
    return EnergyDensity(hidden=(8,), n_steps=5, batch_size=32).fit(x)


TABLES = hnp.arrays(
    st.sampled_from([np.float32, np.float64, np.int32]),
    st.tuples(st.integers(1, 5), st.just(2)),
    elements=st.integers(-3, 3),
)


@FAST
@given(TABLES)
def test_estimator_scores_any_valid_table(density, x):
    s = density.score_samples(x)
    assert s.shape == (x.shape[0],) and np.isfinite(s).all()


@FAST
@given(
    st.sampled_from(["nan", "inf", "complex", "3d", "empty", "wide", "text"]),
    st.integers(1, 4),
)
def test_estimator_refuses_invalid_tables(density, kind, n):
    x = {
        "nan": np.full((n, 2), np.nan),
        "inf": np.full((n, 2), np.inf),
        "complex": np.ones((n, 2), dtype=complex),
        "3d": np.ones((n, 2, 1)),
        "empty": np.ones((0, 2)),
        "wide": np.ones((n, 3)),
        "text": np.full((n, 2), "a"),
    }[kind]
    with pytest.raises(ValueError):  # scikit-learn's convention (its own check_array messages)
        density.score_samples(x)
