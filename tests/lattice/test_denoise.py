"""Ising image denoising: the three restorations, their fixed points, the example."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from ebmlab.lattice import IsingDenoiser, flip_pixels, pixel_error
from ebmlab.lattice.denoise import METHODS
from helpers import assert_binomial_proportions

ROOT = Path(__file__).parents[2]


def bars(n: int) -> torch.Tensor:
    clean = -torch.ones(n, 24, 24)
    clean[:, :, 6:12] = 1.0
    clean[:, 14:20, :] = 1.0
    return clean


@pytest.mark.parametrize("method", METHODS)
def test_each_method_removes_most_noise(method, generator):
    clean = bars(8)
    noisy = flip_pixels(clean, 0.1, generator=generator)
    restored = IsingDenoiser(1.0, flip_prob=0.1).denoise(noisy, method, generator=generator)
    assert restored.shape == clean.shape
    assert bool(((restored == 1) | (restored == -1)).all())
    assert pixel_error(restored, clean) < 0.3 * pixel_error(noisy, clean)


def test_flip_pixels_rate(generator):
    x = torch.ones(20, 32, 32)
    flipped = int((flip_pixels(x, 0.2, generator=generator) < 0).sum())
    assert_binomial_proportions([flipped, x.numel() - flipped], [0.2, 0.8])


def test_fixed_points_and_data_weight(generator):
    den = IsingDenoiser(0.7, flip_prob=0.1)
    assert math.isclose(den.data_weight, 0.5 * math.log(0.9 / 0.1))
    noisy = flip_pixels(bars(3), 0.15, generator=generator)
    model = den.model(noisy)
    # ICM ends where every pixel agrees with the sign of its local field (or ties).
    x = den.icm(noisy)
    f = model.local_field(x)
    assert bool(((f * x) >= 0).all())
    # Mean field solves m = tanh(J sum m + eta y).
    m = den.mean_field(noisy, tol=1e-9, max_iter=2000)
    assert torch.allclose(m, torch.tanh(model.local_field(m)), atol=1e-5)
    # Posterior mean is in [-1, 1] and moves toward the clean image.
    pm = den.posterior_mean(noisy, n_sweeps=30, burn_in=5, generator=generator)
    assert bool((pm.abs() <= 1).all())


def test_errors():
    with pytest.raises(ValueError, match="flip_prob"):
        IsingDenoiser(flip_prob=0.6)
    with pytest.raises(ValueError, match="coupling"):
        IsingDenoiser(coupling=0.0)
    with pytest.raises(ValueError, match=r"-1 and \+1"):
        IsingDenoiser().denoise(torch.zeros(1, 4, 4), "icm")
    with pytest.raises(ValueError, match="method must be one of"):
        IsingDenoiser().denoise(torch.ones(1, 4, 4), "median")


@pytest.mark.slow
def test_example_quick(capsys):
    path = ROOT / "examples" / "ising_denoise_digits.py"
    spec = importlib.util.spec_from_file_location("_example_ising_denoise", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    threads = torch.get_num_threads()
    try:
        spec.loader.exec_module(module)
        out = module.main(["--quick"])
    finally:
        torch.set_num_threads(threads)
    big = out["32x32"]
    for method in METHODS:
        # 10 % flipped pixels: each restoration removes most of them on 32 x 32 digits.
        assert big[method]["error"] < 0.3 * big["noisy"]["error"], big
    assert "pixel error" in capsys.readouterr().out
