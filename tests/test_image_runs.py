"""Image runs end to end on tiny generated images: recipe, CLI, grid, GIF, FID/KID."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ebmlab.cli import main
from ebmlab.data.images import has_labels
from ebmlab.energies import ConvEnergy
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.runs.images import image_grid, image_run_config, write_chains_gif
from ebmlab.sample_quality import fid, kid, train_feature_classifier
from ebmlab.samplers import Langevin
from ebmlab.train import TrainSettings, fit

PIL = pytest.importorskip("PIL.Image")


def bars(n: int = 48, side: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, side, side): class 0 a horizontal bar, class 1 a vertical one."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 30, (n, side, side)).astype(np.uint8)
    y = np.arange(n) % 2
    for i in range(n):
        k = rng.integers(1, side - 1)
        if y[i] == 0:
            x[i, k, :] = 230
        else:
            x[i, :, k] = 230
    return x, y


TINY_IMAGES = {
    "model": {"type": "conv", "channels": [4, 8], "hidden": [8], "base_scale": 2.0},
    "sampler": {
        "method": "langevin",
        "step_size": 1.0,
        "noise_scale": 0.005,
        "grad_clamp": 0.03,
        "clamp": [-1.0, 1.0],
    },
    "objective": {
        "name": "pcd",
        "n_steps": 3,
        "alpha": 0.1,
        "n_chains": 64,
        "reinit_prob": 0.05,
        "data_noise": 0.01,
    },
    "train": {
        "steps": 4,
        "batch_size": 16,
        "lr": 1e-3,
        "betas": [0.0, 0.999],
        "warmup_steps": 0,
        "log_every": 2,
        "checkpoint_every": 2,
        "ema": 0.9,
    },
    "evaluate": {"n_samples": 16, "sample_steps": 3, "ais_chains": 8, "ais_temperatures": 10},
}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("img")
    x, y = bars()
    np.savez(tmp / "bars.npz", x=x, y=y)
    cfg = dict(TINY_IMAGES, data={"file": str(tmp / "bars.npz"), "toy": None})
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp / "cfg.yaml"), "--out", str(tmp / "run"), "--quiet"]) == 0
    return tmp, tmp / "run"


def test_image_run_directory_and_report(image_run):
    _, run = image_run
    for name in ("samples.png", "chains.gif", "report.json", "model.safetensors", "curves.png"):
        assert (run / name).is_file(), name
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["image"] == {
        "low": 0.0,
        "high": 255.0,
        "dtype": "uint8",
        "layout": "NHW",
        "shape": [1, 8, 8],
    }
    report = json.loads((run / "report.json").read_text())
    for key in ("fid", "kid", "fid_floor", "kid_floor", "fid_fresh", "feature_network"):
        assert key in report, key
    assert report["fid"] >= 0 and report["fid_floor"] >= 0
    assert report["feature_network"]["comparable_with_inception_fid"] is False
    # 8x8 integer images: the dequantized log-likelihood bracket
    lo, hi = report["ll_nats_per_image_lower"], report["ll_nats_per_image_upper"]
    assert lo <= hi and np.isfinite([lo, hi]).all()
    assert report["bits_per_dim_lower"] <= report["bits_per_dim_upper"]
    with PIL.open(run / "chains.gif") as gif:
        assert gif.n_frames >= 2
    with PIL.open(run / "samples.png") as im:
        assert im.size[0] > 100


def test_sample_writes_grid_and_array_in_data_range(image_run, capsys):
    tmp, run = image_run
    assert main(["sample", str(run), "-n", "9", "-o", str(tmp / "grid.png"), "--steps", "2"]) == 0
    with PIL.open(tmp / "grid.png") as im:
        assert im.mode == "L" and im.size[0] >= 28
    assert main(["sample", str(run), "-n", "5", "-o", str(tmp / "s.npy"), "--steps", "2"]) == 0
    arr = np.load(tmp / "s.npy")
    assert arr.shape == (5, 8, 8) and arr.dtype == np.uint8
    assert main(["sample", str(run), "-n", "2", "-o", str(tmp / "s.txt")]) == 2
    assert "png" in capsys.readouterr().err


def test_score_detect_denoise_accept_image_files(image_run, capsys):
    tmp, run = image_run
    x, _ = bars(6, seed=5)
    np.save(tmp / "new.npy", x)
    assert main(["score", str(run), str(tmp / "new.npy")]) == 0
    energies = [float(v) for v in capsys.readouterr().out.split()]
    assert len(energies) == 6 and np.isfinite(energies).all()
    assert main(["detect", str(run), str(tmp / "new.npy")]) == 0
    assert capsys.readouterr().out.startswith("energy,label\n")
    # missing pixels as NaN in a float array in the data's units
    holes = x.astype(np.float32)
    holes[:, :4] = np.nan
    np.save(tmp / "holes.npy", holes)
    out = tmp / "restored.npy"
    args = ["denoise", str(run), str(tmp / "holes.npy"), "-o", str(out), "--noise", "mask"]
    assert main([*args, "--steps", "5"]) == 0
    restored = np.load(out)
    assert restored.shape == (6, 8, 8) and restored.dtype == np.uint8
    np.testing.assert_array_equal(restored[:, 4:], x[:, 4:])  # observed pixels kept
    # Gaussian noise, std in the data's units
    noisy = np.clip(x + np.random.default_rng(0).normal(0, 20, x.shape), 0, 255).astype(np.uint8)
    np.save(tmp / "noisy.npy", noisy)
    args = ["denoise", str(run), str(tmp / "noisy.npy"), "-o", str(out), "--noise-std", "20"]
    assert main([*args, "--steps", "5"]) == 0
    assert np.load(out).shape == (6, 8, 8)


def test_train_data_flag_picks_conv_energy_and_image_recipe(tmp_path):
    x, _ = bars(20)
    np.savez(tmp_path / "b.npz", x=x)  # no labels: the generative image recipe
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "b.npz"),
            "--steps",
            "1",
            "--out",
            str(out),
            "--no-eval",
            "--quiet",
        ]
    )
    assert code == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["model"]["type"] == "conv"
    assert cfg["sampler"]["grad_clamp"] == 0.03 and cfg["sampler"]["clamp"] == [-1.0, 1.0]
    assert cfg["objective"]["name"] == "pcd" and cfg["data"]["image"]["dtype"] == "uint8"
    assert image_run_config("builtin:digits").model.base_scale == 2.0


@pytest.mark.parametrize("objective", [None, "pcd"])
def test_labelled_image_file_trains_jem_unless_told(tmp_path, objective):
    x, y = bars(20)
    np.savez(tmp_path / "b.npz", x=x, y=y)
    out = tmp_path / "run"
    flag = [] if objective is None else ["--objective", objective]
    args = ["train", "--data", str(tmp_path / "b.npz"), "--steps", "1", "--out", str(out)]
    assert main([*args, *flag, "--no-eval", "--quiet"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["objective"]["name"] == ("jem" if objective is None else "pcd")
    assert has_labels(tmp_path / "b.npz") and not has_labels("nonexistent.npz")


def test_resnet_energy_trains_through_the_cli(tmp_path):
    x, y = bars(20)
    np.savez(tmp_path / "b.npz", x=x, y=y)
    cfg = dict(TINY_IMAGES, data={"file": str(tmp_path / "b.npz"), "toy": None})
    cfg["model"] = {"type": "resnet", "channels": [4], "depth": 1, "spectral_norm": True}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert (
        main(["train", str(tmp_path / "cfg.yaml"), "--out", str(out), "--no-eval", "--quiet"]) == 0
    )
    assert (out / "model.safetensors").is_file()


# ------------------------------------------------------------------ recipe pieces


def test_per_pixel_gradient_clamp_bounds_each_move():
    energy = ConvEnergy((1, 6, 6), channels=(4,), hidden=4).double()
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64) * 2 - 1
    s = Langevin(10.0, noise_scale=0.0, grad_clamp=0.03, clamp=(-1.0, 1.0))
    state = s.init(x, energy)
    new, _ = s.step(state, energy)
    move = (new.x - state.x).abs()
    assert float(move.max()) <= 10.0 * 0.03 + 1e-12
    assert float(move.max()) > 0.1  # the clamp bites: some pixels move the full 0.3
    with pytest.raises(ValueError, match="grad_clamp"):
        Langevin(1.0, grad_clamp=0.0)


def test_data_noise_changes_the_positive_energy_only_by_noise():
    energy = ConvEnergy((1, 6, 6), channels=(4,), hidden=4).double()
    x = torch.rand(8, 1, 6, 6, dtype=torch.float64) * 2 - 1

    def init(n, g):
        return torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64) * 2 - 1

    base = dict(n_steps=1, mode="short-run", init_fn=init)
    g = torch.Generator().manual_seed(0)
    _, d0, _ = ContrastiveDivergence(Langevin(0.1), **base)(energy, x, None, generator=g)
    g = torch.Generator().manual_seed(0)
    _, d1, _ = ContrastiveDivergence(Langevin(0.1), data_noise=0.05, **base)(
        energy, x, None, generator=g
    )
    assert float(d0.energy_pos) != float(d1.energy_pos)
    torch.testing.assert_close(d0.energy_neg, d1.energy_neg)  # negatives drawn first
    with pytest.raises(ValueError, match="data_noise"):
        ContrastiveDivergence(Langevin(0.1), data_noise=-1.0, **base)


def test_ema_weights_kept_and_resume_is_exact(tmp_path):
    x = torch.rand(32, 1, 6, 6) * 2 - 1

    def make():
        torch.manual_seed(0)
        e = ConvEnergy((1, 6, 6), channels=(4,), hidden=4)
        obj = ContrastiveDivergence(
            Langevin(1.0, noise_scale=0.01),
            n_steps=2,
            mode="pcd",
            init_fn=lambda n, g: torch.rand(n, 1, 6, 6, generator=g) * 2 - 1,
        )
        return e, obj, obj.init_state(16, generator=torch.Generator().manual_seed(1))

    def settings(steps):
        return TrainSettings(
            steps=steps,
            batch_size=8,
            lr=1e-2,
            ema=0.5,
            checkpoint_every=2,
            lr_schedule="constant",
            warmup_steps=0,
        )

    e1, o1, s1 = make()
    raw = []
    fit(e1, x, o1, settings(4), state=s1, run_dir=tmp_path / "a", progress=False)
    from safetensors.torch import load_file

    ck = load_file(str(tmp_path / "a" / "train_state.safetensors"))
    ema_keys = [k for k in ck if k.startswith("extra.ema.")]
    assert ema_keys
    for k in ema_keys:
        name = k[len("extra.ema.") :]
        torch.testing.assert_close(e1.state_dict()[name], ck[k])  # the energy holds the EMA
        raw.append(not torch.equal(ck[k], ck[f"model.{name}"]))
    assert any(raw), "EMA equals the raw weights"
    e2, o2, s2 = make()
    fit(e2, x, o2, settings(2), state=s2, run_dir=tmp_path / "b", progress=False)
    e3, o3, s3 = make()
    fit(e3, x, o3, settings(4), state=s3, run_dir=tmp_path / "b", resume=True, progress=False)
    for k, v in e1.state_dict().items():
        torch.testing.assert_close(e3.state_dict()[k], v, rtol=0, atol=0)


# ------------------------------------------------------------------ figures and quality


def test_grid_and_gif(tmp_path):
    x = torch.rand(10, 1, 5, 4) * 2 - 1
    grid = image_grid(x, pad=1)
    assert grid.shape == (3 * 6 + 1, 4 * 5 + 1) and grid.dtype == np.uint8
    rgb = image_grid(torch.rand(4, 3, 5, 5) * 2 - 1)
    assert rgb.shape == (13, 13, 3)
    frames = [x[:4] * t / 3 for t in range(4)]
    write_chains_gif(frames, tmp_path / "c.gif")
    with PIL.open(tmp_path / "c.gif") as gif:
        assert gif.n_frames == 4


def test_fid_and_kid_properties():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    b = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    shift = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    # same law: FID ~ 0 (sampling error ~ d / n); shifted mean by 1: FID ~ 1
    assert fid(a, b) < 0.05
    assert abs(fid(a, b + shift) - 1.0) < 0.15
    k_same, se_same = kid(a, b, seed=1)
    k_diff, se_diff = kid(a, b + shift, seed=1)
    assert abs(k_same) < 4 * se_same + 1e-3
    assert k_diff > k_same + 4 * (se_same + se_diff)


def test_feature_classifier_learns_and_records_provenance():
    x, y = bars(64)
    xt = torch.as_tensor(x[:, None] / 127.5 - 1, dtype=torch.float32)
    clf, prov = train_feature_classifier(
        xt[:48],
        torch.as_tensor(y[:48]),
        epochs=15,
        batch_size=16,
        x_test=xt[48:],
        y_test=torch.as_tensor(y[48:]),
    )
    assert prov["test_accuracy"] >= 0.75, prov
    assert prov["comparable_with_inception_fid"] is False
    assert clf.embed(xt).shape == (64, 128)


def test_langevin_negatives_skip_the_unused_last_gradient():
    """CD's negatives equal a full run's end points, with one energy call fewer per step."""
    energy = ConvEnergy((1, 6, 6), channels=(4,), hidden=4).double()
    calls = []
    energy.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    x = torch.rand(8, 1, 6, 6, dtype=torch.float64) * 2 - 1

    def init(n, g):
        return torch.rand(n, 1, 6, 6, generator=g, dtype=torch.float64) * 2 - 1

    sampler = Langevin(0.5, noise_scale=0.01, grad_clamp=0.03, clamp=(-1.0, 1.0))
    cd = ContrastiveDivergence(sampler, n_steps=5, mode="short-run", init_fn=init)
    x_neg, _ = cd.negatives(energy, x, None, generator=torch.Generator().manual_seed(3))
    assert len(calls) == 5  # init + 4 steps; the 5th move needs no gradient
    from ebmlab.samplers import run

    g = torch.Generator().manual_seed(3)
    full = run(sampler, energy, init(8, g), 5, generator=g).state.x
    torch.testing.assert_close(x_neg, full, rtol=0, atol=0)
