"""Image restoration by a noise-conditional image run (``--objective ncsm``):
Tweedie denoising and annealed inpainting on tiny generated images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ebmlab.cli import main
from ebmlab.energies import ConvEnergy, NoiseConditionalImageEnergy
from ebmlab.errors import ConfigError
from ebmlab.estimators.denoiser import psnr
from ebmlab.objectives import NoiseConditionalScoreMatching
from ebmlab.runs import denoise_run

SIDE = 8


def bars(n: int, seed: int) -> np.ndarray:
    """uint8 images (n, 8, 8): one bright horizontal or vertical bar on a dark background."""
    rng = np.random.default_rng(seed)
    x = np.full((n, SIDE, SIDE), 20, np.uint8)
    for i in range(n):
        k = rng.integers(1, SIDE - 1)
        if i % 2:
            x[i, k, :] = 235
        else:
            x[i, :, k] = 235
    return x


def to_unit(x: np.ndarray) -> np.ndarray:
    """uint8 -> [-1, 1], the run's scaling."""
    return x.astype(np.float64) / 127.5 - 1.0


@pytest.fixture(scope="module")
def ncsm_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ncsm")
    np.save(tmp / "bars.npy", bars(200, seed=0))
    cfg = {
        "data": {"file": str(tmp / "bars.npy"), "toy": None, "test_fraction": 0.1},
        "model": {"type": "conv", "channels": [8, 16], "hidden": [32], "base_scale": None},
        "objective": {"name": "ncsm", "sigma_min": 0.02, "sigma_max": 1.0},
        "train": {
            "steps": 300,
            "batch_size": 64,
            "lr": 3e-3,
            "warmup_steps": 0,
            "checkpoint_every": 0,
            "threads": 1,
        },
    }
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    args = ["train", str(tmp / "cfg.yaml"), "--out", str(tmp / "run"), "--quiet", "--no-eval"]
    assert main(args) == 0
    return tmp, tmp / "run"


def test_noise_conditional_image_energy_reads_the_level():
    torch.manual_seed(0)
    e = NoiseConditionalImageEnergy(ConvEnergy((2, 8, 8), channels=(4,)), 0.05, 1.0)
    x = torch.randn(3, 1, 8, 8)
    assert e.event_shape == (1, 8, 8) and e(x).shape == (3,)
    # one argument = the smallest level; other levels give other energies
    torch.testing.assert_close(e(x), e(x, torch.full((3,), 0.05)))
    assert not torch.allclose(e(x, torch.full((3,), 0.5)), e(x))
    with pytest.raises(ValueError, match="sigma_min"):
        NoiseConditionalImageEnergy(ConvEnergy((2, 8, 8), channels=(4,)), 1.0, 0.5)


def test_noise_conditional_score_matching_takes_images():
    torch.manual_seed(0)
    e = NoiseConditionalImageEnergy(ConvEnergy((2, 8, 8), channels=(4,)), 0.05, 1.0)
    loss, _, _ = NoiseConditionalScoreMatching(0.05, 1.0)(e, torch.randn(5, 1, 8, 8), None)
    assert loss.shape == () and bool(torch.isfinite(loss))
    loss.backward()
    # grad_x E does not see the last bias; every weight is trained
    for name, p in e.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_tweedie_denoising_beats_the_noisy_input(ncsm_run):
    tmp, run = ncsm_run
    clean = bars(40, seed=1)
    rng = np.random.default_rng(2)
    sigma = 0.3  # on [-1, 1]; 38.25 grey levels
    noisy = to_unit(clean) + sigma * rng.standard_normal(clean.shape)
    np.save(tmp / "noisy.npy", (noisy + 1.0) * 127.5)  # float, the data's units
    out = denoise_run(run, tmp / "noisy.npy", noise_std=sigma * 127.5).numpy()
    before = psnr(to_unit(clean), noisy, 2.0)
    after = psnr(to_unit(clean).reshape(40, -1), out, 2.0)
    print(f"PSNR noisy {before:.2f} dB, restored {after:.2f} dB")
    assert after > before + 3.0
    assert out.min() >= -1.0 and out.max() <= 1.0


@pytest.mark.parametrize("method", ["tweedie", "langevin"])
def test_inpainting_keeps_observed_pixels_and_fills_the_rest(ncsm_run, method):
    tmp, run = ncsm_run
    clean = bars(40, seed=3)
    rng = np.random.default_rng(4)
    observed = rng.random(clean.shape) < 0.5
    holes = np.where(observed, clean.astype(np.float64), np.nan)
    np.save(tmp / "holes.npy", holes)
    out = denoise_run(
        run, tmp / "holes.npy", noise="mask", method=method, n_steps=20, n_chains=4
    ).numpy()
    flat_obs = observed.reshape(40, -1)
    np.testing.assert_array_equal(out[flat_obs], to_unit(clean).reshape(40, -1)[flat_obs])
    # the missing pixels: better than filling them with the mean training image
    mean = to_unit(bars(200, seed=0)).mean(0).reshape(-1)
    miss = ~flat_obs
    target = to_unit(clean).reshape(40, -1)[miss]
    mse_mean = np.mean((np.broadcast_to(mean, (40, mean.size))[miss] - target) ** 2)
    mse = np.mean((out[miss] - target) ** 2)
    print(f"{method}: MSE of the missing pixels {mse:.4f}, mean image {mse_mean:.4f}")
    assert mse < 0.5 * mse_mean


def test_cli_denoise_on_an_ncsm_run_and_ncsm_refused_for_rows(ncsm_run, tmp_path):
    _, run = ncsm_run
    clean = bars(6, seed=5)
    np.save(tmp_path / "x.npy", clean)
    out = tmp_path / "r.npy"
    assert (
        main(["denoise", str(run), str(tmp_path / "x.npy"), "-o", str(out), "--noise-std", "20"])
        == 0
    )
    r = np.load(out)
    assert r.shape == (6, 8, 8) and r.dtype == np.uint8
    with pytest.raises(ConfigError, match="ncsm"):
        # an MLP run cannot be noise-conditional
        from ebmlab.config import RunConfig
        from ebmlab.runs import build_energy

        cfg = RunConfig()
        cfg.objective.name = "ncsm"
        build_energy(cfg, (2,))


def test_train_data_objective_ncsm_gives_the_restoration_recipe(tmp_path):
    np.save(tmp_path / "bars.npy", bars(24, seed=6))
    out = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "bars.npy"), "--objective", "ncsm"]
    assert main([*args, "--steps", "2", "--out", str(out), "--no-eval", "--quiet"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["objective"]["name"] == "ncsm" and cfg["objective"]["sigma_data"] == 0.5
    assert cfg["model"]["type"] == "conv" and cfg["train"]["lr"] == 1e-3
    from ebmlab.runs import load_run

    assert isinstance(load_run(out).energy, NoiseConditionalImageEnergy)
