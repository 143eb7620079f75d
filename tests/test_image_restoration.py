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


# -- energy-weighted training exemplars (method "exemplar") ---------------------------------


class MirrorEnergy(torch.nn.Module):
    """A hand-made noise-conditional energy on (N, 1, 8, 8): low when the lower half
    mirrors the upper half (``|x_up - flip(x_low)|^2 * 50``), whatever the level."""

    sigma_min, sigma_max = 0.01, 1.0

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        up, low = x[:, :, :4], x[:, :, 4:].flip(2)
        return 50.0 * (up - low).pow(2).flatten(1).sum(1)


def mirrored(n: int, seed: int) -> torch.Tensor:
    """Images (n, 1, 8, 8) in [-1, 1] whose lower half mirrors the upper half."""
    g = torch.Generator().manual_seed(seed)
    up = torch.rand(n, 1, 4, 8, generator=g) * 2 - 1
    return torch.cat([up, up.flip(2)], 2)


def lower_half_missing(x: torch.Tensor) -> torch.Tensor:
    obs = torch.ones_like(x, dtype=torch.bool)
    obs[:, :, 4:] = False
    return obs


def test_exemplar_energy_weights_pick_the_consistent_completion():
    from ebmlab.runs.restore import restore_from_exemplars

    # exemplars: for each true image, itself and 7 plausible (mirrored) training images
    # whose upper halves differ from its own by noise of 0.3; with a wide kernel the
    # distance on the observed pixels barely tells them apart, the energy does
    truth = mirrored(10, seed=0)
    g = torch.Generator().manual_seed(1)
    ex = []
    for t in truth:
        up = t[:, :4].expand(8, -1, -1, -1).clone()
        up[1:] += 0.3 * torch.randn(7, 1, 4, 8, generator=g)
        ex.append(torch.cat([up, up.flip(2)], 2))
    exemplars = torch.cat(ex).clamp(-1, 1)
    obs = lower_half_missing(truth)
    y = torch.where(obs, truth, torch.zeros_like(truth))
    common = {"n_candidates": 8, "distance_scale": 3.0}
    energy = MirrorEnergy()
    with_e = restore_from_exemplars(energy, y, obs, exemplars, temperature=1.0, **common)
    without = restore_from_exemplars(energy, y, obs, exemplars, temperature=None, **common)
    miss = ~obs
    mse_e = float((with_e - truth)[miss].pow(2).mean())
    mse_0 = float((without - truth)[miss].pow(2).mean())
    mse_mean = float((exemplars.mean(0) - truth)[miss].pow(2).mean())
    print(f"MSE missing: energy {mse_e:.4f}, no energy {mse_0:.4f}, mean {mse_mean:.4f}")
    assert mse_e < 0.5 * mse_0 and mse_0 < mse_mean
    torch.testing.assert_close(with_e[obs], truth[obs], rtol=0, atol=0)


def test_exemplar_keeps_observed_pixels_range_and_is_deterministic():
    from ebmlab.runs.restore import restore_from_exemplars

    torch.manual_seed(0)
    energy = NoiseConditionalImageEnergy(ConvEnergy((2, 8, 8), channels=(4,)), 0.05, 1.0)
    for p in energy.parameters():
        p.requires_grad_(False)
    x = mirrored(6, seed=2)
    obs = torch.rand(x.shape) < 0.5
    y = torch.where(obs, x, torch.full_like(x, 7.0))  # missing pixels hold anything finite
    ex = mirrored(30, seed=3) * 1.5  # out of range on purpose: the output is clipped

    def run(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return restore_from_exemplars(
            energy, y, obs, ex, n_candidates=5, refine_steps=2, generator=g, chunk=4
        )

    a, b, c = run(0), run(0), run(1)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)  # the refinement draws from the generator
    torch.testing.assert_close(a[obs], x[obs], rtol=0, atol=0)
    assert a.shape == x.shape and float(a.min()) >= -1.0 and float(a.max()) <= 1.0
    with pytest.raises(ValueError, match="exemplars must be images"):
        restore_from_exemplars(energy, y, obs, ex[:, :, :4])


def test_denoise_exemplar_and_auto_on_an_ncsm_run(ncsm_run):
    tmp, run = ncsm_run
    clean = bars(12, seed=7)
    half = clean.astype(np.float64)
    half[:, 4:, :] = np.nan  # lower half missing: a hole, auto takes exemplars
    np.save(tmp / "half.npy", half)
    ex = denoise_run(run, tmp / "half.npy", noise="mask", method="exemplar").numpy()
    auto = denoise_run(run, tmp / "half.npy", noise="mask").numpy()
    np.testing.assert_array_equal(ex, auto)
    obs = ~np.isnan(half.reshape(12, -1))
    np.testing.assert_array_equal(ex[obs], to_unit(clean).reshape(12, -1)[obs])
    assert ex.min() >= -1.0 and ex.max() <= 1.0
    no_energy = denoise_run(
        run, tmp / "half.npy", noise="mask", method="exemplar", exemplar={"temperature": None}
    ).numpy()
    assert not np.array_equal(no_energy, ex)
    # scattered missing pixels (only where i + j is even: no 2x2 square missing, no hole):
    # auto takes the annealed chains
    rng = np.random.default_rng(8)
    even = (np.add.outer(np.arange(SIDE), np.arange(SIDE)) % 2 == 0)[None]
    drop = even & (rng.random(clean.shape) < 0.5)
    scattered = np.where(drop, np.nan, clean.astype(np.float64))
    np.save(tmp / "scattered.npy", scattered)
    kw = {"noise": "mask", "n_steps": 5, "n_chains": 2, "seed": 3}
    np.testing.assert_array_equal(
        denoise_run(run, tmp / "scattered.npy", **kw).numpy(),
        denoise_run(run, tmp / "scattered.npy", method="langevin", **kw).numpy(),
    )
    with pytest.raises(ConfigError, match="exemplar settings"):
        denoise_run(run, tmp / "half.npy", noise="mask", exemplar={"k": 3})


def test_denoise_exemplar_errors_without_the_runs_data(tmp_path, capsys):
    data = tmp_path / "bars.npy"
    np.save(data, bars(24, seed=6))
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--objective", "ncsm", "--steps", "2"]
    assert main([*args, "--out", str(run), "--no-eval", "--quiet"]) == 0
    data.unlink()  # the candidates (the training images) are gone
    np.save(tmp_path / "half.npy", np.where(np.arange(64).reshape(1, 8, 8) < 32, 20.0, np.nan))
    args = ["denoise", str(run), str(tmp_path / "half.npy"), "-o", str(tmp_path / "r.npy")]
    capsys.readouterr()
    assert main([*args, "--noise", "mask", "--method", "exemplar"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bars.npy" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r.npy").exists()


def test_cli_denoise_exemplar_options(ncsm_run, tmp_path):
    _, run = ncsm_run
    half = bars(4, seed=9).astype(np.float64)
    half[:, 4:, :] = np.nan
    np.save(tmp_path / "half.npy", half)
    base = ["denoise", str(run), str(tmp_path / "half.npy"), "--noise", "mask"]
    out = tmp_path / "r.npy"
    flags = ["--method", "exemplar", "--candidates", "5", "--temperature", "inf"]
    assert main([*base, "-o", str(out), *flags, "--distance-scale", "2"]) == 0
    r = np.load(out)
    assert r.shape == (4, 8, 8) and r.dtype == np.uint8
    assert main([*base, "-o", str(out), "--method", "exemplar", "--temperature", "0"]) == 2
